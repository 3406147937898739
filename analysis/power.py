"""Power of the paired t-test: the minimum detectable difference of a comparison from its observed
spread, and the number of seeds a setting needs to detect a given difference.

Power is exact (noncentral t, ``scipy.stats.nct``), not a normal approximation: with 3-10 seeds the
two differ a lot. Differences and standard deviations are in the metric's units (accuracy points).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize
from scipy import stats as st

__all__ = ["t_power", "min_detectable_difference", "seeds_needed", "sd_upper_bound"]


def _check(alpha: float, power: float, alternative: str) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if not 0.0 < power < 1.0:
        raise ValueError(f"power must be in (0, 1), got {power}")
    if alternative not in ("two-sided", "greater"):
        raise ValueError(f"alternative must be 'two-sided' or 'greater', got {alternative!r}")


def t_power(effect: float, sd: float, n: int, alpha: float = 0.05, alternative: str = "two-sided") -> float:
    """Power of the one-sample (paired) t-test with ``n`` pairs at level ``alpha`` to detect a true
    mean difference ``effect`` when the differences have standard deviation ``sd``.

    Two-sided: P(|T| > t_{1-alpha/2, n-1}); ``"greater"``: P(T > t_{1-alpha, n-1}); T is noncentral t
    with n - 1 degrees of freedom and noncentrality effect * sqrt(n) / sd. NaN when n < 2 or sd is not
    positive and finite.
    """
    _check(alpha, 0.5, alternative)
    if n < 2 or not (math.isfinite(sd) and sd > 0) or not math.isfinite(effect):
        return math.nan
    df = n - 1
    nc = effect * math.sqrt(n) / sd
    if alternative == "greater":
        return float(st.nct.sf(st.t.ppf(1 - alpha, df), df, nc))
    tc = st.t.ppf(1 - alpha / 2, df)
    major = float(st.nct.sf(tc, df, abs(nc)))
    # The far tail is negligible once |nc| is a few units, where SciPy's nct.cdf can return NaN
    # for values below ~1e-16 instead of underflowing to 0.
    minor = float(np.nan_to_num(st.nct.cdf(-tc, df, abs(nc)), nan=0.0))
    return major + minor


def min_detectable_difference(sd: float, n: int, alpha: float = 0.05, power: float = 0.8,
                              alternative: str = "two-sided") -> float:
    """The smallest true mean difference (> 0) that the paired t-test with ``n`` pairs at level
    ``alpha`` detects with probability ``power``, for differences of standard deviation ``sd``.
    NaN when n < 2 or sd is not positive and finite."""
    _check(alpha, power, alternative)
    if n < 2 or not (math.isfinite(sd) and sd > 0):
        return math.nan
    f = lambda e: t_power(e, sd, n, alpha, alternative) - power  # noqa: E731
    hi = sd
    while f(hi) < 0:
        hi *= 2.0
        if hi > 1e9 * sd:  # pragma: no cover - power never reached
            return math.inf
    return float(optimize.brentq(f, 0.0, hi, xtol=1e-10 * sd, rtol=1e-12))


def seeds_needed(effect: float, sd: float, alpha: float = 0.05, power: float = 0.8,
                 alternative: str = "two-sided", max_seeds: int = 100_000) -> float:
    """The smallest number of seeds (pairs, at least 2) for which the paired t-test at level ``alpha``
    detects a true difference ``effect`` with probability at least ``power``, if the differences have
    standard deviation ``sd``. NaN when sd is not positive and finite; inf beyond ``max_seeds``."""
    _check(alpha, power, alternative)
    if not (math.isfinite(sd) and sd > 0) or not (math.isfinite(effect) and effect > 0):
        return math.nan

    def ok(n: int) -> bool:
        return t_power(effect, sd, n, alpha, alternative) >= power

    if not ok(max_seeds):
        return math.inf
    # Normal-approximation start, then exact: power increases with n.
    z = st.norm.ppf(1 - (alpha / 2 if alternative == "two-sided" else alpha)) + st.norm.ppf(power)
    n = max(2, int(np.floor((z * sd / effect) ** 2)))
    while n > 2 and ok(n - 1):
        n -= 1
    while not ok(n):
        n += 1
    return float(n)


def sd_upper_bound(sd: float, n: int, confidence: float = 0.8) -> float:
    """One-sided upper confidence bound for the standard deviation of normal differences, from the sample
    sd of ``n`` of them: sd * sqrt((n - 1) / chi2_{1 - confidence, n - 1}). Planning with it instead of
    the sample sd (Browne 1995, "On the use of a pilot sample for sample size determination") reaches
    the target power with probability at least ``confidence``; planning with the sample sd itself falls
    short more often than not with few seeds. NaN when n < 2 or sd is not finite."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n < 2 or not math.isfinite(sd) or sd < 0:
        return math.nan
    return float(sd * math.sqrt((n - 1) / st.chi2.ppf(1.0 - confidence, n - 1)))

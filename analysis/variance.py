"""Seeds by source: how much of a cell's seed-to-seed spread comes from the initial network, how much from the
data order, and what that means for pairing and for the seeds a comparison needs.

A crossed design runs every pair (init seed i, order seed o), i = 1..I, o = 1..O, once per cell (a setting and a
method). Its results follow the two-way random-effects model

    y_io = mu + a_i + b_o + e_io,    a_i ~ N(0, s2_init), b_o ~ N(0, s2_order), e_io ~ N(0, s2_resid),

where e_io holds the init x order interaction together with everything else (with one run per pair the two cannot
be told apart). The estimates are the ANOVA (method-of-moments) ones, which for a balanced design are also the
REML ones when they are positive:

    MS_init  = O * sum_i (ybar_i. - ybar..)^2 / (I - 1)                 E = s2_resid + O * s2_init
    MS_order = I * sum_o (ybar_.o - ybar..)^2 / (O - 1)                 E = s2_resid + I * s2_order
    MS_resid = sum (y - ybar_i. - ybar_.o + ybar..)^2 / ((I-1)(O-1))    E = s2_resid

s2_init = (MS_init - MS_resid) / O, s2_order = (MS_order - MS_resid) / I (a negative estimate is reported as 0 and
flagged), s2_resid = MS_resid. Intervals: s2_resid from the chi-square distribution of its sum of squares
(exact); s2_init and s2_order by the modified large-sample method for a difference of two mean squares (Ting,
Burdick, Graybill, Jeyaratnam and Lu 1990; Burdick and Graybill 1992, section 3.3), whose coverage is checked by
simulation in tests/analysis_tests/test_variance.py.

Pairing: two methods run on the same (init, order) pairs share a_i and b_o as far as the methods respond alike
to them. The correlation of their results across the pairs, and the ratio var(y_A - y_B) / (var(y_A) + var(y_B)),
say how much pairing on the seed buys: a comparison paired on seeds needs that ratio times the seeds an unpaired
one needs for the same power.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["Component", "Decomposition", "decompose", "mls_interval", "pairing"]


@dataclass(frozen=True)
class Component:
    """One variance component: its estimate (truncated at 0), the raw ANOVA value and its interval."""

    name: str
    estimate: float
    raw: float  # the method-of-moments value before truncation (negative: the component is not seen here)
    low: float
    high: float

    @property
    def truncated(self) -> bool:
        return self.raw < 0


@dataclass(frozen=True)
class Decomposition:
    n_init: int
    n_order: int
    mean: float
    ms_init: float
    ms_order: float
    ms_resid: float
    init: Component
    order: Component
    resid: Component
    level: float

    @property
    def total(self) -> float:
        return self.init.estimate + self.order.estimate + self.resid.estimate

    def share(self, name: str) -> float:
        """The component's share of the total variance of one run (NaN when the total is 0)."""
        total = self.total
        return getattr(self, name).estimate / total if total > 0 else float("nan")


def _grid(y) -> np.ndarray:
    y = np.asarray(y, dtype=float)
    if y.ndim != 2 or min(y.shape) < 2:
        raise ValueError(f"a crossed design needs at least 2 init seeds x 2 order seeds, got shape {y.shape}")
    if not np.isfinite(y).all():
        raise ValueError("a crossed design needs a finite result for every (init seed, order seed) pair")
    return y


def mls_interval(ms1: float, df1: int, ms2: float, df2: int, c: float, level: float = 0.95) -> tuple[float, float]:
    """Interval for ``theta = c * (E[ms1] - E[ms2])`` (a variance component from two independent mean squares on
    ``df1`` and ``df2`` degrees of freedom) by the modified large-sample method; the ends are clipped at 0."""
    a = (1 - level) / 2
    g1 = 1 - df1 / stats.chi2.ppf(1 - a, df1)
    h1 = df1 / stats.chi2.ppf(a, df1) - 1
    g2 = 1 - df2 / stats.chi2.ppf(1 - a, df2)
    h2 = df2 / stats.chi2.ppf(a, df2) - 1
    f_hi = stats.f.ppf(1 - a, df1, df2)
    f_lo = stats.f.ppf(a, df1, df2)
    g12 = ((f_hi - 1) ** 2 - g1 ** 2 * f_hi ** 2 - h2 ** 2) / f_hi
    h12 = ((1 - f_lo) ** 2 - h1 ** 2 * f_lo ** 2 - g2 ** 2) / f_lo
    theta = ms1 - ms2
    low = theta - math.sqrt(max(0.0, g1 ** 2 * ms1 ** 2 + h2 ** 2 * ms2 ** 2 + g12 * ms1 * ms2))
    high = theta + math.sqrt(max(0.0, h1 ** 2 * ms1 ** 2 + g2 ** 2 * ms2 ** 2 + h12 * ms1 * ms2))
    return max(0.0, c * low), max(0.0, c * high)


def decompose(y, level: float = 0.95) -> Decomposition:
    """The variance components of one cell's crossed results ``y[i, o]`` (init seed i, order seed o)."""
    y = _grid(y)
    n_i, n_o = y.shape
    grand = y.mean()
    row, col = y.mean(axis=1), y.mean(axis=0)
    df_i, df_o, df_e = n_i - 1, n_o - 1, (n_i - 1) * (n_o - 1)
    ms_i = n_o * float(((row - grand) ** 2).sum()) / df_i
    ms_o = n_i * float(((col - grand) ** 2).sum()) / df_o
    ss_e = float(((y - row[:, None] - col[None, :] + grand) ** 2).sum())
    ms_e = ss_e / df_e
    a = (1 - level) / 2
    resid = Component("resid", ms_e, ms_e, ss_e / stats.chi2.ppf(1 - a, df_e), ss_e / stats.chi2.ppf(a, df_e))
    comps = []
    for name, ms, df, c in (("init", ms_i, df_i, 1 / n_o), ("order", ms_o, df_o, 1 / n_i)):
        raw = c * (ms - ms_e)
        low, high = mls_interval(ms, df, ms_e, df_e, c, level)
        comps.append(Component(name, max(raw, 0.0), raw, low, high))
    return Decomposition(n_i, n_o, float(grand), ms_i, ms_o, ms_e, comps[0], comps[1], resid, level)


@dataclass(frozen=True)
class Pairing:
    n: int  # (init, order) pairs both methods ran
    correlation: float
    corr_low: float
    corr_high: float
    var_ratio: float  # var(a - b) / (var(a) + var(b)): paired seeds needed / unpaired seeds needed


def pairing(a, b, level: float = 0.95) -> Pairing:
    """How alike two methods' results on the same (init, order) pairs are: their correlation (Fisher-z interval)
    and the variance ratio of the paired difference to the unpaired one."""
    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if a.shape != b.shape or len(a) < 4:
        raise ValueError("pairing needs the two methods' results on the same 4 or more (init, order) pairs")
    va, vb = a.var(ddof=1), b.var(ddof=1)
    r = float(np.corrcoef(a, b)[0, 1]) if va > 0 and vb > 0 else float("nan")
    if math.isfinite(r) and abs(r) < 1:
        z, se = math.atanh(r), 1 / math.sqrt(len(a) - 3)
        q = stats.norm.ppf(0.5 + level / 2)
        lo, hi = math.tanh(z - q * se), math.tanh(z + q * se)
    else:
        lo = hi = r
    ratio = float(np.var(a - b, ddof=1) / (va + vb)) if va + vb > 0 else float("nan")
    return Pairing(len(a), r, lo, hi, ratio)

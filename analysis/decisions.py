"""The decision layer of the claims audit, on plain numpy arrays.

Everything here is vectorised over leading axes, so the same functions judge one protocol's records
(:mod:`analysis.claims`) and thousands of simulated replicates (:mod:`analysis.calibration`): the
calibration checks the very code the audit runs.

Array conventions
-----------------
* The last axis of a sample array is the seed (``K``); missing runs are NaN. Pairing is by position
  on that axis, which the callers build from seed keys, never from row order.
* A comparison family is one method against one baseline over the settings of one protocol: Holm
  adjusts along the settings axis.
* Differences are in the metric's units (accuracy points); ``delta`` is the smallest effect of
  interest in the same units.

Per setting and comparison a difference a - b is classified (:func:`classify`) as

* ``ahead`` (estimate >= delta) / ``ahead <d`` (estimate below delta): significantly above b
  (Holm-adjusted); significance says that a leads, the estimate how much;
* ``behind``: significantly below b;
* ``equivalent``: no significant difference, and the two one-sided tests (TOST, Holm-adjusted) put it
  inside ``(-delta, delta)``;
* ``unresolved``: none of these;
* ``few seeds``: fewer than ``min_seeds`` pairs, never used as evidence either way.

A significant lead is never an equivalence or a loss. The verdict rules (:func:`most_settings`,
:func:`occasionally`, :func:`all_of`, :func:`rank_verdict`) turn classes into verdicts.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats as st

__all__ = [
    "AHEAD", "AHEAD_SMALL", "EQUIVALENT", "BEHIND", "UNRESOLVED", "FEW_SEEDS", "CLASS_NAMES", "class_words",
    "SUPPORTED", "REFUTED", "INCONCLUSIVE", "VERDICT_NAMES",
    "PairedArrays", "paired_t_arrays", "holm_along", "holm_levels", "classify", "is_ahead", "is_against",
    "most_settings", "occasionally", "all_of", "rank_verdict", "collapse_test", "rate_interval",
    "seed_weights", "weighted_seed_means", "average_ranks_of", "rank_bootstrap", "refutation_spread",
]

AHEAD, AHEAD_SMALL, EQUIVALENT, BEHIND, UNRESOLVED, FEW_SEEDS = 0, 1, 2, 3, 4, 5
#: short names of the classes; :func:`class_words` spells them out with delta's value
CLASS_NAMES = ("ahead", "ahead <d", "equivalent", "behind", "unresolved", "few seeds")

SUPPORTED, REFUTED, INCONCLUSIVE = 0, 1, 2
VERDICT_NAMES = ("supported", "refuted", "inconclusive")


def class_words(code: int, delta: float) -> str:
    """A class in words with delta's value, e.g. ``ahead by less than 0.5`` (points of the metric)."""
    d = f"{delta:g}"
    return ("ahead by >= " + d, "ahead by less than " + d, "equivalent within +-" + d, "behind", "unresolved",
            "few seeds")[int(code)]


# --------------------------------------------------------------------------------------------
# paired t statistics on arrays


@dataclass(frozen=True)
class PairedArrays:
    """Paired-difference statistics along the seed axis (all arrays of the leading shape).

    p-values are NaN where the test is undefined: fewer than 2 pairs, or every difference equal
    (no spread)."""

    n: np.ndarray  #: pairs with both values finite
    mean: np.ndarray  #: mean difference
    sd: np.ndarray  #: standard deviation of the differences (ddof 1)
    se: np.ndarray  #: sd / sqrt(n)
    df: np.ndarray  #: n - 1
    p_two: np.ndarray  #: two-sided paired t-test of mean 0
    p_greater: np.ndarray  #: one-sided, H1: mean > 0
    p_less: np.ndarray  #: one-sided, H1: mean < 0
    p_tost: np.ndarray  #: equivalence (TOST): max of the one-sided p of mean > -delta and mean < delta


def paired_t_arrays(d, delta: float) -> PairedArrays:
    """Paired t statistics of the differences ``d`` along the last axis (NaN = no pair).

    ``p_tost`` is the two one-sided tests of Schuirmann (1987): H0 ``mean <= -delta`` or
    ``mean >= delta`` against H1 ``-delta < mean < delta``; its p is the larger of the two one-sided
    p-values (equivalence at level alpha iff the (1 - 2 alpha) t-interval lies inside +-delta).
    """
    d = np.asarray(d, dtype=float)
    ok = np.isfinite(d)
    n = ok.sum(axis=-1)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = np.where(ok, d, 0.0).sum(axis=-1)
        mean = np.where(n > 0, s / np.where(n > 0, n, 1), np.nan)
        dev = np.where(ok, d - mean[..., None], 0.0)
        var = np.where(n > 1, (dev ** 2).sum(axis=-1) / np.where(n > 1, n - 1, 1), np.nan)
        sd = np.sqrt(var)
        se = sd / np.sqrt(np.where(n > 0, n, np.nan))
        df = np.where(n > 1, n - 1, np.nan).astype(float)
        # A spread below the rounding noise of the values is no spread: the t statistic is undefined.
        scale = np.where(ok, np.abs(d), 0.0).max(axis=-1) if d.shape[-1] else np.zeros(n.shape)
        defined = (n > 1) & (sd > 1e-12 * np.maximum(scale, 1.0))
        t = np.where(defined, mean / np.where(defined, se, 1.0), np.nan)
        p_greater = np.where(defined, st.t.sf(t, df), np.nan)
        p_less = np.where(defined, st.t.cdf(t, df), np.nan)
        p_two = np.where(defined, np.minimum(1.0, 2.0 * st.t.sf(np.abs(t), df)), np.nan)
        t_lo = (mean + delta) / np.where(defined, se, 1.0)
        t_hi = (mean - delta) / np.where(defined, se, 1.0)
        p_tost = np.where(defined, np.maximum(st.t.sf(t_lo, df), st.t.cdf(t_hi, df)), np.nan)
    return PairedArrays(n=n, mean=mean, sd=np.where(n > 1, sd, np.nan), se=np.where(n > 1, se, np.nan),
                        df=df, p_two=p_two, p_greater=p_greater, p_less=p_less, p_tost=p_tost)


# --------------------------------------------------------------------------------------------
# Holm along an axis


def _sorted_family(p: np.ndarray):
    """For p-values along the last axis: the stable ascending order (NaN last), the sorted values, the
    count m of finite ones per family, and the ranks 0..k-1."""
    order = np.argsort(np.where(np.isnan(p), np.inf, p), axis=-1, kind="stable")
    ps = np.take_along_axis(p, order, axis=-1)
    m = np.isfinite(ps).sum(axis=-1, keepdims=True)
    return order, ps, m, np.arange(ps.shape[-1])


def holm_along(p, axis: int = -1) -> np.ndarray:
    """Holm step-down adjusted p-values along ``axis`` (one family per slice), vectorised.

    Within a slice, sorted ascending, p_(i) becomes max_{j<=i} min(1, (m - j + 1) p_(j)); NaN entries
    stay NaN and do not count in m. The same numbers as :func:`analysis.holm` slice by slice.
    """
    p = np.moveaxis(np.asarray(p, dtype=float), axis, -1)
    if p.shape[-1] == 0:
        return np.moveaxis(p.copy(), -1, axis)
    order, ps, m, j = _sorted_family(p)
    adj = np.minimum(1.0, (m - j) * ps)
    adj = np.where(np.isnan(ps), -np.inf, adj)
    adj = np.maximum.accumulate(adj, axis=-1)
    adj = np.where(np.isnan(ps), np.nan, adj)
    out = np.empty_like(adj)
    np.put_along_axis(out, order, adj, axis=-1)
    return np.moveaxis(out, -1, axis)


def holm_levels(p, alpha: float, axis: int = -1) -> np.ndarray:
    """The level at which Holm's step-down procedure tests each p-value, along ``axis``.

    With p sorted ascending and J the first rank whose p_(J) >= alpha / (m - J + 1) (where the
    procedure stops), the level is alpha / (m - i + 1) for ranks i < J and alpha / (m - J + 1) for
    the rest. By construction ``p < level`` exactly when the Holm-adjusted p is below ``alpha``, so an
    interval at confidence ``1 - level`` excludes the null value exactly when Holm rejects: the
    intervals of the forest plot and the comparisons table agree with the filled markers and the
    verdicts. NaN where p is NaN.
    """
    p = np.moveaxis(np.asarray(p, dtype=float), axis, -1)
    if p.shape[-1] == 0:
        return np.moveaxis(p.copy(), -1, axis)
    order, ps, m, j = _sorted_family(p)
    step = alpha / np.maximum(m - j, 1)
    fails = np.isfinite(ps) & (ps >= step)
    # level at the first failure, carried to every later rank
    first_fail = np.where(fails.any(axis=-1, keepdims=True), fails.argmax(axis=-1)[..., None], ps.shape[-1])
    stop_level = alpha / np.maximum(m - first_fail, 1)
    lev = np.where(j < first_fail, step, stop_level)
    lev = np.where(np.isnan(ps), np.nan, lev)
    out = np.empty_like(lev)
    np.put_along_axis(out, order, lev, axis=-1)
    return np.moveaxis(out, -1, axis)


# --------------------------------------------------------------------------------------------
# classification of one comparison in one setting


def classify(mean, sig_ahead, sig_behind, equivalent, n, *, delta: float, min_seeds: int) -> np.ndarray:
    """Class codes (:data:`CLASS_NAMES`) of differences a - b, elementwise.

    ``sig_ahead`` / ``sig_behind``: the (multiplicity-adjusted) test found a significantly above / below b;
    ``equivalent``: the equivalence test (TOST) put the difference inside +-delta. Order of precedence:
    few seeds (fewer than ``min_seeds`` pairs), then a significant difference (``ahead`` when its estimate is
    at least ``delta``, ``ahead <d`` when it is smaller; ``behind``), then ``equivalent``, else ``unresolved``.
    Significance and size are kept apart: a significant lead is a lead whatever its size, never an
    equivalence or a loss; its size is read from the estimate ``mean``.
    """
    mean = np.asarray(mean, dtype=float)
    n = np.asarray(n)
    ahead = np.asarray(sig_ahead, bool) & (mean > 0)
    behind = np.asarray(sig_behind, bool) & (mean < 0)
    out = np.full(np.broadcast(mean, n).shape, UNRESOLVED, dtype=np.int8)
    out = np.where(np.asarray(equivalent, bool), EQUIVALENT, out)
    out = np.where(behind, BEHIND, out)
    out = np.where(ahead, np.where(mean >= delta, AHEAD, AHEAD_SMALL), out)
    out = np.where(n < min_seeds, FEW_SEEDS, out)
    return out.astype(np.int8)


def is_ahead(codes) -> np.ndarray:
    """Codes of a significant lead, of any size."""
    codes = np.asarray(codes)
    return (codes == AHEAD) | (codes == AHEAD_SMALL)


def is_against(codes) -> np.ndarray:
    """Codes that count against a claim that a is better: significantly behind, or equivalent within +-delta."""
    codes = np.asarray(codes)
    return (codes == BEHIND) | (codes == EQUIVALENT)


# --------------------------------------------------------------------------------------------
# verdict rules on class codes


def most_settings(codes, min_settings: int):
    """"In most settings": codes (..., S settings, A comparisons that must all hold in a setting).

    A setting is WON when every comparison there is ahead (of any size: an intersection-union test, each
    comparison at level alpha after Holm, no correction across comparisons needed) and LOST when some
    comparison is behind or equivalent. Supported: won > S / 2. Refuted: lost >= S / 2 (a majority of won
    settings is out of reach even if every other setting became won). Otherwise, or with S < ``min_settings``
    or A = 0, inconclusive. ``small``: supported, and no won setting has every comparison ahead by delta or
    more (estimates): every margin is below delta.

    Returns (verdict codes, won, lost, won by delta or more, small), each of the leading shape."""
    codes = np.asarray(codes)
    S, A = codes.shape[-2], codes.shape[-1]
    lead = codes.shape[:-2]
    if S == 0 or A == 0:
        z = np.zeros(lead, dtype=np.int64)
        return np.full(lead, INCONCLUSIVE, dtype=np.int8), z, z, z, np.zeros(lead, bool)
    won_s = is_ahead(codes).all(axis=-1)
    won = won_s.sum(axis=-1)
    large = (won_s & (codes == AHEAD).all(axis=-1)).sum(axis=-1)
    lost = is_against(codes).any(axis=-1).sum(axis=-1)
    v = np.full(lead, INCONCLUSIVE, dtype=np.int8)
    if S >= min_settings:
        v = np.where(S - lost <= S / 2, REFUTED, v)
        v = np.where(won > S / 2, SUPPORTED, v)
    v = v.astype(np.int8)
    return v, won, lost, large, (v == SUPPORTED) & (large == 0)


def occasionally(codes, min_settings: int):
    """"Occasionally": codes (..., S) of one one-sided comparison per setting.

    Supported: some setting is ahead (significantly, of any size). Refuted: at least ``min_settings``
    settings and every one behind or equivalent (nowhere a surplus of delta or more). Otherwise
    inconclusive. ``small``: supported with no setting ahead by delta or more (estimates).

    Returns (verdict codes, settings ahead, settings behind or equivalent, ahead by delta or more, small)."""
    codes = np.asarray(codes)
    S = codes.shape[-1]
    lead = codes.shape[:-1]
    ahead = is_ahead(codes).sum(axis=-1)
    large = (codes == AHEAD).sum(axis=-1)
    against = is_against(codes).sum(axis=-1)
    v = np.full(lead, INCONCLUSIVE, dtype=np.int8)
    if S >= min_settings:
        v = np.where(against == S, REFUTED, v)
    v = np.where(ahead > 0, SUPPORTED, v).astype(np.int8)
    return v, ahead, against, large, (v == SUPPORTED) & (large == 0)


def all_of(verdicts, small):
    """A claim made of several comparisons that must all hold (e.g. the order matters at every rate):
    ``verdicts`` and ``small`` (..., P) of the P comparisons present. Supported when every one is supported
    (small when every one is small); refuted when some one is refuted; otherwise, or with P = 0,
    inconclusive."""
    v = np.asarray(verdicts)
    sm = np.asarray(small, bool)
    lead = v.shape[:-1]
    if v.shape[-1] == 0:
        return np.full(lead, INCONCLUSIVE, dtype=np.int8), np.zeros(lead, bool)
    out = np.full(lead, INCONCLUSIVE, dtype=np.int8)
    out = np.where((v == SUPPORTED).all(axis=-1), SUPPORTED, out)
    out = np.where((v == REFUTED).any(axis=-1), REFUTED, out).astype(np.int8)
    return out, (out == SUPPORTED) & sm.all(axis=-1)


def rank_verdict(p_best, p_beaten, n_methods: int, *, supported_at: float, alpha: float):
    """Claim 3 ("highest ranking across the settings") from resampling the ranks.

    ``p_best``: share of resamples in which the method has the best average rank; ``p_beaten``: the
    largest share of resamples in which one other method has a strictly better average rank than the
    method, from resamples widened by :func:`refutation_spread`. Supported when ``p_best >= supported_at``;
    refuted when some other method ranks better in at least ``1 - alpha / (n_methods - 1)`` of the
    resamples (a Bonferroni bound over the other methods: evidence that the method is not best, not merely
    that it is not shown to be best); inconclusive otherwise (and where the inputs are NaN)."""
    pb = np.asarray(p_best, dtype=float)
    pw = np.asarray(p_beaten, dtype=float)
    v = np.full(np.broadcast(pb, pw).shape, INCONCLUSIVE, dtype=np.int8)
    v = np.where(pw >= 1.0 - alpha / max(n_methods - 1, 1), REFUTED, v)
    v = np.where(pb >= supported_at, SUPPORTED, v)
    return v.astype(np.int8)


def collapse_test(a_collapsed, b_collapsed, both):
    """Exact McNemar tests of collapse rates on paired runs, along the last axis (a flat list of
    (setting, seed) pairs): ``a_collapsed``, ``b_collapsed`` bool, ``both`` bool (both runs completed).

    Returns (a only, b only, p that a collapses more often, p that b does): one-sided exact binomial tests
    of the discordant pairs, P(X >= a only) for X ~ Binomial(a only + b only, 1/2); 1 with no discordant pair."""
    a = (np.asarray(a_collapsed, bool) & ~np.asarray(b_collapsed, bool) & both).sum(axis=-1)
    b = (np.asarray(b_collapsed, bool) & ~np.asarray(a_collapsed, bool) & both).sum(axis=-1)
    n = a + b
    p_a = np.where(n > 0, st.binom.sf(a - 1, np.maximum(n, 1), 0.5), 1.0)
    p_b = np.where(n > 0, st.binom.sf(b - 1, np.maximum(n, 1), 0.5), 1.0)
    return a, b, p_a, p_b


def rate_interval(k, n, confidence: float = 0.95):
    """Clopper-Pearson (exact) interval of a binomial rate k / n, elementwise; NaN where n = 0."""
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    a = (1 - confidence) / 2
    with np.errstate(all="ignore"):
        lo = np.where(k > 0, st.beta.ppf(a, k, n - k + 1), 0.0)
        hi = np.where(k < n, st.beta.ppf(1 - a, k + 1, n - k), 1.0)
    return np.where(n > 0, lo, np.nan), np.where(n > 0, hi, np.nan)


# --------------------------------------------------------------------------------------------
# whole-seed bootstrap


def seed_weights(n_seeds: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap weights over whole seeds: (n_resamples, n_seeds) counts of how often each seed is
    drawn (n_seeds draws with replacement per resample). One seed drives every setting and method,
    so a resampled seed takes all its runs with it."""
    idx = rng.integers(0, n_seeds, size=(n_resamples, n_seeds))
    flat = (np.arange(n_resamples)[:, None] * n_seeds + idx).ravel()
    return np.bincount(flat, minlength=n_resamples * n_seeds).reshape(n_resamples, n_seeds).astype(float)


def weighted_seed_means(y, weights) -> np.ndarray:
    """Means over the seed axis of ``y`` (..., K) under each row of ``weights`` (B, K): shape (..., B).
    NaN values carry no weight; a mean with no weight is NaN."""
    y = np.asarray(y, dtype=float)
    ok = np.isfinite(y)
    if ok.all():  # the usual case: one matrix product
        return (y @ weights.T) / weights.sum(axis=1)
    num = np.where(ok, y, 0.0) @ weights.T
    den = ok.astype(float) @ weights.T
    with np.errstate(all="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def average_ranks_of(means, higher_is_better: bool = True) -> np.ndarray:
    """Average over settings of within-setting ranks (1 = best, ties share the average rank).

    ``means``: (..., S, M) seed-means; returns (..., M). Any NaN in a setting makes that setting's
    ranks NaN (the callers pass complete settings only)."""
    x = np.asarray(means, dtype=float)
    if not higher_is_better:
        x = -x
    better = (x[..., None, :] > x[..., :, None]).sum(axis=-1)  # how many beat each method
    ties = (x[..., None, :] == x[..., :, None]).sum(axis=-1) - 1
    r = 1.0 + better + 0.5 * ties
    r = np.where(np.isnan(x).any(axis=-1, keepdims=True), np.nan, r)
    return r.mean(axis=-2)


def rank_bootstrap(y, weights, target: int = 0, higher_is_better: bool = True, spread: float = 1.0):
    """Average ranks under whole-seed resampling.

    ``y``: (..., S, M, K) runs, complete (every setting, method and seed present); ``weights``: (B, K)
    from :func:`seed_weights`. Each resampled seed-mean is spread around the observed seed-mean by
    sqrt(K / (K - 1)), the small-sample variance correction of the bootstrap (a resample of K values
    has (K - 1) / K of their variance), times ``spread`` (1: none more; the audit's refutation of claim 3
    uses :func:`refutation_spread`).

    Returns (average ranks (..., B, M), P(best) (...,), P(beaten) (..., M)): P(best) is the share of
    resamples in which method ``target`` has the best average rank (a tie for best among j methods
    counts 1/j); P(beaten)[m] the share in which method m has a strictly better average rank than
    ``target`` (0 for ``target`` itself)."""
    y = np.asarray(y, dtype=float)
    K = y.shape[-1]
    means = weighted_seed_means(y, weights)  # (..., S, M, B)
    if K > 1:
        obs = y.mean(axis=-1, keepdims=True)
        means = obs + spread * math.sqrt(K / (K - 1)) * (means - obs)
    means = np.moveaxis(means, -1, -3)  # (..., B, S, M)
    avg = average_ranks_of(means, higher_is_better)  # (..., B, M)
    best = avg.min(axis=-1, keepdims=True)
    is_best = np.abs(avg - best) <= 1e-9
    share = np.where(is_best[..., target], 1.0 / np.maximum(is_best.sum(axis=-1), 1), 0.0)
    p_best = share.mean(axis=-1)
    beaten = (avg < avg[..., target:target + 1] - 1e-9).mean(axis=-2)
    return avg, p_best, beaten


def refutation_spread(n_seeds: int, level: float) -> float:
    """How much wider than the plain bootstrap claim 3's refutation resamples are: t_(K-1) / z at the
    one-sided ``level`` (alpha / (k - 1), the Bonferroni level of one other method), K = ``n_seeds``.

    The whole-seed percentile bootstrap treats K seeds as if their spread were known, so its tail shares
    are too small for few seeds: refuting at ``1 - level`` of plain resamples erred in 0.070 of simulated
    grids with 5 seeds and every method equal, against alpha = 0.05, and at ``1 - level`` of widened ones in
    0.005 (scripts/claim3_refutation_study.py; docs/analysis.md, One ranking). Widening the resampled seed-means by
    the ratio of Student's to the normal quantile is the "expanded percentile" correction (Hesterberg 2015, The
    American Statistician 69(4), 371-386; arXiv:1411.5279) in spread form; it tends to 1 as K grows. K = 5,
    level 0.05 / 6: 3.961 / 2.394 = 1.655."""
    if n_seeds < 2:
        return float("nan")
    return float(st.t.ppf(1.0 - level, n_seeds - 1) / st.norm.ppf(1.0 - level))

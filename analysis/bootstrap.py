"""Seeded, vectorised bootstrap intervals, the probability of improvement (rliable style) and
effects pooled over settings with the seed as the unit.

All resampling draws from one ``numpy.random.default_rng(seed)`` at once: no Python loop per
resample. Aggregates over settings resample **whole seeds**: one seed drives every setting and method
of a protocol (the same initialisation and data order), so a resampled seed takes all its runs with
it; resampling seeds independently within each setting would treat correlated outcomes as independent
and give intervals that are too narrow. The settings themselves are fixed (they are the design).

With 3-5 seeds every bootstrap interval is rough (a percentile interval of 5 values covers less than
its nominal rate); the Student-t interval over seeds is reported beside it where one exists.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from scipy import stats as st

from .decisions import seed_weights, weighted_seed_means
from .ranks import setting_means
from .records import DENSE, SETTING_KEYS, SORT_KEYS
from .stats import holm, method_values

__all__ = ["BootstrapResult", "ImprovementResult", "bootstrap_ci", "probability_of_improvement", "aggregate_scores",
           "pooled_effects", "POOLED_COLUMNS"]


@dataclass(frozen=True)
class BootstrapResult:
    """A point estimate with its percentile bootstrap interval."""

    estimate: float
    ci_low: float
    ci_high: float
    confidence: float
    n_resamples: int
    distribution: np.ndarray = field(repr=False, compare=False)  #: the n_resamples bootstrap values


def _percentile(dist: np.ndarray, confidence: float) -> tuple[float, float]:
    lo, hi = np.quantile(dist, [(1.0 - confidence) / 2.0, (1.0 + confidence) / 2.0])
    return float(lo), float(hi)


def _check(n_resamples: int, confidence: float) -> None:
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def bootstrap_ci(values, statistic: Callable = np.mean, *, strata=None, n_resamples: int = 10_000,
                 confidence: float = 0.95, seed: int = 0) -> BootstrapResult:
    """Percentile bootstrap interval of ``statistic`` of ``values``.

    ``statistic`` must reduce along ``axis=-1`` (``np.mean``, ``np.median``, ...): it is applied
    once to an (n_resamples, n) matrix of resamples.

    With ``strata`` (one label per value, e.g. the setting of each run) the bootstrap is
    stratified: each resample draws, within every stratum, as many values as it has, with
    replacement; the score is the mean over strata of the per-stratum statistic (an aggregate
    score where every setting weighs the same), and so is the estimate. Non-finite values are
    dropped first and the values sorted (within each stratum), so the result is a function of
    the multiset of values and ``seed`` alone, not of their order.
    """
    _check(n_resamples, confidence)
    x = np.asarray(values, dtype=float).ravel()
    rng = np.random.default_rng(seed)
    if strata is None:
        # Sorted, so the result never depends on the order the values came in.
        x = np.sort(x[np.isfinite(x)])
        if x.size == 0:
            return BootstrapResult(math.nan, math.nan, math.nan, confidence, n_resamples, np.full(n_resamples, np.nan))
        est = float(statistic(x, axis=-1))
        idx = rng.integers(0, x.size, size=(n_resamples, x.size))
        dist = np.asarray(statistic(x[idx], axis=-1), dtype=float)
    else:
        labels = np.asarray(strata).ravel()
        if labels.shape != x.shape:
            raise ValueError(f"strata must label every value: {labels.size} labels for {x.size} values")
        keep = np.isfinite(x)
        x, labels = x[keep], labels[keep]
        if x.size == 0:
            return BootstrapResult(math.nan, math.nan, math.nan, confidence, n_resamples, np.full(n_resamples, np.nan))
        # Strata in sorted label order, so the stream of draws never depends on the row order.
        uniq, inv = np.unique(labels, return_inverse=True)
        per_est = np.empty(uniq.size)
        per_dist = np.empty((uniq.size, n_resamples))
        for s in range(uniq.size):  # a loop over strata (settings), never over resamples
            xs = np.sort(x[inv == s])
            per_est[s] = statistic(xs, axis=-1)
            idx = rng.integers(0, xs.size, size=(n_resamples, xs.size))
            per_dist[s] = statistic(xs[idx], axis=-1)
        est = float(per_est.mean())
        dist = per_dist.mean(axis=0)
    lo, hi = _percentile(dist, confidence)
    return BootstrapResult(est, lo, hi, confidence, n_resamples, dist)


def _cube(df: pd.DataFrame, methods: Sequence[str], settings: list, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(S, M, K) completed values of ``methods`` on ``settings`` (NaN = missing) and the K seeds (the
    union of the protocol's seeds). ``"dense"`` is matched to every setting of its dataset/arch/protocol."""
    sdf = pd.DataFrame(settings, columns=list(SETTING_KEYS))
    seeds = np.array(sorted(set(df["seed"].astype(int))), dtype=np.int64)
    kpos = {int(k): i for i, k in enumerate(seeds)}
    spos = {tuple(k): i for i, k in enumerate(settings)}
    Y = np.full((len(settings), len(methods), len(seeds)), np.nan)
    for j, m in enumerate(methods):
        v = method_values(df, m, metric, sdf)
        for r in v[list(SETTING_KEYS) + ["seed", "value"]].itertuples(index=False, name=None):
            i = spos.get(tuple(r[:5]))
            if i is not None:
                Y[i, j, kpos[int(r[5])]] = float(r[6])
    return Y, seeds


def _poi_pairs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(K, K) matrix [a_i > b_j] + [a_i == b_j] / 2, 0 where either value is missing."""
    ok = np.isfinite(a)[:, None] & np.isfinite(b)[None, :]
    c = (a[:, None] > b[None, :]) + 0.5 * (a[:, None] == b[None, :])
    return np.where(ok, c, 0.0)


@dataclass(frozen=True)
class ImprovementResult:
    """Probability of improvement of method a over method b, averaged over settings."""

    estimate: float  #: mean over settings of P(X_a > X_b) (ties count 1/2)
    ci_low: float  #: percentile interval, whole seeds resampled
    ci_high: float
    confidence: float
    n_resamples: int
    n_settings: int
    per_setting: pd.DataFrame  #: setting keys, n_a, n_b, poi


def probability_of_improvement(df: pd.DataFrame, a: str, b: str, metric: str = "test_acc", *,
                               higher_is_better: bool = True, n_resamples: int = 10_000,
                               confidence: float = 0.95, seed: int = 0) -> ImprovementResult:
    """rliable-style probability of improvement P(X_a > X_b).

    In each setting where both methods have completed runs, the Mann-Whitney estimate
    P(X_a > X_b) + P(X_a = X_b) / 2 over all (run of a, run of b) pairs; the estimate is its mean over
    those settings. The interval resamples whole seeds: one draw of seeds (with replacement) serves
    both methods and every setting, and each pair counts as often as its two seeds were drawn. ``b``
    may be ``"dense"``, whose runs serve every setting of the same dataset/arch/protocol. 0.5 means no
    tendency either way.
    """
    _check(n_resamples, confidence)
    if a == b:
        raise ValueError("a and b must differ")
    if a == DENSE:
        raise ValueError("dense is the reference: pass it as b")
    sd = (df.loc[df["method"] == a, list(SETTING_KEYS)].drop_duplicates()
          .sort_values([k for k in SORT_KEYS if k in SETTING_KEYS], kind="mergesort"))
    settings = [tuple(r) for r in sd.itertuples(index=False, name=None)]
    Y, seeds = _cube(df, [a, b], settings, metric)
    if not higher_is_better:
        Y = -Y
    rows, mats = [], []
    for i, key in enumerate(settings):
        xa, xb = Y[i, 0], Y[i, 1]
        na, nb = int(np.isfinite(xa).sum()), int(np.isfinite(xb).sum())
        if na == 0 or nb == 0:
            continue
        c = _poi_pairs(xa, xb)
        rows.append(dict(zip(SETTING_KEYS, key), n_a=na, n_b=nb, poi=float(c.sum() / (na * nb))))
        mats.append((c, np.isfinite(xa).astype(float), np.isfinite(xb).astype(float)))
    per = pd.DataFrame(rows, columns=list(SETTING_KEYS) + ["n_a", "n_b", "poi"])
    if not rows:
        return ImprovementResult(math.nan, math.nan, math.nan, confidence, n_resamples, 0, per)
    w = seed_weights(len(seeds), n_resamples, np.random.default_rng(seed))
    dist = np.zeros(n_resamples)
    for c, oka, okb in mats:
        num = np.einsum("bi,ij,bj->b", w, c, w)
        den = (w @ oka) * (w @ okb)
        with np.errstate(all="ignore"):
            dist += np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    dist /= len(mats)
    lo, hi = _percentile(dist[np.isfinite(dist)], confidence)
    return ImprovementResult(float(per["poi"].mean()), lo, hi, confidence, n_resamples, len(rows), per)


def aggregate_scores(df: pd.DataFrame, metric: str = "test_acc", methods: Sequence[str] | None = None, *,
                     n_resamples: int = 10_000, confidence: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """Per method: the mean over settings of its seed-mean (every setting weighs the same), with a
    percentile interval that resamples whole seeds (one draw of seeds serves every setting and method).
    Only settings where every method has a completed run are used, so methods are scored on the same
    settings. A resample in which some setting has no run of a method left is not counted.

    Columns: method, n_settings, estimate, ci_low, ci_high (units of ``metric``).
    """
    _check(n_resamples, confidence)
    means = setting_means(df, metric, methods)
    used = means[means.notna().all(axis=1)]
    cols = ["method", "n_settings", "estimate", "ci_low", "ci_high"]
    if used.empty:
        return pd.DataFrame([dict(method=m, n_settings=0, estimate=math.nan, ci_low=math.nan, ci_high=math.nan)
                             for m in means.columns], columns=cols)
    settings = [tuple(k) for k in used.index]
    Y, seeds = _cube(df, list(means.columns), settings, metric)
    w = seed_weights(len(seeds), n_resamples, np.random.default_rng(seed))
    dist = weighted_seed_means(Y, w).mean(axis=0)  # (M, B): NaN when a setting lost all its runs
    rows = []
    for j, m in enumerate(means.columns):
        d = dist[j][np.isfinite(dist[j])]
        lo, hi = _percentile(d, confidence) if d.size else (math.nan, math.nan)
        rows.append(dict(method=m, n_settings=len(settings), estimate=float(used[m].mean()), ci_low=lo, ci_high=hi))
    return pd.DataFrame(rows, columns=cols)


POOLED_COLUMNS = ["protocol", "method", "baseline", "n_settings", "n_seeds", "seeds_dropped", "mean_diff",
                  "ci_low", "ci_high", "boot_low", "boot_high", "p_ttest", "p_holm", "mdd"]


def pooled_effects(df: pd.DataFrame, method: str, baselines: Sequence[str], metric: str = "test_acc", *,
                   confidence: float = 0.95, alpha: float = 0.05, power: float = 0.8, n_resamples: int = 10_000,
                   seed: int = 0) -> pd.DataFrame:
    """``method`` minus each baseline pooled over the settings of one protocol, with the seed as the unit.

    For each seed, the mean over settings of the seed-paired difference (method - baseline, same seed,
    same setting); then over seeds: the mean, its Student-t interval, a percentile interval resampling
    whole seeds, the paired t-test of mean 0 (two-sided) with Holm across the baselines, and the minimum
    detectable difference at ``power`` (two-sided, level ``alpha``). Settings: those where both have
    runs; seeds: those paired in every one of them (the others are dropped and counted, so that every
    seed averages the same settings). ``"dense"`` is matched to every setting of its dataset/arch.
    """
    from .power import min_detectable_difference

    rows = []
    protocol = str(df["protocol"].iloc[0]) if len(df) else ""
    sd = (df.loc[df["method"] == method, list(SETTING_KEYS)].drop_duplicates()
          .sort_values([k for k in SORT_KEYS if k in SETTING_KEYS], kind="mergesort"))
    settings_m = [tuple(r) for r in sd.itertuples(index=False, name=None)]
    for i, b in enumerate(baselines):
        Y, seeds = _cube(df, [method, b], settings_m, metric)
        d = Y[:, 0, :] - Y[:, 1, :]  # (S, K)
        has = np.isfinite(d).any(axis=1)
        d = d[has]
        complete = np.isfinite(d).all(axis=0) if d.size else np.zeros(len(seeds), bool)
        per_seed = d[:, complete].mean(axis=0) if d.size else np.array([])
        n = per_seed.size
        row = dict(protocol=protocol, method=method, baseline=b, n_settings=int(has.sum()), n_seeds=n,
                   seeds_dropped=int(np.isfinite(d).any(axis=0).sum() - n) if d.size else 0,
                   mean_diff=float(per_seed.mean()) if n else math.nan, ci_low=math.nan, ci_high=math.nan,
                   boot_low=math.nan, boot_high=math.nan, p_ttest=math.nan, mdd=math.nan)
        if n >= 2:
            sdv = float(per_seed.std(ddof=1))
            half = float(st.t.ppf(0.5 + confidence / 2, n - 1)) * sdv / math.sqrt(n)
            row.update(ci_low=row["mean_diff"] - half, ci_high=row["mean_diff"] + half)
            if sdv > 0:
                row["p_ttest"] = float(st.ttest_1samp(per_seed, 0.0).pvalue)
                row["mdd"] = min_detectable_difference(sdv, n, alpha, power)
            w = seed_weights(n, n_resamples, np.random.default_rng([seed, i]))
            dist = (w @ per_seed) / n
            row["boot_low"], row["boot_high"] = _percentile(dist, confidence)
        rows.append(row)
    out = pd.DataFrame(rows, columns=[c for c in POOLED_COLUMNS if c != "p_holm"])
    out["p_holm"] = holm(out["p_ttest"].to_numpy(float)) if len(out) else np.array([])
    return out[POOLED_COLUMNS]

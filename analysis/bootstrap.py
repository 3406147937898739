"""Seeded, vectorised bootstrap intervals and the probability of improvement (rliable style).

All resampling draws index matrices from one ``numpy.random.default_rng(seed)`` at once: no
Python loop per resample. Aggregate scores are stratified: seeds are resampled within each
setting, the settings themselves are fixed (they are the design, not a sample).

These intervals are for aggregates over many settings x seeds. For one setting with 3-5 seeds use
the Student-t interval of :func:`analysis.summarize`: a percentile bootstrap of 3 values covers
the truth far less often than its nominal rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from .records import DENSE, SETTING_KEYS
from .ranks import setting_means
from .stats import method_values

__all__ = ["BootstrapResult", "ImprovementResult", "bootstrap_ci", "probability_of_improvement", "aggregate_scores"]


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


def _poi(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """P(X_a > X_b) over all pairs, ties counting 1/2; a: (..., n_a), b: (..., n_b)."""
    gt = (a[..., :, None] > b[..., None, :]).mean(axis=(-2, -1))
    eq = (a[..., :, None] == b[..., None, :]).mean(axis=(-2, -1))
    return gt + 0.5 * eq


@dataclass(frozen=True)
class ImprovementResult:
    """Probability of improvement of method a over method b, averaged over settings."""

    estimate: float  #: mean over settings of P(X_a > X_b) (ties count 1/2)
    ci_low: float  #: stratified percentile bootstrap interval
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
    P(X_a > X_b) + P(X_a = X_b) / 2 over all (seed of a, seed of b) pairs (unpaired: it does not
    need matching seeds); the estimate is its mean over those settings. The interval is a
    stratified bootstrap: the runs of each method are resampled within each setting. ``b`` may be
    ``"dense"``, whose runs serve every setting of the same dataset/arch/protocol. 0.5 means no
    tendency either way.
    """
    _check(n_resamples, confidence)
    if a == b:
        raise ValueError("a and b must differ")
    if a == DENSE:
        raise ValueError("dense is the reference: pass it as b")
    settings = (df.loc[df["method"] == a, list(SETTING_KEYS)].drop_duplicates()
                .sort_values(list(SETTING_KEYS), kind="mergesort").reset_index(drop=True))
    va = method_values(df, a, metric, settings)
    vb = method_values(df, b, metric, settings)
    ga = {k: g["value"].to_numpy(float) for k, g in va.groupby(list(SETTING_KEYS), sort=False)}
    gb = {k: g.sort_values("seed")["value"].to_numpy(float) for k, g in vb.groupby(list(SETTING_KEYS), sort=False)}
    sign = 1.0 if higher_is_better else -1.0
    rng = np.random.default_rng(seed)
    rows, dists = [], []
    for key in settings.itertuples(index=False, name=None):
        xa, xb = ga.get(key), gb.get(key)
        if xa is None or xb is None or xa.size == 0 or xb.size == 0:
            continue
        # Sort so that the draws do not depend on row order (seed order here).
        xa, xb = np.sort(xa) * sign, np.sort(xb) * sign
        rows.append(dict(zip(SETTING_KEYS, key), n_a=xa.size, n_b=xb.size, poi=float(_poi(xa, xb))))
        ra = xa[rng.integers(0, xa.size, size=(n_resamples, xa.size))]
        rb = xb[rng.integers(0, xb.size, size=(n_resamples, xb.size))]
        dists.append(_poi(ra, rb))
    per = pd.DataFrame(rows, columns=list(SETTING_KEYS) + ["n_a", "n_b", "poi"])
    if not rows:
        return ImprovementResult(math.nan, math.nan, math.nan, confidence, n_resamples, 0, per)
    dist = np.mean(dists, axis=0)
    lo, hi = _percentile(dist, confidence)
    return ImprovementResult(float(per["poi"].mean()), lo, hi, confidence, n_resamples, len(rows), per)


def aggregate_scores(df: pd.DataFrame, metric: str = "test_acc", methods: Sequence[str] | None = None, *,
                     n_resamples: int = 10_000, confidence: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """Per method: the mean over settings of its seed-mean (every setting weighs the same), with a
    stratified bootstrap interval (seeds resampled within each setting). Only settings where every
    method has a completed run are used, so methods are scored on the same settings.

    Columns: method, n_settings, estimate, ci_low, ci_high (units of ``metric``).
    """
    means = setting_means(df, metric, methods)
    used = means[means.notna().all(axis=1)]
    keys = set(used.index)
    d = df[(df["status"] == "completed") & df["method"].isin(list(means.columns))]
    d = d[np.isfinite(d[metric].astype(float))]
    in_used = np.array([tuple(r) in keys for r in d[list(SETTING_KEYS)].itertuples(index=False, name=None)],
                       dtype=bool) if len(d) else np.zeros(0, bool)
    d = d[in_used]
    rows = []
    for i, m in enumerate(means.columns):
        dm = d[d["method"] == m]
        labels = dm[list(SETTING_KEYS)].astype(str).agg("|".join, axis=1).to_numpy() if len(dm) else np.array([])
        res = bootstrap_ci(dm[metric].to_numpy(float), strata=labels if len(dm) else None,
                           n_resamples=n_resamples, confidence=confidence, seed=seed + i)
        rows.append(dict(method=m, n_settings=len(used), estimate=res.estimate, ci_low=res.ci_low,
                         ci_high=res.ci_high))
    return pd.DataFrame(rows, columns=["method", "n_settings", "estimate", "ci_low", "ci_high"])

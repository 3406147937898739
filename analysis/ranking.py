"""The one ranking of the methods that every output shows: the audit's claim 3, the ranks table, the
critical-difference diagram and the rank chart all take it from :func:`rank_arrays`.

What is ranked: within each setting, over the seeds at which every ranked method has a completed run (a
run at chance level is a completed run: it ranks last at its seed, an outcome, not a gap), with one of
two aggregations:

* ``seed-ranks`` (the default): the methods are ranked at each seed (1 = best, ties share the average
  rank), the ranks are averaged over the setting's seeds, and the setting averages over the settings. The
  seed pairs the runs (one seed drives every method's initialisation and data order), and one run at chance
  level moves one rank at one seed, never a whole setting;
* ``seed-means``: the methods are ranked by their mean over the setting's seeds (Demšar's convention), and
  the ranks averaged over the settings.

Every setting uses every seed it has: settings are never cut to the seeds they share with others. The
uncertainty comes from resampling seeds with replacement **within each group of settings that share their
seeds** (a protocol's start: the ``cpu`` grid has 12 seeds at the dense start and 5 at the sparse one), a
resampled seed taking its runs in every setting of the group and every method with it; each setting's
resampled score is spread around the observed one by sqrt(K / (K - 1)) (K its seeds: the small-sample
variance correction of the bootstrap) and widened further by t/z (:func:`analysis.decisions.refutation_spread`,
K the fewest seeds of any group: the "expanded percentile" small-sample correction) at the level of the
decision read from it: P(best), the share of resamples in which a method has the best average rank (a tie for
best among j methods counts 1/j), and the rank intervals at 1 - supported_at; P(beaten by m), the share in
which m ranks strictly ahead of the first method, at alpha / (M - 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import decisions as D

__all__ = ["AGGREGATIONS", "Ranking", "rank_arrays", "usable_seeds", "per_seed_ranks", "observed_scores",
           "friedman_of_scores"]

AGGREGATIONS = ("seed-ranks", "seed-means")


@dataclass(frozen=True)
class Ranking:
    """One ranking of ``methods`` (the first is the one a claim is about)."""

    methods: list
    aggregation: str
    settings: list  #: the settings ranked (setting keys), those with at least min_seeds complete seeds
    seeds: np.ndarray  #: (S,) complete seeds of each ranked setting
    scores: np.ndarray  #: (S, M) the per-setting scores averaged: mean rank (seed-ranks) or seed-mean (seed-means)
    ranks: np.ndarray  #: (S, M) each setting's ranks (the averaged quantity)
    observed: np.ndarray  #: (M,) average ranks (1 = best)
    distribution: np.ndarray  #: (B, M) average ranks of the resamples (widened by ``support_spread``)
    p_best: np.ndarray  #: (M,) share of those resamples in which each method has the best average rank
    p_beaten: np.ndarray  #: (M,) share of widened resamples in which each method ranks strictly ahead of the first
    refutation_spread: float
    support_spread: float  #: t/z at 1 - supported_at: the widening of ``distribution`` (P(best), intervals)
    groups: int  #: groups of settings resampled separately
    dropped_settings: int  #: settings left out (fewer than min_seeds complete seeds)
    dropped_runs: int  #: completed runs of the ranked settings outside their complete seeds

    def interval(self, confidence: float) -> tuple[np.ndarray, np.ndarray]:
        """Percentile interval of each method's average rank over the resamples of ``distribution``."""
        lo, hi = np.quantile(self.distribution, [(1 - confidence) / 2, (1 + confidence) / 2], axis=0)
        return lo, hi


def usable_seeds(Y: np.ndarray, min_seeds: int) -> tuple[np.ndarray, np.ndarray]:
    """(settings, complete): ``complete`` (S, K) marks the seeds at which every method of a setting has a value;
    ``settings`` (S,) those with at least ``min_seeds`` of them. ``Y``: (S, M, K), NaN = no completed run."""
    complete = np.isfinite(Y).all(axis=1)
    return complete.sum(axis=-1) >= min_seeds, complete


def per_seed_ranks(Y: np.ndarray, higher_is_better: bool = True) -> np.ndarray:
    """Ranks of the methods at each (setting, seed): (..., M, K) -> (..., M, K), 1 = best, ties share the
    average rank; NaN at a seed where some method has no value."""
    x = np.moveaxis(np.asarray(Y, dtype=float), -2, -1)  # (..., K, M)
    if not higher_is_better:
        x = -x
    better = (x[..., None, :] > x[..., :, None]).sum(axis=-1)
    ties = (x[..., None, :] == x[..., :, None]).sum(axis=-1) - 1
    r = 1.0 + better + 0.5 * ties
    r = np.where(np.isnan(x).any(axis=-1, keepdims=True), np.nan, r)
    return np.moveaxis(r, -1, -2)


def _quantity(Y: np.ndarray, aggregation: str) -> np.ndarray:
    """What is averaged over seeds: per-seed ranks or the accuracies themselves (NaN off the complete seeds)."""
    if aggregation == "seed-ranks":
        return per_seed_ranks(Y)
    if aggregation == "seed-means":
        return np.where(np.isfinite(Y).all(axis=-2, keepdims=True), Y, np.nan)
    raise ValueError(f"aggregation must be one of {', '.join(AGGREGATIONS)}, got {aggregation!r}")


def _to_ranks(scores: np.ndarray, aggregation: str) -> np.ndarray:
    """Per-setting ranks (..., S, M) from per-setting scores: mean ranks already are; seed-means get ranked."""
    if aggregation == "seed-ranks":
        return scores
    x = scores
    better = (x[..., None, :] > x[..., :, None]).sum(axis=-1)
    ties = (x[..., None, :] == x[..., :, None]).sum(axis=-1) - 1
    return 1.0 + better + 0.5 * ties


def observed_scores(Y: np.ndarray, aggregation: str) -> np.ndarray:
    """(S, M) per-setting scores over each setting's complete seeds."""
    q = _quantity(Y, aggregation)
    with np.errstate(all="ignore"):
        return np.nanmean(np.where(np.isfinite(q), q, np.nan), axis=-1) if q.shape[-1] else q[..., 0]


def _group_weights(complete: np.ndarray, groups: np.ndarray, B: int, rng: np.random.Generator) -> np.ndarray:
    """(S, B, K) whole-seed resampling weights: within each group its pooled seeds are drawn with replacement
    (as many draws as it has seeds), one draw serving every setting of the group."""
    S, K = complete.shape
    W = np.zeros((S, B, K))
    for g in np.unique(groups):
        rows = groups == g
        pool = np.flatnonzero(complete[rows].any(axis=0))
        if pool.size == 0:
            continue
        w = D.seed_weights(pool.size, B, rng)  # (B, |pool|)
        Wg = np.zeros((B, K))
        Wg[:, pool] = w
        W[rows] = Wg
    return W


def rank_arrays(Y: np.ndarray, groups, *, aggregation: str = "seed-ranks", min_seeds: int = 3,
                n_resamples: int = 10_000, rng: np.random.Generator | None = None, alpha: float = 0.05,
                supported_at: float = 0.95, settings: list | None = None, methods: list | None = None
                ) -> Ranking | str:
    """The ranking of the methods of ``Y`` (S, M, K; NaN = no completed run; the first method is the one a
    claim is about), its resampling distribution, P(best) and P(beaten); ``groups`` (S,) labels the settings
    whose seeds are resampled together. A string (the reason) when there is too little to rank.

    The resamples of P(best) and of the rank intervals are widened by t/z at the one-sided level
    1 - ``supported_at`` (K the fewest seeds of any group), those of P(beaten) at alpha / (M - 1): with few
    seeds a plain percentile bootstrap treats their spread as known and says "best" or "beaten" too often."""
    Y = np.asarray(Y, dtype=float)
    S, M, K = Y.shape
    groups = np.asarray(groups)
    settings = list(settings) if settings is not None else list(range(S))
    methods = list(methods) if methods is not None else list(range(M))
    if M < 2:
        return f"only {M} method(s): nothing to rank"
    keep, complete = usable_seeds(Y, min_seeds)
    if not keep.any():
        return f"no setting where all {M} methods have at least {min_seeds} complete seeds"
    Yk, ck, gk = Y[keep], complete[keep], groups[keep]
    dropped_runs = int(np.isfinite(Yk).sum() - (ck.sum(axis=-1) * M).sum())
    q = _quantity(Yk, aggregation)  # (S, M, K)
    qz = np.where(np.isfinite(q), q, 0.0)
    obs = observed_scores(Yk, aggregation)  # (S, M)
    rng = rng or np.random.default_rng(0)
    W = _group_weights(ck, gk, n_resamples, rng)  # (S, B, K)
    num = np.einsum("smk,sbk->sbm", qz, W)
    den = np.einsum("sk,sbk->sb", ck.astype(float), W)[..., None]
    with np.errstate(all="ignore"):
        res = np.where(den > 0, num / np.where(den > 0, den, 1.0), obs[:, None, :])  # (S, B, M)
    Ks = ck.sum(axis=-1).astype(float)
    base = np.sqrt(Ks / np.maximum(Ks - 1, 1))[:, None, None]
    k_min = int(min(ck[gk == g].any(axis=0).sum() for g in np.unique(gk)))
    spread = D.refutation_spread(k_min, alpha / max(M - 1, 1))
    spread_best = D.refutation_spread(k_min, 1.0 - supported_at)

    def average(f):
        sc = obs[:, None, :] + f * base * (res - obs[:, None, :])
        return _to_ranks(np.moveaxis(sc, 1, 0), aggregation).mean(axis=-2)  # (B, M)

    dist = average(spread_best if np.isfinite(spread_best) else 1.0)
    best = dist.min(axis=-1, keepdims=True)
    is_best = np.abs(dist - best) <= 1e-9
    p_best = (is_best / is_best.sum(axis=-1, keepdims=True)).mean(axis=0)
    wide = average(spread) if np.isfinite(spread) else dist
    beaten = (wide < wide[:, :1] - 1e-9).mean(axis=0)
    ranks = _to_ranks(obs, aggregation)
    return Ranking(methods, aggregation, [k for k, ok in zip(settings, keep) if ok], ck.sum(axis=-1), obs, ranks,
                   ranks.mean(axis=0), dist, p_best, beaten, float(spread), float(spread_best), int(np.unique(gk).size),
                   int((~keep).sum()), dropped_runs)


def friedman_of_scores(ranks: np.ndarray):
    """Friedman's chi-square (tie-corrected, ``scipy.stats.friedmanchisquare``) and p of per-setting ranks
    (S, M), with Iman and Davenport's F and p; NaN with fewer than 3 methods or 2 settings."""
    import math
    import warnings

    from scipy import stats as st

    from .ranks import iman_davenport

    S, M = ranks.shape
    if M < 3 or S < 2:
        return math.nan, math.nan, math.nan, math.nan
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        r = st.friedmanchisquare(*[-ranks[:, j] for j in range(M)])
    idr = iman_davenport(float(r.statistic), M, S)
    return float(r.statistic), float(r.pvalue), idr.statistic, idr.pvalue

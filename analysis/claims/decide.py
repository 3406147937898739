"""``decide()``: the verdict of every claim from arrays (:class:`analysis.claims.arrays.Arrays`) and typed claim
configurations (:class:`analysis.claims.config.ClaimConfig`). No words here (:mod:`analysis.claims.explain`
writes them): typed results only, vectorised over leading (replicate) axes, so that the calibration
(:mod:`analysis.calibration`) runs this very function on simulated grids."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats as st

from .. import decisions as D
from ..power import min_detectable_difference
from ..ranking import Ranking, rank_arrays
from ..records import COLLAPSED_AT, DENSE
from ..stats import signed_rank_p
from .arrays import Arrays
from .config import COMPARISON_TESTS, ClaimConfig

__all__ = ["Comparison", "ClaimResult", "Interaction", "comparison_stats", "compare", "decide", "mdd", "Decider"]


# --------------------------------------------------------------------------------------------
# comparison statistics: one backend per test


def comparison_stats(x, y, test: str, delta: float) -> D.PairedArrays:
    """Statistics of x - y along the last (seed) axis for the chosen ``test``.

    * ``paired-t``: :func:`analysis.decisions.paired_t_arrays` on the seed-paired differences (vectorised).
    * ``wilcoxon``: signed-rank tests on the paired differences (exact: all sign patterns, ties and
      zeros handled, for up to 13 pairs), two-sided, one-sided, and TOST (d + delta > 0 and d - delta < 0).
    * ``welch``: Welch's unpaired t-tests on all values of each side (no pairing): two-sided,
      one-sided and TOST (x - y shifted by -+delta); ``n`` is the smaller of the two sample sizes.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    x, y = np.broadcast_arrays(x, y)
    if test == "paired-t":
        return D.paired_t_arrays(x - y, delta)
    if test not in COMPARISON_TESTS:
        raise ValueError(f"unknown comparison test {test!r}; known: {', '.join(COMPARISON_TESTS)}")
    base = D.paired_t_arrays(x - y, delta)
    shape = x.shape[:-1]
    out = {k: np.full(shape, np.nan) for k in ("p_two", "p_greater", "p_less", "p_tost")}
    n = np.array(base.n)
    mean = np.array(base.mean, dtype=float)
    for idx in np.ndindex(*shape):
        a, b = x[idx], y[idx]
        if test == "wilcoxon":
            d = a - b
            d = d[np.isfinite(d)]
            if d.size < 2:
                continue
            out["p_two"][idx] = signed_rank_p(d, "two-sided")
            out["p_greater"][idx] = signed_rank_p(d, "greater")
            out["p_less"][idx] = signed_rank_p(d, "less")
            out["p_tost"][idx] = max(signed_rank_p(d + delta, "greater"), signed_rank_p(d - delta, "less"))
        else:
            a, b = a[np.isfinite(a)], b[np.isfinite(b)]
            n[idx] = min(a.size, b.size)
            mean[idx] = a.mean() - b.mean() if a.size and b.size else np.nan
            if a.size < 2 or b.size < 2 or (a.std() == 0 and b.std() == 0):
                continue
            out["p_two"][idx] = st.ttest_ind(a, b, equal_var=False).pvalue
            out["p_greater"][idx] = st.ttest_ind(a, b, equal_var=False, alternative="greater").pvalue
            out["p_less"][idx] = st.ttest_ind(a, b, equal_var=False, alternative="less").pvalue
            out["p_tost"][idx] = max(st.ttest_ind(a, b - delta, equal_var=False, alternative="greater").pvalue,
                                     st.ttest_ind(a, b + delta, equal_var=False, alternative="less").pvalue)
    nan = np.full(shape, np.nan)
    return D.PairedArrays(n=n, mean=mean, sd=base.sd if test == "wilcoxon" else nan, se=nan, df=nan, **out)


@dataclass(frozen=True)
class Comparison:
    """a against b over the settings (the last axis of every array; Holm along it).

    ``alternative`` "two-sided": the decision test is two-sided (``p_test``), a significant difference is a
    lead or a deficit by its sign. "greater": the decision test is one-sided a > b (``p_test``) and a deficit
    is the reverse one-sided test a < b (``p_reverse``). The interval [ci_low, ci_high] is built from the
    levels Holm tested each direction at: ci_low > 0 exactly when a lead is significant, ci_high < 0 exactly
    when a deficit is (t tests only)."""

    a: str
    b: str
    alternative: str
    stats: D.PairedArrays
    p_test: np.ndarray
    p_test_holm: np.ndarray
    p_reverse: np.ndarray  #: NaN for two-sided comparisons
    p_reverse_holm: np.ndarray
    p_tost_holm: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    level_low: np.ndarray  #: the level of the test that ci_low stands for
    level_high: np.ndarray
    codes: np.ndarray  #: class codes (decisions.CLASS_NAMES)
    set_aside: np.ndarray  #: pairs left out because a run of either side is at chance level
    m: np.ndarray  #: tests in the Holm family (finite p)


def compare(x, y, cfg: ClaimConfig, alternative: str = "two-sided", a: str = "a", b: str = "b") -> Comparison:
    """Compare x (..., S, K) with y (..., S, K) per setting under ``cfg`` (test, delta, alpha, min_seeds,
    collapsed) and classify each difference (:func:`analysis.decisions.classify`). With ``collapsed =
    "separate"`` a pair in which either run is at chance level leaves the accuracy comparison (the collapse is
    compared on its own, see :class:`ClaimResult`)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    x, y = np.broadcast_arrays(x, y)
    both = np.isfinite(x) & np.isfinite(y)
    if cfg.collapsed == "separate":
        out = both & ((x <= COLLAPSED_AT) | (y <= COLLAPSED_AT))
        x = np.where(out, np.nan, x)
        y = np.where(out, np.nan, y)
        set_aside = out.sum(axis=-1)
    else:
        set_aside = np.zeros(x.shape[:-1], dtype=np.int64)
    s = comparison_stats(x, y, cfg.comparison_test, cfg.delta)
    alpha = cfg.alpha
    if alternative == "two-sided":
        p_test, p_rev = s.p_two, np.full(np.shape(s.mean), np.nan)
        p_test_holm = D.holm_along(p_test)
        p_rev_holm = np.full(np.shape(s.mean), np.nan)
        sig_ahead = sig_behind = np.nan_to_num(p_test_holm, nan=1.0) < alpha
        lev = D.holm_levels(p_test, alpha) / 2.0
        lev_lo = lev_hi = lev
    elif alternative == "greater":
        p_test, p_rev = s.p_greater, s.p_less
        p_test_holm, p_rev_holm = D.holm_along(p_test), D.holm_along(p_rev)
        sig_ahead = np.nan_to_num(p_test_holm, nan=1.0) < alpha
        sig_behind = np.nan_to_num(p_rev_holm, nan=1.0) < alpha
        lev_lo, lev_hi = D.holm_levels(p_test, alpha), D.holm_levels(p_rev, alpha)
    else:
        raise ValueError(f"alternative must be 'two-sided' or 'greater', got {alternative!r}")
    p_tost_holm = D.holm_along(s.p_tost)
    equiv = np.nan_to_num(p_tost_holm, nan=1.0) < alpha
    with np.errstate(all="ignore"):
        lo = s.mean - st.t.ppf(1.0 - lev_lo, s.df) * s.se
        hi = s.mean + st.t.ppf(1.0 - lev_hi, s.df) * s.se
    codes = D.classify(s.mean, sig_ahead, sig_behind, equiv & ~(sig_ahead | sig_behind), s.n, delta=cfg.delta,
                       min_seeds=cfg.min_seeds)
    m = np.isfinite(np.asarray(p_test, dtype=float)).sum(axis=-1, keepdims=True) * np.ones_like(s.mean)
    return Comparison(a, b, alternative, s, p_test, p_test_holm, p_rev, p_rev_holm, p_tost_holm, lo, hi, lev_lo,
                      lev_hi, codes, set_aside, m)


def mdd(c: Comparison, alpha: float, power: float) -> np.ndarray:
    """Minimum detectable difference at ``power`` of every setting of a (paired-t) comparison, at the
    Bonferroni level alpha / m of its family (Holm's first step: a conservative figure); NaN without a test."""
    s = c.stats
    out = np.full(np.shape(s.mean), np.nan)
    sd = np.asarray(s.sd, dtype=float)
    p = np.asarray(c.p_test, dtype=float)
    for idx in np.ndindex(*out.shape):
        m = int(np.asarray(c.m)[idx])
        if m < 1 or not np.isfinite(p[idx]):
            continue
        out[idx] = min_detectable_difference(float(sd[idx]), int(np.asarray(s.n)[idx]), alpha / m, power,
                                             c.alternative)
    return out


@dataclass(frozen=True)
class Interaction:
    """(a - b) - (c - d) per setting, seed-paired: the order effect at one rate minus that at another (or,
    equally, the rate effect with one order minus that with the other). Reported, not decisive."""

    methods: tuple
    stats: D.PairedArrays
    p_holm: np.ndarray  #: two-sided, Holm over the settings


@dataclass
class ClaimResult:
    """One claim decided on one grid (or on each of many simulated replicates: leading axes)."""

    config: ClaimConfig
    verdict: np.ndarray  #: codes of decisions.VERDICT_NAMES
    small: np.ndarray  #: supported, with every deciding margin below delta (estimates)
    why: str = ""  #: a short code when the design itself leaves the claim inconclusive ("" otherwise)
    settings: np.ndarray | None = None  #: (S,) the settings the claim covers
    comparisons: dict = field(default_factory=dict)  #: name -> Comparison
    detail: dict = field(default_factory=dict)  #: rule-specific numbers (arrays of the leading shape)
    ranking: Ranking | None = None  #: claim 3 on a single grid


def _const(lead, code: int) -> np.ndarray:
    return np.full(lead, code, dtype=np.int8)


class Decider:
    """Decides claims on one :class:`Arrays`, sharing comparisons (and the ranking) between claims that need
    the same ones."""

    def __init__(self, arrays: Arrays, rng: np.random.Generator | None = None, n_resamples: int | None = None):
        self.a = arrays
        self.lead = arrays.Y.shape[:-3]
        self.rng = rng
        self.n_resamples = n_resamples
        self._cache: dict = {}

    def comparison(self, a: str, b: str, cfg: ClaimConfig, alternative: str = "two-sided") -> Comparison:
        key = (a, b, alternative, cfg.comparison_key())
        if key not in self._cache:
            y = self.a.values(b)
            if b == DENSE:  # settings without a dense reference stay out of the Holm family
                y = np.where(self.a.has_dense[:, None], y, np.nan)
            self._cache[key] = compare(self.a.values(a), y, cfg, alternative, a, b)
        return self._cache[key]

    # ------------------------------------------------------------------ the rules

    def decide(self, cfg: ClaimConfig) -> ClaimResult:
        if not self.a.has(cfg.method):
            return ClaimResult(cfg, _const(self.lead, D.INCONCLUSIVE), np.zeros(self.lead, bool), "no-method")
        return getattr(self, "_" + cfg.rule)(cfg)

    def _outperforms_in_most_settings(self, cfg: ClaimConfig) -> ClaimResult:
        alts = [m for m in cfg.compared if m != cfg.method and self.a.has(m)]
        S = len(self.a.settings)
        if not alts:
            return ClaimResult(cfg, _const(self.lead, D.INCONCLUSIVE), np.zeros(self.lead, bool), "no-alternative",
                               np.ones(S, bool))
        comps = {m: self.comparison(cfg.method, m, cfg) for m in alts}
        codes = np.stack([comps[m].codes for m in alts], axis=-1)  # (..., S, A)
        v, won, lost, large, small = D.most_settings(codes, cfg.min_settings)
        detail = dict(won=won, lost=lost, large=large, alternatives=alts, settings=S)
        why = "few-settings" if S < cfg.min_settings else ""
        if cfg.collapsed == "separate":
            coll = self.collapses(cfg.method, alts)
            detail["collapses"] = coll
            more = (coll["p_more_holm"] < cfg.alpha).any(axis=-1)
            detail["collapse_veto"] = (v == D.SUPPORTED) & more
            v = np.where(detail["collapse_veto"], D.INCONCLUSIVE, v).astype(np.int8)
            small = small & ~detail["collapse_veto"]
        return ClaimResult(cfg, v, small, why, np.ones(S, bool), comps, detail)

    def collapses(self, method: str, others: list[str]) -> dict:
        """Collapse counts of ``method`` and each of ``others`` over the seed-paired runs of every setting, and
        exact McNemar tests (one-sided each way, Holm across ``others``): arrays (..., A)."""
        a = self.a.values(method)
        rows = {k: [] for k in ("method_only", "other_only", "p_more", "p_less", "n_pairs", "method_collapsed",
                                "other_collapsed")}
        for m in others:
            b = self.a.values(m)
            both = (np.isfinite(a) & np.isfinite(b)).reshape(*self.lead, -1)
            ca = self.a.collapsed(method).reshape(*self.lead, -1)
            cb = self.a.collapsed(m).reshape(*self.lead, -1)
            x, y, pa, pb = D.collapse_test(ca, cb, both)
            rows["method_only"].append(x)
            rows["other_only"].append(y)
            rows["p_more"].append(pa)
            rows["p_less"].append(pb)
            rows["n_pairs"].append(both.sum(axis=-1))
            rows["method_collapsed"].append((ca & both).sum(axis=-1))
            rows["other_collapsed"].append((cb & both).sum(axis=-1))
        out = {k: np.stack(v, axis=-1) for k, v in rows.items()}
        out["p_more_holm"] = D.holm_along(out["p_more"])
        out["p_less_holm"] = D.holm_along(out["p_less"])
        out["others"] = list(others)
        return out

    def _surpasses_reference(self, cfg: ClaimConfig) -> ClaimResult:
        idx = np.flatnonzero(self.a.has_dense)
        cover = self.a.has_dense.copy()
        if not idx.size:
            return ClaimResult(cfg, _const(self.lead, D.INCONCLUSIVE), np.zeros(self.lead, bool), "no-reference",
                               cover)
        c = self.comparison(cfg.method, cfg.reference, cfg, "greater")
        codes = c.codes[..., idx]
        v, ahead, against, large, small = D.occasionally(codes, cfg.min_settings)
        why = "few-settings" if idx.size < cfg.min_settings else ""
        return ClaimResult(cfg, v, small, why, cover, {cfg.reference: c},
                           dict(ahead=ahead, against=against, large=large, settings=int(idx.size)))

    def _best_average_rank(self, cfg: ClaimConfig) -> ClaimResult:
        methods = [cfg.method] + [m for m in cfg.compared if m != cfg.method and self.a.has(m)]
        S = len(self.a.settings)
        if len(methods) < 2:
            return ClaimResult(cfg, _const(self.lead, D.INCONCLUSIVE), np.zeros(self.lead, bool), "few-methods",
                               np.ones(S, bool), detail=dict(methods=methods))
        mi = [self.a.methods.index(m) for m in methods]
        Y = self.a.Y[..., mi, :]
        flat = Y.reshape(-1, *Y.shape[-3:])
        rng = self.rng if self.rng is not None else np.random.default_rng(cfg.seed)
        B = int(self.n_resamples or cfg.n_resamples)
        p_best = np.full(flat.shape[0], np.nan)
        p_beaten = np.full(flat.shape[0], np.nan)
        n_set = np.zeros(flat.shape[0], dtype=np.int64)
        ranking = None
        why = ""
        for r in range(flat.shape[0]):
            rk = rank_arrays(flat[r], self.a.groups, aggregation=cfg.aggregation, min_seeds=cfg.min_seeds,
                             n_resamples=B, rng=rng, alpha=cfg.alpha, supported_at=cfg.supported_at,
                             settings=self.a.settings, methods=methods)
            if isinstance(rk, str):
                why = rk
                continue
            p_best[r], p_beaten[r], n_set[r] = rk.p_best[0], rk.p_beaten[1:].max(), len(rk.settings)
            ranking = rk
        p_best, p_beaten, n_set = (x.reshape(self.lead) for x in (p_best, p_beaten, n_set))
        v = D.rank_verdict(p_best, p_beaten, len(methods), supported_at=cfg.supported_at, alpha=cfg.alpha)
        v = np.where(n_set < cfg.min_settings, D.INCONCLUSIVE, v).astype(np.int8)
        if not why and (n_set < cfg.min_settings).all():
            why = "few-settings"
        if len(methods) < 3:  # ranked for the outputs, but "highest" among two is a paired comparison, not a rank
            v, why = _const(self.lead, D.INCONCLUSIVE), "few-methods"
        cover = np.zeros(S, bool)
        if ranking is not None:
            keys = set(ranking.settings)
            cover = np.array([k in keys for k in self.a.settings])
        return ClaimResult(cfg, v, np.zeros(self.lead, bool), why, cover,
                           detail=dict(methods=methods, p_best=p_best, p_beaten=p_beaten, settings=n_set, reason=why),
                           ranking=ranking if not self.lead else None)

    def _pairs_in_most_settings(self, cfg: ClaimConfig) -> ClaimResult:
        S = len(self.a.settings)
        pairs = [(x, y) for x, y in cfg.pairs if self.a.has(x) and self.a.has(y)]
        if not pairs:
            return ClaimResult(cfg, _const(self.lead, D.INCONCLUSIVE), np.zeros(self.lead, bool), "no-pair",
                               np.ones(S, bool))
        comps, vs, smalls, per = {}, [], [], {}
        for x, y in pairs:
            c = self.comparison(x, y, cfg)
            comps[f"{x} vs {y}"] = c
            v, won, lost, large, small = D.most_settings(c.codes[..., None], cfg.min_settings)
            vs.append(v)
            smalls.append(small)
            per[f"{x} vs {y}"] = dict(verdict=v, won=won, lost=lost, large=large)
        v, small = D.all_of(np.stack(vs, axis=-1), np.stack(smalls, axis=-1))
        inter = {}
        for q in cfg.interactions:
            if all(self.a.has(m) for m in q):
                inter[q] = self.interaction(q, cfg)
        why = "few-settings" if S < cfg.min_settings else ""
        return ClaimResult(cfg, v, small, why, np.ones(S, bool), comps,
                           dict(pairs=pairs, per_pair=per, interactions=inter, settings=S))

    def interaction(self, q: tuple, cfg: ClaimConfig) -> Interaction:
        a, b, c, d = (self.a.values(m) for m in q)
        diff = (a - b) - (c - d)
        if cfg.collapsed == "separate":
            out = np.zeros(diff.shape, bool)
            for v in (a, b, c, d):
                out |= np.isfinite(v) & (v <= COLLAPSED_AT)
            diff = np.where(out, np.nan, diff)
        s = D.paired_t_arrays(diff, cfg.delta)
        return Interaction(tuple(q), s, D.holm_along(s.p_two))


def decide(arrays: Arrays, claims, *, rng: np.random.Generator | None = None,
           n_resamples: int | None = None) -> dict[str, ClaimResult]:
    """Every claim of ``claims`` (ClaimConfig objects) decided on ``arrays``: {claim id: ClaimResult}.

    ``rng`` and ``n_resamples`` drive claim 3's resampling (default: the claim's own seed and count)."""
    dec = Decider(arrays, rng, n_resamples)
    return {c.id: dec.decide(c) for c in claims}

"""The claims audit: the paper's claims (``claims.toml``, shipped with the package) judged on the
run records, one protocol at a time.

Every claim ends ``supported``, ``refuted`` or ``inconclusive`` with a one-line reason and the numbers
that decided it. The decision rules are stated in words in ``claims.toml``; the arithmetic lives in
:mod:`analysis.decisions` (plain arrays, the same functions the calibration simulation runs); this
module turns one protocol's records into those arrays and the results into words.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from scipy import stats as st

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from . import decisions as D
from .formatting import fmt_num, fmt_signed, p_is
from .looks import check_plans, design_look
from .power import min_detectable_difference
from .ranks import friedman
from .records import DENSE, SETTING_KEYS, SORT_KEYS, load_runs, method_order, setting_label
from .stats import signed_rank_p

__all__ = ["Verdict", "Judgement", "load_claims", "audit", "judge", "DECISION_RULES", "VERDICTS",
           "AUDIT_COLUMNS", "COMPARISON_TESTS", "comparison_stats", "rank_block"]

VERDICTS = D.VERDICT_NAMES
AUDIT_COLUMNS = ["protocol", "claim", "verdict", "look", "reason", "test", "evidence", "n_settings", "completed",
                 "diverged", "collapsed", "text"]
#: comparison tests a claim may use (``comparison_test`` in claims.toml)
COMPARISON_TESTS = ("paired-t", "wilcoxon", "welch")
_TEST_WORDS = {"paired-t": "paired t-test", "wilcoxon": "Wilcoxon signed-rank test (exact)",
               "welch": "Welch t-test (unpaired)"}
_REQUIRED_DEFAULTS = {"method": str, "alpha": float, "delta": float, "min_seeds": int, "min_settings": int,
                      "comparison_test": str, "alternatives": list, "reference": str, "power": float}


@dataclass(frozen=True)
class Verdict:
    """One claim judged on one protocol."""

    verdict: str  #: one of VERDICTS
    reason: str  #: why, in one line of words
    evidence: str  #: the numbers behind the verdict, one line
    n_settings: int  #: settings the decision looked at
    numbers: dict = field(default_factory=dict)  #: the deciding numbers, machine-readable


# --------------------------------------------------------------------------------------------
# the claims file


def _merge(defaults: dict, claim: dict, overrides: dict | None) -> dict:
    c = {**defaults, **claim, **(overrides or {})}
    excl = set(c.get("exclude", ()))
    c["alternatives"] = [a for a in c["alternatives"] if a not in excl]
    return c


def load_claims(path: str | Path | None = None) -> dict:
    """The claims file as a dict: the packaged ``analysis/claims.toml`` unless ``path`` is given.
    Every claim gets the ``[defaults]`` merged under its own keys. Raises ``ValueError`` naming the
    problem for a malformed file."""
    if path is None:
        text = resources.files("analysis").joinpath("claims.toml").read_text(encoding="utf-8")
        where = "analysis/claims.toml"
    else:
        where = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            raise ValueError(f"cannot read the claims file {where} ({why}); give --claims a TOML file shaped like "
                             f"analysis/claims.toml") from None
    try:
        cfg = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"claims file {where}: not valid TOML ({e})") from None
    defaults = cfg.get("defaults", {})
    for key, typ in _REQUIRED_DEFAULTS.items():
        if key not in defaults:
            raise ValueError(f"claims file {where}: [defaults] lacks {key!r}")
        v = defaults[key]
        if typ is float and isinstance(v, int) and not isinstance(v, bool):
            v = defaults[key] = float(v)
        if not isinstance(v, typ) or isinstance(v, bool):
            raise ValueError(f"claims file {where}: [defaults] {key} must be a {typ.__name__}, got {v!r}")
    _check_values(defaults, where)
    claims = []
    for c in cfg.get("claims", []):
        for key in ("id", "text", "rule", "test"):
            if key not in c:
                raise ValueError(f"claims file {where}: a claim lacks {key!r}")
        if c["rule"] not in DECISION_RULES:
            raise ValueError(f"claims file {where}: claim {c['id']!r} names unknown rule {c['rule']!r}; "
                             f"known: {', '.join(DECISION_RULES)}")
        merged = _merge(defaults, c, None)
        _check_values(merged, where)
        claims.append(merged)
    for s in cfg.get("sensitivity", []):
        if not {"choice", "label", "set"} <= set(s) or not isinstance(s["set"], dict):
            raise ValueError(f"claims file {where}: a [[sensitivity]] entry needs choice, label and a table 'set'")
        _check_values({**defaults, **s["set"]}, where)
    plans = check_plans(cfg.get("plans", {}), where)
    return {**cfg, "defaults": defaults, "claims": claims, "plans": plans}


def _check_values(c: dict, where: str) -> None:
    if not 0.0 < float(c.get("alpha", 0.05)) < 1.0:
        raise ValueError(f"claims file {where}: alpha must be in (0, 1), got {c['alpha']}")
    if not float(c.get("delta", 0.5)) > 0:
        raise ValueError(f"claims file {where}: delta must be > 0, got {c['delta']}")
    if c.get("collapsed", "keep") not in ("keep", "exclude"):
        raise ValueError(f"claims file {where}: collapsed must be 'keep' or 'exclude', got {c['collapsed']!r}")
    if c.get("comparison_test", "paired-t") not in COMPARISON_TESTS:
        raise ValueError(f"claims file {where}: comparison_test must be one of {', '.join(COMPARISON_TESTS)}, "
                         f"got {c['comparison_test']!r}")
    if int(c.get("min_seeds", 3)) < 2:
        raise ValueError(f"claims file {where}: min_seeds must be >= 2, got {c['min_seeds']}")


# --------------------------------------------------------------------------------------------
# records -> arrays


@dataclass
class Design:
    """One protocol's completed runs as arrays, seeds aligned by key."""

    method: str
    settings: list  #: S setting key tuples (the method's settings), sorted
    seeds: np.ndarray  #: K seeds (union over the protocol), sorted
    others: list  #: the other sparse methods present, display order
    Y: np.ndarray  #: (S, 1 + len(others), K): the method first, then others; NaN = no completed run
    dense: np.ndarray  #: (S, K): the dense reference of each setting's dataset/arch/protocol
    has_dense: np.ndarray  #: (S,) bool: dense runs (any status) exist for the setting's dataset/arch
    runs: pd.DataFrame  #: the protocol's runs


def build_design(df: pd.DataFrame, method: str, reference: str = DENSE, metric: str = "test_acc") -> Design | None:
    """Arrays of one protocol's records; None when ``method`` has no runs."""
    if method not in set(df["method"]):
        return None
    s = df.loc[df["method"] == method, list(SETTING_KEYS)].drop_duplicates()
    s = s.sort_values([k for k in SORT_KEYS if k in SETTING_KEYS], kind="mergesort")
    settings = [tuple(r) for r in s.itertuples(index=False, name=None)]
    others = [m for m in method_order(df["method"].unique()) if m not in (method, reference)]
    methods = [method] + others
    done = df[(df["status"] == "completed") & np.isfinite(df[metric].astype(float))]
    seeds = np.array(sorted(set(df["seed"].astype(int))), dtype=np.int64)
    kpos = {int(k): i for i, k in enumerate(seeds)}
    spos = {k: i for i, k in enumerate(settings)}
    mpos = {m: i for i, m in enumerate(methods)}
    Y = np.full((len(settings), len(methods), len(seeds)), np.nan)
    sp = done[done["method"].isin(methods)]
    for r in sp[list(SETTING_KEYS) + ["method", "seed", metric]].itertuples(index=False, name=None):
        si = spos.get(tuple(r[:5]))
        if si is not None:
            Y[si, mpos[r[5]], kpos[int(r[6])]] = float(r[7])
    dense = np.full((len(settings), len(seeds)), np.nan)
    ref = done[done["method"] == reference]
    ref_any = set(map(tuple, df.loc[df["method"] == reference, ["dataset", "arch", "protocol"]]
                      .itertuples(index=False, name=None)))
    has_dense = np.array([(k[0], k[1], k[4]) in ref_any for k in settings], dtype=bool)
    for r in ref[["dataset", "arch", "protocol", "seed", metric]].itertuples(index=False, name=None):
        for si, k in enumerate(settings):
            if (k[0], k[1], k[4]) == tuple(r[:3]):
                dense[si, kpos[int(r[3])]] = float(r[4])
    return Design(method, settings, seeds, others, Y, dense, has_dense, df)


# --------------------------------------------------------------------------------------------
# comparison statistics: one backend per test


def comparison_stats(x, y, test: str, delta: float) -> D.PairedArrays:
    """Statistics of x - y along the last (seed) axis for the chosen ``test``.

    * ``paired-t``: :func:`analysis.decisions.paired_t_arrays` on the seed-paired differences (vectorised).
    * ``wilcoxon``: signed-rank tests on the paired differences (exact: all sign patterns, ties and
      zeros handled, for up to 13 pairs), two-sided, one-sided, and TOST (d + delta > 0 and d - delta < 0).
    * ``welch``: Welch's unpaired t-tests on all completed runs of each side (no pairing): two-sided,
      one-sided and TOST (x - y shifted by -+delta); ``n`` is the smaller of the two sample sizes.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    x, y = np.broadcast_arrays(x, y)
    if test == "paired-t":
        return D.paired_t_arrays(x - y, delta)
    base = D.paired_t_arrays(x - y, delta)  # n, mean, sd of the pairs (Wilcoxon's pairs)
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
        elif test == "welch":
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
        else:
            raise ValueError(f"unknown comparison test {test!r}; known: {', '.join(COMPARISON_TESTS)}")
    nan = np.full(shape, np.nan)
    return D.PairedArrays(n=n, mean=mean, sd=base.sd if test == "wilcoxon" else nan,
                          se=nan, df=nan, **out)


@dataclass(frozen=True)
class Family:
    """One method against one baseline over the settings of a protocol (Holm along the settings axis)."""

    stats: D.PairedArrays
    alternative: str  #: "two-sided" or "greater"
    p_win: np.ndarray  #: Holm-adjusted p of a win
    p_loss: np.ndarray  #: Holm-adjusted p of a loss
    p_equiv: np.ndarray  #: Holm-adjusted TOST p
    level: np.ndarray  #: the level Holm tested each setting at (see decisions.holm_levels)
    adj_low: np.ndarray  #: interval at that level (t tests only): excludes 0 iff the win/loss test rejects
    adj_high: np.ndarray
    codes: np.ndarray  #: class codes (decisions.CLASS_NAMES)
    m: np.ndarray  #: tests in the family (finite p)


def judge_family(x, y, *, test: str, delta: float, alpha: float, min_seeds: int, alternative: str,
                 axis: int) -> Family:
    """Compare x with y per setting (``axis`` of the statistics' shape is the settings axis) and
    classify each difference (:func:`analysis.decisions.classify`)."""
    s = comparison_stats(x, y, test, delta)
    if alternative == "two-sided":
        p_win = p_loss = D.holm_along(s.p_two, axis)
        level = D.holm_levels(s.p_two, alpha, axis)
        q = 1.0 - level / 2.0
    elif alternative == "greater":
        p_win = D.holm_along(s.p_greater, axis)
        p_loss = D.holm_along(s.p_less, axis)
        level = D.holm_levels(s.p_greater, alpha, axis)
        q = 1.0 - level
    else:
        raise ValueError(f"alternative must be 'two-sided' or 'greater', got {alternative!r}")
    p_equiv = D.holm_along(s.p_tost, axis)
    with np.errstate(all="ignore"):
        half = st.t.ppf(q, s.df) * s.se
    codes = D.classify(s.mean, p_win, p_loss, p_equiv, s.n, alpha=alpha, min_seeds=min_seeds,
                       two_sided=alternative == "two-sided")
    p_main = s.p_two if alternative == "two-sided" else s.p_greater
    m = np.isfinite(np.asarray(p_main, dtype=float)).sum(axis=axis, keepdims=True) * np.ones_like(s.mean)
    return Family(s, alternative, p_win, p_loss, p_equiv, level, s.mean - half, s.mean + half, codes, m)


def mdd(family: Family, alpha: float, power: float) -> np.ndarray:
    """Minimum detectable difference at ``power`` of every cell of a (paired) family, at the
    Bonferroni level alpha / m of its family (Holm's first step: a conservative figure)."""
    s = family.stats
    out = np.full(np.shape(s.mean), np.nan)
    sd = np.asarray(s.sd, dtype=float)
    p = np.asarray(s.p_two if family.alternative == "two-sided" else s.p_greater, dtype=float)
    for idx in np.ndindex(*out.shape):
        m = int(np.asarray(family.m)[idx])
        if m < 1 or not np.isfinite(p[idx]):  # no test (fewer than 2 pairs, or no spread): no power either
            continue
        out[idx] = min_detectable_difference(float(sd[idx]), int(np.asarray(s.n)[idx]), alpha / m, power,
                                             family.alternative)
    return out


# --------------------------------------------------------------------------------------------
# the whole protocol


@dataclass
class Judgement:
    """Everything the audit computed on one protocol under one claim configuration."""

    design: Design | None
    cfg: dict
    families: dict = field(default_factory=dict)  #: baseline -> Family (other sparse methods and dense)
    mdds: dict = field(default_factory=dict)  #: baseline -> minimum detectable differences per setting

    def alternatives(self) -> list[str]:
        """The configured alternatives that have runs in this protocol, display order."""
        if self.design is None:
            return []
        return [a for a in method_order(self.cfg["alternatives"]) if a in self.design.others]

    def rows(self) -> pd.DataFrame:
        """One row per (baseline, setting): the decision columns of the comparisons table."""
        cols = list(SETTING_KEYS) + ["baseline", "n_pairs", "mean_diff", "alternative", "holm_level", "adj_ci_low",
                                     "adj_ci_high", "p_win_holm", "p_loss_holm", "p_tost", "p_tost_holm", "class",
                                     "mdd"]
        if self.design is None:
            return pd.DataFrame(columns=cols)
        out = []
        for b, f in self.families.items():
            for i, key in enumerate(self.design.settings):
                if b == DENSE and not self.design.has_dense[i]:
                    continue
                out.append(dict(zip(SETTING_KEYS, key), baseline=b, n_pairs=int(f.stats.n[i]),
                                mean_diff=float(f.stats.mean[i]), alternative=f.alternative,
                                holm_level=float(f.level[i]), adj_ci_low=float(f.adj_low[i]),
                                adj_ci_high=float(f.adj_high[i]), p_win_holm=float(f.p_win[i]),
                                p_loss_holm=float(f.p_loss[i]), p_tost=float(f.stats.p_tost[i]),
                                p_tost_holm=float(f.p_equiv[i]), **{"class": D.CLASS_NAMES[int(f.codes[i])]},
                                mdd=float(self.mdds[b][i])))
        return pd.DataFrame(out, columns=cols)


def judge(df: pd.DataFrame, cfg: dict) -> Judgement:
    """Compare the claimed method with every other sparse method (two-sided) and with dense
    (one-sided, method > dense) per setting of one protocol, under ``cfg`` (a merged claim entry)."""
    des = build_design(df, cfg["method"], cfg.get("reference", DENSE))
    j = Judgement(des, cfg)
    if des is None:
        return j
    common = dict(test=cfg["comparison_test"], delta=cfg["delta"], alpha=cfg["alpha"], min_seeds=cfg["min_seeds"])
    S = len(des.settings)
    for i, b in enumerate(des.others):
        j.families[b] = judge_family(des.Y[:, 0, :], des.Y[:, 1 + i, :], alternative="two-sided", axis=-1, **common)
    if des.has_dense.any():
        keep = des.has_dense
        dense = np.where(keep[:, None], des.dense, np.nan)
        # Settings without dense runs get NaN statistics, so they are not part of the Holm family.
        j.families[DENSE] = judge_family(des.Y[:, 0, :], dense, alternative="greater", axis=-1, **common)
    for b, f in j.families.items():
        j.mdds[b] = (mdd(f, cfg["alpha"], cfg["power"]) if cfg["comparison_test"] == "paired-t"
                     else np.full(S, np.nan))
    return j


# --------------------------------------------------------------------------------------------
# claim 1: outperforms its alternatives in most settings


def _label(key) -> str:
    return setting_label(*key[:4], with_dataset=True)


def _counts(codes) -> dict:
    codes = np.asarray(codes)
    return {name: int((codes == i).sum()) for i, name in enumerate(D.CLASS_NAMES)}


def _mdd_text(values) -> str:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if not v.size:
        return "minimum detectable difference n/a (fewer than 2 pairs)"
    return (f"minimum detectable difference at 80% power: median {fmt_num(np.median(v))} pp "
            f"(range {fmt_num(v.min())}-{fmt_num(v.max())})")


def _collapsed_text(df: pd.DataFrame, methods) -> tuple[str, dict]:
    c = df[df["collapsed"] & df["method"].isin(list(methods))] if "collapsed" in df.columns else df.iloc[:0]
    by = c.groupby("method").size()
    counts = {m: int(by[m]) for m in method_order(by.index)}
    if not counts:
        return "collapsed runs (at chance level): none", counts
    return ("collapsed runs (at chance level, kept in every statistic): "
            + ", ".join(f"{m} {n}" for m, n in counts.items())), counts


def outperforms_in_most_settings(df: pd.DataFrame, c: dict, j: Judgement | None = None) -> Verdict:
    m = c["method"]
    j = j or judge(df, c)
    if j.design is None:
        return Verdict("inconclusive", f"there are no {m} runs", "", 0, {"settings": 0})
    des = j.design
    S = len(des.settings)
    alts = j.alternatives()
    if not alts:
        return Verdict("inconclusive", f"no alternative has runs (looked for {', '.join(c['alternatives'])})", "", S,
                       {"settings": S, "alternatives": []})
    codes = np.stack([j.families[a].codes for a in alts], axis=-1)  # (S, A)
    v, wins, lost = D.outperforms_verdict(codes, c["min_settings"])
    v, wins, lost = int(v), int(wins), int(lost)
    unresolved = S - wins - lost
    per = {a: _counts(j.families[a].codes) for a in alts}
    mdds = np.concatenate([j.mdds[a] for a in alts])
    coll_text, coll = _collapsed_text(df, [m] + alts)
    test = _TEST_WORDS[c["comparison_test"]]
    detail = "; ".join(f"{a} {per[a]['win']}/{per[a]['loss']}/{per[a]['equivalent']}/{per[a]['unresolved']}"
                       + (f" ({per[a]['few seeds']} with too few seeds)" if per[a]["few seeds"] else "")
                       for a in alts)
    ev = (f"{m} vs {len(alts)} alternatives over {S} settings ({test}, two-sided, Holm over settings per "
          f"alternative, alpha {c['alpha']}; equivalence by TOST within +-{fmt_num(c['delta'])} pp): settings won "
          f"{wins}, lost {lost} (some alternative better or equivalent), unresolved {unresolved}; per alternative "
          f"win/loss/equivalent/unresolved: {detail}; {_mdd_text(mdds)}; {coll_text}")
    numbers = dict(settings=S, alternatives=alts, won=wins, lost=lost, unresolved=unresolved, per_alternative=per,
                   delta=c["delta"], alpha=c["alpha"], test=c["comparison_test"],
                   min_pairs=int(min(int(np.min(j.families[a].stats.n)) for a in alts)),
                   mdd_median=_nan_none(np.nanmedian(mdds) if np.isfinite(mdds).any() else math.nan),
                   mdd_max=_nan_none(np.nanmax(mdds) if np.isfinite(mdds).any() else math.nan),
                   collapsed=coll)
    verdict = D.VERDICT_NAMES[v]
    if S < c["min_settings"]:
        reason = f"only {S} setting(s) (fewer than {c['min_settings']}): not enough settings to speak of 'most'"
    elif verdict == "supported":
        reason = f"{m} beats every alternative significantly in {wins} of {S} settings, a majority"
    elif verdict == "refuted":
        reason = (f"in {lost} of {S} settings some alternative is significantly better or equivalent within "
                  f"+-{fmt_num(c['delta'])} pp, so {m} cannot win a majority")
    else:
        reason = (f"{m} wins {wins} and loses {lost} of {S} settings; {unresolved} unresolved leave both outcomes "
                  f"possible: not enough evidence either way")
    return Verdict(verdict, reason, ev, S, numbers)


def _nan_none(x):
    x = float(x)
    return None if math.isnan(x) else x


# --------------------------------------------------------------------------------------------
# claim 2: occasionally surpasses the dense network


def surpasses_reference(df: pd.DataFrame, c: dict, j: Judgement | None = None) -> Verdict:
    m, ref = c["method"], c.get("reference", DENSE)
    j = j or judge(df, c)
    if j.design is None:
        return Verdict("inconclusive", f"there are no {m} runs", "", 0, {"settings": 0})
    des = j.design
    if ref not in j.families:
        return Verdict("inconclusive", f"there are no {ref} reference runs for the architectures {m} ran on", "", 0,
                       {"settings": 0})
    f = j.families[ref]
    idx = np.flatnonzero(des.has_dense)
    codes = f.codes[idx]
    S = len(idx)
    v, wins, against = D.surpasses_verdict(codes, c["min_settings"])
    v, wins, against = int(v), int(wins), int(against)
    cnt = _counts(codes)
    mean = f.stats.mean[idx]
    test = _TEST_WORDS[c["comparison_test"]]
    ev = (f"{m} - {ref} over {S} settings ({test}, one-sided {m} > {ref}, "
          f"{'paired on seed, ' if c['comparison_test'] != 'welch' else ''}Holm over settings, alpha {c['alpha']}; "
          f"equivalence by TOST within +-{fmt_num(c['delta'])} pp): win {cnt['win']}, loss {cnt['loss']}, "
          f"equivalent {cnt['equivalent']}, unresolved {cnt['unresolved']}, too few seeds {cnt['few seeds']}; "
          f"mean above {ref} in {int(np.nansum(mean > 0))}")
    best = None
    if np.isfinite(mean).any():
        b = int(np.nanargmax(mean))
        best = idx[b]
        ev += (f"; largest difference {fmt_signed(mean[b])} pp at {_label(des.settings[best])} "
               f"(n = {int(f.stats.n[best])}, one-sided Holm {p_is(f.p_win[best])})")
    ev += f"; {_mdd_text(j.mdds[ref][idx])}"
    no_ref = len(des.settings) - S
    if no_ref:
        ev += f"; {no_ref} {m} settings without {ref} runs"
    coll_text, coll = _collapsed_text(df, [m, ref])
    ev += f"; {coll_text}"
    numbers = dict(settings=S, won=wins, loss_or_equivalent=against, classes=cnt, delta=c["delta"], alpha=c["alpha"],
                   test=c["comparison_test"],
                   largest_difference=_nan_none(mean[int(np.nanargmax(mean))]) if best is not None else None,
                   largest_at=_label(des.settings[best]) if best is not None else None, collapsed=coll)
    verdict = D.VERDICT_NAMES[v]
    if verdict == "supported":
        reason = (f"{m} is significantly above {ref} (and not within +-{fmt_num(c['delta'])} pp) in {wins} of {S} "
                  f"setting(s)")
    elif verdict == "refuted":
        reason = (f"in every one of {S} settings {m} is significantly below {ref} or equivalent to it within "
                  f"+-{fmt_num(c['delta'])} pp")
    elif S < c["min_settings"] and wins == 0:
        reason = f"no significant surplus in {S} setting(s), too few settings (< {c['min_settings']}) to rule one out"
    else:
        reason = (f"no setting shows a significant surplus over {ref}, and {S - against} of {S} settings cannot rule "
                  f"one out: not enough evidence either way")
    return Verdict(verdict, reason, ev, S, numbers)


# --------------------------------------------------------------------------------------------
# claim 3: highest ranking across the settings


@dataclass(frozen=True)
class RankResult:
    methods: list
    settings: list
    seeds: np.ndarray
    observed: np.ndarray  #: average ranks on the complete seeds (M,)
    distribution: np.ndarray  #: bootstrap average ranks (B, M)
    p_best: float
    #: (M,) share of resamples widened by ``refutation_spread`` in which each method ranks strictly better than
    #: the first
    p_beaten: np.ndarray
    refutation_spread: float  #: :func:`analysis.decisions.refutation_spread` of these seeds at alpha / (M - 1)
    dropped_settings: int
    dropped_seeds: int


def rank_block(present: np.ndarray, min_seeds: int) -> tuple[np.ndarray, np.ndarray]:
    """(settings, seeds) masks of what claim 3 ranks, from ``present`` (S, M, K), True where a run exists: the
    settings where every method has at least ``min_seeds`` runs, and the seeds complete across all of them."""
    keep = (present.sum(axis=-1) >= min_seeds).all(axis=-1)
    return keep, present[keep].all(axis=(0, 1))


def rank_uncertainty(Y: np.ndarray, settings: list, seeds: np.ndarray, methods: list[str], min_seeds: int,
                     n_resamples: int, seed: int, alpha: float = 0.05) -> RankResult | str:
    """Average ranks of ``methods`` (the first is the one judged) over the settings where every one has
    at least ``min_seeds`` completed runs, on the seeds complete there, and their distribution under
    whole-seed resampling (:func:`analysis.decisions.rank_bootstrap`). The shares of resamples in which
    another method ranks ahead come from the same resamples widened by
    :func:`analysis.decisions.refutation_spread` at alpha / (M - 1). ``Y``: (S, M, K) values, NaN =
    no completed run. A string (the reason) when there is too little to rank."""
    keep, complete = rank_block(np.isfinite(Y), min_seeds)
    if not keep.any():
        return f"no setting where all {len(methods)} methods have at least {min_seeds} completed runs"
    if complete.sum() < min_seeds:
        return (f"only {int(complete.sum())} seeds complete across the {int(keep.sum())} usable settings "
                f"(fewer than {min_seeds})")
    Yc = Y[keep][:, :, complete]
    w = D.seed_weights(Yc.shape[-1], n_resamples, np.random.default_rng(seed))
    dist, p, beaten, spread = D.rank_evidence(Yc, w, alpha)
    obs = D.average_ranks_of(Yc.mean(axis=-1))
    return RankResult(list(methods), [k for k, ok in zip(settings, keep) if ok], np.asarray(seeds)[complete], obs,
                      dist, float(p), beaten, spread, int((~keep).sum()), int((~complete).sum()))


def best_average_rank(df: pd.DataFrame, c: dict, j: Judgement | None = None) -> Verdict:
    m = c["method"]
    j = j or judge(df, c)
    if j.design is None:
        return Verdict("inconclusive", f"there are no {m} runs", "", 0, {"settings": 0})
    methods = [m] + j.alternatives()
    k = len(methods)
    if k < 3:
        return Verdict("inconclusive", f"only {k} methods ({', '.join(methods)}); ranking needs at least 3", "", 0,
                       {"settings": 0, "methods": methods})
    des = j.design
    mi = [([des.method] + des.others).index(x) for x in methods]
    sup, alpha = float(c["supported_at"]), float(c["alpha"])
    rr = rank_uncertainty(des.Y[:, mi, :], des.settings, des.seeds, methods, c["min_seeds"],
                          int(c.get("n_resamples", 10_000)), int(c.get("seed", 0)), alpha)
    if isinstance(rr, str):
        return Verdict("inconclusive", rr, "", 0, {"settings": 0, "methods": methods})
    N = len(rr.settings)
    conf = float(c.get("rank_confidence", 0.95))
    lo, hi = np.quantile(rr.distribution, [(1 - conf) / 2, (1 + conf) / 2], axis=0)
    order = sorted(range(k), key=lambda i: (rr.observed[i], methods[i]))
    ranks_text = ", ".join(f"{methods[i]} {rr.observed[i]:.2f} [{lo[i]:.2f}, {hi[i]:.2f}]" for i in order)
    refute_at = 1.0 - alpha / (k - 1)
    ib = int(np.argmax(rr.p_beaten))
    fr_all = friedman(_runs_of(df, rr), "test_acc", methods)
    fr_text = (f"Friedman over all {k}: chi2 {fmt_num(fr_all.statistic, 3)}, {p_is(fr_all.pvalue)} "
               f"(Iman-Davenport {p_is(fr_all.iman_davenport_pvalue)})")
    fr_wo = None
    if "random" in methods and k - 1 >= 3:
        fr_wo = friedman(_runs_of(df, rr), "test_acc", [x for x in methods if x != "random"])
        fr_text += (f"; without random: chi2 {fmt_num(fr_wo.statistic, 3)}, {p_is(fr_wo.pvalue)} "
                    f"(Iman-Davenport {p_is(fr_wo.iman_davenport_pvalue)})")
    coll_text, coll = _collapsed_text(df, methods)
    ev = (f"P({m} has the best average rank) = {rr.p_best:.3f} over {rr.distribution.shape[0]} resamples of whole "
          f"seeds ({len(rr.seeds)} seeds, {N} settings, {k} methods; supported at >= {sup}); most often ahead of "
          f"{m}: {methods[ib]}, in {rr.p_beaten[ib]:.3f} of resamples widened by t/z = "
          f"{rr.refutation_spread:.3f} (refuted at >= {refute_at:.3f} = 1 - alpha/{k - 1}); average rank "
          f"[{int(round(conf * 100))}% bootstrap interval]: {ranks_text}; {fr_text}; settings "
          f"left out (a method with fewer than {c['min_seeds']} runs): {rr.dropped_settings}, incomplete seeds left "
          f"out: {rr.dropped_seeds}; {coll_text}")
    numbers = dict(settings=N, methods=methods, seeds=len(rr.seeds), p_best=rr.p_best,
                   p_beaten={methods[i]: float(rr.p_beaten[i]) for i in range(1, k)},
                   average_ranks={methods[i]: float(rr.observed[i]) for i in range(k)},
                   rank_ci={methods[i]: [float(lo[i]), float(hi[i])] for i in range(k)},
                   supported_at=sup, refuted_at=refute_at, refutation_spread=rr.refutation_spread,
                   friedman_p=_nan_none(fr_all.pvalue),
                   friedman_p_without_random=_nan_none(fr_wo.pvalue) if fr_wo else None,
                   n_resamples=int(rr.distribution.shape[0]), collapsed=coll)
    v = D.VERDICT_NAMES[int(D.rank_verdict(rr.p_best, rr.p_beaten[ib], k, supported_at=sup, alpha=alpha))]
    if N < c["min_settings"]:
        v = "inconclusive"
        reason = f"only {N} usable setting(s) (fewer than {c['min_settings']})"
    elif v == "supported":
        reason = f"{m} has the best average rank in {rr.p_best:.1%} of whole-seed resamples (>= {sup:.0%})"
    elif v == "refuted":
        reason = (f"{methods[ib]} ranks ahead of {m} in {rr.p_beaten[ib]:.1%} of widened whole-seed resamples "
                  f"(>= {refute_at:.1%}): {m} does not have the highest ranking")
    else:
        reason = (f"{m} has the best average rank in {rr.p_best:.1%} of whole-seed resamples (< {sup:.0%}), and no "
                  f"method ranks ahead of it in {refute_at:.1%} or more of the widened resamples: the ranking is too "
                  f"uncertain")
    return Verdict(v, reason, ev, N, numbers)


def _runs_of(df: pd.DataFrame, rr: RankResult) -> pd.DataFrame:
    """The runs the ranking used: its settings and seeds (for the Friedman tests)."""
    keys = set(rr.settings)
    sel = [tuple(r) in keys for r in df[list(SETTING_KEYS)].itertuples(index=False, name=None)]
    d = df[np.array(sel, dtype=bool) & df["seed"].isin(rr.seeds)]
    return d


#: rule name (the ``rule`` of a claim in claims.toml) -> decision function (protocol frame, claim) -> Verdict
DECISION_RULES: dict[str, Callable[..., Verdict]] = {
    "outperforms_in_most_settings": outperforms_in_most_settings,
    "surpasses_reference": surpasses_reference,
    "best_average_rank": best_average_rank,
}


# --------------------------------------------------------------------------------------------


def audit(df_or_path, protocol: str | None = None, claims: str | Path | dict | None = None,
          overrides: dict | None = None, *, with_numbers: bool = False) -> pd.DataFrame:
    """Judge every claim, separately for each protocol in the records (or only ``protocol``).

    ``df_or_path`` is a frame from :func:`analysis.load_runs` or a results folder. ``claims`` is a
    claims TOML path or an already loaded dict; the packaged ``claims.toml`` by default. ``overrides``
    replaces claim settings for every claim (e.g. ``{"delta": 1.0}``, ``{"comparison_test": "wilcoxon"}``,
    ``{"exclude": ["annealed:r0=0.01"]}``, ``{"collapsed": "exclude"}``): the sensitivity analysis.

    Returns one row per (protocol, claim), protocols sorted, claims in file order, with columns
    :data:`AUDIT_COLUMNS`: verdict ("supported" | "refuted" | "inconclusive"), look ("final" | "interim" |
    "unplanned": :func:`analysis.looks.design_look` against the claims file's ``[plans]``; only a final
    look's verdicts are the planned design's), reason (one line of words),
    test (the statistic that decides it), evidence (the numbers behind the verdict), n_settings,
    completed, diverged and collapsed runs of that protocol, text (the claim). ``with_numbers`` adds a
    column ``numbers`` of machine-readable dicts.
    """
    df = load_runs(df_or_path) if isinstance(df_or_path, (str, Path)) else df_or_path
    cfg = claims if isinstance(claims, dict) else load_claims(claims)
    protocols = sorted(df["protocol"].unique())
    if protocol is not None:
        if protocol not in protocols:
            raise ValueError(f"no runs of protocol {protocol!r}; protocols present: {', '.join(protocols) or 'none'}")
        protocols = [protocol]
    if overrides:
        _check_values({**cfg["defaults"], **overrides}, "overrides")
    rows = []
    for p in protocols:
        dp = df[df["protocol"] == p]
        n_done = int((dp["status"] == "completed").sum())
        n_div = int((dp["status"] == "diverged").sum())
        n_coll = int(dp["collapsed"].sum()) if "collapsed" in dp.columns else 0
        look = design_look(dp, p, cfg.get("plans"), cfg["defaults"].get("reference", DENSE)).kind
        cache: dict = {}
        for raw in cfg["claims"]:
            c = _merge({}, raw, overrides)
            # collapsed = "exclude" (a sensitivity variant): runs at chance level leave the data, and with
            # them their seed leaves that setting's comparisons (the design keeps whole seeds)
            dc = dp[~dp["collapsed"]] if c.get("collapsed", "keep") == "exclude" else dp
            jkey = (c["method"], c.get("reference", DENSE), c["comparison_test"], c["delta"], c["alpha"],
                    c["min_seeds"], c["power"], c.get("collapsed", "keep"))
            if jkey not in cache:
                cache[jkey] = judge(dc, c)
            j = cache[jkey]
            j = Judgement(j.design, c, j.families, j.mdds)
            v = DECISION_RULES[c["rule"]](dc, c, j)
            row = dict(protocol=p, claim=c["id"], verdict=v.verdict, look=look, reason=v.reason, test=c["test"],
                       evidence=v.evidence, n_settings=v.n_settings, completed=n_done, diverged=n_div,
                       collapsed=n_coll, text=" ".join(c["text"].split()))
            if with_numbers:
                row["numbers"] = v.numbers
            rows.append(row)
    cols = AUDIT_COLUMNS + (["numbers"] if with_numbers else [])
    return pd.DataFrame(rows, columns=cols)

"""``explain()``: a decided claim (:class:`analysis.claims.decide.ClaimResult`) in words: the verdict (with
its size qualifier), one line of reason, one line of numbers, what it covers, and the numbers machine-readable."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .. import decisions as D
from ..formatting import fmt_num, fmt_signed, p_is
from ..records import setting_label, start_label
from .arrays import Arrays
from .decide import ClaimResult, Decider, mdd

__all__ = ["Explained", "explain", "covers_text", "verdict_text", "TEST_WORDS", "class_counts"]

TEST_WORDS = {"paired-t": "paired t-test", "wilcoxon": "Wilcoxon signed-rank test (exact)",
              "welch": "Welch t-test (unpaired)"}
AGGREGATION_WORDS = {"seed-ranks": "mean over each setting's seeds of the per-seed ranks",
                     "seed-means": "rank of each setting's seed-means"}


@dataclass(frozen=True)
class Explained:
    verdict: str  #: supported | refuted | inconclusive
    verdict_text: str  #: the verdict, with "by less than delta points" where every margin is below delta
    reason: str
    evidence: str
    covers: str  #: the protocols and settings the verdict is about
    n_settings: int
    numbers: dict = field(default_factory=dict)


def verdict_text(code: int, small: bool, delta: float) -> str:
    v = D.VERDICT_NAMES[int(code)]
    return f"{v}, by less than {delta:g} points" if v == "supported" and small else v


def _nn(x):
    x = float(x)
    return None if math.isnan(x) else x


def _pct(x: float) -> str:
    return f"{round(100 * x, 6):g}%"


def covers_text(arrays: Arrays, mask=None) -> str:
    """``protocol cpu: cifar10-jpeg vgg19 at 90/95/98% from dense-start and 50%-sparse-start (6 settings)``:
    per protocol, the settings a verdict covers."""
    keys = [k for k, ok in zip(arrays.settings, np.ones(len(arrays.settings), bool) if mask is None else mask) if ok]
    if not keys:
        return "no settings"
    parts = []
    for proto in sorted({k[4] for k in keys}):
        ks = [k for k in keys if k[4] == proto]
        cells = []
        for ds, arch in sorted({(k[0], k[1]) for k in ks}):
            kk = [k for k in ks if (k[0], k[1]) == (ds, arch)]
            sp = "/".join(f"{round(100 * t, 6):g}" for t in sorted({k[2] for k in kk}))
            starts = " and ".join(start_label(d) for d in sorted({k[3] for k in kk}, reverse=True))
            cells.append(f"{ds} {arch} at {sp}% from {starts}")
        parts.append(f"protocol {proto}: {'; '.join(cells)} ({len(ks)} setting{'s' if len(ks) != 1 else ''})")
    return "; ".join(parts)


def class_counts(codes) -> dict:
    codes = np.asarray(codes)
    return {name: int((codes == i).sum()) for i, name in enumerate(D.CLASS_NAMES)}


def _counts_text(cnt: dict, delta: float) -> str:
    ahead = cnt["ahead"] + cnt["ahead <d"]
    out = f"ahead {ahead}"
    if ahead:
        out += f" ({cnt['ahead <d']} by less than {delta:g})"
    out += f", equivalent {cnt['equivalent']}, behind {cnt['behind']}, unresolved {cnt['unresolved']}"
    if cnt["few seeds"]:
        out += f", too few seeds {cnt['few seeds']}"
    return out


def _mdd_text(values, power: float) -> str:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if not v.size:
        return "minimum detectable difference n/a"
    return (f"minimum detectable difference at {power:.0%} power: median {fmt_num(np.median(v))} pp "
            f"(range {fmt_num(v.min())}-{fmt_num(v.max())})")


def _label(key) -> str:
    return setting_label(*key)


def _collapse_text(dec: Decider, r: ClaimResult) -> tuple[str, dict]:
    """Collapse rates of the claimed method and each compared one (Clopper-Pearson 95 % intervals over their
    completed runs in the covered settings) and the paired McNemar comparisons."""
    coll = r.detail.get("collapses")
    a = dec.a
    m = r.config.method
    methods = [m] + list(coll["others"]) if coll else [m]
    rates = {}
    for x in methods:
        v = a.values(x)
        n = int(np.isfinite(v).sum())
        k = int(a.collapsed(x).sum())
        lo, hi = D.rate_interval(k, n)
        rates[x] = dict(collapsed=k, runs=n, rate=k / n if n else None, ci=[_nn(lo), _nn(hi)])
    text = "runs at chance level (<= 11 %), rate [95% exact interval]: " + ", ".join(
        f"{x} {d['collapsed']}/{d['runs']}" + (f" [{fmt_num(100 * d['ci'][0], 1)}-{fmt_num(100 * d['ci'][1], 1)} %]"
                                              if d["runs"] else "") for x, d in rates.items())
    numbers = dict(rates=rates)
    if coll:
        tests = []
        for i, x in enumerate(coll["others"]):
            tests.append(f"{x} {int(coll['method_only'][i])}:{int(coll['other_only'][i])} "
                         f"(Holm {p_is(coll['p_more_holm'][i])} that {m} collapses more)")
        text += f"; seed-paired runs where only {m} : only the other collapsed (exact McNemar): " + ", ".join(tests)
        numbers["mcnemar"] = {x: dict(method_only=int(coll["method_only"][i]), other_only=int(coll["other_only"][i]),
                                      p_method_more_holm=float(coll["p_more_holm"][i]),
                                      p_other_more_holm=float(coll["p_less_holm"][i]))
                              for i, x in enumerate(coll["others"])}
    aside = sum(int(np.sum(c.set_aside)) for c in r.comparisons.values())
    if r.config.collapsed == "separate":
        text += f"; seed pairs set aside from the accuracy tests because a run is at chance level: {aside}"
    else:
        text += "; runs at chance level kept in the accuracy tests"
    numbers["pairs_set_aside"] = aside
    return text, numbers


def explain(r: ClaimResult, dec: Decider) -> Explained:
    """The words of one decided claim on a single grid (no replicate axes)."""
    fn = {"outperforms_in_most_settings": _outperforms, "surpasses_reference": _surpasses,
          "best_average_rank": _ranking, "pairs_in_most_settings": _pairs}[r.config.rule]
    return fn(r, dec)


def _basic(r: ClaimResult, dec: Decider, reason: str, n: int = 0) -> Explained:
    v = int(r.verdict)
    return Explained(D.VERDICT_NAMES[v], verdict_text(v, False, r.config.delta), reason, "",
                     covers_text(dec.a, r.settings) if dec.a and r.settings is not None else "", n,
                     {"settings": n})


def _outperforms(r: ClaimResult, dec: Decider) -> Explained:
    c, m = r.config, r.config.method
    if r.why == "no-method":
        return _basic(r, dec, f"there are no {m} runs")
    if r.why == "no-alternative":
        return _basic(r, dec, f"no alternative has runs (looked for {', '.join(c.compared)})")
    d = r.detail
    S, alts = d["settings"], d["alternatives"]
    won, lost, large = int(d["won"]), int(d["lost"]), int(d["large"])
    unres = S - won - lost
    per = {a: class_counts(r.comparisons[a].codes) for a in alts}
    mdds = np.concatenate([mdd(r.comparisons[a], c.alpha, c.power) for a in alts]) \
        if c.comparison_test == "paired-t" else np.array([])
    coll_text, coll = _collapse_text(dec, r)
    test = TEST_WORDS[c.comparison_test]
    floor = [a for a in alts if a in c.floor]
    ev = (f"{m} vs {len(alts)} methods over {S} settings ({test}, two-sided, Holm over settings per method, alpha "
          f"{c.alpha}; TOST equivalence within +-{fmt_num(c.delta)} pp): settings won {won} ({large} with every lead "
          f">= {c.delta:g} pp), lost {lost} (some method ahead of {m} or equivalent), unresolved {unres}; "
          + "; ".join(f"{a}{' (floor)' if a in floor else ''}: {_counts_text(per[a], c.delta)}" for a in alts)
          + (f"; {_mdd_text(mdds, c.power)}" if mdds.size else "") + f"; {coll_text}")
    v = int(r.verdict)
    verdict = D.VERDICT_NAMES[v]
    veto = bool(d.get("collapse_veto", False))
    if r.why == "few-settings":
        reason = f"only {S} setting(s) (fewer than {c.min_settings}): not enough settings to speak of 'most'"
    elif veto:
        worse = [x for i, x in enumerate(d["collapses"]["others"]) if d["collapses"]["p_more_holm"][i] < c.alpha]
        reason = (f"{m} is significantly ahead of every method in {won} of {S} settings, but reaches chance level "
                  f"significantly more often than {', '.join(worse)}: no verdict on accuracy alone")
    elif verdict == "supported":
        reason = (f"{m} is significantly ahead of every method ({', '.join(alts)}) in {won} of {S} settings, a "
                  f"majority" + (f"; every lead is smaller than {c.delta:g} pp (estimates)" if r.small else ""))
    elif verdict == "refuted":
        reason = (f"in {lost} of {S} settings some method is significantly ahead of {m} or equivalent to it within "
                  f"+-{fmt_num(c.delta)} pp (no significant difference), so {m} cannot be ahead in most settings")
    else:
        reason = (f"{m} is ahead of every method in {won} and behind or equivalent to some in {lost} of {S} "
                  f"settings; {unres} unresolved leave both outcomes possible: not enough evidence either way")
    numbers = dict(settings=S, alternatives=alts, won=won, won_by_delta=large, lost=lost, unresolved=unres,
                   per_method=per, delta=c.delta, alpha=c.alpha, test=c.comparison_test, small=bool(r.small),
                   mdd_median=_nn(np.nanmedian(mdds)) if np.isfinite(mdds).any() else None,
                   collapses=coll, collapse_veto=veto)
    return Explained(verdict, verdict_text(v, bool(r.small), c.delta), reason, ev,
                     covers_text(dec.a, r.settings), S, numbers)


def _surpasses(r: ClaimResult, dec: Decider) -> Explained:
    c, m, ref = r.config, r.config.method, r.config.reference
    if r.why == "no-method":
        return _basic(r, dec, f"there are no {m} runs")
    if r.why == "no-reference":
        return _basic(r, dec, f"there are no {ref} reference runs for the architectures {m} ran on")
    comp = r.comparisons[ref]
    idx = np.flatnonzero(r.settings)
    S = len(idx)
    codes = comp.codes[idx]
    cnt = class_counts(codes)
    mean = comp.stats.mean[idx]
    ahead, against, large = int(r.detail["ahead"]), int(r.detail["against"]), int(r.detail["large"])
    test = TEST_WORDS[c.comparison_test]
    ev = (f"{m} - {ref} over {S} settings ({test}, one-sided {m} > {ref} and {m} < {ref}, Holm over settings each, "
          f"alpha {c.alpha}; TOST equivalence within +-{fmt_num(c.delta)} pp): {_counts_text(cnt, c.delta)}; "
          f"estimate above {ref} in {int(np.nansum(mean > 0))}")
    best = None
    if np.isfinite(mean).any():
        b = int(np.nanargmax(mean))
        best = idx[b]
        ev += (f"; largest difference {fmt_signed(mean[b])} pp at {_label(dec.a.settings[best])} "
               f"(n = {int(comp.stats.n[best])}, one-sided Holm {p_is(comp.p_test_holm[best])})")
    if c.comparison_test == "paired-t":
        ev += f"; {_mdd_text(mdd(comp, c.alpha, c.power)[idx], c.power)}"
    no_ref = len(dec.a.settings) - S
    if no_ref:
        ev += f"; {no_ref} {m} settings without {ref} runs"
    aside = int(np.sum(comp.set_aside))
    ev += (f"; seed pairs set aside because a run is at chance level: {aside}" if c.collapsed == "separate"
           else "; runs at chance level kept")
    v = int(r.verdict)
    verdict = D.VERDICT_NAMES[v]
    if verdict == "supported":
        reason = (f"{m} is significantly above {ref} in {ahead} of {S} setting(s)"
                  + (f", each time by less than {c.delta:g} pp (estimates)" if r.small else
                     f" ({large} by {c.delta:g} pp or more, estimates)"))
    elif verdict == "refuted":
        reason = (f"in every one of {S} settings {m} is significantly below {ref} or equivalent to it within "
                  f"+-{fmt_num(c.delta)} pp (no significant difference): no surplus of {c.delta:g} pp anywhere")
    elif S < c.min_settings:
        reason = f"no significant surplus in {S} setting(s), too few settings (< {c.min_settings}) to rule one out"
    else:
        reason = (f"no setting shows {m} significantly above {ref}, and {S - against} of {S} settings cannot rule a "
                  f"surplus out: not enough evidence either way")
    numbers = dict(settings=S, ahead=ahead, ahead_by_delta=large, below_or_equivalent=against, classes=cnt,
                   delta=c.delta, alpha=c.alpha, test=c.comparison_test, small=bool(r.small),
                   largest_difference=_nn(mean[int(np.nanargmax(mean))]) if best is not None else None,
                   largest_at=_label(dec.a.settings[best]) if best is not None else None, pairs_set_aside=aside)
    return Explained(verdict, verdict_text(v, bool(r.small), c.delta), reason, ev, covers_text(dec.a, r.settings), S,
                     numbers)


def ranking_text(rk, conf: float) -> str:
    """``fggp 2.33 [1.67, 3.33], ...``: each method's average rank with its percentile interval, best first."""
    lo, hi = rk.interval(conf)
    order = sorted(range(len(rk.methods)), key=lambda i: (rk.observed[i], rk.methods[i]))
    return ", ".join(f"{rk.methods[i]} {rk.observed[i]:.2f} [{lo[i]:.2f}, {hi[i]:.2f}]" for i in order)


def _ranking(r: ClaimResult, dec: Decider) -> Explained:
    from ..ranking import friedman_of_scores

    c, m = r.config, r.config.method
    if r.why == "no-method":
        return _basic(r, dec, f"there are no {m} runs")
    methods = r.detail["methods"]
    k = len(methods)
    if r.why == "few-methods":
        out = _basic(r, dec, f"only {k} methods ({', '.join(methods)}); ranking needs at least 3")
        return Explained(out.verdict, out.verdict_text, out.reason, "", out.covers, 0, {"methods": methods})
    rk = r.ranking
    if rk is None or r.why == "few-methods":
        out = _basic(r, dec, r.why)
        return Explained(out.verdict, out.verdict_text, out.reason, "", out.covers, 0, {"methods": methods})
    N = len(rk.settings)
    sup, alpha = c.supported_at, c.alpha
    refute_at = 1.0 - alpha / (k - 1)
    ib = 1 + int(np.argmax(rk.p_beaten[1:]))
    chi2, p, _, p_id = friedman_of_scores(rk.ranks)
    fr = f"Friedman over the {N} settings' ranks: chi2 {fmt_num(chi2, 3)}, {p_is(p)} (Iman-Davenport {p_is(p_id)})"
    seeds = "/".join(str(int(x)) for x in sorted(set(rk.seeds.tolist()), reverse=True))
    ev = (f"P({m} has the best average rank) = {rk.p_best[0]:.3f} over {rk.distribution.shape[0]} resamples of seeds "
          f"({AGGREGATION_WORDS[rk.aggregation]}; {N} settings with {seeds} seeds, resampled within {rk.groups} "
          f"group(s) of settings sharing their seeds; {k} methods; supported at >= {sup}); most often ahead of {m}: "
          f"{methods[ib]}, in {rk.p_beaten[ib]:.3f} of resamples widened by t/z = {rk.refutation_spread:.3f} "
          f"(refuted at >= {refute_at:.3f} = 1 - alpha/{k - 1}); average rank "
          f"[{int(round(c.rank_confidence * 100))}% interval]: {ranking_text(rk, c.rank_confidence)}; {fr}; settings "
          f"left out (fewer than {c.min_seeds} seeds complete across the methods): {rk.dropped_settings}; completed "
          f"runs outside the complete seeds: {rk.dropped_runs}")
    lo, hi = rk.interval(c.rank_confidence)
    numbers = dict(settings=N, methods=methods, aggregation=rk.aggregation, p_best=float(rk.p_best[0]),
                   p_beaten={methods[i]: float(rk.p_beaten[i]) for i in range(1, k)},
                   average_ranks={methods[i]: float(rk.observed[i]) for i in range(k)},
                   rank_ci={methods[i]: [float(lo[i]), float(hi[i])] for i in range(k)},
                   supported_at=sup, refuted_at=refute_at, refutation_spread=rk.refutation_spread,
                   friedman_p=_nn(p), n_resamples=int(rk.distribution.shape[0]))
    v = int(r.verdict)
    verdict = D.VERDICT_NAMES[v]
    if N < c.min_settings:
        reason = f"only {N} usable setting(s) (fewer than {c.min_settings})"
    elif verdict == "supported":
        reason = f"{m} has the best average rank in {rk.p_best[0]:.1%} of the resamples (>= {sup:.0%})"
    elif verdict == "refuted":
        reason = (f"{methods[ib]} ranks ahead of {m} in {rk.p_beaten[ib]:.1%} of the widened resamples "
                  f"(>= {refute_at:.1%}): {m} does not have the highest ranking")
    else:
        reason = (f"{m} has the best average rank in {rk.p_best[0]:.1%} of the resamples (< {sup:.0%}), and no method "
                  f"ranks ahead of it in {refute_at:.1%} or more of the widened resamples: the ranking is too "
                  f"uncertain")
    return Explained(verdict, verdict_text(v, False, c.delta), reason, ev, covers_text(dec.a, r.settings), N, numbers)


def _pairs(r: ClaimResult, dec: Decider) -> Explained:
    c = r.config
    if r.why == "no-method":
        return _basic(r, dec, f"there are no {c.method} runs")
    if r.why == "no-pair":
        return _basic(r, dec, "no comparison has runs of both its methods (looked for "
                              + ", ".join(f"{a} vs {b}" for a, b in c.pairs) + ")")
    d = r.detail
    S = d["settings"]
    test = TEST_WORDS[c.comparison_test]
    parts, numbers_pairs, lines = [], {}, []
    for name, p in d["per_pair"].items():
        comp = r.comparisons[name]
        cnt = class_counts(comp.codes)
        mean = comp.stats.mean
        rng_txt = (f"estimates {fmt_signed(np.nanmin(mean))} to {fmt_signed(np.nanmax(mean))} pp"
                   if np.isfinite(mean).any() else "no estimates")
        pv = D.VERDICT_NAMES[int(p["verdict"])]
        parts.append(f"{comp.a} - {comp.b}: {_counts_text(cnt, c.delta)}; {rng_txt}; {pv}")
        lines.append((name, pv, int(p["won"]), int(p["lost"]), comp.a, comp.b))
        numbers_pairs[name] = dict(verdict=pv, ahead=int(p["won"]), ahead_by_delta=int(p["large"]),
                                   behind_or_equivalent=int(p["lost"]), classes=cnt,
                                   estimates=[_nn(x) for x in mean])
    inter_txt, inter_num = [], {}
    for q, it in d["interactions"].items():
        mean = it.stats.mean
        sig = int(np.sum(np.nan_to_num(it.p_holm, nan=1.0) < c.alpha))
        name = f"({q[0]} - {q[1]}) - ({q[2]} - {q[3]})"
        if np.isfinite(mean).any():
            inter_txt.append(f"{name}: mean over settings {fmt_signed(np.nanmean(mean))} pp (settings "
                             f"{fmt_signed(np.nanmin(mean))} to {fmt_signed(np.nanmax(mean))}), significant "
                             f"(two-sided, Holm) in {sig} of {S}")
        inter_num[name] = dict(estimates=[_nn(x) for x in mean], significant=sig,
                               p_holm=[_nn(x) for x in it.p_holm])
    ev = (f"{len(lines)} comparison(s) over {S} settings ({test}, two-sided, Holm over settings per comparison, alpha "
          f"{c.alpha}; TOST equivalence within +-{fmt_num(c.delta)} pp; each must be ahead in most settings): "
          + "; ".join(parts)
          + (f"; interaction, reported: {'; '.join(inter_txt)}" if inter_txt else "; interaction: not estimable "
             "(a cell of the 2 x 2 has no runs)"))
    absent = [f"{a} vs {b}" for a, b in c.pairs if (a, b) not in d["pairs"]]
    if absent:
        ev += f"; without runs here: {', '.join(absent)}"
    aside = sum(int(np.sum(x.set_aside)) for x in r.comparisons.values())
    ev += (f"; seed pairs set aside because a run is at chance level: {aside}" if c.collapsed == "separate"
           else "; runs at chance level kept")
    v = int(r.verdict)
    verdict = D.VERDICT_NAMES[v]
    if r.why == "few-settings":
        reason = f"only {S} setting(s) (fewer than {c.min_settings}): not enough settings to speak of 'most'"
    elif verdict == "supported":
        reason = ("the first method is significantly ahead in most settings in every comparison: "
                  + ", ".join(f"{n} {w} of {S}" for n, _, w, _, _, _ in lines)
                  + (f"; every lead smaller than {c.delta:g} pp (estimates)" if r.small else ""))
    elif verdict == "refuted":
        reason = "; ".join(f"{b} is significantly ahead of {a} or equivalent to it within +-{fmt_num(c.delta)} pp in "
                           f"{lo} of {S} settings (at least half)" for _, pv, _, lo, a, b in lines if pv == "refuted")
    else:
        reason = ("not every comparison is ahead in most settings, none is behind or equivalent in half: "
                  + ", ".join(f"{n} ahead {w}, behind or equivalent {lo} of {S}" for n, _, w, lo, _, _ in lines))
    numbers = dict(settings=S, comparisons=numbers_pairs, interactions=inter_num, delta=c.delta, alpha=c.alpha,
                   test=c.comparison_test, small=bool(r.small), pairs_set_aside=aside)
    return Explained(verdict, verdict_text(v, bool(r.small), c.delta), reason, ev, covers_text(dec.a, r.settings), S,
                     numbers)


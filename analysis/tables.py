"""Tables (Markdown, LaTeX and CSV, byte-stable): main results, optimistic results and the reporting
bias of choosing the best epoch, ranks, paired comparisons, effects pooled over settings, the claims
audit and its sensitivity to the analysis choices. Each is one registry entry."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import decisions as D
from .bootstrap import aggregate_scores, pooled_effects, probability_of_improvement
from .formatting import fmt_num, fmt_p, fmt_signed, markdown_table, p_is, write_table
from .ranks import nemenyi_cd
from .records import (
    COLLAPSED_AT,
    DENSE,
    REFERENCE_KEYS,
    SETTING_KEYS,
    diverged_runs,
    method_order,
    setting_label,
    start_label,
)
from .registry import Context, SkipOutput, register


def _pct(x: float) -> str:
    return f"{round(100 * x, 6):g}%"


def diverged_note(runs: pd.DataFrame) -> str:
    """One line: how many runs diverged, by method (they never enter a statistic)."""
    div = diverged_runs(runs)
    if div.empty:
        return "Diverged runs: none."
    by = div.groupby("method").size()
    parts = ", ".join(f"{m} {int(by[m])}" for m in method_order(by.index))
    return f"Diverged runs (excluded from every statistic, counted here): {len(div)} — {parts}."


def collapsed_note(runs: pd.DataFrame) -> str:
    """One line: how many completed runs ended at chance level, by method, and where they enter."""
    c = runs[runs["collapsed"]] if "collapsed" in runs.columns else runs.iloc[:0]
    if c.empty:
        return f"Collapsed runs (final accuracy ≤ {COLLAPSED_AT:g} %, chance level): none."
    by = c.groupby("method").size()
    parts = ", ".join(f"{m} {int(by[m])}" for m in method_order(by.index))
    line = (f"Collapsed runs (final accuracy ≤ {COLLAPSED_AT:g} %, chance level; marked †, in the means of the results "
            f"tables and last at their seed in the ranks, set aside from the paired accuracy tests and compared on "
            f"their own in the collapses table): {len(c)} — {parts}.")
    if "bn_recal_test_acc" in c.columns:
        diag = c[c["bn_recal_test_acc"].notna()]
        if not diag.empty:
            each = "; ".join(
                f"{r.method}, {setting_label(r.dataset, r.arch, r.target_sparsity, r.initial_density)}, seed {r.seed}: "
                f"{fmt_num(r.bn_recal_test_acc)} %" for r in diag.itertuples(index=False))
            line += (f" Their test accuracy after BatchNorm recalibration (the record's diagnostics, never the metric;"
                     f" {len(c) - len(diag)} without): {each}.")
    return line


def _cell(r, collapsed: int = 0) -> str:
    n, div = int(r["n"]), int(r["diverged"])
    tail = f"n={n}" + (f", {div} div." if div else "") + (f", {collapsed} collapsed†" if collapsed else "")
    if n == 0:
        return f"— ({tail})"
    if n == 1:
        return f"{fmt_num(r['mean'])} ({tail})"
    return f"{fmt_num(r['mean'])} ± {fmt_num(r['ci_high'] - r['mean'])} ({tail})"


@dataclass(frozen=True)
class TableParts:
    """What a table shows: the formatted cells, the numbers behind them, its notes and the cells in bold; written by
    :func:`analysis.formatting.write_table`, and embedded in each protocol's report as the same Markdown."""

    display: pd.DataFrame
    data: pd.DataFrame
    notes: tuple = ()
    bold: pd.DataFrame | None = None

    def write(self, out_dir: Path, name: str) -> list[Path]:
        return write_table(out_dir, name, display=self.display, data=self.data, notes=self.notes, bold=self.bold)

    def markdown(self) -> str:
        return markdown_table(self.display, self.notes, self.bold)


def _results_table(ctx: Context, out_dir: Path, name: str, metric: str, what: str, extra_notes=()) -> list[Path]:
    return results_parts(ctx, metric, what, extra_notes).write(out_dir, name)


MAIN_RESULTS_WHAT = "Final-epoch test accuracy (%)"


def results_parts(ctx: Context, metric: str = "test_acc", what: str = MAIN_RESULTS_WHAT, extra_notes=()) -> TableParts:
    """The results table of ``metric``: mean ± t-interval per setting and method, the best marked (or SkipOutput)."""
    s = ctx.summary(metric)
    methods = ctx.methods
    if not methods:
        raise SkipOutput("no sparse-method runs")
    sparse = s[s["method"] != DENSE]
    if sparse.empty:
        raise SkipOutput("no sparse-method runs")
    dense = s[s["method"] == DENSE]
    settings = sparse[list(SETTING_KEYS)].drop_duplicates()
    by_key = {tuple(r[k] for k in SETTING_KEYS + ("method",)): r for r in s.to_dict("records")}
    dense_by = {tuple(r[k] for k in REFERENCE_KEYS): r for r in dense.to_dict("records")}
    coll = ctx.runs[ctx.runs["collapsed"]] if metric == "test_acc" else ctx.runs.iloc[:0]
    coll_by = coll.groupby(list(SETTING_KEYS) + ["method"]).size().to_dict()
    coll_dense = coll[coll["method"] == DENSE].groupby(list(REFERENCE_KEYS)).size().to_dict()

    disp_rows, bold_rows, best_keys = [], [], set()
    for key in settings.itertuples(index=False, name=None):
        ds, arch, tgt, dens, proto = key
        cells = [r for m in methods if (r := by_key.get(key + (m,))) is not None]
        means = [r["mean"] for r in cells if r["n"] > 0]
        best = max(means) if means else math.nan
        row = {"dataset": ds, "arch": arch, "start": start_label(dens), "target sparsity": _pct(tgt)}
        brow = [False] * 4
        for m in methods:
            r = by_key.get(key + (m,))
            is_best = r is not None and r["n"] > 0 and r["mean"] == best
            row[m] = _cell(r, int(coll_by.get(key + (m,), 0))) if r is not None else "—"
            brow.append(is_best)
            if is_best:
                best_keys.add(key + (m,))
        d = dense_by.get((ds, arch, proto))
        if d is not None:
            row["dense (reference)"] = _cell(d, int(coll_dense.get((ds, arch, proto), 0)))
            brow.append(False)
        disp_rows.append(row)
        bold_rows.append(brow)
    display = pd.DataFrame(disp_rows).fillna("—")
    width = display.shape[1]
    bold = pd.DataFrame([b + [False] * (width - len(b)) for b in bold_rows], columns=display.columns)

    data = s.copy()
    data["best"] = [tuple(r[k] for k in SETTING_KEYS + ("method",)) in best_keys for r in data.to_dict("records")]
    if metric == "test_acc":
        data["collapsed"] = [int(coll_by.get(tuple(r[k] for k in SETTING_KEYS + ("method",)), 0))
                             if r["method"] != DENSE else int(coll_dense.get(tuple(r[k] for k in REFERENCE_KEYS), 0))
                             for r in data.to_dict("records")]
    conf = int(round(ctx.confidence * 100))
    notes = [
        f"{what}. Cells: mean ± half-width of the {conf}% Student-t interval over seeds "
        f"(n = completed seeds; div. = diverged runs, excluded). Bold: best mean per setting among sparse "
        f"methods; dense is the per-architecture reference, not a competitor. {ctx.scale()}.",
        *extra_notes,
        diverged_note(ctx.runs),
    ]
    if metric == "test_acc":
        notes.append(collapsed_note(ctx.runs))
    return TableParts(display, data, tuple(notes), bold)


@register("main_results", "table", "mean ± t-CI of final test accuracy per setting and method, best marked")
def main_results(ctx: Context, out_dir: Path) -> list[Path]:
    return _results_table(ctx, out_dir, "main_results", "test_acc", MAIN_RESULTS_WHAT)


@register("optimistic_results", "table",
          "best test accuracy after pruning ended, the same epoch window for every method: OPTIMISTIC")
def optimistic_results(ctx: Context, out_dir: Path) -> list[Path]:
    if ctx.completed["best_test_acc_window"].notna().sum() == 0:
        raise SkipOutput("no record carries a history with iterations (or best_test_acc_after_pruning)")
    return _results_table(
        ctx, out_dir, "optimistic_results", "best_test_acc_window",
        "OPTIMISTIC: best test accuracy (%) over the epochs that end at or after T_end = ⌊end_fraction · total "
        "iterations⌋, selected on the test set (GraNet's reporting); the final-epoch accuracy of main_results is "
        "the primary number",
        extra_notes=["The window is the same for every method, dense included (the dense records' own "
                     "best_test_acc_after_pruning covers every epoch, since dense runs never prune); "
                     "reporting_bias shows what this choice changes."])


@register("reporting_bias", "table",
          "how much picking the best epoch on the test set changes each method's mean and the average ranks")
def reporting_bias(ctx: Context, out_dir: Path) -> list[Path]:
    runs = ctx.completed
    runs = runs[np.isfinite(runs["test_acc"]) & np.isfinite(runs["best_test_acc_window"])]
    if runs.empty or runs[runs["method"] != DENSE].empty:
        raise SkipOutput("no completed sparse run with both metrics")
    gain = (runs.assign(gain=runs["best_test_acc_window"] - runs["test_acc"])
            .groupby("method")[["gain", "test_acc", "best_test_acc_window"]].mean())
    methods = [m for m in method_order(gain.index)]
    rank_final = rank_best = None
    try:
        rk = ctx.ranking()
        rank_final, rank_best = (dict(zip(r.methods, r.observed)) if not isinstance(r, str) else None
                                 for r in (ctx.ranking_of("test_acc"), ctx.ranking_of("best_test_acc_window")))
        n_set = len(rk.settings)
    except SkipOutput:
        n_set = 0
    rows, disp = [], []
    for m in methods:
        g = gain.loc[m]
        n = int((runs["method"] == m).sum())
        rf = float(rank_final.get(m, math.nan)) if rank_final is not None else math.nan
        rb = float(rank_best.get(m, math.nan)) if rank_best is not None else math.nan
        rows.append(dict(method=m, runs=n, mean_final=g["test_acc"], mean_best=g["best_test_acc_window"],
                         inflation=g["gain"], rank_final=rf, rank_best=rb, rank_change=rb - rf))
        disp.append({"method": m, "runs": str(n), "mean final (%)": fmt_num(g["test_acc"]),
                     "mean best epoch (%)": fmt_num(g["best_test_acc_window"]),
                     "inflation (pp)": fmt_signed(g["gain"]),
                     "average rank final → best epoch": ("—" if math.isnan(rf) else
                                                         f"{fmt_num(rf, 2)} → {fmt_num(rb, 2)}")})
    notes = [f"Reporting bias of choosing the checkpoint on the test set: mean over completed runs of the best "
             f"test accuracy in the window after pruning ends (the same epochs for dense) minus the final-epoch "
             f"accuracy, per method; average ranks (the ranks table's methods, seeds and aggregation) over {n_set} "
             f"settings by final and by best-epoch accuracy (1 = best). Only the final-epoch numbers are unbiased. "
             f"{ctx.scale()}."]
    return write_table(out_dir, "reporting_bias", display=pd.DataFrame(disp), data=pd.DataFrame(rows), notes=notes)


def rank_note(ctx: Context, rk) -> str:
    """What the one ranking is, in words (the ranks table, the CD diagram and the rank chart all say it)."""
    from .claims.explain import AGGREGATION_WORDS

    c = ctx.claim("best_average_rank")
    seeds = "/".join(str(int(x)) for x in sorted(set(rk.seeds.tolist()), reverse=True))
    left = (f"; {rk.dropped_settings} setting(s) with fewer than {c.min_seeds} complete seeds left out"
            if rk.dropped_settings else "")
    return (f"The audit's ranking (claim 3) of {', '.join(rk.methods)} (not in rank order): "
            f"{AGGREGATION_WORDS[rk.aggregation]} "
            f"(1 = best, ties share the average rank), averaged over {len(rk.settings)} settings, each on all its "
            f"complete seeds ({seeds}){left}. Intervals and P(best): {rk.distribution.shape[0]} resamples of seeds "
            f"within each of {rk.groups} group(s) of settings sharing their seeds, spread by sqrt(K/(K−1)) and "
            f"t/z = {rk.support_spread:.3f} (generator seed {c.seed}).")


@register("ranks", "table",
          "the audit's ranking: average ranks with resampling intervals, P(best), mean over settings, "
          "P(fggp > method), Friedman")
def ranks(ctx: Context, out_dir: Path) -> list[Path]:
    from .ranking import friedman_of_scores

    rk = ctx.ranking()
    methods = list(rk.methods)
    conf = ctx.claim("best_average_rank").rank_confidence
    lo, hi = rk.interval(conf)
    agg = aggregate_scores(ctx.runs, "test_acc", methods, n_resamples=ctx.n_resamples,
                           confidence=ctx.confidence, seed=ctx.seed).set_index("method")
    k, n = len(methods), len(rk.settings)
    rows, disp = [], []
    for i in sorted(range(k), key=lambda i: (rk.observed[i], methods[i])):
        m = methods[i]
        poi = None
        if m != ctx.method:
            poi = probability_of_improvement(ctx.runs, ctx.method, m, n_resamples=ctx.n_resamples,
                                             confidence=ctx.confidence, seed=ctx.seed)
        a = agg.loc[m]
        rows.append(dict(method=m, average_rank=rk.observed[i], n_settings=n, aggregation=rk.aggregation,
                         rank_ci_low=lo[i], rank_ci_high=hi[i], p_best=rk.p_best[i],
                         aggregate_mean=a["estimate"], aggregate_ci_low=a["ci_low"], aggregate_ci_high=a["ci_high"],
                         p_improvement=poi.estimate if poi else math.nan,
                         p_improvement_ci_low=poi.ci_low if poi else math.nan,
                         p_improvement_ci_high=poi.ci_high if poi else math.nan))
        disp.append({
            "method": m, "average rank": fmt_num(rk.observed[i], 3),
            "rank interval": f"[{fmt_num(lo[i])}, {fmt_num(hi[i])}]", "P(best rank)": fmt_num(rk.p_best[i], 3),
            "mean over settings (%)": f"{fmt_num(a['estimate'])} [{fmt_num(a['ci_low'])}, {fmt_num(a['ci_high'])}]",
            f"P({ctx.method} > method)": (f"{fmt_num(poi.estimate, 3)} [{fmt_num(poi.ci_low, 3)}, "
                                          f"{fmt_num(poi.ci_high, 3)}]" if poi else "—"),
        })
    pct = int(round(ctx.confidence * 100))
    notes = [rank_note(ctx, rk) + f" Brackets of the rank: {int(round(conf * 100))}% percentile intervals. Mean over "
             f"settings: each method's seed-mean final accuracy averaged over the settings where every method has "
             f"runs, {pct}% interval over {ctx.n_resamples} resamples of whole seeds; P({ctx.method} > method): "
             f"probability of improvement, likewise. {ctx.scale()}."]
    if k >= 3 and n >= 2:
        chi2, p, f_id, p_id = friedman_of_scores(rk.ranks)
        cd = nemenyi_cd(k, n, ctx.alpha)
        notes.append(f"Friedman χ² of the {n} settings' ranks = {fmt_num(chi2, 3)} (df {k - 1}), {p_is(p)}; "
                     f"Iman–Davenport F = {fmt_num(f_id, 3)} (df {k - 1}, {(k - 1) * (n - 1)}), {p_is(p_id)}; Nemenyi "
                     f"CD (α = {ctx.alpha}) = {fmt_num(cd, 3)} (conservative when each setting's ranks are means "
                     f"over its seeds).")
    else:
        notes.append("Friedman test not computed (needs at least 3 methods and 2 settings).")
    notes.append(diverged_note(ctx.runs))
    notes.append(collapsed_note(ctx.runs))
    return write_table(out_dir, "ranks", display=pd.DataFrame(disp), data=pd.DataFrame(rows), notes=notes)


#: the decision columns of the comparisons table, after the descriptive ones of analysis.stats.compare
DECISION_COLUMNS = ["test", "p_test", "p_test_holm", "p_reverse", "p_reverse_holm", "p_tost", "p_tost_holm",
                    "holm_level_low", "holm_level_high", "ci_holm_low", "ci_holm_high", "class", "set_aside", "mdd"]


def _decided_comparisons(ctx: Context) -> pd.DataFrame:
    """The comparisons of ``method`` with every other method (analysis.stats.compare, on the pairs the decisions
    use) joined with the audit's per-setting decisions: the test and its p, Holm-adjusted p, the interval at the
    Holm levels, TOST, class, pairs set aside and minimum detectable difference."""
    from .claims import mdd

    c = ctx.comparisons()
    j = ctx.judged()
    if c.empty or j.arrays is None:
        return c
    cfg = ctx.claim("outperforms_in_most_settings")
    rows = []
    for b in c["baseline"].unique():
        if not j.arrays.has(b):
            continue
        comp = ctx.comparison(b)
        md = (mdd(comp, cfg.alpha, cfg.power) if cfg.comparison_test == "paired-t"
              else np.full(len(j.arrays.settings), np.nan))
        for i, key in enumerate(j.arrays.settings):
            if b == DENSE and not j.arrays.has_dense[i]:
                continue
            rows.append(dict(zip(SETTING_KEYS, key), baseline=b, test=comp.alternative,
                             p_test=comp.p_test[i], p_test_holm=comp.p_test_holm[i], p_reverse=comp.p_reverse[i],
                             p_reverse_holm=comp.p_reverse_holm[i], p_tost=comp.stats.p_tost[i],
                             p_tost_holm=comp.p_tost_holm[i], holm_level_low=comp.level_low[i],
                             holm_level_high=comp.level_high[i], ci_holm_low=comp.ci_low[i],
                             ci_holm_high=comp.ci_high[i], **{"class": D.CLASS_NAMES[int(comp.codes[i])]},
                             set_aside=int(comp.set_aside[i]), mdd=md[i]))
    dec = pd.DataFrame(rows, columns=list(SETTING_KEYS) + ["baseline"] + DECISION_COLUMNS)
    keys = list(SETTING_KEYS) + ["baseline"]
    out = c.drop(columns=["p_holm"]).merge(dec, on=keys, how="left")
    order = {m: i for i, m in enumerate(method_order(out["baseline"].unique()))}
    out = out.assign(_o=out["baseline"].map(order)).sort_values(["_o"], kind="mergesort").drop(columns="_o")
    return out.reset_index(drop=True)


@register("comparisons", "table",
          "fggp against every other method per setting: paired tests, Holm, Holm-level intervals, TOST, class, power")
def comparisons(ctx: Context, out_dir: Path) -> list[Path]:
    c = _decided_comparisons(ctx)
    if c.empty:
        raise SkipOutput(f"no {ctx.method} runs, or no other method to compare with")
    cfg = ctx.claim("outperforms_in_most_settings")
    delta, power = cfg.delta, cfg.power

    def adj(r):
        if not (np.isfinite(r["ci_holm_low"]) and np.isfinite(r["ci_holm_high"])):
            return "—"
        return f"[{fmt_signed(r['ci_holm_low'])}, {fmt_signed(r['ci_holm_high'])}]"

    one = (c["test"] == "greater").to_numpy()
    disp = pd.DataFrame({
        "baseline": c["baseline"],
        "setting": [setting_label(*k) for k in c[list(SETTING_KEYS[:4])].itertuples(index=False, name=None)],
        "pairs": c["n_pairs"].astype(int).astype(str),
        "set aside": c["set_aside"].fillna(0).astype(int).astype(str),
        "diff (pp)": [f"{fmt_signed(d)} [{fmt_signed(lo)}, {fmt_signed(hi)}]"
                      for d, lo, hi in zip(c["mean_diff"], c["ci_low"], c["ci_high"])],
        "Holm interval": [adj(r) for r in c.to_dict("records")],
        "d_z": [fmt_num(x) for x in c["effect_size"]],
        "p (t, two-sided)": [fmt_p(p) for p in c["p_ttest"]],
        "p (Wilcoxon, two-sided)": [fmt_p(p) for p in c["p_wilcoxon"]],
        "p (Welch, two-sided)": [fmt_p(p) for p in c["p_welch"]],
        "test": np.where(one, f"one-sided, {ctx.method} > baseline", "two-sided"),
        "p (test, Holm)": [fmt_p(p) for p in c["p_test_holm"]],
        f"p ({ctx.method} < baseline, Holm)": [fmt_p(p) if o else "—" for p, o in zip(c["p_reverse_holm"], one)],
        "p (TOST, Holm)": [fmt_p(p) for p in c["p_tost_holm"]],
        "class": [D.class_words(D.CLASS_NAMES.index(x), delta) if isinstance(x, str) else "—" for x in c["class"]],
        f"MDD{int(round(power * 100))} (pp)": [fmt_num(x) for x in c["mdd"]],
    })
    conf = int(round(ctx.confidence * 100))
    aside = ("pairs: seeds both have a completed run not at chance level; set aside: seed pairs in which a run is at "
             "chance level (≤ 11 %), left out of every accuracy statistic here (collapses are compared in the "
             "collapses table)" if cfg.collapsed == "separate" else
             "pairs: seeds both have a completed run (runs at chance level included)")
    notes = [
        f"{ctx.method} minus baseline, final test accuracy in percentage points, paired on seed ({aside}); "
        f"brackets: {conf}% Student-t interval of the mean paired difference. d_z: Cohen's d of the paired "
        f"differences (mean / sd). p (t, two-sided): paired t-test; p (Wilcoxon, two-sided): signed-rank, exact (or "
        f"exhaustive permutation with ties) where possible, n/a when undefined; p (Welch, two-sided): unpaired. "
        f"Dense: the same architecture's dense runs serve every setting.",
        f"Decisions (analysis/claims.toml), Holm across the settings per baseline. test: the decision test, "
        f"two-sided against sparse methods (claim 1), one-sided {ctx.method} > dense against dense (claim 2). "
        f"p (test, Holm): the Holm-adjusted p of that test. p ({ctx.method} < baseline, Holm): for one-sided rows, the "
        f"Holm-adjusted p of the reverse one-sided test, which decides 'behind'. Holm interval: the lower end at the "
        f"level Holm tested the lead at, the upper end at the level of the deficit (two-sided rows: both halves of "
        f"the two-sided level): it lies above 0 exactly when a lead is significant and below 0 exactly when a deficit "
        f"is. p (TOST, Holm): the two one-sided tests of equivalence within ±{fmt_num(delta)} pp. class: ahead "
        f"(significant; by ≥ {delta:g} or by less, from the estimate), behind (significant), equivalent (no "
        f"significant difference, TOST), unresolved, or few seeds (fewer than {cfg.min_seeds} pairs). "
        f"MDD{int(round(power * 100))}: the smallest true difference the paired t-test detects with "
        f"{int(round(power * 100))}% power at the Bonferroni level α/m of the setting's family.",
        f"{ctx.scale()}.",
        diverged_note(ctx.runs),
        collapsed_note(ctx.runs),
    ]
    return write_table(out_dir, "comparisons", display=disp, data=c, notes=notes)


@register("pooled_effects", "table",
          "fggp minus each method pooled over settings with the seed as the unit: t and whole-seed bootstrap CIs")
def pooled(ctx: Context, out_dir: Path) -> list[Path]:
    if ctx.method not in set(ctx.runs["method"]):
        raise SkipOutput(f"no {ctx.method} runs")
    others = [m for m in method_order(ctx.runs["method"].unique()) if m != ctx.method]
    if not others:
        raise SkipOutput("no other method to compare with")
    cfg = ctx.claim("outperforms_in_most_settings")
    runs = ctx.accuracy_runs
    others = [m for m in others if m in set(runs["method"])]
    p = pooled_effects(runs, ctx.method, others, confidence=ctx.confidence, alpha=ctx.alpha,
                       power=cfg.power, n_resamples=ctx.n_resamples, seed=ctx.seed)
    conf = int(round(ctx.confidence * 100))
    disp = pd.DataFrame({
        "baseline": p["baseline"], "settings": p["n_settings"].astype(str), "seeds": p["n_seeds"].astype(str),
        "mean diff (pp)": [fmt_signed(x) for x in p["mean_diff"]],
        f"{conf}% t-interval": [f"[{fmt_signed(a)}, {fmt_signed(b)}]" for a, b in zip(p["ci_low"], p["ci_high"])],
        f"{conf}% seed bootstrap": [f"[{fmt_signed(a)}, {fmt_signed(b)}]"
                                    for a, b in zip(p["boot_low"], p["boot_high"])],
        "p (t)": [fmt_p(x) for x in p["p_ttest"]], "p (Holm)": [fmt_p(x) for x in p["p_holm"]],
        f"MDD{int(round(cfg.power * 100))} (pp)": [fmt_num(x) for x in p["mdd"]],
    })
    notes = [f"{ctx.method} minus baseline over all settings both have, with the seed as the unit: for each seed, the "
             f"mean over settings of the seed-paired difference; then the mean over seeds, its Student-t interval, a "
             f"percentile interval over {ctx.n_resamples} resamples of whole seeds, the t-test of mean 0 (two-sided; "
             f"Holm across the baselines) and the minimum detectable difference at {int(round(cfg.power * 100))}% "
             f"power (α = {ctx.alpha}). Seeds missing a run in some setting are dropped so that every seed averages "
             f"the same settings"
             + (", and so are the seeds of a run at chance level (collapses: the collapses table)"
                if cfg.collapsed == "separate" else "")
             + f". With few seeds the percentile interval is narrower than it should be; the t-interval is the one to "
               f"read. {ctx.scale()}.",
             diverged_note(ctx.runs)]
    return write_table(out_dir, "pooled_effects", display=disp, data=p, notes=notes)


@register("claims_audit", "table", "the paper's claims: supported / refuted / inconclusive, with reasons and numbers")
def claims_audit(ctx: Context, out_dir: Path) -> list[Path]:
    if ctx.method not in set(ctx.runs["method"]):
        raise SkipOutput(f"no {ctx.method} runs: no claim to audit")
    from .claims.audit import look_of

    a = ctx.audit()
    disp = pd.DataFrame({"claim": a["claim"], "verdict": a["verdict_text"], "reason": a["reason"],
                         "evidence": a["evidence"]})
    covers = sorted(set(a["covers"]))
    notes = ["Decision rules: analysis/claims.toml (a smallest effect of interest of "
             f"{fmt_num(ctx.claims['defaults']['delta'])} pp; 'refuted' needs evidence against the claim, "
             "'inconclusive' means the data cannot tell; 'supported, by less than δ points': every deciding lead is "
             f"real but smaller than δ). Covers: {'; '.join(covers)}. {ctx.scale()}.",
             look_of(ctx.judged(), ctx.claims).text, diverged_note(ctx.runs), collapsed_note(ctx.runs)]
    return write_table(out_dir, "claims_audit", display=disp, data=a.drop(columns=["numbers"]), notes=notes)


@register("sensitivity", "table", "every claim's verdict recomputed under other defensible analysis choices")
def sensitivity(ctx: Context, out_dir: Path) -> list[Path]:
    from .sensitivity import sensitivity_table

    if ctx.method not in set(ctx.runs["method"]):
        raise SkipOutput(f"no {ctx.method} runs: no claim to audit")
    t = sensitivity_table(ctx.runs, ctx.protocol, ctx.claims, base=ctx.audit())
    claims = [c.id for c in ctx.claims["claims"]]
    disp = pd.DataFrame({"choice": t["choice"], "variant": t["variant"],
                         **{cid: t[cid] for cid in claims}, "note": t["note"]})
    notes = ["Each row changes one choice from the defaults of analysis/claims.toml (first row) and recomputes every "
             "verdict; * marks a verdict that differs from the default. test: the per-setting comparison test "
             "(every claim but the ranking); alternatives: the methods fggp is compared and ranked with (claims 1 and "
             "3); annealed rate: which annealed rule(s) take part (in every claim); collapsed runs: runs at chance "
             "level kept in the accuracy tests instead of set aside; rank aggregation: the ranking's (claim 3); "
             f"delta: the smallest effect of interest. {ctx.scale()}."]
    return write_table(out_dir, "sensitivity", display=disp, data=t, notes=notes)


@register("collapses", "table",
          "runs at chance level: each method's collapse rate with an exact interval, and fggp against each "
          "method by exact McNemar on seed-paired runs")
def collapses(ctx: Context, out_dir: Path) -> list[Path]:
    return collapses_parts(ctx).write(out_dir, "collapses")


def collapses_parts(ctx: Context) -> TableParts:
    """The collapses table (or SkipOutput): each method's rate at chance level and fggp against each by McNemar."""
    j = ctx.judged()
    if j.arrays is None:
        raise SkipOutput(f"no {ctx.method} runs")
    others = [m for m in j.arrays.methods[1:] if j.arrays.has(m)]
    if not others:
        raise SkipOutput("no other method to compare with")
    cfg = ctx.claim("outperforms_in_most_settings")
    coll = j.decider.collapses(ctx.method, others)
    rows, disp = [], []
    for i, m in enumerate([ctx.method] + others):
        v = j.arrays.values(m)
        n, k = int(np.isfinite(v).sum()), int(j.arrays.collapsed(m).sum())
        lo, hi = D.rate_interval(k, n)
        r = dict(method=m, runs=n, collapsed=k, rate=k / n if n else math.nan, ci_low=float(lo), ci_high=float(hi),
                 paired_runs=math.nan, method_only=math.nan, other_only=math.nan, p_method_more_holm=math.nan,
                 p_other_more_holm=math.nan)
        if i:
            r.update(paired_runs=int(coll["n_pairs"][i - 1]), method_only=int(coll["method_only"][i - 1]),
                     other_only=int(coll["other_only"][i - 1]), p_method_more_holm=float(coll["p_more_holm"][i - 1]),
                     p_other_more_holm=float(coll["p_less_holm"][i - 1]))
        rows.append(r)
        disp.append({"method": m, "completed runs": str(n), "at chance level": str(k),
                     "rate (95% exact interval)": (f"{fmt_num(100 * r['rate'], 1)} % [{fmt_num(100 * lo, 1)}, "
                                                   f"{fmt_num(100 * hi, 1)}]") if n else "—",
                     f"paired with {ctx.method}": "—" if not i else str(r["paired_runs"]),
                     f"only {ctx.method} : only method": "—" if not i else f"{r['method_only']} : {r['other_only']}",
                     f"p ({ctx.method} more, Holm)": "—" if not i else fmt_p(r["p_method_more_holm"]),
                     "p (method more, Holm)": "—" if not i else fmt_p(r["p_other_more_holm"])})
    notes = [f"Completed runs at chance level (final accuracy ≤ {COLLAPSED_AT:g} %) over the settings where "
             f"{ctx.method} has runs; rate with its exact (Clopper–Pearson) 95% interval. Paired: the (setting, seed) "
             f"pairs where both have a completed run; the exact McNemar test compares the discordant pairs (only one "
             f"of the two at chance level), one-sided each way, Holm across the methods. Claim 1 is not supported "
             f"while {ctx.method} reaches chance level significantly more often than a method it is compared with. "
             + ("The accuracy comparisons set these pairs aside (analysis/claims.toml, collapsed = separate). "
                if cfg.collapsed == "separate" else "")
             + ctx.scale() + ".", collapsed_note(ctx.runs)]
    return TableParts(pd.DataFrame(disp), pd.DataFrame(rows), tuple(notes))


@register("platforms", "table",
          "the platforms (torch, device, CPU ISA, oneDNN ISA, threads, precision, strict, memory format) the "
          "protocol's runs were made on, with run counts and the settings that mix them")
def platforms(ctx: Context, out_dir: Path) -> list[Path]:
    return platforms_parts(ctx).write(out_dir, "platforms")


def platforms_parts(ctx: Context) -> TableParts:
    """The platforms table (or SkipOutput): one row per platform the runs were made on."""
    from .platforms import memory_format, mixed_settings_note, platform_table

    if not set(ctx.runs["method"]) - {DENSE}:
        raise SkipOutput("only dense runs, nothing to compare")
    t = platform_table(ctx.runs)
    disp = pd.DataFrame({
        "platform": t["platform"], "torch": t["torch"], "device": t["device"], "CPU ISA": t["cpu_isa"],
        "oneDNN ISA": t["onednn_isa"],
        "threads": t["threads"], "precision": t["precision"],
        "strict": t["strict"].map({"true": "on", "false": "off"}).fillna(t["strict"]),
        "memory format": t["channels_last"].map(memory_format),
        "runs": t["runs"].astype(str), "completed": t["completed"].astype(str), "diverged": t["diverged"].astype(str),
        "settings": t["settings"].astype(str),
    })
    n = len(t)
    notes = [("The platform of a run: the torch version, the device model, the CPU instruction set, the oneDNN "
              "instruction-set level in effect (unknown in records made before it was recorded), the torch thread "
              "count, the precision, strict mode and the memory format of the model and batches (channels_last or "
              "contiguous; docs/RECORD_SCHEMA.md). On one platform a strict rerun is "
              "bit-identical; on another it drifts like a new seed. "
              + ("Every run of this protocol was made on one platform." if n == 1 else
                 f"These runs span {n} platforms; within a setting they are analysed together, "
                 f"each seed counting once whatever its platform.")
              + f" runs: records (completed + diverged); settings: the (dataset, arch, target sparsity, start) "
                f"cells with runs on the platform, dense included. {ctx.scale()}."),
             mixed_settings_note(ctx.runs)]
    data = t.copy()
    data.insert(0, "protocol", ctx.protocol)
    return TableParts(disp, data, tuple(notes))


@register("diagnostics", "table",
          "dead output units and the test accuracy after BatchNorm recalibration, per setting and method "
          "(from the records' diagnostics; no statistic uses them)")
def diagnostics(ctx: Context, out_dir: Path) -> list[Path]:
    runs = ctx.completed
    if not set(runs["method"]) - {DENSE}:
        raise SkipOutput("only dense runs: no pruned network to diagnose")
    have = runs[runs["bn_recal_test_acc"].notna() | runs["dead_units"].notna()]
    if have.empty:
        raise SkipOutput("no record of this protocol carries diagnostics (records made before they existed)")
    keys = list(SETTING_KEYS) + ["method"]
    g = have.assign(gain=have["bn_recal_test_acc"] - have["test_acc"]).groupby(keys, sort=False)
    t = pd.DataFrame({
        "n": g.size(),
        "dead_units_mean": g["dead_units"].mean(), "dead_units_min": g["dead_units"].min(),
        "dead_units_max": g["dead_units"].max(),
        "test_acc_mean": g["test_acc"].mean(), "bn_recal_test_acc_mean": g["bn_recal_test_acc"].mean(),
        "largest_gain": g["gain"].max(),
    }).reset_index()
    order = {m: i for i, m in enumerate(method_order(t["method"].unique()))}
    t = t.assign(_m=t["method"].map(order)).sort_values(
        ["dataset", "arch", "initial_density", "target_sparsity", "_m"], kind="stable").drop(columns="_m")
    disp = pd.DataFrame({
        "setting": [setting_label(r.dataset, r.arch, r.target_sparsity, r.initial_density, with_dataset=False)
                    for r in t.itertuples(index=False)],
        "method": t["method"], "runs": t["n"].astype(str),
        "dead units: mean (min–max)": [f"{fmt_num(a, 1)} ({fmt_num(b, 0)}–{fmt_num(c, 0)})"
                                       for a, b, c in zip(t["dead_units_mean"], t["dead_units_min"],
                                                          t["dead_units_max"])],
        "test acc. (%)": t["test_acc_mean"].map(fmt_num),
        "after BN recalibration (%)": t["bn_recal_test_acc_mean"].map(fmt_num),
        "largest gain (pp)": t["largest_gain"].map(fmt_signed),
    })
    n_all, n_have = len(runs), len(have)
    notes = [(f"From the diagnostics of {n_have} of the {n_all} completed runs (records made before commit 281d540 "
              "have none; docs/RECORD_SCHEMA.md). Dead units: output units (conv filters, linear rows) whose weights "
              "are all pruned. After BN recalibration: the test accuracy once BatchNorm's running statistics are "
              "recomputed on 50 training batches; largest gain: the most any run of the cell gains by it. A large "
              "gain marks an eval-mode BatchNorm artefact, not a lost network. Means over runs; no statistic of the "
              f"audit uses these numbers. {ctx.scale()}.")]
    return write_table(out_dir, "diagnostics", display=disp, data=t.reset_index(drop=True), notes=notes)

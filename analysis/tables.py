"""Tables (Markdown, LaTeX and CSV, byte-stable): main results, ranks, paired comparisons,
claims audit. Each is one registry entry."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from .bootstrap import aggregate_scores, probability_of_improvement
from .claims import audit
from .formatting import fmt_num, fmt_p, fmt_signed, p_is, write_table
from .ranks import friedman, nemenyi_cd
from .records import DENSE, REFERENCE_KEYS, SETTING_KEYS, diverged_runs, method_order, setting_label, start_label
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


def _cell(r) -> str:
    n, div = int(r["n"]), int(r["diverged"])
    tail = f"n={n}" + (f", {div} div." if div else "")
    if n == 0:
        return f"— ({tail})"
    if n == 1:
        return f"{fmt_num(r['mean'])} ({tail})"
    return f"{fmt_num(r['mean'])} ± {fmt_num(r['ci_high'] - r['mean'])} ({tail})"


def _results_table(ctx: Context, out_dir: Path, name: str, metric: str, what: str) -> list[Path]:
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
            row[m] = _cell(r) if r is not None else "—"
            brow.append(is_best)
            if is_best:
                best_keys.add(key + (m,))
        d = dense_by.get((ds, arch, proto))
        if d is not None:
            row["dense (reference)"] = _cell(d)
            brow.append(False)
        disp_rows.append(row)
        bold_rows.append(brow)
    display = pd.DataFrame(disp_rows).fillna("—")
    width = display.shape[1]
    bold = pd.DataFrame([b + [False] * (width - len(b)) for b in bold_rows], columns=display.columns)

    data = s.copy()
    data["best"] = [tuple(r[k] for k in SETTING_KEYS + ("method",)) in best_keys for r in data.to_dict("records")]
    conf = int(round(ctx.confidence * 100))
    notes = [
        f"{what}. Cells: mean ± half-width of the {conf}% Student-t interval over seeds "
        f"(n = completed seeds; div. = diverged runs, excluded). Bold: best mean per setting among sparse "
        f"methods; dense is the per-architecture reference, not a competitor. Protocol: {ctx.protocol}.",
        diverged_note(ctx.runs),
    ]
    return write_table(out_dir, name, display=display, data=data, notes=notes, bold=bold)


@register("main_results", "table", "mean ± t-CI of final test accuracy per setting and method, best marked")
def main_results(ctx: Context, out_dir: Path) -> list[Path]:
    return _results_table(ctx, out_dir, "main_results", "test_acc", "Final-epoch test accuracy (%)")


@register("optimistic_results", "table",
          "best test accuracy after pruning ended: OPTIMISTIC (selected on the test set), never the primary number")
def optimistic_results(ctx: Context, out_dir: Path) -> list[Path]:
    if ctx.completed["best_test_acc_after_pruning"].notna().sum() == 0:
        raise SkipOutput("no record carries best_test_acc_after_pruning")
    return _results_table(ctx, out_dir, "optimistic_results", "best_test_acc_after_pruning",
                          "OPTIMISTIC: best test accuracy (%) after pruning ended, selected on the test set "
                          "(GraNet's reporting); the final-epoch accuracy of main_results is the primary number")


@register("ranks", "table", "average ranks, aggregate score with stratified bootstrap CI, P(fggp > method), Friedman")
def ranks(ctx: Context, out_dir: Path) -> list[Path]:
    ar, k, n = ctx.rankable()
    agg = aggregate_scores(ctx.runs, "test_acc", list(ar.ranks.index), n_resamples=ctx.n_resamples,
                           confidence=ctx.confidence, seed=ctx.seed).set_index("method")
    rows, disp = [], []
    for m, r in ar.ranks.items():
        poi = None
        if ctx.method in ar.ranks.index and m != ctx.method:
            poi = probability_of_improvement(ctx.runs, ctx.method, m, n_resamples=ctx.n_resamples,
                                             confidence=ctx.confidence, seed=ctx.seed)
        a = agg.loc[m]
        rows.append(dict(method=m, average_rank=r, n_settings=n, aggregate_mean=a["estimate"],
                         aggregate_ci_low=a["ci_low"], aggregate_ci_high=a["ci_high"],
                         p_improvement=poi.estimate if poi else math.nan,
                         p_improvement_ci_low=poi.ci_low if poi else math.nan,
                         p_improvement_ci_high=poi.ci_high if poi else math.nan))
        disp.append({
            "method": m, "average rank": fmt_num(r, 3),
            "mean over settings (%)": f"{fmt_num(a['estimate'])} [{fmt_num(a['ci_low'])}, {fmt_num(a['ci_high'])}]",
            f"P({ctx.method} > method)": (f"{fmt_num(poi.estimate, 3)} [{fmt_num(poi.ci_low, 3)}, {fmt_num(poi.ci_high, 3)}]"
                                          if poi else "—"),
        })
    fr = friedman(ctx.runs, "test_acc", list(ar.ranks.index))
    conf = int(round(ctx.confidence * 100))
    notes = [f"Ranks by seed-mean final test accuracy within each setting (1 = best, ties share the average rank), "
             f"averaged over {n} settings where all {k} methods have completed runs. Brackets: {conf}% stratified "
             f"bootstrap intervals ({ctx.n_resamples} resamples, seeds resampled within settings, seed {ctx.seed}). "
             f"Protocol: {ctx.protocol}."]
    if k >= 3 and n >= 2:
        cd = nemenyi_cd(k, n, ctx.alpha)
        notes.append(f"Friedman χ² = {fmt_num(fr.statistic, 3)} (df {k - 1}), {p_is(fr.pvalue)}; "
                     f"Iman–Davenport F = {fmt_num(fr.iman_davenport, 3)} (df {k - 1}, {(k - 1) * (n - 1)}), "
                     f"{p_is(fr.iman_davenport_pvalue)}; Nemenyi CD (α = {ctx.alpha}) = {fmt_num(cd, 3)}.")
    else:
        notes.append("Friedman test not computed (needs at least 3 methods and 2 settings).")
    if ar.settings_excluded:
        ex = "; ".join(f"{setting_label(*key[:4])} (no {', '.join(ar.missing[key])})" for key in ar.settings_excluded)
        notes.append(f"Settings excluded ({len(ar.settings_excluded)}): {ex}.")
    else:
        notes.append("Settings excluded: none.")
    notes.append(diverged_note(ctx.runs))
    return write_table(out_dir, "ranks", display=pd.DataFrame(disp), data=pd.DataFrame(rows), notes=notes)


@register("comparisons", "table", "paired comparisons of fggp against every other method, per setting")
def comparisons(ctx: Context, out_dir: Path) -> list[Path]:
    c = ctx.comparisons()
    if c.empty:
        raise SkipOutput(f"no {ctx.method} runs, or no other method to compare with")
    order = {m: i for i, m in enumerate(method_order(c["baseline"].unique()))}
    c = c.assign(_o=c["baseline"].map(order)).sort_values(["_o"], kind="mergesort").drop(columns="_o")
    c = c.reset_index(drop=True)
    disp = pd.DataFrame({
        "baseline": c["baseline"],
        "setting": [setting_label(*k) for k in c[list(SETTING_KEYS[:4])].itertuples(index=False, name=None)],
        "pairs": c["n_pairs"].astype(int).astype(str),
        "diff (pp)": [f"{fmt_signed(d)} [{fmt_signed(lo)}, {fmt_signed(hi)}]"
                      for d, lo, hi in zip(c["mean_diff"], c["ci_low"], c["ci_high"])],
        "d_z": [fmt_num(x) for x in c["effect_size"]],
        "p (t)": [fmt_p(p) for p in c["p_ttest"]],
        "p (Wilcoxon)": [fmt_p(p) for p in c["p_wilcoxon"]],
        "p (Welch)": [fmt_p(p) for p in c["p_welch"]],
        "p (Holm)": [fmt_p(p) for p in c["p_holm"]],
    })
    conf = int(round(ctx.confidence * 100))
    notes = [
        f"{ctx.method} minus baseline, final test accuracy in percentage points, paired on seed (pairs = seeds "
        f"both have); brackets: {conf}% Student-t interval of the mean paired difference. d_z: Cohen's d of the "
        f"paired differences (mean / sd). p (t): paired t-test, two-sided; p (Wilcoxon): signed-rank, two-sided, "
        f"exact (or exhaustive permutation with ties) where possible, n/a when undefined (fewer than 2 pairs or "
        f"all differences zero); p (Welch): unpaired, two-sided, all completed runs; p (Holm): p (t) adjusted "
        f"across the settings of this protocol, per baseline. Dense: the same architecture's dense runs serve "
        f"every setting. Protocol: {ctx.protocol}.",
        diverged_note(ctx.runs),
    ]
    return write_table(out_dir, "comparisons", display=disp, data=c, notes=notes)


@register("claims_audit", "table", "the paper's claims judged by their statistics (analysis/claims.toml)")
def claims_audit(ctx: Context, out_dir: Path) -> list[Path]:
    a = audit(ctx.runs, protocol=ctx.protocol)
    disp = a[["claim", "verdict", "test", "evidence"]]
    notes = ["Decision rules: analysis/claims.toml. Verdicts: supported / not supported / inconclusive. "
             f"Protocol: {ctx.protocol}.", diverged_note(ctx.runs)]
    return write_table(out_dir, "claims_audit", display=disp, data=a, notes=notes)

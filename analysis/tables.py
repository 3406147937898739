"""Tables (Markdown, LaTeX and CSV, byte-stable): main results, optimistic results and the reporting
bias of choosing the best epoch, ranks, paired comparisons, effects pooled over settings, the claims
audit and its sensitivity to the analysis choices. Each is one registry entry."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from .bootstrap import aggregate_scores, pooled_effects, probability_of_improvement
from .formatting import fmt_num, fmt_p, fmt_signed, p_is, write_table
from .looks import design_look
from .ranks import average_ranks, friedman, nemenyi_cd
from .records import (COLLAPSED_AT, DENSE, REFERENCE_KEYS, SETTING_KEYS, diverged_runs, method_order, setting_label,
                      start_label)
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
    """One line: how many completed runs ended at chance level, by method (kept in the statistics)."""
    c = runs[runs["collapsed"]] if "collapsed" in runs.columns else runs.iloc[:0]
    if c.empty:
        return f"Collapsed runs (final accuracy ≤ {COLLAPSED_AT:g} %, chance level): none."
    by = c.groupby("method").size()
    parts = ", ".join(f"{m} {int(by[m])}" for m in method_order(by.index))
    line = (f"Collapsed runs (final accuracy ≤ {COLLAPSED_AT:g} %, chance level; kept in every statistic, marked "
            f"†): {len(c)} — {parts}.")
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


def _results_table(ctx: Context, out_dir: Path, name: str, metric: str, what: str, extra_notes=()) -> list[Path]:
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
    return write_table(out_dir, name, display=display, data=data, notes=notes, bold=bold)


@register("main_results", "table", "mean ± t-CI of final test accuracy per setting and method, best marked")
def main_results(ctx: Context, out_dir: Path) -> list[Path]:
    return _results_table(ctx, out_dir, "main_results", "test_acc", "Final-epoch test accuracy (%)")


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
    sparse = [m for m in methods if m != DENSE]
    if len(sparse) >= 2:
        done = ctx.runs[ctx.runs["status"] == "completed"]
        try:
            rank_final = average_ranks(done, "test_acc", True, sparse)
            rank_best = average_ranks(done, "best_test_acc_window", True, sparse)
        except ValueError:
            rank_final = rank_best = None
    rows, disp = [], []
    for m in methods:
        g = gain.loc[m]
        n = int((runs["method"] == m).sum())
        rf = float(rank_final.ranks.get(m, math.nan)) if rank_final is not None and m != DENSE else math.nan
        rb = float(rank_best.ranks.get(m, math.nan)) if rank_best is not None and m != DENSE else math.nan
        rows.append(dict(method=m, runs=n, mean_final=g["test_acc"], mean_best=g["best_test_acc_window"],
                         inflation=g["gain"], rank_final=rf, rank_best=rb, rank_change=rb - rf))
        disp.append({"method": m, "runs": str(n), "mean final (%)": fmt_num(g["test_acc"]),
                     "mean best epoch (%)": fmt_num(g["best_test_acc_window"]),
                     "inflation (pp)": fmt_signed(g["gain"]),
                     "average rank final → best epoch": ("—" if math.isnan(rf) else
                                                         f"{fmt_num(rf, 2)} → {fmt_num(rb, 2)}")})
    n_set = rank_final.n_settings if rank_final is not None else 0
    notes = [f"Reporting bias of choosing the checkpoint on the test set: mean over completed runs of the best "
             f"test accuracy in the window after pruning ends (the same epochs for dense) minus the final-epoch "
             f"accuracy, per method; average ranks over {n_set} settings by final and by best-epoch accuracy "
             f"(1 = best). Only the final-epoch numbers are unbiased. {ctx.scale()}."]
    return write_table(out_dir, "reporting_bias", display=pd.DataFrame(disp), data=pd.DataFrame(rows), notes=notes)


@register("ranks", "table",
          "average ranks with whole-seed bootstrap intervals, P(best), mean over settings, P(fggp > method), Friedman")
def ranks(ctx: Context, out_dir: Path) -> list[Path]:
    ar, k, n = ctx.rankable()
    rr = ctx.rank_uncertainty()
    agg = aggregate_scores(ctx.runs, "test_acc", list(ar.ranks.index), n_resamples=ctx.n_resamples,
                           confidence=ctx.confidence, seed=ctx.seed).set_index("method")
    boot = None
    if not isinstance(rr, str):
        lo, hi = np.quantile(rr.distribution, [(1 - ctx.confidence) / 2, (1 + ctx.confidence) / 2], axis=0)
        best = rr.distribution.min(axis=1, keepdims=True)
        is_best = np.abs(rr.distribution - best) <= 1e-9
        p_best = (is_best / is_best.sum(axis=1, keepdims=True)).mean(axis=0)
        boot = {m: (float(lo[i]), float(hi[i]), float(p_best[i])) for i, m in enumerate(rr.methods)}
    rows, disp = [], []
    for m, r in ar.ranks.items():
        poi = None
        if ctx.method in ar.ranks.index and m != ctx.method:
            poi = probability_of_improvement(ctx.runs, ctx.method, m, n_resamples=ctx.n_resamples,
                                             confidence=ctx.confidence, seed=ctx.seed)
        a = agg.loc[m]
        b = boot.get(m) if boot else None
        rows.append(dict(method=m, average_rank=r, n_settings=n,
                         rank_ci_low=b[0] if b else math.nan, rank_ci_high=b[1] if b else math.nan,
                         p_best=b[2] if b else math.nan, aggregate_mean=a["estimate"],
                         aggregate_ci_low=a["ci_low"], aggregate_ci_high=a["ci_high"],
                         p_improvement=poi.estimate if poi else math.nan,
                         p_improvement_ci_low=poi.ci_low if poi else math.nan,
                         p_improvement_ci_high=poi.ci_high if poi else math.nan))
        disp.append({
            "method": m, "average rank": fmt_num(r, 3),
            "rank interval": f"[{fmt_num(b[0])}, {fmt_num(b[1])}]" if b else "—",
            "P(best rank)": fmt_num(b[2], 3) if b else "—",
            "mean over settings (%)": f"{fmt_num(a['estimate'])} [{fmt_num(a['ci_low'])}, {fmt_num(a['ci_high'])}]",
            f"P({ctx.method} > method)": (f"{fmt_num(poi.estimate, 3)} [{fmt_num(poi.ci_low, 3)}, {fmt_num(poi.ci_high, 3)}]"
                                          if poi else "—"),
        })
    conf = int(round(ctx.confidence * 100))
    notes = [f"Ranks by seed-mean final test accuracy within each setting (1 = best, ties share the average rank), "
             f"averaged over {n} settings where all {k} methods have completed runs. Brackets: {conf}% percentile "
             f"intervals over {ctx.n_resamples} resamples of whole seeds (a seed takes its runs in every setting and "
             f"method with it; generator seed {ctx.seed}). "
             + (f"Rank interval and P(best rank) use the settings where every method has at least "
                f"{ctx.claim('best_average_rank')['min_seeds']} runs, on the {len(rr.seeds)} seeds complete there, "
                f"spread by sqrt(K/(K−1)) (the small-sample correction of the audit's claim 3). " if boot else
                f"Rank intervals: {rr}. ")
             + f"{ctx.scale()}."]
    if k >= 3 and n >= 2:
        fr = friedman(ctx.runs, "test_acc", list(ar.ranks.index))
        cd = nemenyi_cd(k, n, ctx.alpha)
        text = (f"Friedman χ² = {fmt_num(fr.statistic, 3)} (df {k - 1}), {p_is(fr.pvalue)}; "
                f"Iman–Davenport F = {fmt_num(fr.iman_davenport, 3)} (df {k - 1}, {(k - 1) * (n - 1)}), "
                f"{p_is(fr.iman_davenport_pvalue)}; Nemenyi CD (α = {ctx.alpha}) = {fmt_num(cd, 3)}.")
        if "random" in ar.ranks.index and k - 1 >= 3:
            wo = [m for m in ar.ranks.index if m != "random"]
            fw = friedman(ctx.runs, "test_acc", wo)
            text += (f" Without random ({k - 1} methods): Friedman χ² = {fmt_num(fw.statistic, 3)}, {p_is(fw.pvalue)}; "
                     f"Iman–Davenport {p_is(fw.iman_davenport_pvalue)}; Nemenyi CD = {fmt_num(nemenyi_cd(k - 1, n, ctx.alpha), 3)}.")
        notes.append(text)
    else:
        notes.append("Friedman test not computed (needs at least 3 methods and 2 settings).")
    if ar.settings_excluded:
        ex = "; ".join(f"{setting_label(*key[:4])} (no {', '.join(ar.missing[key])})" for key in ar.settings_excluded)
        notes.append(f"Settings excluded ({len(ar.settings_excluded)}): {ex}.")
    else:
        notes.append("Settings excluded: none.")
    notes.append(diverged_note(ctx.runs))
    notes.append(collapsed_note(ctx.runs))
    return write_table(out_dir, "ranks", display=pd.DataFrame(disp), data=pd.DataFrame(rows), notes=notes)


def _decided_comparisons(ctx: Context) -> pd.DataFrame:
    """The comparisons of ``method`` with every other method (stats.compare) joined with the audit's
    per-setting decisions (adjusted intervals, TOST, class, minimum detectable difference)."""
    c = ctx.comparisons()
    if c.empty:
        return c
    dec = ctx.judgement().rows()
    keys = list(SETTING_KEYS) + ["baseline"]
    out = c.merge(dec.drop(columns=["n_pairs", "mean_diff"]), on=keys, how="left")
    order = {m: i for i, m in enumerate(method_order(out["baseline"].unique()))}
    out = out.assign(_o=out["baseline"].map(order)).sort_values(["_o"], kind="mergesort").drop(columns="_o")
    return out.reset_index(drop=True)


@register("comparisons", "table",
          "fggp against every other method per setting: paired tests, Holm, adjusted intervals, TOST, class, power")
def comparisons(ctx: Context, out_dir: Path) -> list[Path]:
    c = _decided_comparisons(ctx)
    if c.empty:
        raise SkipOutput(f"no {ctx.method} runs, or no other method to compare with")
    cfg = ctx.claim("outperforms_in_most_settings")
    delta, power = cfg["delta"], cfg["power"]

    def adj(r):
        if not np.isfinite(r["adj_ci_low"]):
            return "—"
        conf = 1 - (2 * r["holm_level"] if r["alternative"] == "greater" else r["holm_level"])
        return f"[{fmt_signed(r['adj_ci_low'])}, {fmt_signed(r['adj_ci_high'])}] ({round(100 * conf, 2):g}%)"

    disp = pd.DataFrame({
        "baseline": c["baseline"],
        "setting": [setting_label(*k) for k in c[list(SETTING_KEYS[:4])].itertuples(index=False, name=None)],
        "pairs": c["n_pairs"].astype(int).astype(str),
        "diff (pp)": [f"{fmt_signed(d)} [{fmt_signed(lo)}, {fmt_signed(hi)}]"
                      for d, lo, hi in zip(c["mean_diff"], c["ci_low"], c["ci_high"])],
        "Holm interval": [adj(r) for r in c.to_dict("records")],
        "d_z": [fmt_num(x) for x in c["effect_size"]],
        "p (t)": [fmt_p(p) for p in c["p_ttest"]],
        "p (Wilcoxon)": [fmt_p(p) for p in c["p_wilcoxon"]],
        "p (Welch)": [fmt_p(p) for p in c["p_welch"]],
        "p (Holm)": [fmt_p(p) for p in c["p_win_holm"]],
        "p (TOST, Holm)": [fmt_p(p) for p in c["p_tost_holm"]],
        "class": c["class"].fillna("—"),
        f"MDD{int(round(power * 100))} (pp)": [fmt_num(x) for x in c["mdd"]],
    })
    conf = int(round(ctx.confidence * 100))
    notes = [
        f"{ctx.method} minus baseline, final test accuracy in percentage points, paired on seed (pairs = seeds "
        f"both have); brackets: {conf}% Student-t interval of the mean paired difference. d_z: Cohen's d of the "
        f"paired differences (mean / sd). p (t): paired t-test, two-sided; p (Wilcoxon): signed-rank, two-sided, "
        f"exact (or exhaustive permutation with ties) where possible, n/a when undefined; p (Welch): unpaired, "
        f"two-sided, all completed runs. Dense: the same architecture's dense runs serve every setting.",
        f"Decisions (analysis/claims.toml): Holm across the settings of this protocol, per baseline. Against sparse "
        f"methods the test is two-sided (claim 1): p (Holm) is the Holm-adjusted p (t). Against dense it is one-sided, "
        f"{ctx.method} > dense (claim 2): p (Holm) is the Holm-adjusted one-sided p. Holm interval: the t-interval at "
        f"the level Holm tested that setting at (its confidence in brackets; for dense, a two-sided interval whose "
        f"lower end is the one-sided bound): it excludes 0 exactly when p (Holm) < {ctx.alpha}. p (TOST, Holm): the "
        f"two one-sided tests of equivalence within ±{fmt_num(delta)} pp, Holm-adjusted. class: win / loss "
        f"(significant), equivalent (TOST; a significant difference inside ±{fmt_num(delta)} counts as equivalent), "
        f"unresolved, or few seeds (fewer than {cfg['min_seeds']} pairs). MDD{int(round(power * 100))}: the smallest "
        f"true difference the paired t-test detects with {int(round(power * 100))}% power at the Bonferroni level "
        f"α/m of the setting's family (m settings), from the observed sd of the differences.",
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
    p = pooled_effects(ctx.runs, ctx.method, others, confidence=ctx.confidence, alpha=ctx.alpha,
                       power=cfg["power"], n_resamples=ctx.n_resamples, seed=ctx.seed)
    conf = int(round(ctx.confidence * 100))
    disp = pd.DataFrame({
        "baseline": p["baseline"], "settings": p["n_settings"].astype(str), "seeds": p["n_seeds"].astype(str),
        "mean diff (pp)": [fmt_signed(x) for x in p["mean_diff"]],
        f"{conf}% t-interval": [f"[{fmt_signed(a)}, {fmt_signed(b)}]" for a, b in zip(p["ci_low"], p["ci_high"])],
        f"{conf}% seed bootstrap": [f"[{fmt_signed(a)}, {fmt_signed(b)}]" for a, b in zip(p["boot_low"], p["boot_high"])],
        "p (t)": [fmt_p(x) for x in p["p_ttest"]], "p (Holm)": [fmt_p(x) for x in p["p_holm"]],
        f"MDD{int(round(cfg['power'] * 100))} (pp)": [fmt_num(x) for x in p["mdd"]],
    })
    notes = [f"{ctx.method} minus baseline over all settings both have, with the seed as the unit: for each seed, the "
             f"mean over settings of the seed-paired difference; then the mean over seeds, its Student-t interval, a "
             f"percentile interval over {ctx.n_resamples} resamples of whole seeds, the t-test of mean 0 (two-sided; "
             f"Holm across the baselines) and the minimum detectable difference at {int(round(cfg['power'] * 100))}% "
             f"power (α = {ctx.alpha}). Seeds missing a run in some setting are dropped so that every seed averages "
             f"the same settings. With few seeds the percentile interval is narrower than it should be; the "
             f"t-interval is the one to read. {ctx.scale()}.",
             diverged_note(ctx.runs)]
    return write_table(out_dir, "pooled_effects", display=disp, data=p, notes=notes)


@register("claims_audit", "table", "the paper's claims: supported / refuted / inconclusive, with reasons and numbers")
def claims_audit(ctx: Context, out_dir: Path) -> list[Path]:
    if ctx.method not in set(ctx.runs["method"]):
        raise SkipOutput(f"no {ctx.method} runs: no claim to audit")
    a = ctx.audit()
    disp = a[["claim", "verdict", "reason", "evidence"]]
    notes = ["Decision rules: analysis/claims.toml (a smallest effect of interest of "
             f"{fmt_num(ctx.claims['defaults']['delta'])} pp decides equivalence; 'refuted' needs evidence against "
             f"the claim, 'inconclusive' means the data cannot tell). {ctx.scale()}.",
             design_look(ctx.runs, ctx.protocol, ctx.claims.get("plans")).text,
             diverged_note(ctx.runs), collapsed_note(ctx.runs)]
    return write_table(out_dir, "claims_audit", display=disp, data=a.drop(columns=["numbers"]), notes=notes)


@register("sensitivity", "table", "every claim's verdict recomputed under other defensible analysis choices")
def sensitivity(ctx: Context, out_dir: Path) -> list[Path]:
    from .sensitivity import sensitivity_table

    if ctx.method not in set(ctx.runs["method"]):
        raise SkipOutput(f"no {ctx.method} runs: no claim to audit")
    t = sensitivity_table(ctx.runs, ctx.protocol, ctx.claims)
    claims = [c["id"] for c in ctx.claims["claims"]]
    disp = pd.DataFrame({"choice": t["choice"], "variant": t["variant"],
                         **{cid: t[cid] for cid in claims}, "note": t["note"]})
    notes = ["Each row changes one choice from the defaults of analysis/claims.toml (first row) and recomputes every "
             "verdict; * marks a verdict that differs from the default. test: the per-setting comparison test "
             "(claims 1 and 2; claim 3 does not use it); alternatives: the methods fggp is compared and ranked with; "
             "annealed rate: which annealed baseline(s) count as alternatives; collapsed runs: runs at chance level "
             "(kept by default) dropped, their seed leaving that setting; delta: the smallest effect of interest "
             f"(claims 1 and 2). {ctx.scale()}."]
    return write_table(out_dir, "sensitivity", display=disp, data=t, notes=notes)


@register("platforms", "table",
          "the platforms (torch, device, CPU ISA, threads, precision, strict) the protocol's runs were made on, "
          "with run counts and the settings that mix them")
def platforms(ctx: Context, out_dir: Path) -> list[Path]:
    from .platforms import mixed_settings_note, platform_table

    if not set(ctx.runs["method"]) - {DENSE}:
        raise SkipOutput("only dense runs, nothing to compare")
    t = platform_table(ctx.runs)
    disp = pd.DataFrame({
        "platform": t["platform"], "torch": t["torch"], "device": t["device"], "CPU ISA": t["cpu_isa"],
        "threads": t["threads"], "precision": t["precision"],
        "strict": t["strict"].map({"true": "on", "false": "off"}).fillna(t["strict"]),
        "runs": t["runs"].astype(str), "completed": t["completed"].astype(str), "diverged": t["diverged"].astype(str),
        "settings": t["settings"].astype(str),
    })
    n = len(t)
    notes = [("The platform of a run: the torch version, the device model, the CPU instruction set, the torch thread "
              "count, the precision and strict mode (docs/RECORD_SCHEMA.md). On one platform a strict rerun is "
              "bit-identical; on another it drifts like a new seed. "
              + ("Every run of this protocol was made on one platform." if n == 1 else
                 f"This protocol's runs span {n} platforms; they are analysed together (runs of one protocol), "
                 f"each seed counting once whatever its platform.")
              + f" runs: records (completed + diverged); settings: the (dataset, arch, target sparsity, start) "
                f"cells with runs on the platform, dense included. {ctx.scale()}."),
             mixed_settings_note(ctx.runs)]
    data = t.copy()
    data.insert(0, "protocol", ctx.protocol)
    return write_table(out_dir, "platforms", display=disp, data=data, notes=notes)


@register("diagnostics", "table",
          "dead output units and the test accuracy after BatchNorm recalibration, per setting and method "
          "(from the records' diagnostics; no statistic uses them)")
def diagnostics(ctx: Context, out_dir: Path) -> list[Path]:
    runs = ctx.completed
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

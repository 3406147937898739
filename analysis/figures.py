"""Figures (matplotlib, Agg backend, seaborn palette), one registry entry each, saved as PNG with a
fixed dpi and no Software metadata so the same records give the same bytes."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display, no GPU: figures are files

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from .formatting import p_is, save_figure  # noqa: E402
from .ranks import cd_cliques, friedman, nemenyi_cd  # noqa: E402
from .records import DENSE, METHOD_ORDER, SETTING_KEYS, method_order, setting_label, start_label  # noqa: E402
from .registry import Context, SkipOutput, register  # noqa: E402

DPI = 120
#: Fixed style, independent of the user's matplotlibrc defaults that matter for layout.
RC = {
    "figure.dpi": DPI, "savefig.dpi": DPI, "font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8,
    "legend.fontsize": 7, "xtick.labelsize": 7, "ytick.labelsize": 7, "axes.grid": True, "grid.alpha": 0.3,
    "axes.spines.top": False, "axes.spines.right": False, "svg.hashsalt": "fggp-repro", "path.simplify": True,
}


def method_colors(methods) -> dict[str, tuple]:
    """A fixed colour per method (the same in every figure): known methods by their place in
    METHOD_ORDER, others after them alphabetically; dense is grey."""
    known = list(METHOD_ORDER)
    extra = sorted(m for m in set(methods) if m not in known and m != DENSE)
    cb = sns.color_palette("colorblind", 10)
    pal = [c for i, c in enumerate(cb) if i != 7]  # colorblind[7] is grey: kept for dense
    if len(known) + len(extra) > len(pal):
        pal += sns.color_palette("husl", len(known) + len(extra) - len(pal))
    colors = {m: pal[i] for i, m in enumerate(known + extra)}
    colors[DENSE] = (0.2, 0.2, 0.2)
    return {m: colors[m] for m in methods}


def _pct(x: float) -> str:
    return f"{round(100 * x, 6):g}%"


def _save(fig, out_dir: Path, name: str) -> list[Path]:
    try:
        return [save_figure(fig, Path(out_dir) / f"{name}.png", dpi=DPI)]
    finally:
        plt.close(fig)


def _adjust(fig, *, left=0.7, right=0.15, top=0.55, bottom=0.55, hspace=0.55, wspace=0.25) -> None:
    """Fixed margins in inches. tight_layout would draw the whole figure once more just to measure
    it, doubling the time of the many-panel figures."""
    w, h = fig.get_size_inches()
    fig.subplots_adjust(left=left / w, right=1 - right / w, top=1 - top / h, bottom=bottom / h,
                        hspace=hspace, wspace=wspace)


def _figure_legend(fig, axes) -> None:
    """One legend above all panels, each label once, in the order the panels first use it."""
    handles, labels = [], []
    for ax in axes.ravel():
        for hd, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(hd)
                labels.append(lab)
    fig.legend(handles, labels, loc="upper center", ncol=min(len(labels), 9), frameon=False,
               bbox_to_anchor=(0.5, 1.0))


def _groups(df: pd.DataFrame) -> list[tuple]:
    """(dataset, arch, initial_density) panels-rows present among sparse runs, sorted."""
    g = df.loc[df["method"] != DENSE, ["dataset", "arch", "initial_density"]].drop_duplicates()
    g = g.sort_values(["dataset", "arch", "initial_density"], ascending=[True, True, False], kind="mergesort")
    return [tuple(r) for r in g.itertuples(index=False, name=None)]


# --------------------------------------------------------------------------------------------


@register("accuracy_vs_sparsity", "figure",
          "final test accuracy vs target sparsity per architecture and start: seeds, mean with t-CI, dense line")
def accuracy_vs_sparsity(ctx: Context, out_dir: Path) -> list[Path]:
    runs = ctx.runs
    done = ctx.completed
    done = done[np.isfinite(done["test_acc"])]
    if done[done["method"] != DENSE].empty:
        raise SkipOutput("no completed sparse-method runs")
    s = ctx.summary()
    methods = ctx.methods
    colors = method_colors(methods + [DENSE])
    panels = _groups(done)
    rows = sorted({(d, a) for d, a, _ in panels})
    cols = sorted({i for _, _, i in panels}, reverse=True)
    targets = sorted(done.loc[done["method"] != DENSE, "target_sparsity"].unique())
    xpos = {t: i for i, t in enumerate(targets)}
    width = 0.7
    offs = {m: (j - (len(methods) - 1) / 2) * width / max(len(methods), 1) for j, m in enumerate(methods)}
    with plt.rc_context(RC):
        # at least 5.4 in wide, so that the caption and the legend fit with a single column of panels
        fig, axes = plt.subplots(len(rows), len(cols), figsize=(max(3.4 * len(cols), 5.4), 2.8 * len(rows)),
                                 squeeze=False, sharey="row")
        for ri, (ds, arch) in enumerate(rows):
            dense = s[(s["method"] == DENSE) & (s["dataset"] == ds) & (s["arch"] == arch)]
            for ci, dens in enumerate(cols):
                ax = axes[ri][ci]
                ax.set_title(f"{ds} {arch}, {start_label(dens)}")
                for _, d in dense.iterrows():
                    if d["n"] > 0:
                        ax.axhline(d["mean"], color=colors[DENSE], ls="--", lw=1, label="dense")
                        if d["n"] > 1:
                            ax.axhspan(d["ci_low"], d["ci_high"], color=colors[DENSE], alpha=0.12, lw=0)
                cell = done[(done["dataset"] == ds) & (done["arch"] == arch) & (done["initial_density"] == dens)]
                summ = s[(s["dataset"] == ds) & (s["arch"] == arch) & (s["initial_density"] == dens)]
                n_div = int(((runs["dataset"] == ds) & (runs["arch"] == arch) & (runs["initial_density"] == dens)
                             & (runs["status"] == "diverged")).sum())
                for m in methods:
                    pts = cell[cell["method"] == m]
                    if len(pts):
                        ax.scatter(pts["target_sparsity"].map(xpos) + offs[m], pts["test_acc"], s=7,
                                   color=colors[m], alpha=0.45, lw=0)
                    sm = summ[(summ["method"] == m) & (summ["n"] > 0)].sort_values("target_sparsity")
                    if len(sm):
                        x = sm["target_sparsity"].map(xpos).to_numpy(float) + offs[m]
                        y = sm["mean"].to_numpy(float)
                        err = np.vstack([y - sm["ci_low"].to_numpy(float), sm["ci_high"].to_numpy(float) - y])
                        ax.errorbar(x, y, yerr=np.nan_to_num(err), color=colors[m], marker="o", ms=3.5,
                                    lw=1, capsize=2, label=m)
                if n_div:
                    ax.text(0.02, 0.03, f"{n_div} diverged run(s) not shown", transform=ax.transAxes,
                            fontsize=6, color="firebrick")
                ax.set_xticks(range(len(targets)), [_pct(t) for t in targets])
                ax.set_xlim(-0.6, len(targets) - 0.4)
                ax.set_xlabel("target sparsity")
                if ci == 0:
                    ax.set_ylabel("final test accuracy (%)")
        _figure_legend(fig, axes)
        conf = int(round(ctx.confidence * 100))
        fig.suptitle(f"protocol {ctx.protocol}: points = seeds, bars = {conf}% t-interval, dashed = dense mean",
                     y=0.01, va="bottom", fontsize=7)
        _adjust(fig, top=0.6, bottom=0.75, hspace=0.45, wspace=0.12)
        return _save(fig, out_dir, "accuracy_vs_sparsity")


@register("cd_diagram", "figure", "critical-difference diagram: average ranks, Nemenyi CD bar, maximal cliques")
def cd_diagram(ctx: Context, out_dir: Path) -> list[Path]:
    ar, k, n = ctx.rankable()
    cd = nemenyi_cd(k, n, ctx.alpha)
    ranks = ar.ranks
    cliques = cd_cliques(ranks, cd)
    fr = friedman(ctx.runs, "test_acc", list(ranks.index)) if k >= 3 and n >= 2 else None
    names = list(ranks.index)
    half = math.ceil(k / 2)
    with plt.rc_context({**RC, "axes.grid": False}):
        height = 1.3 + 0.25 * max(half, k - half) + 0.1 * len(cliques)
        fig, ax = plt.subplots(figsize=(6.4, height))
        lo, hi = 1, k
        ax.set_xlim(lo - 0.5, hi + 0.5)
        ax.hlines(0, lo, hi, color="k", lw=1)
        for t in range(lo, hi + 1):
            ax.vlines(t, 0, 0.08, color="k", lw=1)
            ax.text(t, 0.12, str(t), ha="center", va="bottom", fontsize=7)
        # CD bar above the axis, starting at rank 1.
        ax.hlines(0.55, lo, lo + cd, color="k", lw=1.5)
        ax.vlines([lo, lo + cd], 0.5, 0.6, color="k", lw=1)
        ax.text(lo + cd / 2, 0.63, f"CD = {cd:.3f}", ha="center", va="bottom", fontsize=7)
        # Labels below the clique bars: best half to the left, the rest to the right, with elbows.
        step = 0.22
        top = -0.22 - 0.09 * len(cliques)
        for i, m in enumerate(names):
            r = float(ranks[m])
            if i < half:
                y = top - step * i
                ax.plot([r, r, lo - 0.2], [0, y, y], color="k", lw=0.7)
                ax.text(lo - 0.25, y, f"{m} ({r:.2f})", ha="right", va="center", fontsize=7)
            else:
                y = top - step * (k - 1 - i)
                ax.plot([r, r, hi + 0.2], [0, y, y], color="k", lw=0.7)
                ax.text(hi + 0.25, y, f"({r:.2f}) {m}", ha="left", va="center", fontsize=7)
        # One thick bar per maximal clique (no sub-clique bars: see cd_cliques).
        for j, cl in enumerate(cliques):
            y = -0.12 - 0.09 * j
            ax.hlines(y, float(ranks[cl[0]]) - 0.03, float(ranks[cl[-1]]) + 0.03, color="k", lw=2.5)
        ax.set_ylim(top - step * max(half, k - half) - 0.05, 0.9)
        ax.axis("off")
        title = f"protocol {ctx.protocol}: average ranks over {n} settings (1 = best)"
        if fr is not None:
            title += f"; Friedman {p_is(fr.pvalue)}, Iman–Davenport {p_is(fr.iman_davenport_pvalue)}"
        ax.set_title(title, fontsize=7)
        fig.tight_layout()
        return _save(fig, out_dir, "cd_diagram")


@register("rank_chart", "figure", "average rank per method with the Nemenyi CD from the best")
def rank_chart(ctx: Context, out_dir: Path) -> list[Path]:
    ar, k, n = ctx.rankable()
    cd = nemenyi_cd(k, n, ctx.alpha)
    ranks = ar.ranks
    colors = method_colors(list(ranks.index))
    with plt.rc_context(RC):
        fig, ax = plt.subplots(figsize=(5.0, 0.8 + 0.3 * k))
        y = np.arange(k)
        ax.barh(y, ranks.to_numpy(float), color=[colors[m] for m in ranks.index], height=0.6)
        for yi, v in zip(y, ranks.to_numpy(float)):
            ax.text(v + 0.03, yi, f"{v:.2f}", va="center", fontsize=7)
        best = float(ranks.iloc[0])
        ax.axvline(best + cd, color="firebrick", ls=":", lw=1, label=f"best + CD ({cd:.2f})")
        ax.set_yticks(y, list(ranks.index))
        ax.invert_yaxis()
        ax.set_xlim(0, k + 0.5)
        ax.set_xlabel("average rank (1 = best)")
        ax.set_title(f"protocol {ctx.protocol}: {n} settings, {k} methods")
        ax.legend(loc="lower right", frameon=False)
        fig.tight_layout()
        return _save(fig, out_dir, "rank_chart")


@register("forest_fggp", "figure", "forest plot of fggp minus each other method per setting, paired t-CIs")
def forest_fggp(ctx: Context, out_dir: Path) -> list[Path]:
    c = ctx.comparisons()
    c = c[c["n_pairs"] > 0]
    if c.empty:
        raise SkipOutput(f"no seed-paired runs of {ctx.method} and another method")
    baselines = method_order(c["baseline"].unique())
    colors = method_colors(baselines)
    settings = c[list(SETTING_KEYS)].drop_duplicates().sort_values(
        ["protocol", "dataset", "arch", "initial_density", "target_sparsity"], ascending=[True, True, True, False, True],
        kind="mergesort")
    keys = [tuple(r) for r in settings.itertuples(index=False, name=None)]
    ypos = {k: i for i, k in enumerate(keys)}
    ncol = min(4, len(baselines))
    nrow = math.ceil(len(baselines) / ncol)
    conf = int(round(ctx.confidence * 100))
    with plt.rc_context(RC):
        panel_h = max(0.7, 0.2 * len(keys))
        fig, axes = plt.subplots(nrow, ncol, figsize=(2.6 * ncol + 1.9, 1.0 + nrow * panel_h + (nrow - 1) * 0.8),
                                 squeeze=False, sharey=True)
        for i, b in enumerate(baselines):
            ax = axes[i // ncol][i % ncol]
            cb = c[c["baseline"] == b]
            y = np.array([ypos[tuple(r)] for r in cb[list(SETTING_KEYS)].itertuples(index=False, name=None)])
            d = cb["mean_diff"].to_numpy(float)
            lo, hi = cb["ci_low"].to_numpy(float), cb["ci_high"].to_numpy(float)
            ax.axvline(0, color="k", lw=0.8)
            ax.hlines(y, np.where(np.isfinite(lo), lo, d), np.where(np.isfinite(hi), hi, d), color=colors[b], lw=1.2)
            sig = (cb["p_holm"] < ctx.alpha).to_numpy()
            ax.scatter(d[sig], y[sig], color=colors[b], s=14, zorder=3, label="Holm p < α")
            ax.scatter(d[~sig], y[~sig], facecolor="white", edgecolor=colors[b], s=14, zorder=3, label="n.s.")
            ax.set_title(f"{ctx.method} − {b}")
            ax.set_xlabel("difference (pp)")
            ax.set_yticks(range(len(keys)), [setting_label(*k[:4], with_dataset=False) for k in keys])
            ax.set_ylim(len(keys) - 0.5, -0.5)
        for j in range(len(baselines), nrow * ncol):
            axes[j // ncol][j % ncol].axis("off")
        fig.suptitle(f"protocol {ctx.protocol}: paired differences with {conf}% t-intervals; "
                     f"filled = significant after Holm (α = {ctx.alpha})", fontsize=7)
        _adjust(fig, left=1.9, top=0.55, bottom=0.45, hspace=0.8 / panel_h, wspace=0.1)
        return _save(fig, out_dir, "forest_fggp")


@register("training_curves", "figure", "test accuracy and sparsity vs epoch (seed mean per method), from histories")
def training_curves(ctx: Context, out_dir: Path) -> list[Path]:
    h = ctx.histories
    if h.empty:
        raise SkipOutput("no training histories in these records")
    h = h[h["status"] == "completed"]
    if h.empty:
        raise SkipOutput("no training histories of completed runs")
    mean = (h.groupby(list(SETTING_KEYS) + ["method", "epoch"], sort=True)[["test_acc", "sparsity"]]
            .mean().reset_index())
    groups = _groups(mean)
    if not groups:
        raise SkipOutput("no training histories of sparse-method runs")
    targets = sorted(mean.loc[mean["method"] != DENSE, "target_sparsity"].unique())
    methods = method_order(m for m in mean["method"].unique() if m != DENSE)
    colors = method_colors(methods + [DENSE])
    dense = mean[mean["method"] == DENSE]
    with plt.rc_context(RC):
        fig, axes = plt.subplots(2 * len(groups), len(targets), figsize=(3.0 * len(targets), 1.9 * 2 * len(groups)),
                                 squeeze=False, sharex=True)
        for gi, (ds, arch, dens) in enumerate(groups):
            ref = dense[(dense["dataset"] == ds) & (dense["arch"] == arch)]
            for ti, tgt in enumerate(targets):
                ax_acc, ax_sp = axes[2 * gi][ti], axes[2 * gi + 1][ti]
                sel = mean[(mean["dataset"] == ds) & (mean["arch"] == arch) & (mean["initial_density"] == dens)
                           & (mean["target_sparsity"] == tgt)]
                if len(ref):
                    ax_acc.plot(ref["epoch"], ref["test_acc"], color=colors[DENSE], ls="--", lw=0.9, label="dense")
                for m in methods:
                    sm = sel[sel["method"] == m]
                    if len(sm):
                        ax_acc.plot(sm["epoch"], sm["test_acc"], color=colors[m], lw=0.9, label=m)
                        ax_sp.plot(sm["epoch"], sm["sparsity"], color=colors[m], lw=0.9)
                ax_sp.axhline(tgt, color="k", lw=0.6, ls=":")
                ax_acc.set_title(f"{ds} {arch}, {start_label(dens)}, target {_pct(tgt)}")
                ax_sp.set_ylim(-0.02, 1.02)
                if ti == 0:
                    ax_acc.set_ylabel("test acc. (%)")
                    ax_sp.set_ylabel("sparsity")
                if gi == len(groups) - 1:
                    ax_sp.set_xlabel("epoch")
        _figure_legend(fig, axes)
        _adjust(fig, top=0.5, bottom=0.45, hspace=0.35, wspace=0.22)
        return _save(fig, out_dir, "training_curves")


@register("layer_sparsity", "figure", "per-layer sparsity profile (seed mean per method), from per_layer_sparsity")
def layer_sparsity(ctx: Context, out_dir: Path) -> list[Path]:
    ls = ctx.layer_sparsity
    ls = ls[(ls["status"] == "completed") & (ls["method"] != DENSE)] if not ls.empty else ls
    if ls.empty:
        raise SkipOutput("no per-layer sparsity in these records")
    mean = (ls.groupby(list(SETTING_KEYS) + ["method", "layer_index"], sort=True)["sparsity"].mean().reset_index())
    groups = _groups(mean)
    targets = sorted(mean["target_sparsity"].unique())
    methods = method_order(mean["method"].unique())
    colors = method_colors(methods)
    # Layer names for tick labels: from the first run (in key order) of each architecture.
    first = ls.drop_duplicates(["arch", "layer_index"]).sort_values(["arch", "layer_index"])
    names = {arch: g["layer"].tolist() for arch, g in first.groupby("arch")}
    with plt.rc_context(RC):
        fig, axes = plt.subplots(len(groups), len(targets), figsize=(3.6 * len(targets), 2.4 * len(groups)),
                                 squeeze=False)
        for gi, (ds, arch, dens) in enumerate(groups):
            for ti, tgt in enumerate(targets):
                ax = axes[gi][ti]
                sel = mean[(mean["dataset"] == ds) & (mean["arch"] == arch) & (mean["initial_density"] == dens)
                           & (mean["target_sparsity"] == tgt)]
                for m in methods:
                    sm = sel[sel["method"] == m]
                    if len(sm):
                        ax.plot(sm["layer_index"], sm["sparsity"], color=colors[m], lw=0.9, marker=".", ms=2, label=m)
                ax.axhline(tgt, color="k", lw=0.6, ls=":")
                ax.set_ylim(-0.02, 1.02)
                ax.set_title(f"{ds} {arch}, {start_label(dens)}, target {_pct(tgt)}")
                nl = len(names.get(arch, []))
                step = max(1, math.ceil(nl / 8))
                ticks = list(range(0, nl, step))
                ax.set_xticks(ticks, [names[arch][i] for i in ticks], rotation=60, ha="right", fontsize=5)
                if ti == 0:
                    ax.set_ylabel("layer sparsity")
        _figure_legend(fig, axes)
        _adjust(fig, top=0.5, bottom=0.9, hspace=0.9, wspace=0.2)
        return _save(fig, out_dir, "layer_sparsity")

"""Figures (matplotlib, Agg backend), one registry entry each, saved as PNG (fixed dpi, no Software
metadata) and PDF (no dates) so the same records give the same bytes.

Every figure names its protocol's scale (architecture and width, epochs, training images, dense
accuracy) and uses one colour-blind-safe style per method (Paul Tol's "muted" colours, each method with
its own marker; a variant such as ``annealed:r0=0.01`` keeps its method's colour with a hollow marker
and a dashed line), the same in every figure.
"""

from __future__ import annotations

import math
import textwrap
from fractions import Fraction
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display, no GPU: figures are files

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from .formatting import p_is, save_figure, save_figure_pdf  # noqa: E402
from .ranks import cd_cliques, nemenyi_cd  # noqa: E402
from .records import DENSE, SETTING_KEYS, method_order, setting_label, start_label  # noqa: E402
from .registry import Context, SkipOutput, register  # noqa: E402

DPI = 120
#: Fixed style, independent of the user's matplotlibrc defaults that matter for layout.
RC = {
    "figure.dpi": DPI, "savefig.dpi": DPI, "font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8,
    "legend.fontsize": 7, "xtick.labelsize": 7, "ytick.labelsize": 7, "axes.grid": True, "grid.alpha": 0.3,
    "axes.spines.top": False, "axes.spines.right": False, "svg.hashsalt": "fggp-repro", "path.simplify": True,
    "pdf.fonttype": 42,
}

#: Paul Tol's colour-blind-safe "muted" scheme (https://personal.sron.nl/~pault/), one colour per base method.
TOL_MUTED = {"wine": "#882255", "indigo": "#332288", "cyan": "#88CCEE", "teal": "#44AA99", "sand": "#DDCC77",
             "olive": "#999933", "purple": "#AA4499", "green": "#117733", "rose": "#CC6677"}
_BASE_STYLE = {
    "fggp": (TOL_MUTED["wine"], "o"), "annealed": (TOL_MUTED["indigo"], "s"), "gf-annealed": (TOL_MUTED["cyan"], "^"),
    "mf-fixed": (TOL_MUTED["teal"], "v"), "gmp": (TOL_MUTED["sand"], "D"), "gmp-mt": (TOL_MUTED["olive"], "P"),
    "granet": (TOL_MUTED["purple"], "X"), "random": (TOL_MUTED["green"], "*"),
}
_EXTRA = [(TOL_MUTED["rose"], "h"), ("#777777", "p"), (TOL_MUTED["wine"], "<"), (TOL_MUTED["indigo"], ">")]


def method_style(method: str, extras: list[str] | None = None) -> dict:
    """Colour, marker, line style and marker face of a method, fixed across figures.

    Known methods have their own colour and marker; ``method:field=value`` variants keep their method's
    colour and marker, hollow and dashed; dense is black and dashed; unknown methods take the extra
    styles in the order of ``extras``."""
    if method == DENSE:
        return dict(color="#000000", marker="_", ls="--", mfc="#000000")
    base = method.split(":")[0]
    if base in _BASE_STYLE:
        color, marker = _BASE_STYLE[base]
    else:
        i = (extras or [base]).index(base) if base in (extras or []) else 0
        color, marker = _EXTRA[i % len(_EXTRA)]
    variant = ":" in method
    return dict(color=color, marker=marker, ls="--" if variant else "-", mfc="white" if variant else color)


def method_colors(methods) -> dict[str, str]:
    """The colour of each method (see :func:`method_style`)."""
    extras = sorted({m.split(":")[0] for m in methods if m.split(":")[0] not in _BASE_STYLE and m != DENSE})
    return {m: method_style(m, extras)["color"] for m in methods}


def _styles(methods) -> dict[str, dict]:
    extras = sorted({m.split(":")[0] for m in methods if m.split(":")[0] not in _BASE_STYLE and m != DENSE})
    return {m: method_style(m, extras) for m in methods}


def _pct(x: float) -> str:
    return f"{round(100 * x, 6):g}%"


def _save(fig, out_dir: Path, name: str) -> list[Path]:
    try:
        return [save_figure(fig, Path(out_dir) / f"{name}.png", dpi=DPI),
                save_figure_pdf(fig, Path(out_dir) / f"{name}.pdf")]
    finally:
        plt.close(fig)


def _adjust(fig, *, left=0.7, right=0.15, top=0.55, bottom=0.55, hspace=0.55, wspace=0.25) -> None:
    """Fixed margins in inches. tight_layout would draw the whole figure once more just to measure
    it, doubling the time of the many-panel figures."""
    w, h = fig.get_size_inches()
    fig.subplots_adjust(left=left / w, right=1 - right / w, top=1 - top / h, bottom=bottom / h,
                        hspace=hspace, wspace=wspace)


def _caption_lines(ctx: Context, text: str, width_in: float) -> list[str]:
    chars = max(60, int(width_in * 18))
    return textwrap.wrap(text, chars) + textwrap.wrap(ctx.scale(), chars)


def _caption_height(ctx: Context, text: str, width_in: float) -> float:
    """Inches the caption of :func:`_caption` takes at the foot of a figure ``width_in`` wide."""
    return 0.11 * len(_caption_lines(ctx, text, width_in)) + 0.05


def _caption(fig, ctx: Context, text: str, width_in: float | None = None) -> None:
    """The figure's caption at its foot: what it shows, then the protocol's scale."""
    w = width_in or fig.get_size_inches()[0]
    lines = _caption_lines(ctx, text, w)
    fig.text(0.5, 0.005, "\n".join(lines), ha="center", va="bottom", fontsize=6.5)


def _figure_legend(fig, axes, ncol: int = 9) -> None:
    """One legend above all panels, each label once, in the order the panels first use it."""
    handles, labels = [], []
    for ax in np.ravel(axes):
        for hd, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels and not lab.startswith("_"):
                handles.append(hd)
                labels.append(lab)
    fig.legend(handles, labels, loc="upper center", ncol=min(len(labels), ncol), frameon=False,
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
    sty = _styles(methods + [DENSE])
    panels = _groups(done)
    rows = sorted({(d, a) for d, a, _ in panels})
    cols = sorted({i for _, _, i in panels}, reverse=True)
    targets = sorted(done.loc[done["method"] != DENSE, "target_sparsity"].unique())
    xpos = {t: i for i, t in enumerate(targets)}
    width = 0.7
    offs = {m: (j - (len(methods) - 1) / 2) * width / max(len(methods), 1) for j, m in enumerate(methods)}
    with plt.rc_context(RC):
        fw = max(3.4 * len(cols), 5.4)
        fig, axes = plt.subplots(len(rows), len(cols), figsize=(fw, 2.8 * len(rows) + 0.5),
                                 squeeze=False, sharey="row")
        for ri, (ds, arch) in enumerate(rows):
            dense = s[(s["method"] == DENSE) & (s["dataset"] == ds) & (s["arch"] == arch)]
            for ci, dens in enumerate(cols):
                ax = axes[ri][ci]
                ax.set_title(f"{ds} {arch}, {start_label(dens)}")
                for _, d in dense.iterrows():
                    if d["n"] > 0:
                        ax.axhline(d["mean"], color=sty[DENSE]["color"], ls="--", lw=1, label="dense")
                        if d["n"] > 1:
                            ax.axhspan(d["ci_low"], d["ci_high"], color="#000000", alpha=0.08, lw=0)
                cell = done[(done["dataset"] == ds) & (done["arch"] == arch) & (done["initial_density"] == dens)]
                summ = s[(s["dataset"] == ds) & (s["arch"] == arch) & (s["initial_density"] == dens)]
                n_div = int(((runs["dataset"] == ds) & (runs["arch"] == arch) & (runs["initial_density"] == dens)
                             & (runs["status"] == "diverged")).sum())
                for m in methods:
                    st_ = sty[m]
                    pts = cell[cell["method"] == m]
                    if len(pts):
                        ax.scatter(pts["target_sparsity"].map(xpos) + offs[m], pts["test_acc"], s=7,
                                   color=st_["color"], alpha=0.45, lw=0)
                    sm = summ[(summ["method"] == m) & (summ["n"] > 0)].sort_values("target_sparsity")
                    if len(sm):
                        x = sm["target_sparsity"].map(xpos).to_numpy(float) + offs[m]
                        y = sm["mean"].to_numpy(float)
                        err = np.vstack([y - sm["ci_low"].to_numpy(float), sm["ci_high"].to_numpy(float) - y])
                        ax.errorbar(x, y, yerr=np.nan_to_num(err), color=st_["color"], marker=st_["marker"], ms=4,
                                    mfc=st_["mfc"], ls=st_["ls"], lw=1, capsize=2, label=m)
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
        _caption(fig, ctx, f"Points: seeds; markers: mean with {conf}% t-interval; dashed line and band: dense "
                           f"mean and its interval.")
        _adjust(fig, top=0.6, bottom=1.0, hspace=0.45, wspace=0.12)
        return _save(fig, out_dir, "accuracy_vs_sparsity")


@register("cd_diagram", "figure", "critical-difference diagram of the audit's ranking: Nemenyi CD bar, maximal cliques")
def cd_diagram(ctx: Context, out_dir: Path) -> list[Path]:
    from .ranking import friedman_of_scores
    from .tables import rank_note

    rk = ctx.ranking()
    k, n = len(rk.methods), len(rk.settings)
    if k < 2 or n < 1:
        raise SkipOutput("nothing to rank")
    cd = nemenyi_cd(k, n, ctx.alpha)
    ranks = pd.Series(np.asarray(rk.observed, float), index=rk.methods).sort_values(kind="mergesort")
    ranks = ranks.reindex(sorted(ranks.index, key=lambda m: (ranks[m], m)))
    cliques = cd_cliques(ranks, cd)
    _, p, _, p_id = friedman_of_scores(rk.ranks)
    names = list(ranks.index)
    half = math.ceil(k / 2)
    caption = (rank_note(ctx, rk) + " Bars join methods whose average ranks differ by less than the Nemenyi critical "
               "difference (conservative when each setting's ranks are means over its seeds); shown for reference: "
               "claim 3 reads the resampling (rank_chart).")
    foot = _caption_height(ctx, caption, 6.4)
    with plt.rc_context({**RC, "axes.grid": False}):
        height = 1.4 + foot + 0.25 * max(half, k - half) + 0.1 * len(cliques)
        fig, ax = plt.subplots(figsize=(6.4, height))
        lo, hi = 1, k
        # room for the method labels left and right of the rank axis
        room = 0.3 * (k - 1) + 1.2
        ax.set_xlim(lo - room, hi + room)
        ax.hlines(0, lo, hi, color="k", lw=1)
        for t in range(lo, hi + 1):
            ax.vlines(t, 0, 0.08, color="k", lw=1)
            ax.text(t, 0.12, str(t), ha="center", va="bottom", fontsize=7)
        ax.hlines(0.55, lo, lo + cd, color="k", lw=1.5)
        ax.vlines([lo, lo + cd], 0.5, 0.6, color="k", lw=1)
        ax.text(lo + cd / 2, 0.63, f"CD = {cd:.3f}", ha="center", va="bottom", fontsize=7)
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
        for j, cl in enumerate(cliques):
            y = -0.12 - 0.09 * j
            ax.hlines(y, float(ranks[cl[0]]) - 0.03, float(ranks[cl[-1]]) + 0.03, color="k", lw=2.5)
        ax.set_ylim(top - step * max(half, k - half) - 0.05, 0.9)
        ax.axis("off")
        title = f"average ranks over {n} settings (1 = best)"
        if np.isfinite(p):
            title += f"; Friedman {p_is(p)}, Iman–Davenport {p_is(p_id)}"
        ax.set_title(title, fontsize=7)
        fig.subplots_adjust(left=0.02, right=0.98, top=1 - 0.3 / height, bottom=(foot + 0.1) / height)
        _caption(fig, ctx, caption)
        return _save(fig, out_dir, "cd_diagram")


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def rank_chart_data(ctx: Context) -> tuple[pd.DataFrame, int, str]:
    """What the rank chart draws: one row per method, best first (``rank``, ``low``, ``high``, ``p_best``), the
    number of settings ranked, and the caption's account of them: the audit's ranking (claim 3), the same the
    ranks table and the CD diagram show. A percentile interval need not contain its own estimate, so the chart
    draws both ends."""
    from .tables import rank_note

    rk = ctx.ranking()
    conf = ctx.claim("best_average_rank").rank_confidence
    lo, hi = rk.interval(conf)
    rows = pd.DataFrame({"method": rk.methods, "rank": np.asarray(rk.observed, float), "low": lo, "high": hi,
                         "p_best": rk.p_best})
    rows = rows.sort_values(["rank", "method"], kind="mergesort").reset_index(drop=True)
    what = (rank_note(ctx, rk) + f" Whiskers: {int(round(conf * 100))}% percentile intervals; P(best): share of "
            f"resamples in which the method has the best average rank.")
    return rows, len(rk.settings), what


@register("rank_chart", "figure", "average rank per method with whole-seed bootstrap intervals and P(best)")
def rank_chart(ctx: Context, out_dir: Path) -> list[Path]:
    rows, n, what = rank_chart_data(ctx)
    k = len(rows)
    sty = _styles(list(rows["method"]))
    with plt.rc_context(RC):
        foot = _caption_height(ctx, what, 6.0)
        fig, ax = plt.subplots(figsize=(6.0, 1.0 + foot + 0.3 * k))
        for yi, row in rows.iterrows():
            m, v = row["method"], float(row["rank"])
            st_ = sty[m]
            ax.barh(yi, v, color=st_["color"], height=0.6, alpha=0.85 if st_["ls"] == "-" else 0.45,
                    hatch=None if st_["ls"] == "-" else "//", edgecolor=st_["color"])
            a, b = float(row["low"]), float(row["high"])
            ax.errorbar((a + b) / 2, yi, xerr=(b - a) / 2, fmt="none", color="k", lw=1, capsize=3)
            label = f"{v:.2f}  P(best) {row['p_best']:.2f}"
            ax.text(k + 0.2, yi, label, va="center", ha="left", fontsize=7)
        ax.set_yticks(range(k), list(rows["method"]))
        ax.invert_yaxis()
        ax.set_xlim(0, k + 0.1)
        ax.spines["right"].set_visible(False)
        ax.set_xlabel("average rank (1 = best)")
        ax.set_title(f"{_n(n, 'setting')}, {k} methods")
        _adjust(fig, left=1.3, right=1.5, top=0.35, bottom=foot + 0.4)
        _caption(fig, ctx, what)
        return _save(fig, out_dir, "rank_chart")


@register("forest_fggp", "figure",
          "forest plot of fggp minus each other method per setting: Holm intervals on one shared scale, ±delta band")
def forest_fggp(ctx: Context, out_dir: Path) -> list[Path]:
    from .tables import _decided_comparisons

    c = _decided_comparisons(ctx)
    c = c[c["n_pairs"] > 0] if not c.empty else c
    if c.empty:
        raise SkipOutput(f"no seed-paired runs of {ctx.method} and another method")
    cfg = ctx.claim("outperforms_in_most_settings")
    delta = float(cfg.delta)
    baselines = method_order(c["baseline"].unique())
    sty = _styles(baselines)
    settings = c[list(SETTING_KEYS)].drop_duplicates().sort_values(
        ["protocol", "dataset", "arch", "initial_density", "target_sparsity"], ascending=[True, True, True, False, True],
        kind="mergesort")
    keys = [tuple(r) for r in settings.itertuples(index=False, name=None)]
    ypos = {k: i for i, k in enumerate(keys)}
    ncol = min(4, len(baselines))
    nrow = math.ceil(len(baselines) / ncol)
    lo_all = np.concatenate([c["ci_holm_low"].to_numpy(float), c["mean_diff"].to_numpy(float), [-delta]])
    hi_all = np.concatenate([c["ci_holm_high"].to_numpy(float), c["mean_diff"].to_numpy(float), [delta]])
    xmin, xmax = np.nanmin(lo_all), np.nanmax(hi_all)
    pad = 0.05 * (xmax - xmin)
    with plt.rc_context(RC):
        panel_h = max(0.7, 0.2 * len(keys))
        caption = (f"Paired differences (mean over seeds) with the interval at the levels Holm's procedure tested each "
                   f"setting at (across settings, per baseline; α = {ctx.alpha}): filled marker ⇔ the interval "
                   f"excludes 0 ⇔ significant. Against dense the tests are one-sided each way ({ctx.method} > dense, "
                   f"{ctx.method} < dense): each end is its one-sided bound. Grey band: ±{delta:g} pp, the smallest "
                   f"effect of interest; ≡: equivalent (no significant difference, TOST). Seed pairs with a run at "
                   f"chance level are set aside. One x-scale for all panels.")
        fw = 2.6 * ncol + 1.9
        foot = _caption_height(ctx, caption, fw)
        fig, axes = plt.subplots(nrow, ncol, figsize=(fw, 0.75 + foot + nrow * panel_h + (nrow - 1) * 0.8),
                                 squeeze=False, sharey=True, sharex=True)
        for i, b in enumerate(baselines):
            ax = axes[i // ncol][i % ncol]
            cb = c[c["baseline"] == b]
            col = sty[b]["color"] if b != DENSE else "#000000"
            y = np.array([ypos[tuple(r)] for r in cb[list(SETTING_KEYS)].itertuples(index=False, name=None)])
            d = cb["mean_diff"].to_numpy(float)
            lo, hi = cb["ci_holm_low"].to_numpy(float), cb["ci_holm_high"].to_numpy(float)
            ax.axvspan(-delta, delta, color="#999999", alpha=0.15, lw=0)
            ax.axvline(0, color="k", lw=0.8)
            ax.hlines(y, np.where(np.isfinite(lo), lo, d), np.where(np.isfinite(hi), hi, d), color=col, lw=1.2)
            sig = cb["class"].isin(["ahead", "ahead <d", "behind"]).to_numpy()
            mk = sty[b]["marker"] if b != DENSE else "o"
            size = 34 if mk == "*" else 18  # a star of the same area reads smaller
            ax.scatter(d[sig], y[sig], color=col, marker=mk, s=size, zorder=3, label="significant (Holm)")
            ax.scatter(d[~sig], y[~sig], facecolor="white", edgecolor=col, marker=mk, s=size, zorder=3,
                       label="not significant")
            for yy, dd, cl in zip(y, d, cb["class"].to_numpy()):
                if cl == "equivalent":
                    ax.text(dd, yy - 0.25, "≡", ha="center", va="bottom", fontsize=7, color=col)
            side = " (one-sided)" if b == DENSE else ""
            ax.set_title(f"{ctx.method} − {b}{side}")
            ax.set_xlabel("difference (pp)")
            ax.set_yticks(range(len(keys)), [setting_label(*k[:4], with_dataset=False) for k in keys])
            ax.set_ylim(len(keys) - 0.5, -0.5)
            ax.set_xlim(xmin - pad, xmax + pad)
            ax.tick_params(labelbottom=True)  # every panel keeps the shared scale's labels
        for j in range(len(baselines), nrow * ncol):
            axes[j // ncol][j % ncol].axis("off")
        _caption(fig, ctx, caption)
        _adjust(fig, left=1.9, top=0.35, bottom=foot + 0.4, hspace=0.8 / panel_h, wspace=0.1)
        return _save(fig, out_dir, "forest_fggp")


def _pruning_window_epochs(runs: pd.DataFrame, ds: str, arch: str) -> float:
    """T_end in epochs for the sparse runs of one dataset/arch (NaN when unknown or not unique)."""
    r = runs[(runs["dataset"] == ds) & (runs["arch"] == arch) & (runs["method"] != DENSE)
             & np.isfinite(runs["t_end"]) & np.isfinite(runs["iterations"]) & np.isfinite(runs["epochs"])]
    if r.empty:
        return math.nan
    v = (r["t_end"] / r["iterations"] * r["epochs"]).unique()
    return float(v[0]) if len(v) == 1 else math.nan


@register("training_curves", "figure",
          "test accuracy and sparsity vs epoch: seed mean and range per method, pruning window marked")
def training_curves(ctx: Context, out_dir: Path) -> list[Path]:
    h = ctx.histories
    if h.empty:
        raise SkipOutput("no training histories in these records")
    h = h[h["status"] == "completed"]
    if h.empty:
        raise SkipOutput("no training histories of completed runs")
    g = h.groupby(list(SETTING_KEYS) + ["method", "epoch"], sort=True)
    mean = g[["test_acc", "sparsity"]].mean().reset_index()
    lo = g["test_acc"].min().reset_index(name="lo")
    hi = g["test_acc"].max().reset_index(name="hi")
    mean = mean.merge(lo, on=list(SETTING_KEYS) + ["method", "epoch"]).merge(hi, on=list(SETTING_KEYS) + ["method", "epoch"])
    groups = _groups(mean)
    if not groups:
        raise SkipOutput("no training histories of sparse-method runs")
    targets = sorted(mean.loc[mean["method"] != DENSE, "target_sparsity"].unique())
    methods = method_order(m for m in mean["method"].unique() if m != DENSE)
    sty = _styles(methods + [DENSE])
    dense = mean[mean["method"] == DENSE]
    with plt.rc_context(RC):
        n_epochs = float(mean["epoch"].max())
        markevery = max(1, int(round(n_epochs / 10)))  # a dozen markers a line, whatever the run length
        fw = max(3.0 * len(targets), 5.6)
        fig, axes = plt.subplots(2 * len(groups), len(targets),
                                 figsize=(fw, 1.9 * 2 * len(groups) + 0.9), squeeze=False, sharex=True)
        for gi, (ds, arch, dens) in enumerate(groups):
            ref = dense[(dense["dataset"] == ds) & (dense["arch"] == arch)]
            t_end = _pruning_window_epochs(ctx.runs, ds, arch)
            for ti, tgt in enumerate(targets):
                ax_acc, ax_sp = axes[2 * gi][ti], axes[2 * gi + 1][ti]
                sel = mean[(mean["dataset"] == ds) & (mean["arch"] == arch) & (mean["initial_density"] == dens)
                           & (mean["target_sparsity"] == tgt)]
                for ax in (ax_acc, ax_sp):
                    if np.isfinite(t_end):
                        ax.axvspan(0, t_end, color="#999999", alpha=0.12, lw=0,
                                   label="pruning (until T_end)" if ax is ax_acc else "_")
                        ax.axvline(t_end, color="#666666", lw=0.6, ls=":")
                if len(ref):
                    ax_acc.plot(ref["epoch"], ref["test_acc"], color="#000000", ls="--", lw=0.9, label="dense")
                for m in methods:
                    sm = sel[sel["method"] == m]
                    if len(sm):
                        st_ = sty[m]
                        ax_acc.fill_between(sm["epoch"], sm["lo"], sm["hi"], color=st_["color"], alpha=0.15, lw=0)
                        ax_acc.plot(sm["epoch"], sm["test_acc"], color=st_["color"], ls=st_["ls"], lw=0.9,
                                    marker=st_["marker"], ms=2.5, mfc=st_["mfc"], markevery=markevery, label=m)
                        ax_sp.plot(sm["epoch"], sm["sparsity"], color=st_["color"], ls=st_["ls"], lw=0.9)
                ax_sp.axhline(tgt, color="k", lw=0.6, ls=":")
                ax_acc.set_title(f"{ds} {arch}, {start_label(dens)}, target {_pct(tgt)}")
                ax_sp.set_ylim(-0.02, 1.02)
                ax_sp.xaxis.set_major_locator(MaxNLocator(integer=True))
                ax_acc.set_xlim(0, float(mean["epoch"].max()) + 0.2)
                if ti == 0:
                    ax_acc.set_ylabel("test acc. (%)")
                    ax_sp.set_ylabel("sparsity")
                if gi == len(groups) - 1:
                    ax_sp.set_xlabel("epoch (end of)")
        _figure_legend(fig, axes, ncol=max(3, int(fw / 1.1)))
        _caption(fig, ctx, "Lines: seed mean at the end of each epoch; bands: range over seeds; grey: the pruning "
                           "window (up to T_end); dotted horizontal line: the target sparsity.")
        _adjust(fig, top=0.75, bottom=0.95, hspace=0.35, wspace=0.22)
        return _save(fig, out_dir, "training_curves")


#: Module indices of the 16 convolutions in VGG-19-BN's ``features`` (configuration E with BN and ReLU).
_VGG19_CONVS = (0, 3, 7, 10, 14, 17, 20, 23, 27, 30, 33, 36, 40, 43, 46, 49)


def layer_sizes(layer_sparsity: pd.DataFrame, max_size: int = 10 ** 8) -> dict[tuple, int]:
    """Weights per prunable tensor, (arch, layer) -> count, inferred from the recorded sparsities: each is
    zeros / size, so the size is the least common multiple of their reduced denominators over every run
    (exact with enough distinct sparsities; a layer whose inferred size is implausible is left out)."""
    out = {}
    ls = layer_sparsity[np.isfinite(layer_sparsity["sparsity"])]
    for (arch, layer), g in ls.groupby(["arch", "layer"], sort=True):
        den = 1
        for v in g["sparsity"].unique():
            q = Fraction(float(v)).limit_denominator(max_size).denominator
            den = den * q // math.gcd(den, q)
            if den > max_size:
                break
        if 1 < den <= max_size:
            out[(arch, layer)] = den
    return out


def _short_size(n: int) -> str:
    if n >= 10 ** 6:
        return f"{n / 10 ** 6:.2g}M"
    if n >= 10 ** 3:
        return f"{n / 10 ** 3:.3g}k"
    return str(n)


def readable_layer(arch: str, layer: str) -> str:
    """``features.3.weight`` of vgg19 -> ``conv2``; ``classifier.weight`` -> ``fc``; otherwise the name
    without ``.weight``."""
    name = layer[:-len(".weight")] if layer.endswith(".weight") else layer
    if arch.startswith("vgg19"):
        parts = name.split(".")
        if len(parts) == 2 and parts[0] == "features" and parts[1].isdigit() and int(parts[1]) in _VGG19_CONVS:
            return f"conv{_VGG19_CONVS.index(int(parts[1])) + 1}"
    if name in ("classifier", "fc", "linear"):
        return "fc"
    return name


@register("layer_sparsity", "figure",
          "per-layer sparsity profile (seed mean per method) on a log-odds axis, layers named with their sizes")
def layer_sparsity(ctx: Context, out_dir: Path) -> list[Path]:
    ls = ctx.layer_sparsity
    ls = ls[(ls["status"] == "completed") & (ls["method"] != DENSE)] if not ls.empty else ls
    if ls.empty:
        raise SkipOutput("no per-layer sparsity in these records")
    mean = (ls.groupby(list(SETTING_KEYS) + ["method", "layer_index"], sort=True)["sparsity"].mean().reset_index())
    groups = _groups(mean)
    targets = sorted(mean["target_sparsity"].unique())
    methods = method_order(mean["method"].unique())
    sty = _styles(methods)
    first = ls.drop_duplicates(["arch", "layer_index"]).sort_values(["arch", "layer_index"])
    names = {arch: g["layer"].tolist() for arch, g in first.groupby("arch")}
    sizes = layer_sizes(ls)
    eps = 1e-3
    with plt.rc_context(RC):
        fw = max(3.8 * len(targets), 5.6)
        fig, axes = plt.subplots(len(groups), len(targets), figsize=(fw, 2.6 * len(groups) + 0.9), squeeze=False)
        for gi, (ds, arch, dens) in enumerate(groups):
            labels = [readable_layer(arch, n) + (f" ({_short_size(sizes[(arch, n)])})" if (arch, n) in sizes else "")
                      for n in names.get(arch, [])]
            for ti, tgt in enumerate(targets):
                ax = axes[gi][ti]
                sel = mean[(mean["dataset"] == ds) & (mean["arch"] == arch) & (mean["initial_density"] == dens)
                           & (mean["target_sparsity"] == tgt)]
                for m in methods:
                    sm = sel[sel["method"] == m]
                    if len(sm):
                        st_ = sty[m]
                        ax.plot(sm["layer_index"], np.clip(sm["sparsity"], eps, 1 - eps / 10), color=st_["color"],
                                ls=st_["ls"], lw=0.9, marker=st_["marker"], ms=2.5, mfc=st_["mfc"], label=m)
                ax.axhline(tgt, color="k", lw=0.6, ls=":")
                ax.set_yscale("logit")
                ax.set_ylim(eps, 1 - eps / 10)
                ax.set_yticks([0.01, 0.1, 0.5, 0.9, 0.99, 0.999], ["1%", "10%", "50%", "90%", "99%", "99.9%"])
                ax.yaxis.set_minor_locator(matplotlib.ticker.NullLocator())
                ax.set_title(f"{ds} {arch}, {start_label(dens)}, target {_pct(tgt)}")
                ax.set_xticks(range(len(labels)), labels, rotation=70, ha="right", fontsize=5.5)
                if ti == 0:
                    ax.set_ylabel("layer sparsity (log-odds axis)")
        _figure_legend(fig, axes, ncol=max(3, int(fw / 1.1)))
        _caption(fig, ctx, "Seed-mean fraction of each prunable tensor's weights that are zero, on a log-odds axis "
                           "(so that 97% and 99.8% are far apart); dotted: the target sparsity. Layer sizes "
                           "(weights) are inferred from the recorded sparsities.")
        _adjust(fig, top=0.7, bottom=1.55, hspace=1.0, wspace=0.25)
        return _save(fig, out_dir, "layer_sparsity")

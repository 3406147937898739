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
    """PNG and PDF, each cut to what is drawn (nothing outside the canvas, a legend included, is ever clipped)."""
    try:
        return [save_figure(fig, Path(out_dir) / f"{name}.png", dpi=DPI, tight=True),
                save_figure_pdf(fig, Path(out_dir) / f"{name}.pdf", tight=True)]
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


def _legend_entries(axes, extra=()) -> tuple[list, list]:
    handles, labels = [], []
    for ax in np.ravel(axes):
        for hd, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels and not lab.startswith("_"):
                handles.append(hd)
                labels.append(lab)
    for hd, lab in extra:
        handles.append(hd)
        labels.append(lab)
    return handles, labels


def _legend_shape(labels: list[str], width_in: float) -> tuple[int, float]:
    """(columns, height in inches) of a legend of ``labels`` in the figure's legend font that fits ``width_in``:
    every column as wide as the longest label (a conservative estimate of matplotlib's own layout)."""
    if not labels:
        return 1, 0.0
    widths = [0.056 * len(x) + 0.5 for x in labels]  # text at 7 pt, plus handle, padding and column spacing
    for ncol in range(len(labels), 0, -1):
        rows = math.ceil(len(labels) / ncol)
        cols = [widths[i:i + rows] for i in range(0, len(widths), rows)]  # matplotlib fills columns first
        if sum(max(c) for c in cols) <= width_in - 0.3 or ncol == 1:
            return len(cols), 0.2 * rows + 0.08
    return 1, 0.2 * len(labels) + 0.08


def _figure_legend(fig, axes, extra=()) -> float:
    """One legend above all panels, each label once, in the order the panels first use it (then ``extra``, a list
    of (handle, label)), in as many rows as the figure's width needs: never wider than the figure. Returns the
    inches it takes at the top of the figure."""
    handles, labels = _legend_entries(axes, extra)
    if not labels:
        return 0.0
    ncol, height = _legend_shape(labels, fig.get_size_inches()[0])
    fig.legend(handles, labels, loc="upper center", ncol=ncol, frameon=False, bbox_to_anchor=(0.5, 1.0))
    return height


def _groups(df: pd.DataFrame) -> list[tuple]:
    """(dataset, arch, initial_density) panels-rows present among sparse runs, sorted."""
    g = df.loc[df["method"] != DENSE, ["dataset", "arch", "initial_density"]].drop_duplicates()
    g = g.sort_values(["dataset", "arch", "initial_density"], ascending=[True, True, False], kind="mergesort")
    return [tuple(r) for r in g.itertuples(index=False, name=None)]


# --------------------------------------------------------------------------------------------


def _floor_methods(ctx: Context, methods: list[str]) -> list[str]:
    """The floor methods of the claims file present among ``methods`` (random pruning): drawn on a scale of their
    own."""
    floor = set(ctx.claims["defaults"].get("floor", []))
    return [m for m in methods if m in floor]


def _value_range(values, pad: float = 0.06, least: float = 0.4) -> tuple[float, float]:
    v = np.concatenate([np.asarray(x, float).ravel() for x in values]) if len(values) else np.array([])
    v = v[np.isfinite(v)]
    if v.size == 0:
        return 0.0, 100.0
    lo, hi = float(v.min()), float(v.max())
    span = max(hi - lo, least)
    mid = (lo + hi) / 2
    lo, hi = min(lo, mid - span / 2), max(hi, mid + span / 2)
    return lo - pad * span, hi + pad * span


#: Marker of a run at chance level, drawn at the lower edge of its panel (off its scale).
OFF_SCALE = dict(marker="v", s=22, edgecolor="#000000", linewidths=0.5, zorder=4, clip_on=False)


def _off_scale_label(accs) -> str:
    accs = sorted(float(a) for a in accs)
    if len(accs) <= 2:
        return ", ".join(f"{a:.1f}" for a in accs) + " %"
    return f"{len(accs)} runs, {accs[0]:.1f}–{accs[-1]:.1f} %"


#: Inches a line of the off-scale labels (5.5 pt) takes, and the width of one of its characters.
_OFF_LINE, _OFF_CHAR = 0.1, 0.043


def _off_scale_layout(runs: pd.DataFrame, x_of, x_per_inch: float, xlim: tuple[float, float]):
    """(x of the marker, method, label, x of the label, line) of each group of runs at chance level (one method at
    one target sparsity): labels centred over their markers within ``xlim``, left to right, a label that would
    overlap the one before it on a line going one line up."""
    items = sorted(((x_of(m, t), m, _off_scale_label(g["test_acc"]))
                    for (m, t), g in runs.groupby(["method", "target_sparsity"], sort=True)), key=lambda r: r[0])
    ends: list[float] = []  # right end of the last label on each line
    out = []
    for x, m, label in items:
        half = (_OFF_CHAR * len(label) + 0.04) * x_per_inch / 2
        cx = min(max(x, xlim[0] + half), xlim[1] - half)
        line = next((i for i, e in enumerate(ends) if cx - half > e), len(ends))
        if line == len(ends):
            ends.append(cx + half)
        else:
            ends[line] = cx + half
        out.append((x, m, label, cx, line))
    return out


def _off_scale_lines(layout) -> int:
    return 1 + max((item[-1] for item in layout), default=-1)


def _off_scale_room(lines: int) -> float:
    """Inches under the data that the off-scale markers and ``lines`` lines of labels take."""
    return 0.22 + _OFF_LINE * lines if lines else 0.0


def _off_scale_runs(ax, layout, color_of, y_lo: float, y_per_inch: float) -> None:
    """Runs at chance level as ▼ at the lower edge of ``ax`` (never dropped), each group of a method and setting
    with its accuracies written above, joined to its marker by a thin line."""
    for x, m, label, cx, line in layout:
        ym = y_lo + 0.06 * y_per_inch
        ax.scatter([x], [ym], color=color_of(m), **OFF_SCALE)
        ax.annotate(label, xy=(x, ym + 0.04 * y_per_inch), xytext=(cx, y_lo + (0.2 + _OFF_LINE * line) * y_per_inch),
                    ha="center", va="center", fontsize=5.5, color="#000000", zorder=5, annotation_clip=False,
                    arrowprops=dict(arrowstyle="-", lw=0.4, color="#666666", shrinkA=1.5, shrinkB=0))


@register("accuracy_vs_sparsity", "figure",
          "final test accuracy against target sparsity per architecture and start: every seed, the mean with its "
          "t-interval, the dense reference; random pruning (the floor) on a scale of its own below, runs at chance "
          "level marked at the lower edge")
def accuracy_vs_sparsity(ctx: Context, out_dir: Path) -> list[Path]:
    from matplotlib.lines import Line2D

    from .stats import summarize

    runs = ctx.runs
    done = ctx.completed
    done = done[np.isfinite(done["test_acc"])]
    if done[done["method"] != DENSE].empty:
        raise SkipOutput("no completed sparse-method runs")
    s = ctx.summary()
    ok_runs = runs[~runs["collapsed"].astype(bool)]
    s_ok = ctx.cached(("summary_not_collapsed",), lambda: summarize(ok_runs, "test_acc", ctx.confidence))
    methods = ctx.methods
    floor = _floor_methods(ctx, methods)
    main = [m for m in methods if m not in floor] or floor
    floor = [m for m in floor if m not in main]
    sty = _styles(methods + [DENSE])
    panels = _groups(done)
    rows = sorted({(d, a) for d, a, _ in panels})
    cols = sorted({i for _, _, i in panels}, reverse=True)
    targets = sorted(done.loc[done["method"] != DENSE, "target_sparsity"].unique())
    xpos = {t: i for i, t in enumerate(targets)}
    width = 0.7
    offs = {m: (j - (len(methods) - 1) / 2) * width / max(len(methods), 1) for j, m in enumerate(methods)}

    def x_of(m, t):
        return xpos[t] + offs[m]

    def color_of(m):
        return sty[m]["color"]

    coll_all = done[done["collapsed"].astype(bool)]
    conf = int(round(ctx.confidence * 100))
    caption = (f"Points: the seeds; markers with whiskers: the mean of the runs not at chance level and its {conf}% "
               f"t-interval (the paired accuracy tests set runs at chance level aside; the results table's means "
               f"include them, marked †); dashed line and grey band: the dense mean and its interval. "
               + ("▼ in the shaded band at the foot of a panel: a run at chance level (≤ 11 %), off the scale, its "
                  "accuracy written above it. "
                  if len(coll_all) else "No run is at chance level. ")
               + (f"Lower panels: {', '.join(floor)} (the floor of the comparisons) on a scale of its own."
                  if floor else ""))
    with plt.rc_context(RC):
        fw = max(3.4 * len(cols), 5.4)
        top_h, floor_h = 2.5, 1.25
        heights = [h for _ in rows for h in ([top_h, floor_h] if floor else [top_h])]
        x_per_inch = (len(targets) + 0.2) / ((fw - 0.9) / len(cols))
        foot = _caption_height(ctx, caption, fw)
        extra = [(Line2D([], [], ls="none", marker="v", color="#777777", markeredgecolor="#000000", ms=5),
                  "run at chance level (off scale)")] if len(coll_all) else []
        _, leg_h = _legend_shape([*methods, DENSE] + [lab for _, lab in extra], fw)
        gap = 0.6 if len(rows) > 1 else 0.3  # titles between the rows of architectures
        top, bottom = leg_h + 0.35, foot + 0.5
        fh = sum(heights) + gap * (len(heights) - 1) + top + bottom
        fig = plt.figure(figsize=(fw, fh))
        gs = fig.add_gridspec(len(heights), len(cols), height_ratios=heights)
        drawn = []
        r = 0
        for ds, arch in rows:
            sel_row = (done["dataset"] == ds) & (done["arch"] == arch)
            dense = s[(s["method"] == DENSE) & (s["dataset"] == ds) & (s["arch"] == arch)]
            layers = [(main, r)] + ([(floor, r + 1)] if floor else [])
            for group, ri in layers:
                ax0 = None
                pts_ok = done[sel_row & done["method"].isin(group) & ~done["collapsed"].astype(bool)]
                sm_ok = s_ok[(s_ok["dataset"] == ds) & (s_ok["arch"] == arch) & s_ok["method"].isin(group)
                             & (s_ok["n"] > 0)]
                vals = [pts_ok["test_acc"], sm_ok["ci_low"], sm_ok["ci_high"], sm_ok["mean"]]
                if group is main:
                    for _, d in dense.iterrows():
                        if d["n"] > 0:
                            vals += [[d["mean"]], [d["ci_low"]], [d["ci_high"]]]
                lo, hi = _value_range(vals)
                coll = done[sel_row & done["method"].isin(group) & done["collapsed"].astype(bool)]
                axis_h = top_h if group is main else floor_h
                layouts = {dens: _off_scale_layout(coll[coll["initial_density"] == dens], x_of, x_per_inch,
                                                   (-0.6, len(targets) - 0.4)) for dens in cols}
                need = _off_scale_room(max(_off_scale_lines(v) for v in layouts.values()))
                band = lo  # the data's lower limit: under it, the off-scale band (no ticks there)
                lo -= need / (axis_h - need) * (hi - lo)  # room under the data for the off-scale runs
                y_per_inch = (hi - lo) / axis_h
                for ci, dens in enumerate(cols):
                    ax = fig.add_subplot(gs[ri, ci], sharey=ax0)
                    ax0 = ax0 or ax
                    drawn.append(ax)
                    if group is main:
                        ax.set_title(f"{ds} {arch}, {start_label(dens)}")
                        for _, d in dense.iterrows():
                            if d["n"] > 0:
                                ax.axhline(d["mean"], color=sty[DENSE]["color"], ls="--", lw=1, label="dense")
                                if d["n"] > 1:
                                    ax.axhspan(d["ci_low"], d["ci_high"], color="#000000", alpha=0.08, lw=0)
                    cell = pts_ok[pts_ok["initial_density"] == dens]
                    summ = sm_ok[sm_ok["initial_density"] == dens]
                    for m in group:
                        st_ = sty[m]
                        pts = cell[cell["method"] == m]
                        if len(pts):
                            ax.scatter(pts["target_sparsity"].map(xpos) + offs[m], pts["test_acc"], s=7,
                                       color=st_["color"], alpha=0.45, lw=0)
                        sm = summ[summ["method"] == m].sort_values("target_sparsity")
                        if len(sm):
                            x = sm["target_sparsity"].map(xpos).to_numpy(float) + offs[m]
                            y = sm["mean"].to_numpy(float)
                            err = np.vstack([y - sm["ci_low"].to_numpy(float), sm["ci_high"].to_numpy(float) - y])
                            ax.errorbar(x, y, yerr=np.nan_to_num(err), color=st_["color"], marker=st_["marker"],
                                        ms=4, mfc=st_["mfc"], ls=st_["ls"], lw=1, capsize=2, label=m)
                    ax.set_ylim(lo, hi)
                    if band > lo:
                        ax.axhspan(lo, band, color="#000000", alpha=0.06, lw=0, zorder=0)
                        ax.text(0.01, (band - lo) / (hi - lo) / 2, "off scale", transform=ax.transAxes, ha="left",
                                va="center", fontsize=5.5, color="#555555", rotation=90)
                        if ax is ax0:
                            ax.set_yticks([t for t in ax.get_yticks() if band <= t <= hi])
                            ax.set_ylim(lo, hi)
                    _off_scale_runs(ax, layouts[dens], color_of, lo, y_per_inch)
                    ax.set_xticks(range(len(targets)), [_pct(t) for t in targets])
                    ax.set_xlim(-0.6, len(targets) - 0.4)
                    last = ri == r + len(layers) - 1
                    ax.tick_params(labelbottom=last)
                    if last:
                        ax.set_xlabel("target sparsity")
                        n_div = int(((runs["dataset"] == ds) & (runs["arch"] == arch)
                                     & (runs["initial_density"] == dens) & (runs["status"] == "diverged")).sum())
                        if n_div:
                            ax.text(0.02, 0.03, f"{n_div} diverged run(s) not shown", transform=ax.transAxes,
                                    fontsize=6, color="firebrick")
                    if ci == 0:
                        ax.set_ylabel("final test accuracy (%)" if group is main else
                                      f"{', '.join(group)}:\nits own scale (%)")
                    else:
                        ax.tick_params(labelleft=False)
            r += len(layers)
        _figure_legend(fig, drawn, extra)
        _caption(fig, ctx, caption)
        fig.subplots_adjust(left=0.75 / fw, right=1 - 0.15 / fw, top=1 - top / fh, bottom=bottom / fh,
                            hspace=gap / np.mean(heights), wspace=0.08)
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


@register("rank_chart", "figure",
          "the audit's average rank of each method (1 = best) with its resampling interval and P(best)")
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
            a, b = float(row["low"]), float(row["high"])
            ax.hlines(yi, a, b, color=st_["color"], lw=1.6)
            ax.vlines([a, b], yi - 0.15, yi + 0.15, color=st_["color"], lw=1.2)
            ax.scatter([v], [yi], color=st_["color"], marker=st_["marker"], s=36, zorder=3,
                       facecolor=st_["mfc"] if st_["mfc"] != "white" else "white", edgecolor=st_["color"])
            label = f"{v:.2f}  P(best) {row['p_best']:.2f}"
            ax.text(k + 0.7, yi, label, va="center", ha="left", fontsize=7)
        ax.set_yticks(range(k), list(rows["method"]))
        ax.invert_yaxis()
        ax.set_xlim(0.5, k + 0.5)
        ax.set_xticks(range(1, k + 1))
        ax.spines["right"].set_visible(False)
        ax.set_xlabel("average rank (1 = best)")
        ax.set_title(f"{_n(n, 'setting')}, {k} methods")
        _adjust(fig, left=1.3, right=1.5, top=0.35, bottom=foot + 0.4)
        _caption(fig, ctx, what)
        return _save(fig, out_dir, "rank_chart")


def forest_limits(est, lo, hi, delta: float) -> tuple[float, float]:
    """The x-range of one panel of the forest plot: every estimate, 0 and ±delta, and each interval end unless it
    lies further out than twice the median half-width (at least 2 delta) beyond them: such an end is clipped and
    drawn as an arrow at the edge."""
    est, lo, hi = (np.asarray(x, float) for x in (est, lo, hi))
    core = np.concatenate([est[np.isfinite(est)], [-delta, 0.0, delta]])
    c_lo, c_hi = float(core.min()), float(core.max())
    half = np.concatenate([(est - lo)[np.isfinite(lo)], (hi - est)[np.isfinite(hi)]])
    reach = max(2 * delta, 2 * float(np.median(half))) if half.size else 2 * delta
    ends_lo = lo[np.isfinite(lo)]
    ends_hi = hi[np.isfinite(hi)]
    x_lo = max(float(ends_lo.min()) if ends_lo.size else c_lo, c_lo - reach)
    x_hi = min(float(ends_hi.max()) if ends_hi.size else c_hi, c_hi + reach)
    x_lo, x_hi = min(x_lo, c_lo), max(x_hi, c_hi)
    pad = 0.06 * (x_hi - x_lo)
    return x_lo - pad, x_hi + pad


@register("forest_fggp", "figure",
          "forest plot of fggp minus each other method per setting: the mean paired difference with its Holm "
          "interval, one panel per method on a scale of its own, the ±delta band in each, intervals beyond the "
          "panel drawn as arrows with their ends written")
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
        ["protocol", "dataset", "arch", "initial_density", "target_sparsity"],
        ascending=[True, True, True, False, True], kind="mergesort")
    keys = [tuple(r) for r in settings.itertuples(index=False, name=None)]
    ypos = {k: i for i, k in enumerate(keys)}
    ncol = min(4, len(baselines))
    nrow = math.ceil(len(baselines) / ncol)
    multi = len({k[4] for k in keys}) > 1
    labels = [setting_label(*k[:4], with_dataset=False) + (f" [{k[4]}]" if multi else "") for k in keys]
    with plt.rc_context(RC):
        panel_h = max(0.75, 0.22 * len(keys))
        caption = (f"{ctx.method} minus each method, final accuracy in points, paired on seed: the mean difference "
                   f"with the interval at the levels Holm's procedure tested each setting at (across settings, per "
                   f"method; α = {ctx.alpha}); filled marker ⇔ the interval excludes 0 ⇔ significant. Against dense "
                   f"the tests are one-sided each way ({ctx.method} > dense, {ctx.method} < dense): each end is its "
                   f"one-sided bound. Grey band: ±{delta:g} points, the smallest effect of interest; ≡: equivalent "
                   f"(no significant difference, TOST). Each panel has a scale of its own; an interval reaching "
                   f"beyond it ends in an arrow with its end written; a marker without a line: one pair, no interval. "
                   f"Seed pairs with a run at chance level are set aside.")
        label_w = 0.07 * max(len(x) for x in labels) + 0.2
        fw = 2.5 * ncol + label_w
        foot = _caption_height(ctx, caption, fw)
        fig, axes = plt.subplots(nrow, ncol, figsize=(fw, 0.75 + foot + nrow * panel_h + (nrow - 1) * 0.85),
                                 squeeze=False, sharey=True)
        for i, b in enumerate(baselines):
            ax = axes[i // ncol][i % ncol]
            cb = c[c["baseline"] == b]
            col = sty[b]["color"] if b != DENSE else "#000000"
            y = np.array([ypos[tuple(r)] for r in cb[list(SETTING_KEYS)].itertuples(index=False, name=None)])
            d = cb["mean_diff"].to_numpy(float)
            lo, hi = cb["ci_holm_low"].to_numpy(float), cb["ci_holm_high"].to_numpy(float)
            x_lo, x_hi = forest_limits(d, lo, hi, delta)
            ax.axvspan(-delta, delta, color="#999999", alpha=0.2, lw=0)
            ax.axvline(0, color="k", lw=0.8)
            a = np.where(np.isfinite(lo), lo, d)
            z = np.where(np.isfinite(hi), hi, d)
            ax.hlines(y, np.clip(a, x_lo, x_hi), np.clip(z, x_lo, x_hi), color=col, lw=1.2)
            for yy, end in zip(y, a):
                if end < x_lo:
                    ax.plot([x_lo], [yy], marker="<", color=col, ms=4, clip_on=False, zorder=4)
                    ax.annotate(f"{end:+.1f}", xy=(x_lo, yy), xytext=(3, 2.5), textcoords="offset points",
                                ha="left", va="bottom", fontsize=5.5, color=col)
            for yy, end in zip(y, z):
                if end > x_hi:
                    ax.plot([x_hi], [yy], marker=">", color=col, ms=4, clip_on=False, zorder=4)
                    ax.annotate(f"{end:+.1f}", xy=(x_hi, yy), xytext=(-3, 2.5), textcoords="offset points",
                                ha="right", va="bottom", fontsize=5.5, color=col)
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
            ax.set_xlabel("difference (points)")
            ax.set_yticks(range(len(keys)), labels)
            ax.set_ylim(len(keys) - 0.5, -0.5)
            ax.set_xlim(x_lo, x_hi)
            ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
        for j in range(len(baselines), nrow * ncol):
            axes[j // ncol][j % ncol].axis("off")
        _caption(fig, ctx, caption)
        _adjust(fig, left=label_w, top=0.35, bottom=foot + 0.45, hspace=0.85 / panel_h, wspace=0.12)
        return _save(fig, out_dir, "forest_fggp")


def _pruning_window_epochs(runs: pd.DataFrame, ds: str, arch: str) -> float:
    """T_end in epochs for the sparse runs of one dataset/arch (NaN when unknown or not unique)."""
    r = runs[(runs["dataset"] == ds) & (runs["arch"] == arch) & (runs["method"] != DENSE)
             & np.isfinite(runs["t_end"]) & np.isfinite(runs["iterations"]) & np.isfinite(runs["epochs"])]
    if r.empty:
        return math.nan
    v = (r["t_end"] / r["iterations"] * r["epochs"]).unique()
    return float(v[0]) if len(v) == 1 else math.nan


def _quantile(q: float):
    def f(x):
        return float(np.quantile(np.asarray(x, float), q))
    f.__name__ = f"q{int(q * 100)}"
    return f


@register("training_curves", "figure",
          "test accuracy against epoch per setting: the median over seeds of each method, the interquartile band of "
          "fggp, the dense reference, the pruning window; beside them the sparsity schedule of each target")
def training_curves(ctx: Context, out_dir: Path) -> list[Path]:
    h = ctx.histories
    if h.empty:
        raise SkipOutput("no training histories in these records")
    h = h[h["status"] == "completed"]
    if h.empty:
        raise SkipOutput("no training histories of completed runs")
    keys = list(SETTING_KEYS) + ["method", "epoch"]
    g = h.groupby(keys, sort=True)
    med = pd.concat([g["test_acc"].median().rename("median"), g["test_acc"].agg(_quantile(0.25)).rename("q25"),
                     g["test_acc"].agg(_quantile(0.75)).rename("q75"), g["sparsity"].min().rename("sp_min"),
                     g["sparsity"].max().rename("sp_max"), g["seed"].nunique().rename("seeds")], axis=1).reset_index()
    groups = _groups(med)
    if not groups:
        raise SkipOutput("no training histories of sparse-method runs")
    targets = sorted(med.loc[med["method"] != DENSE, "target_sparsity"].unique())
    methods = method_order(m for m in med["method"].unique() if m != DENSE)
    sty = _styles(methods + [DENSE])
    dense = med[med["method"] == DENSE]
    banded = ctx.method if ctx.method in methods else methods[0]
    n_epochs = float(med["epoch"].max())
    markevery = max(1, int(round(n_epochs / 10)))  # a dozen markers a line, whatever the run length
    with plt.rc_context(RC):
        ncols = len(targets) + 1
        fw = max(2.7 * len(targets) + 2.3, 6.4)
        one_seed = int(med.loc[med["method"] == banded, "seeds"].max()) < 2
        caption = ("Test accuracy at the end of each epoch: the median over seeds of each method (a run at chance "
                   "level counts as one seed), "
                   + (f"{banded} has one seed (no band); " if one_seed else
                      f"the interquartile range of {banded}'s seeds as a band; ")
                   + "dashed: dense. Grey: the pruning window (up to T_end). Right: the sparsity of the network at "
                     "the end of each epoch for each target")
        foot = _caption_height(ctx, caption + " every method follows it.", fw)
        _, leg_h = _legend_shape([*methods, DENSE, f"{banded}: interquartile range over seeds",
                                  "pruning window (until T_end)"], fw)
        top, bottom, gap = leg_h + 0.3, foot + 0.5, 0.55
        panel_h = 1.9
        fh = len(groups) * panel_h + (len(groups) - 1) * gap + top + bottom
        fig, axes = plt.subplots(len(groups), ncols, figsize=(fw, fh), squeeze=False, sharex=True,
                                 gridspec_kw={"width_ratios": [1] * len(targets) + [0.8]})
        same_schedule = True
        for gi, (ds, arch, dens) in enumerate(groups):
            ref = dense[(dense["dataset"] == ds) & (dense["arch"] == arch)]
            t_end = _pruning_window_epochs(ctx.runs, ds, arch)
            row = med[(med["dataset"] == ds) & (med["arch"] == arch) & (med["initial_density"] == dens)]
            sparse = row[row["method"] != DENSE]
            lo, hi = _value_range([sparse["median"], ref["median"], row.loc[row["method"] == banded, "q25"],
                                   row.loc[row["method"] == banded, "q75"]], pad=0.04)
            for ti, tgt in enumerate(targets):
                ax = axes[gi][ti]
                sel = row[row["target_sparsity"] == tgt]
                if np.isfinite(t_end):
                    ax.axvspan(0, t_end, color="#999999", alpha=0.12, lw=0, label="pruning window (until T_end)")
                    ax.axvline(t_end, color="#666666", lw=0.6, ls=":")
                if len(ref):
                    ax.plot(ref["epoch"], ref["median"], color="#000000", ls="--", lw=0.9, label="dense")
                for m in methods:
                    sm = sel[sel["method"] == m]
                    if not len(sm):
                        continue
                    st_ = sty[m]
                    if m == banded and sm["seeds"].max() >= 2:
                        ax.fill_between(sm["epoch"], sm["q25"], sm["q75"], color=st_["color"], alpha=0.2, lw=0,
                                        label=f"{banded}: interquartile range over seeds")
                    ax.plot(sm["epoch"], sm["median"], color=st_["color"], ls=st_["ls"], lw=1.0 if m == banded else 0.8,
                            marker=st_["marker"], ms=2.5, mfc=st_["mfc"], markevery=markevery, label=m,
                            zorder=3 if m == banded else 2)
                ax.set_title(f"{arch}, {start_label(dens)}, target {_pct(tgt)}")
                ax.set_ylim(lo, hi)
                ax.set_xlim(0, n_epochs + 0.2)
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
                if ti == 0:
                    ax.set_ylabel("test accuracy (%)")
                else:
                    ax.tick_params(labelleft=False)
                if gi == len(groups) - 1:
                    ax.set_xlabel("epoch (end of)")
            # the sparsity schedules: one line per target when every method follows the same one
            ax = axes[gi][-1]
            if np.isfinite(t_end):
                ax.axvspan(0, t_end, color="#999999", alpha=0.12, lw=0)
            styles = ["-", "--", "-.", ":"]
            handles = []
            for k, tgt in enumerate(targets):
                st = sparse[sparse["target_sparsity"] == tgt]
                if st.empty:
                    continue
                ls = styles[k % len(styles)]
                per_epoch = st.groupby("epoch").agg(lo=("sp_min", "min"), hi=("sp_max", "max"))
                if (per_epoch["hi"] - per_epoch["lo"]).max() <= 1e-6:
                    handles += ax.plot(per_epoch.index, per_epoch["lo"] * 100, color="#000000", lw=0.9, ls=ls,
                                       label=f"target {_pct(tgt)}")
                else:
                    same_schedule = False
                    handles += ax.plot([], [], color="#000000", lw=0.9, ls=ls, label=f"target {_pct(tgt)}")
                    for m in methods:
                        sm = st[st["method"] == m]
                        if len(sm):
                            ax.plot(sm["epoch"], sm["sp_max"] * 100, color=sty[m]["color"], ls=ls, lw=0.8)
            ax.legend(handles=handles, loc="lower right", fontsize=6, frameon=False)
            ax.set_title("sparsity schedule")
            ax.set_ylim(0, 100)
            ax.set_ylabel("sparsity (%)")
            ax.yaxis.set_label_position("right")
            ax.yaxis.tick_right()
            ax.spines["right"].set_visible(True)
            ax.spines["left"].set_visible(False)
            if gi == len(groups) - 1:
                ax.set_xlabel("epoch (end of)")
        leg = _figure_legend(fig, axes[:, :-1])
        caption += ("; every method follows it." if same_schedule else "; each method's own, in its colour.")
        _caption(fig, ctx, caption)
        fig.subplots_adjust(left=0.6 / fw, right=1 - 0.75 / fw, top=1 - (leg + 0.3) / fh, bottom=bottom / fh,
                            hspace=gap / panel_h, wspace=0.1)
        return _save(fig, out_dir, "training_curves")


#: Ticks of a log-odds sparsity axis (those inside its range are shown).
LOGIT_TICKS = (0.001, 0.01, 0.1, 0.5, 0.9, 0.99, 0.999)

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
          "sparsity of each prunable layer (seed mean per method) on a log-odds axis, one panel per start and target, "
          "the layers named with their sizes")
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
    # the x-range of the data on the log-odds axis, a little wider, within [0.1 %, 99.99 %]
    z = np.log(np.clip(mean["sparsity"], eps, 1 - eps / 10) / (1 - np.clip(mean["sparsity"], eps, 1 - eps / 10)))
    z = np.concatenate([z.to_numpy(float), np.log(np.asarray(targets) / (1 - np.asarray(targets)))])
    z_lo, z_hi = float(z.min()) - 0.6, float(z.max()) + 0.6
    x_lim = (max(eps, 1 / (1 + math.exp(-z_lo))), min(1 - eps / 10, 1 / (1 + math.exp(-z_hi))))
    n_layers = max(len(v) for v in names.values())
    labels_of = {arch: [readable_layer(arch, n) + (f" ({_short_size(sizes[(arch, n)])})" if (arch, n) in sizes else "")
                        for n in layer_names] for arch, layer_names in names.items()}
    label_w = 0.065 * max(len(x) for v in labels_of.values() for x in v) + 0.25
    caption = ("The fraction of each prunable tensor's weights that are zero at the end of the run, the mean over "
               "seeds, on a log-odds axis (so that 97 % and 99.8 % lie far apart); layers from the input (top) to "
               "the output, each with its number of weights (inferred from the recorded sparsities); dotted: the "
               "target sparsity.")
    with plt.rc_context(RC):
        fw = max(2.3 * len(targets) + label_w + 0.3, 5.6)
        foot = _caption_height(ctx, caption, fw)
        _, leg_h = _legend_shape(methods, fw)
        panel_h = max(1.6, 0.15 * n_layers + 0.3)
        gap = 0.55
        top, bottom = leg_h + 0.3, foot + 0.55
        fh = len(groups) * panel_h + (len(groups) - 1) * gap + top + bottom
        fig, axes = plt.subplots(len(groups), len(targets), figsize=(fw, fh), squeeze=False, sharey="row",
                                 sharex=True)
        for gi, (ds, arch, dens) in enumerate(groups):
            labels = labels_of.get(arch, [])
            for ti, tgt in enumerate(targets):
                ax = axes[gi][ti]
                sel = mean[(mean["dataset"] == ds) & (mean["arch"] == arch) & (mean["initial_density"] == dens)
                           & (mean["target_sparsity"] == tgt)]
                for m in methods:
                    sm = sel[sel["method"] == m]
                    if len(sm):
                        st_ = sty[m]
                        ax.plot(np.clip(sm["sparsity"], eps, 1 - eps / 10), sm["layer_index"], color=st_["color"],
                                ls=st_["ls"], lw=0.9, marker=st_["marker"], ms=2.5, mfc=st_["mfc"], label=m)
                ax.axvline(tgt, color="k", lw=0.6, ls=":")
                ax.set_xscale("logit")
                ax.set_xlim(*x_lim)
                ticks = [t for t in LOGIT_TICKS if z_lo + 0.3 <= math.log(t / (1 - t)) <= z_hi - 0.3]
                ax.set_xticks(ticks, [f"{round(100 * t, 6):g}%" for t in ticks])
                ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
                ax.set_title(f"{arch}, {start_label(dens)}, target {_pct(tgt)}")
                ax.set_yticks(range(len(labels)), labels, fontsize=7)
                ax.set_ylim(len(labels) - 0.5, -0.5)
                if ti:
                    ax.tick_params(labelleft=False)
                if gi == len(groups) - 1:
                    ax.set_xlabel("layer sparsity (log-odds axis)")
                ax.tick_params(labelbottom=True)
        _figure_legend(fig, axes)
        _caption(fig, ctx, caption)
        fig.subplots_adjust(left=label_w / fw, right=1 - 0.25 / fw, top=1 - top / fh, bottom=bottom / fh,
                            hspace=gap / panel_h, wspace=0.12)
        return _save(fig, out_dir, "layer_sparsity")

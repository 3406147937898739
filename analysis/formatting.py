"""Fixed number formatting and byte-stable writers for tables (Markdown, LaTeX, CSV) and figures.

Everything written here is a function of the data alone: fixed float formats, sorted rows, no
timestamps, ``\\n`` line endings, and every file replaced atomically (temp file + ``os.replace``, by the spec's
:func:`fggp_repro.spec.atomic_write_bytes`) so a reader never sees half a table, with the user's umask (0644 by
default).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from fggp_repro.spec import atomic_write_bytes

#: Decimal places of accuracies (percent) and rank-like numbers in tables.
ACC_DECIMALS = 2
#: CSV float format: enough digits to recompute, few enough to be stable across BLAS builds.
CSV_FLOAT = "%.6g"


def fmt_num(x, decimals: int = ACC_DECIMALS) -> str:
    """Fixed-point number; NaN gives an em dash."""
    if x is None or (isinstance(x, float) and math.isnan(x)) or (isinstance(x, (np.floating,)) and np.isnan(x)):
        return "—"
    if isinstance(x, (float, np.floating)) and math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{float(x):.{decimals}f}"


def fmt_signed(x, decimals: int = ACC_DECIMALS) -> str:
    if x is None or (isinstance(x, (float, np.floating)) and math.isnan(x)):
        return "—"
    return f"{float(x):+.{decimals}f}"


def fmt_p(p) -> str:
    """p-value with 4 decimals, ``<0.0001`` below that, ``n/a`` for NaN (test undefined)."""
    if p is None or (isinstance(p, (float, np.floating)) and math.isnan(p)):
        return "n/a"
    p = float(p)
    if p < 1e-4:
        return "<0.0001"
    return f"{p:.4f}"


def p_is(p) -> str:
    """``p = 0.0123``, ``p < 0.0001`` or ``p n/a``: a p-value inside a sentence."""
    f = fmt_p(p)
    if f == "n/a":
        return "p n/a"
    return f"p < {f[1:]}" if f.startswith("<") else f"p = {f}"


# --------------------------------------------------------------------------------------------
# atomic writes: the spec's atomic_write_bytes (fggp_repro/spec/files.py), which both packages write through


def atomic_write_text(path: str | Path, text: str) -> Path:
    """``text`` as UTF-8 through :func:`fggp_repro.spec.atomic_write_bytes`: written whole or not at all, with the
    mode ``open()`` would give; :class:`fggp_repro.spec.OutputError` (one line naming the file) when it cannot."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def _tight(tight: bool) -> dict:
    return {"bbox_inches": "tight", "pad_inches": 0.08} if tight else {}


def save_figure(fig, path: str | Path, dpi: int = 150, *, tight: bool = False) -> Path:
    """Save a matplotlib figure as PNG, byte-stable: fixed dpi, no Software metadata, atomic. ``tight``: the canvas
    cut to (or grown to) everything drawn, so that no legend or label outside the axes is clipped."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None}, **_tight(tight))
    return atomic_write_bytes(path, buf.getvalue())


def save_figure_pdf(fig, path: str | Path, *, tight: bool = False) -> Path:
    """Save a matplotlib figure as PDF, byte-stable: no creation date, producer or creator, atomic (``tight`` as in
    :func:`save_figure`)."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="pdf", metadata={"CreationDate": None, "Producer": None, "Creator": None},
                **_tight(tight))
    return atomic_write_bytes(path, buf.getvalue())


def _thousands(x: float) -> str:
    return f"{int(round(x)):,}"


def scale_parts(runs: pd.DataFrame, summary: pd.DataFrame) -> list[tuple[str, str, str, str]]:
    """(dataset, arch, scale, dense) per dataset and architecture of the completed runs, sorted: ``scale`` such as
    ``vgg19 width 1/8, 4 epochs, 10,000 training images (cifar10-jpeg)`` and ``dense`` such as ``39.75 ± 2.78 %
    (n = 5)`` ("" without dense runs)."""
    parts = []
    done = runs[runs["status"] == "completed"] if "status" in runs.columns else runs
    for (ds, arch), g in done.groupby(["dataset", "arch"], sort=True):
        bits = [arch]
        w = g["width"].dropna().unique() if "width" in g.columns else []
        if len(w) == 1 and w[0] != 1.0:
            inv = 1.0 / w[0]
            bits.append(f"width 1/{inv:g}" if abs(inv - round(inv)) < 1e-9 else f"width {w[0]:g}")
        elif len(w) == 1:
            bits.append("full width")
        e = g["epochs"].dropna().unique() if "epochs" in g.columns else []
        if len(e) == 1:
            bits.append(f"{int(e[0])} epochs")
        t = g["train_images"].unique() if "train_images" in g.columns else []
        if len(t) == 1:
            bits.append("all training images" if not np.isfinite(t[0]) else f"{_thousands(t[0])} training images")
        clause = " ".join(bits[:2]) + (", " + ", ".join(bits[2:]) if len(bits) > 2 else "") + f" ({ds})"
        dense = ""
        d = summary[(summary["method"] == "dense") & (summary["dataset"] == ds) & (summary["arch"] == arch)]
        if len(d) and int(d["n"].iloc[0]) > 0:
            r = d.iloc[0]
            acc = fmt_num(r["mean"]) + (f" ± {fmt_num(r['ci_high'] - r['mean'])}" if int(r["n"]) > 1 else "")
            dense = f"{acc} % (n = {int(r['n'])})"
        parts.append((ds, arch, clause, dense))
    return parts


def scale_line(protocol: str, runs: pd.DataFrame, summary: pd.DataFrame) -> str:
    """``protocol mini: vgg19 width 1/8, 4 epochs, 10,000 training images (cifar10-jpeg); dense 39.75 ± 2.78 %
    (n = 5)``: the scale of a protocol, from its records (one clause per dataset/architecture)."""
    parts = [clause + (f"; dense {dense}" if dense else "") for _, _, clause, dense in scale_parts(runs, summary)]
    return f"protocol {protocol}: " + "; ".join(parts)


# --------------------------------------------------------------------------------------------
# table writers


def to_markdown(df: pd.DataFrame, notes: Sequence[str] = ()) -> str:
    """GitHub Markdown table of the (already formatted, string) cells, then one paragraph per note."""
    cols = [str(c) for c in df.columns]
    cells = [[_md_cell(v) for v in row] for row in df.itertuples(index=False, name=None)]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in cells]
    out = "\n".join(lines) + "\n"
    for n in notes:
        out += "\n" + n + "\n"
    return out


def _md_cell(v) -> str:
    return str(v).replace("|", "\\|").replace("\n", " ")


_TEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                "±": r"$\pm$", "—": "--", "≥": r"$\geq$", "≤": r"$\leq$", "<": r"$<$", ">": r"$>$",
                "α": r"$\alpha$", "χ": r"$\chi$", "²": r"$^2$", "−": "-", "–": "--", "†": r"$\dagger$"}


def tex_escape(s: str) -> str:
    return "".join(_TEX_ESCAPES.get(ch, ch) for ch in str(s))


def to_latex(df: pd.DataFrame, notes: Sequence[str] = (), bold: pd.DataFrame | None = None,
             align: str | None = None) -> str:
    """A booktabs ``tabular`` of the (string) cells; ``bold`` (same shape, bool) marks cells to
    typeset in bold; notes follow as footnote-size paragraphs. Needs ``\\usepackage{booktabs}``."""
    ncol = df.shape[1]
    align = align or ("l" * ncol)
    lines = [r"\begin{tabular}{" + align + "}", r"\toprule",
             " & ".join(tex_escape(c) for c in df.columns) + r" \\", r"\midrule"]
    b = bold.to_numpy() if bold is not None else None
    for i, row in enumerate(df.itertuples(index=False, name=None)):
        cells = []
        for j, v in enumerate(row):
            c = tex_escape(v)
            if b is not None and bool(b[i, j]):
                c = r"\textbf{" + c + "}"
            cells.append(c)
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    out = "\n".join(lines) + "\n"
    for n in notes:
        out += "\n" + r"\par\smallskip\noindent{\footnotesize " + tex_escape(n) + "}\n"
    return out


def to_csv(df: pd.DataFrame) -> str:
    """CSV with fixed float format and ``\\n`` line endings."""
    return df.to_csv(index=False, float_format=CSV_FLOAT, lineterminator="\n")


def markdown_table(display: pd.DataFrame, notes: Sequence[str] = (), bold: pd.DataFrame | None = None) -> str:
    """The Markdown of a table as :func:`write_table` writes it: ``bold`` cells in ``**``, then the notes."""
    md_display = display
    if bold is not None:
        b = bold.to_numpy()
        md_display = display.copy()
        for j, c in enumerate(display.columns):
            md_display[c] = [f"**{v}**" if b[i, j] else v for i, v in enumerate(display[c])]
    return to_markdown(md_display, notes)


def write_table(out_dir: str | Path, name: str, *, display: pd.DataFrame, data: pd.DataFrame,
                notes: Sequence[str] = (), bold: pd.DataFrame | None = None) -> list[Path]:
    """Write ``<name>.md`` and ``<name>.tex`` from the formatted ``display`` frame (``bold`` marks
    cells, e.g. the best per setting) and ``<name>.csv`` from the numeric ``data`` frame."""
    out_dir = Path(out_dir)
    return [
        atomic_write_text(out_dir / f"{name}.md", markdown_table(display, notes, bold)),
        atomic_write_text(out_dir / f"{name}.tex", to_latex(display, notes, bold)),
        atomic_write_text(out_dir / f"{name}.csv", to_csv(data)),
    ]

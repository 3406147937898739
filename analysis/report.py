"""The report of one protocol or study (``<out>/<protocol>/REPORT.md``) and the results-at-a-glance table
(``<out>/README.md``, and the block between the markers of the repository's README).

Both are written by ``fggp-repro figures`` from the run records alone: every number in them is computed by the
command (the audit's verdicts and words, the main results table, the collapses, the platforms, the look), with
no timestamp and no absolute path, so the same records give the same bytes. Links are relative: a report links
its figures and tables beside it and the project's documentation at ``../../docs/``, where it lives in
``paper_figures/<protocol>/``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .formatting import atomic_write_text, fmt_num, scale_parts
from .records import DENSE, method_order
from .registry import Context, SkipOutput, register

__all__ = ["REPORT_FILE", "GLANCE_FILE", "GLANCE_START", "GLANCE_END", "GlanceRow", "glance_row", "glance_markdown",
           "glance_file", "replace_glance_block", "report_markdown"]

REPORT_FILE = "REPORT.md"
#: The results-at-a-glance table of every protocol, in the output folder (``paper_figures/README.md``).
GLANCE_FILE = "README.md"
GLANCE_START = "<!-- results-at-a-glance:start -->"
GLANCE_END = "<!-- results-at-a-glance:end -->"
DOCS = "../../docs"

FIGURE_TITLES = {
    "accuracy_vs_sparsity": "Final accuracy against target sparsity",
    "forest_fggp": "{method} against each method, setting by setting",
    "rank_chart": "Average ranks",
    "cd_diagram": "Critical-difference diagram",
    "training_curves": "Training curves",
    "layer_sparsity": "Sparsity of each layer",
}


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _seeds_text(seeds: dict) -> str:
    return ", ".join(f"{start} {n}" for start, n in sorted(seeds.items(), key=lambda kv: kv[0] != "dense-start"))


def _members(ctx: Context) -> list[str]:
    return sorted(ctx.runs["protocol"].unique()) if ctx.kind == "study" else [ctx.protocol]


def _look(ctx: Context):
    from .claims.audit import look_of

    return look_of(ctx.judged(), ctx.claims)


def _preset_text(runs: pd.DataFrame) -> str:
    """``preset `cpu`, as it ships`` or ``preset `cpu` with `--precision fp32` in every run's command``."""
    presets = sorted(runs["preset"].unique()) if "preset" in runs.columns else []
    if not presets:
        return "preset not recorded"
    out = []
    for preset in presets:
        r = runs[runs["preset"] == preset]
        if preset == "unknown":
            out.append(f"not named by the runs' commands ({_plural(len(r), 'run')})")
            continue
        name = f"`{preset}`"
        opts = sorted(r["options"].unique()) if "options" in r.columns else [""]
        if opts == [""]:
            out.append(f"{name} as it ships ({_plural(len(r), 'run')})")
        elif len(opts) == 1:
            out.append(f"{name} with `{opts[0]}` in every run's command ({_plural(len(r), 'run')})")
        else:
            each = "; ".join(f"`{o}`" if o else "none" for o in opts)
            out.append(f"{name} with options that differ between runs: {each} ({_plural(len(r), 'run')})")
    return "; ".join(out)


def _runs_text(runs: pd.DataFrame) -> str:
    n = len(runs)
    done = int((runs["status"] == "completed").sum())
    div = int((runs["status"] == "diverged").sum())
    coll = int(runs["collapsed"].sum()) if "collapsed" in runs.columns else 0
    return (f"{_plural(n, 'record')}: {done} completed, {div} diverged; {coll} of the completed at chance level "
            f"(final accuracy ≤ 11 %)")


def _methods_text(ctx: Context) -> str:
    d = ctx.claims["defaults"]
    present = set(ctx.runs["method"])
    method, ref = d["method"], d["reference"]
    alts = [m for m in method_order(present) if m in d["alternatives"]]
    floor = [m for m in method_order(present) if m in d["floor"]]
    others = [m for m in method_order(present) if m not in set(alts) | set(floor) | {method, ref}]
    parts = []
    if method in present:
        parts.append(f"{method} (the paper's method)")
    if alts:
        parts.append(f"alternatives (claims 1 and 3): {', '.join(alts)}")
    if floor:
        parts.append(f"floor: {', '.join(floor)}")
    if others:
        parts.append(f"ablation cells (order and rate claims): {', '.join(others)}")
    if ref in present:
        parts.append(f"reference: {ref}")
    return "; ".join(parts)


def _protocol_rows(ctx: Context, runs: pd.DataFrame, protocol: str) -> list[tuple[str, str]]:
    from .looks import design_look

    rows = [("preset", _preset_text(runs))]
    for ds, arch, clause, dense in scale_parts(runs, ctx.summary()[ctx.summary()["protocol"] == protocol]):
        rows.append((f"network and data ({arch}, {ds})" if len(runs[["dataset", "arch"]].drop_duplicates()) > 1
                     else "network and data", clause))
        rows.append(("dense reference" + (f" ({arch}, {ds})" if len(runs[["dataset", "arch"]].drop_duplicates()) > 1
                                          else ""), dense or "no dense runs"))
    j = ctx.judged()
    covers = ctx.audit()["covers"].iloc[0] if j.arrays is not None else "no fggp runs"
    if ctx.kind == "study":
        covers = next((c.strip() for c in covers.split("; protocol ") if c.strip().removeprefix("protocol ")
                       .startswith(f"{protocol}:")), covers)
    rows.append(("settings", covers.removeprefix("protocol ").removeprefix(f"{protocol}: ")))
    look = design_look(runs, protocol, ctx.claims.get("plans"), ctx.claims["defaults"]["reference"])
    seeds = _seeds_text(look.seeds)
    if look.planned:
        seeds += f" (planned: {_seeds_text(look.planned)})"
    rows.append(("complete seeds per start", seeds or "none"))
    rows.append(("runs", _runs_text(runs)))
    return rows


def _table(rows, head=("", "")) -> list[str]:
    out = [f"| {head[0]} | {head[1]} |", "|---|---|"]
    out += [f"| {_cell(a)} | {_cell(b)} |" for a, b in rows]
    return out


def _produced(ctx: Context, out_dir: Path, name: str, suffix: str) -> bool:
    """Whether output ``name`` has its ``suffix`` file: made by this run, or (an output this run did not make, as
    with ``--only report``) already in the folder."""
    if name in ctx.produced:
        return any(Path(p).name == f"{name}{suffix}" for p in ctx.produced[name])
    if name in ctx.skipped:
        return False
    return (out_dir / f"{name}{suffix}").is_file()


def report_markdown(ctx: Context, out_dir: Path) -> str:
    """The Markdown of ``REPORT.md`` for one protocol or study (see the module's docstring)."""
    from .registry import all_outputs
    from .tables import MAIN_RESULTS_WHAT, TableParts, collapsed_note, collapses_parts, platforms_parts, results_parts

    out_dir = Path(out_dir)
    members = _members(ctx)
    method = ctx.method
    L: list[str] = []
    if ctx.kind == "study":
        L.append(f"# Study `{ctx.protocol}`: protocols {', '.join(f'`{p}`' for p in members)} judged together")
    else:
        L.append(f"# Protocol `{ctx.protocol}`: the paper's five claims on its runs")
    L += ["", "Written by `fggp-repro figures` from the run records: every number here is computed from them, and the "
              "same records give the same bytes. How the audit decides, and how often it errs: "
              f"[docs/analysis.md]({DOCS}/analysis.md); the decision rules word for word: `analysis/claims.toml`. "
              f"How each protocol differs from the paper's, and why: [docs/protocol.md]({DOCS}/protocol.md).", ""]

    # ---- the protocol
    L += ["## The protocol" if ctx.kind == "protocol" else "## The protocols", ""]
    if ctx.kind == "study":
        L += ["A study judges the settings of all its protocols together (analysis/claims.toml, [studies]): each "
              "setting belongs to one protocol, whose runs are never pooled with another's; the Holm families run "
              "over all the settings. Each protocol's own report: "
              + ", ".join(f"[{p}](../{p}/{REPORT_FILE})" for p in members) + ".", ""]
    for p in members:
        runs = ctx.runs[ctx.runs["protocol"] == p]
        if ctx.kind == "study":
            L += [f"### `{p}`", ""]
        L += _table(_protocol_rows(ctx, runs, p), ("", f"protocol `{p}`"))
        L.append("")
    L += [f"Methods: {_methods_text(ctx)}.", ""]

    # ---- verdicts
    L += ["## Verdicts", ""]
    j = ctx.judged()
    if j.arrays is None:
        L += [f"Every claim is inconclusive: there are no {method} runs (methods here: "
              f"{', '.join(method_order(ctx.runs['method'].unique()))}).", ""]
    else:
        a = ctx.audit()
        look = _look(ctx)
        L += [look.text, ""]
        L += ["| claim | verdict | why |", "|---|---|---|"]
        for r in a.itertuples(index=False):
            L.append(f"| **{r.claim}**: {_cell(r.text)} | **{_cell(r.verdict_text)}** | {_cell(r.reason)} |")
        d = ctx.claims["defaults"]
        L += ["", f"Covers: {a['covers'].iloc[0]}. A smallest effect of interest δ = {fmt_num(d['delta'])} "
                  f"points and a family-wise level α = {d['alpha']:g}; \"refuted\" needs evidence against the claim "
                  "(significant deficits, or equivalence within ±δ), \"inconclusive\" means the records cannot tell. "
                  "Every verdict with one analysis choice changed at a time: [sensitivity.md](sensitivity.md); the "
                  "same verdicts as a table: [claims_audit.md](claims_audit.md).", ""]
        L += ["### The numbers behind each verdict", ""]
        for r in a.itertuples(index=False):
            evidence = _cell(r.evidence) or "no numbers: nothing to test yet (the verdict says why)"
            L += [f"- **{r.claim}** ({_cell(r.test)}): {evidence}"]
        L.append("")

    # ---- main results
    L += ["## Main results", ""]
    try:
        parts = results_parts(ctx, "test_acc", MAIN_RESULTS_WHAT)
        coll = collapsed_note(ctx.runs)  # the next section's
        parts = TableParts(parts.display, parts.data, tuple(n for n in parts.notes if n != coll), parts.bold)
        L += [parts.markdown().rstrip("\n"), ""]
    except SkipOutput as e:
        L += [f"No results table: {e}.", ""]
    extra = [f"[{n}.md]({n}.md)" for n in ("comparisons", "pooled_effects", "ranks", "optimistic_results",
                                           "reporting_bias") if _produced(ctx, out_dir, n, ".md")]
    if extra:
        L += [f"Every comparison of {method} with each method per setting, its tests and class: "
              + ", ".join(extra) + ".", ""]

    # ---- collapses
    L += ["## Runs at chance level", ""]
    try:
        L += [collapses_parts(ctx).markdown().rstrip("\n"), ""]
    except SkipOutput as e:
        L += [collapsed_note(ctx.runs), f"(No collapse comparison: {e}.)", ""]

    # ---- figures
    L += ["## Figures", ""]
    outputs = all_outputs()
    for name, o in outputs.items():
        if o.kind != "figure":
            continue
        title = FIGURE_TITLES.get(name, name).format(method=method)
        L += [f"### {title}", ""]
        if _produced(ctx, out_dir, name, ".png"):
            L += [f"![{title}]({name}.png)", "",
                  f"{o.description[0].upper()}{o.description[1:]}. As PDF: [{name}.pdf]({name}.pdf).", ""]
        else:
            why = ctx.skipped.get(name, "not made by this run of the command")
            L += [f"Not drawn: {why}.", ""]

    # ---- platforms
    L += ["## Platforms", ""]
    try:
        L += [platforms_parts(ctx).markdown().rstrip("\n"), ""]
    except SkipOutput as e:
        L += [f"No platforms table: {e}.", ""]

    # ---- every table
    tables = [(n, o) for n, o in outputs.items() if o.kind == "table" and _produced(ctx, out_dir, n, ".md")]
    if tables:
        L += ["## Every table", "", "Each as Markdown, LaTeX (`.tex`, booktabs) and CSV (the numbers behind it).", ""]
        L += [f"- [{n}.md]({n}.md): {_cell(o.description)}" for n, o in tables]
        L.append("")
    return "\n".join(L).rstrip("\n") + "\n"


@register("report", "report",
          "REPORT.md: the verdicts with their reasons, the main results, the collapses, every figure, the platforms "
          "and the look, in one page")
def report(ctx: Context, out_dir: Path) -> list[Path]:
    if not set(ctx.runs["method"]) - {DENSE}:
        raise SkipOutput("only dense runs, nothing to compare")
    return [atomic_write_text(Path(out_dir) / REPORT_FILE, report_markdown(ctx, out_dir))]


# --------------------------------------------------------------------------------------------
# results at a glance


@dataclass(frozen=True)
class GlanceRow:
    """One protocol or study in the results-at-a-glance table."""

    name: str
    kind: str  #: "protocol" or "study"
    what: str  #: preset, network, data and scale
    runs: str
    look: str
    verdicts: tuple  #: verdict text per claim, claims in file order


def glance_row(ctx: Context) -> GlanceRow:
    """The glance row of one protocol or study (its audit, look, scale and runs)."""
    members = _members(ctx)
    whats = []
    for p in members:
        runs = ctx.runs[ctx.runs["protocol"] == p]
        presets = [x for x in sorted(runs["preset"].unique()) if x != "unknown"]
        opts = sorted(runs["options"].unique())
        preset = "/".join(f"`{x}`" for x in presets) + (f" with `{opts[0]}`" if len(opts) == 1 and opts[0] else "")
        scale = "; ".join(c for _, _, c, _ in scale_parts(runs, ctx.summary()))
        whats.append((f"{p}: " if ctx.kind == "study" else "") + scale + (f"; preset {preset}" if presets else ""))
    done = ctx.completed
    coll = int(ctx.runs["collapsed"].sum())
    div = int((ctx.runs["status"] == "diverged").sum())
    runs = f"{len(done)}" + (f", {div} diverged" if div else "") + (f" ({coll} at chance level)" if coll else "")
    j = ctx.judged()
    claims = [c.id for c in ctx.claims["claims"]]
    if j.arrays is None:
        return GlanceRow(ctx.protocol, ctx.kind, "; ".join(whats), runs, "—", tuple("—" for _ in claims))
    look = _look(ctx)
    if ctx.kind == "study":
        look_text = f"{look.kind} (the least final of its protocols' looks)"
    else:
        have = _seeds_text({s: f"{n} of {look.planned[s]}" if s in look.planned else n
                            for s, n in look.seeds.items()})
        missing = [s for s in look.planned if s not in look.seeds]
        have = ", ".join(x for x in [have] + [f"{s} 0 of {look.planned[s]}" for s in missing] if x)
        look_text = f"{look.kind} (seeds: {have})"
    verdicts = dict(zip(ctx.audit()["claim"], ctx.audit()["verdict_text"]))
    return GlanceRow(ctx.protocol, ctx.kind, "; ".join(whats), runs, look_text,
                     tuple(verdicts.get(c, "—") for c in claims))


def glance_markdown(rows: list[GlanceRow], claims: list, link_base: str, *, pending=(), dense_only=(),
                    crossed=()) -> str:
    """The results-at-a-glance table: one row per protocol and judged study, each claim's verdict, a link to its
    report (``link_base``: the folder of the reports relative to the file the table is in, "" for the same folder);
    then the claims in full, the studies not judged yet, the protocols with nothing to compare and the crossed
    designs of init and order seeds (``crossed``: (protocol, completed runs, complete cells, cells))."""
    base = (link_base.rstrip("/") + "/") if link_base else ""
    ids = [c.id for c in claims]
    head = ["protocol", "what", "completed runs", "look"] + ids + ["report"]
    L = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in rows:
        name = f"{r.name} (study)" if r.kind == "study" else r.name
        cells = [f"`{name}`" if r.kind == "protocol" else f"`{r.name}` (study)", r.what, r.runs, r.look,
                 *r.verdicts, f"[{REPORT_FILE}]({base}{r.name}/{REPORT_FILE})"]
        L.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    L.append("")
    L.append("The claims (the paper's abstract; decision rules in `analysis/claims.toml`): "
             + " ".join(f"**{c.id}**: {' '.join(c.text.split())}" for c in claims)
             + " A verdict is \"refuted\" only on evidence against the claim; \"inconclusive\" means the records "
               "cannot tell. Only a final look's verdicts are the audit's: an interim look decides nothing, an "
               "unplanned one has no planned seed count.")
    for name, members, missing in pending:
        L += ["", f"Study `{name}` ({' + '.join(members)}): not judged yet, no records of {', '.join(missing)}."]
    if dense_only:
        # variants of one protocol (``cpu-frontier[epochs=8,...]``): one entry, with how many configurations
        grouped: dict[str, list[int]] = {}
        for p, n in dense_only:
            grouped.setdefault(p.split("[", 1)[0], []).append(n)
        L += ["", "Protocols with dense runs only (nothing to compare, no report): "
              + ", ".join(f"`{p}` ({_plural(sum(ns), 'run')}" + (f" in {len(ns)} configurations)" if len(ns) > 1
                                                                  else ")")
                          for p, ns in grouped.items()) + "."]
    if crossed:
        L += ["", "Crossed designs of init and order seeds (seeds by source; in no audit): "
              + ", ".join(f"`{p}` ({_plural(n, 'completed run')}, {k} of {_plural(m, 'cell')} complete: "
                          f"[variance.md]({base}{p}/variance.md))" for p, n, k, m in crossed) + "."]
    return "\n".join(L) + "\n"


def glance_file(body: str) -> str:
    """``<out>/README.md``: a heading, what it is, and the glance table."""
    return ("# Results at a glance\n\n"
            "Written by `fggp-repro figures` from the run records (the same table is in the repository's README, "
            "between its results-at-a-glance markers, written there by `fggp-repro figures --readme README.md`). "
            "Each protocol's folder holds its report, figures and tables.\n\n" + body)


def readme_block(body: str) -> str:
    return f"{GLANCE_START}\n{body}{GLANCE_END}"


def glance_block_problem(text: str) -> str | None:
    """What keeps the markers of ``text`` from holding the block, or None."""
    for m in (GLANCE_START, GLANCE_END):
        n = text.count(m)
        if n != 1:
            return f"it has {'no' if n == 0 else n} '{m}' line{'s' if n > 1 else ''}; it needs one of each"
    if text.index(GLANCE_START) > text.index(GLANCE_END):
        return f"its '{GLANCE_END}' comes before '{GLANCE_START}'"
    return None


def replace_glance_block(text: str, body: str) -> str:
    """``text`` with everything from the start marker to the end marker replaced by the block of ``body``."""
    a = text.index(GLANCE_START)
    b = text.index(GLANCE_END) + len(GLANCE_END)
    return text[:a] + readme_block(body) + text[b:]


def relative_link(target: Path, start: Path) -> str:
    """``target`` relative to the folder ``start``, with forward slashes ("" when they are the same)."""
    rel = os.path.relpath(os.path.abspath(target), os.path.abspath(start))
    return "" if rel == "." else Path(rel).as_posix()

"""Command-line entry points: ``fggp-repro figures``, ``fggp-repro audit`` and ``fggp-repro plan`` (also
``python -m analysis figures|audit|plan|calibrate``). Each takes ``argv`` without the program/subcommand
name and returns an exit status: 0 on success (including "nothing to draw yet" for an existing folder
without run records), 2 on a bad record, a results folder that does not exist, or bad arguments, with
one line on stderr naming the file and the field (or the path and the fix).

All three read the run records from ``--results DIR`` (default ``results``; ``audit`` and ``plan`` also
take it as a positional argument, as they always did). Which ``*.json`` files under it are run records
is :data:`RECORDS_RULE` (:func:`analysis.records.classify`): the others are skipped, one line each on
stderr; a damaged run record stops the command. Each protocol's platforms (torch, device, CPU ISA, oneDNN ISA,
threads, precision, strict mode, memory format) are one line in the output of ``figures`` and ``audit``."""

from __future__ import annotations

import argparse
import math
import re
import sys
import textwrap
from pathlib import Path

from fggp_repro.spec import OutputError, unwritable

from .errors import RecordError

__all__ = ["figures_main", "audit_main", "plan_main", "calibrate_main", "main"]

#: Suffixes of the files `figures` writes; others in an output folder are never touched.
OUTPUT_SUFFIXES = (".md", ".tex", ".csv", ".png", ".pdf")
DEFAULT_RESULTS = "results"

#: Which files are run records, as every command's help says it (analysis.records.classify).
RECORDS_RULE = (
    "Run records: the *.json files under the results folder (searched recursively) that are a JSON object whose "
    "\"schema\" starts with fggp-repro/run-record/; a file that is not valid JSON but names that schema is a "
    "damaged run record. Any other JSON file (a notes.json, another tool's output) is skipped, with one line on "
    "stderr naming it. A damaged run record, or one with another schema version than v1, stops the command: exit "
    "2, one line naming the file and the field. A results folder that does not exist: exit 2; one without run "
    "records: exit 0, nothing to do yet.")


def _add_results(parser: argparse.ArgumentParser, *, positional: bool = False) -> None:
    """``--results DIR`` (and, for the commands that always took it so, an optional positional RESULTS)."""
    if positional:
        parser.add_argument("results_pos", nargs="?", default=None, metavar="RESULTS",
                            help="the same as --results DIR (kept for older scripts)")
    parser.add_argument("--results", default=None, metavar="DIR",
                        help=f"folder of run records, searched recursively (default: {DEFAULT_RESULTS})")


def _results_path(args: argparse.Namespace) -> Path | int:
    """The results folder of ``--results`` or the positional RESULTS; exit status 2 when both name different ones."""
    pos, opt = getattr(args, "results_pos", None), args.results
    if pos is not None and opt is not None and Path(pos) != Path(opt):
        print(f"error: two results folders given, {pos} and --results {opt}; give one, with --results DIR",
              file=sys.stderr)
        return 2
    return Path(opt if opt is not None else pos if pos is not None else DEFAULT_RESULTS)


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line (and exit 2), as ``fggp-repro train`` does, instead of the
    usage block and the message."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _parse(parser: argparse.ArgumentParser, argv) -> argparse.Namespace | int:
    try:
        return parser.parse_args(list(argv) if argv is not None else None)
    except SystemExit as e:  # --help (0) or a usage error (2): return, do not exit the caller
        return int(e.code) if isinstance(e.code, int) else (0 if e.code is None else 2)


def _load(results: Path, verb: str, *, histories: bool = False, layers: bool = False):
    """The :class:`analysis.records.Records` under ``results``, or an exit status: 2 with one line when the
    path does not exist, names a file that is not a run record, or holds a damaged run record (file and
    field named); 0 with a plain line when there is nothing to ``verb`` yet. Each JSON file that is not a
    run record is named on stderr, one line each."""
    from .records import load_records

    if not results.exists():
        where = f" ({results.resolve()})" if not results.is_absolute() else ""
        fix = ("run the command from the repository root (where results/ is), or give the folder of run records "
               "with --results DIR" if str(results) == DEFAULT_RESULTS else
               "check the path, or give the folder of run records with --results DIR "
               f"(default: {DEFAULT_RESULTS})")
        print(f"error: results folder not found: {results}{where}; {fix}", file=sys.stderr)
        return 2
    try:
        rec = load_records(results, histories=histories, layers=layers)
    except RecordError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if results.is_file() and rec.skipped:
        path, why = rec.skipped[0]
        print(f"error: {path} is not a run record ({why}); give the folder of run records with --results DIR",
              file=sys.stderr)
        return 2
    for path, why in rec.skipped:
        print(f"note: skipped {path}, not a run record: {why}", file=sys.stderr)
    for p in rec.crossed:
        print(f"protocol {p}: a crossed design of init and order seeds, not pooled or audited with anything: "
              f"`fggp-repro variance --protocol {p}` reads it" + (" (figures writes its variance.md)"
                                                                  if verb == "draw" else ""))
    if rec.runs.empty and not (rec.crossed and verb == "draw"):
        n = len(rec.skipped)
        extra = f" ({n} other JSON file{'s' if n != 1 else ''} skipped)" if n else ""
        print(f"No run records under {results}{extra}: nothing to {verb} yet.")
        return 0
    return rec


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) or "_"


def figures_main(argv: list[str] | None = None) -> int:
    """``fggp-repro figures [--results DIR] [--out DIR] [--only NAME ...] [--protocol P ...] [--readme FILE]``:
    regenerate every registered figure and table and the report (``REPORT.md``), one protocol at a time into
    ``<out>/<protocol>/``, and each study of analysis/claims.toml whose protocols all have records into
    ``<out>/<study>/``; with every protocol and output, also the results-at-a-glance table (``<out>/README.md``,
    and with ``--readme FILE`` the block between that file's results-at-a-glance markers)."""
    from .registry import all_outputs

    parser = _Parser(
        prog="fggp-repro figures",
        description="Regenerate every figure and table from the run records, one protocol at a time "
                    "into OUT/<protocol>/, and each study of analysis/claims.toml ([studies]) whose protocols all "
                    "have records into OUT/<study>/ (no network, no GPU; same records give the same table bytes), "
                    "each with its report OUT/<protocol>/REPORT.md (the verdicts, the main table, the collapses, "
                    "every figure, the platforms, the look). A run over every protocol and output also writes the "
                    "results-at-a-glance table of all of them, OUT/README.md. "
                    "Each protocol's log names the platforms its runs were made on (table: platforms).",
        epilog=RECORDS_RULE)
    _add_results(parser)
    parser.add_argument("--out", default="paper_figures", help="output folder (default: paper_figures)")
    parser.add_argument("--only", action="append", metavar="NAME", help="only this output (repeatable); see --list")
    parser.add_argument("--protocol", action="append", metavar="P", help="only this protocol (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the registered outputs and exit")
    parser.add_argument("--readme", metavar="FILE",
                        help="also write the results-at-a-glance table between the lines "
                             "'<!-- results-at-a-glance:start -->' and '<!-- results-at-a-glance:end -->' of FILE "
                             "(e.g. README.md), its links relative to FILE; needs every protocol and output")
    args = _parse(parser, argv)
    if isinstance(args, int):
        return args

    outputs = all_outputs()
    outputs_names = list(outputs)
    if args.list:
        for o in outputs.values():
            print(f"{o.name:22s} {o.kind:6s} {o.description}")
        return 0
    if args.only:
        unknown = [n for n in args.only if n not in outputs]
        if unknown:
            print(f"error: unknown output(s) {', '.join(unknown)}; known: {', '.join(outputs_names)}", file=sys.stderr)
            return 2
        outputs = {n: outputs[n] for n in outputs_names if n in args.only}

    from .platforms import platform_note
    from .registry import Context, SkipOutput
    from .report import glance_block_problem

    results = _results_path(args)
    if isinstance(results, int):
        return results
    why = unwritable(Path(args.out))
    if why:
        print(f"error: cannot write the output folder {args.out} ({why}); choose another --out", file=sys.stderr)
        return 2
    readme_text = None
    if args.readme is not None:
        if args.only or args.protocol:
            print("error: --readme writes the results-at-a-glance table of every protocol and study: drop --only "
                  "and --protocol", file=sys.stderr)
            return 2
        try:
            readme_text = Path(args.readme).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            print(f"error: cannot read --readme {args.readme} ({getattr(e, 'strerror', None) or e}); give a Markdown "
                  f"file with the results-at-a-glance markers", file=sys.stderr)
            return 2
        problem = glance_block_problem(readme_text)
        if problem:
            print(f"error: --readme {args.readme}: {problem} (the table goes between them)", file=sys.stderr)
            return 2
        why = unwritable(Path(args.readme).parent)
        if why:
            print(f"error: cannot write --readme {args.readme} ({why})", file=sys.stderr)
            return 2
    rec = _load(results, "draw", histories=True, layers=True)
    if isinstance(rec, int):
        return rec
    from .variance import crossed_summary, read_design

    crossed = {p: read_design(results, p) for p in rec.crossed if not args.protocol or p in args.protocol}
    status = _write_variance(rec, crossed, Path(args.out))
    if status or rec.runs.empty:
        return status
    runs = rec.runs
    protocols = sorted(runs["protocol"].unique())
    from .claims import load_claims, studies_status

    studies = load_claims().get("studies", {})
    if args.protocol:
        missing = [p for p in args.protocol if p not in protocols and p not in studies and p not in rec.crossed]
        if missing:
            print(f"error: no runs of protocol {', '.join(missing)}; present: {', '.join(protocols)}", file=sys.stderr)
            return 2
        protocols = [p for p in protocols if p in args.protocol]

    scopes = [(p, "protocol", [p]) for p in protocols]
    pending = []
    for name, have, missing in studies_status(runs, load_claims()):
        if args.protocol and name not in args.protocol:
            continue
        if missing and have:
            print(f"study {name} ({', '.join(have + missing)}): not drawn yet, no records of {', '.join(missing)} "
                  f"(its verdicts would be those of {', '.join(have)} alone)")
            pending.append((name, have + missing, missing))
        elif not missing:
            scopes.append((name, "study", have))
    drawn, dense_only = [], []
    for p, kind, protos in scopes:
        sel = runs["protocol"].isin(protos)
        ctx = Context(
            protocol=p, kind=kind,
            runs=runs[sel].reset_index(drop=True),
            histories=rec.histories[rec.histories["protocol"].isin(protos)].reset_index(drop=True),
            layer_sparsity=rec.layer_sparsity[rec.layer_sparsity["protocol"].isin(protos)].reset_index(drop=True),
        )
        out_dir = Path(args.out) / _safe(p)
        n_div = int((ctx.runs["status"] == "diverged").sum())
        what = "protocol" if kind == "protocol" else f"study ({', '.join(protos)})"
        print(f"{what} {p}: {len(ctx.runs)} runs ({len(ctx.runs) - n_div} completed, {n_div} diverged) -> {out_dir}")
        print(f"  {platform_note(ctx.runs)}")
        written: set[Path] = set()
        lines = []
        for name, o in outputs.items():
            try:
                paths = o.func(ctx, out_dir)
            except SkipOutput as e:
                lines.append(f"  skip {name}: {e}")
                ctx.skipped[name] = str(e)
                continue
            except OutputError as e:  # a disk that fills up, a folder made read-only mid-way: every file is whole
                if lines:
                    print("\n".join(lines), flush=True)
                print(f"error: {name}: {e}, and rerun; the files written before it are whole (each is replaced "
                      f"atomically)", file=sys.stderr)
                return 2
            written.update(Path(x).resolve() for x in paths)
            ctx.produced[name] = [Path(x).name for x in paths]
            lines.append(f"  {name}: {', '.join(Path(x).name for x in paths)}")
        if not written and len(lines) > 1 and not set(ctx.runs["method"]) - {"dense"}:
            print("  skip every output: only dense runs, nothing to compare")
            dense_only.append((p, len(ctx.runs)))
        else:
            print("\n".join(lines))
            drawn.append(ctx)
        removed = _remove_stale(out_dir, written, None if not args.only else set(outputs))
        if removed:
            print(f"  removed (no longer produced): {', '.join(removed)}")
    if args.only or args.protocol:
        return 0
    return _write_glance(drawn, pending, dense_only, Path(args.out), args.readme, readme_text,
                         [crossed_summary(p, rows) for p, (rows, _) in crossed.items()])


def _write_variance(rec, crossed: dict, out: Path) -> int:
    """``<out>/<protocol>/variance.md`` for each crossed design in ``crossed`` ({protocol: its completed runs and
    its runs recorded again on another platform, as :func:`analysis.variance.read_design` reads them}; the rest of
    each design in ``rec``); 2 when a file cannot be
    written."""
    from .formatting import atomic_write_text
    from .variance import design_markdown

    for p, (rows, twins) in crossed.items():
        out_dir = out / _safe(p)
        runs = rec.crossed_runs[rec.crossed_runs["protocol"] == p].reset_index(drop=True)
        try:
            path = atomic_write_text(out_dir / "variance.md", design_markdown(p, runs, rows, twins=twins))
        except OutputError as e:
            print(f"error: variance: {e}, and rerun", file=sys.stderr)
            return 2
        print(f"crossed design {p} -> {out_dir}\n  variance: {path.name}")
        removed = _remove_stale(out_dir, {Path(path).resolve()}, None)
        if removed:
            print(f"  removed (no longer produced): {', '.join(removed)}")
    return 0


def _write_glance(drawn, pending, dense_only, out: Path, readme: str | None, readme_text: str | None,
                  crossed=()) -> int:
    """The results-at-a-glance table of every protocol and study drawn: ``<out>/README.md``, and the block of
    ``readme`` (whose text is ``readme_text``) with links relative to it."""
    from .claims import load_claims
    from .formatting import atomic_write_text
    from .report import GLANCE_FILE, glance_file, glance_markdown, glance_row, relative_link, replace_glance_block

    claims = load_claims()["claims"]
    rows = [glance_row(ctx) for ctx in drawn if "report" in ctx.produced]
    if not rows:
        print("results at a glance: no protocol with a report (nothing compared yet); nothing written")
        return 0
    try:
        path = atomic_write_text(out / GLANCE_FILE, glance_file(glance_markdown(rows, claims, "", pending=pending,
                                                                                   dense_only=dense_only,
                                                                                   crossed=crossed)))
        print(f"results at a glance: {path}")
        if readme is not None:
            body = glance_markdown(rows, claims, relative_link(out, Path(readme).parent), pending=pending,
                                   dense_only=dense_only, crossed=crossed)
            new = replace_glance_block(readme_text, body)
            if new != readme_text:
                atomic_write_text(readme, new)
                print(f"results at a glance: {readme} (its block rewritten)")
            else:
                print(f"results at a glance: {readme} (its block unchanged)")
    except OutputError as e:
        print(f"error: the results-at-a-glance table: {e}, and rerun", file=sys.stderr)
        return 2
    return 0


def _remove_stale(out_dir: Path, written: set[Path], only: set[str] | None) -> list[str]:
    """Delete the output files in ``out_dir`` that this run did not write: every table or figure file
    (by suffix) after a full run, or the files of the selected outputs (``only``) that were skipped.
    Other files are never touched. Returns the names removed, sorted."""
    if not out_dir.is_dir():
        return []
    removed = []
    for f in sorted(out_dir.iterdir()):
        if not f.is_file() or f.suffix not in OUTPUT_SUFFIXES or f.resolve() in written:
            continue
        if only is not None and ("report" if f.name == "REPORT.md" else f.stem) not in only:
            continue
        f.unlink()
        removed.append(f.name)
    return removed


def audit_main(argv: list[str] | None = None) -> int:
    """``fggp-repro audit [--results DIR] [--protocol P] [--claims FILE] [--json]`` (or ``audit RESULTS ...``):
    judge the paper's claims, each protocol separately, and print claim, verdict and the numbers behind it,
    with the platforms each protocol's runs were made on."""
    parser = _Parser(
        prog="fggp-repro audit",
        description="Audit the FGGP paper's five claims (analysis/claims.toml) on the run records, per protocol "
                    "and per study (protocols joined, [studies] of the claims file, once all have records); each "
                    "block names the protocols and settings its verdicts cover and the platforms of its runs.",
        epilog=RECORDS_RULE)
    _add_results(parser, positional=True)
    parser.add_argument("--protocol", help="audit only this protocol (or study)")
    parser.add_argument("--claims", help="a claims TOML file instead of the packaged analysis/claims.toml")
    parser.add_argument("--json", action="store_true",
                        help="print the verdicts as JSON: one object per (protocol, claim) with claim id, verdict, "
                             "reason, the deciding numbers and the protocol's platforms (as the platforms table)")
    args = _parse(parser, argv)
    if isinstance(args, int):
        return args

    from .claims import audit, load_claims, studies_status
    from .claims.audit import scopes
    from .looks import design_look, study_look
    from .platforms import platform_note, platform_table
    from .tables import collapsed_note, diverged_note

    results = _results_path(args)
    if isinstance(results, int):
        return results
    runs = _load(results, "audit")
    if isinstance(runs, int):
        return runs
    runs = runs.runs
    try:
        claims = load_claims(args.claims)
        table = audit(runs, protocol=args.protocol, claims=claims, with_numbers=args.json)
    except (ValueError, OSError) as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    pending = [(n, h, m) for n, h, m in studies_status(runs, claims) if m and h and (args.protocol is None
                                                                                     or args.protocol in h)]
    if args.json:
        import json

        members = {n: ps for n, _, ps in scopes(runs, claims)}
        plats = {n: platform_table(runs[runs["protocol"].isin(ps)]).to_dict("records") for n, ps in members.items()}
        looks = {n: (design_look(runs[runs["protocol"] == n], n, claims["plans"]).text if ps == [n] else
                     study_look(runs, ps, claims["plans"]).text) for n, ps in members.items()}
        out = [dict(protocol=r["protocol"], scope=r["scope"], claim=r["claim"], verdict=r["verdict"],
                    verdict_text=r["verdict_text"], covers=r["covers"], look=r["look"],
                    look_note=looks[r["protocol"]], reason=r["reason"],
                    numbers=_json_safe(r["numbers"]), evidence=r["evidence"], test=r["test"], text=r["text"],
                    completed=int(r["completed"]), diverged=int(r["diverged"]), collapsed=int(r["collapsed"]),
                    platforms=_json_safe(plats.get(r["protocol"], [])))
               for r in table.to_dict("records")]
        print(json.dumps(out, indent=2, ensure_ascii=False, allow_nan=False))
        return 0

    wrap = textwrap.TextWrapper(width=110, initial_indent=" " * 4, subsequent_indent=" " * 6)
    first = True
    members = {n: ps for n, _, ps in scopes(runs, claims, args.protocol)}
    for p, t in table.groupby("protocol", sort=False):
        if not first:
            print()
        first = False
        pr = runs[runs["protocol"].isin(members[p])]
        what = "protocol" if members[p] == [p] else f"study ({' + '.join(members[p])})"
        print(f"{what} {p}: {int(t['completed'].iloc[0])} completed runs. {diverged_note(pr)} {collapsed_note(pr)}")
        print(f"  {platform_note(pr)}")
        if set(t["reason"]) == {"there are no fggp runs"}:
            # e.g. a frontier of dense reference runs: nothing to judge, one line instead of three blocks
            print(f"  every claim inconclusive: there are no fggp runs (methods here: "
                  f"{', '.join(sorted(set(pr['method'])))})")
            continue
        look = (design_look(pr, p, claims["plans"]) if members[p] == [p]
                else study_look(pr, members[p], claims["plans"]))
        print(textwrap.fill(look.text, width=110, initial_indent="  ", subsequent_indent="  "))
        print(textwrap.fill(f"covers: {t['covers'].iloc[0]}", width=110, initial_indent="  ", subsequent_indent="    "))
        w = max(len("claim"), *(len(c) for c in t["claim"]))
        vw = max(12, *(len(v) for v in t["verdict_text"]))
        print(f"  {'claim':{w}s}  {'verdict':{vw}s}  claim text")
        print(f"  {'-' * w}  {'-' * vw}  {'-' * 60}")
        for r in t.itertuples(index=False):
            print(f"  {r.claim:{w}s}  {r.verdict_text:{vw}s}  {r.text}")
            if r.covers != t["covers"].iloc[0]:
                print(wrap.fill(f"covers: {r.covers}"))
            print(wrap.fill(f"why: {r.reason}"))
            print(wrap.fill(f"test: {r.test}"))
            if r.evidence:
                print(wrap.fill(f"numbers: {r.evidence}"))
    for name, have, missing in pending:
        print(f"\nstudy {name} ({' + '.join(have + missing)}): not judged yet, no records of {', '.join(missing)} "
              f"(its verdicts would be those of {', '.join(have)} alone)")
    return 0


def _json_safe(x):
    """NaN and infinities as null, numpy scalars as Python numbers: strict JSON."""
    import math

    import numpy as np

    if isinstance(x, dict):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(float(x)) else None
    return x


def plan_main(argv: list[str] | None = None) -> int:
    """``fggp-repro plan [--results DIR] --protocol P [--effect E] [--power Q] [--alpha A] [--claims FILE]
    [--at-seeds N] [--collapsed separate|keep]`` (or ``plan RESULTS ...``): from the
    observed spread of each paired comparison of a protocol, the minimum detectable difference now and the
    seeds each setting needs to detect a difference of E accuracy points."""
    parser = _Parser(
        prog="fggp-repro plan",
        description="Seeds each setting needs for the audit's paired comparisons to detect a given difference, "
                    "from the observed seed-to-seed spread of the paired differences (noncentral t, Bonferroni "
                    "level alpha/m over the protocol's m settings, as the audit's Holm procedure starts).",
        epilog=RECORDS_RULE)
    _add_results(parser, positional=True)
    parser.add_argument("--protocol", help="the protocol to plan for (required when the records hold several)")
    parser.add_argument("--effect", type=float, default=None,
                        help="the difference to detect, accuracy points (default: delta of claims.toml)")
    parser.add_argument("--power", type=float, default=None, help="power (default: claims.toml, 0.8)")
    parser.add_argument("--alpha", type=float, default=None, help="family-wise level (default: claims.toml, 0.05)")
    parser.add_argument("--claims", help="a claims TOML file instead of the packaged analysis/claims.toml")
    parser.add_argument("--at-seeds", type=int, default=None, metavar="N",
                        help="also print, per comparison, the smallest difference N seeds would detect (a budget)")
    parser.add_argument("--collapsed", choices=("separate", "keep"), default=None,
                        help="runs at chance level (final accuracy <= 11 %%): set their seed pairs aside, as the "
                             "audit's accuracy tests do, or keep them (default: collapsed of claims.toml, separate)")
    args = _parse(parser, argv)
    if isinstance(args, int):
        return args
    if args.at_seeds is not None and args.at_seeds < 2:
        print(f"error: --at-seeds must be at least 2 (a paired t-test needs 2 seeds), got {args.at_seeds}",
              file=sys.stderr)
        return 2
    from .claims import load_claims, with_overrides
    from .plan import plan, plan_text

    results = _results_path(args)
    if isinstance(results, int):
        return results
    try:
        cfg = load_claims(args.claims)
    except (ValueError, OSError) as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    d = cfg["defaults"]
    effect = d["delta"] if args.effect is None else args.effect
    power = d["power"] if args.power is None else args.power
    alpha = d["alpha"] if args.alpha is None else args.alpha
    for name, v, ok in (("--effect", effect, 0 < effect < math.inf), ("--power", power, 0 < power < 1),
                        ("--alpha", alpha, 0 < alpha < 1)):
        if not ok:
            need = "a finite number > 0" if name == "--effect" else "in (0, 1)"
            print(f"error: {name} must be {need}, got {v:g}", file=sys.stderr)
            return 2
    runs = _load(results, "plan")
    if isinstance(runs, int):
        return runs
    runs = runs.runs
    protocols = sorted(runs["protocol"].unique())
    if args.protocol is None:
        if len(protocols) > 1:
            print(f"error: the records hold several protocols; name one with --protocol ({', '.join(protocols)})",
                  file=sys.stderr)
            return 2
        args.protocol = protocols[0]
    if args.protocol not in protocols:
        print(f"error: no runs of protocol {args.protocol}; present: {', '.join(protocols)}", file=sys.stderr)
        return 2
    claim = next(c for c in cfg["claims"] if c.rule == "outperforms_in_most_settings")
    if args.collapsed is not None:
        claim = with_overrides(claim, {"collapsed": args.collapsed})
    table = plan(runs[runs["protocol"] == args.protocol], claim, effect=effect, power=power, alpha=alpha,
                 at_seeds=args.at_seeds)
    print(plan_text(table, args.protocol, claim, effect=effect, power=power, alpha=alpha, at_seeds=args.at_seeds))
    return 0


def calibrate_main(argv: list[str] | None = None) -> int:
    """``python -m analysis calibrate [--replicates R] [--resamples B] [--seed S] [--fit P --results DIR]``:
    simulate records under known truths and print how often each claim is judged supported / refuted /
    inconclusive (the calibration of the audit's decision rules)."""
    parser = _Parser(
        prog="python -m analysis calibrate",
        description="Calibration of the claims audit: verdict rates on records simulated from a variance-components "
                    "model (seed, seed x setting, noise) under known true differences.")
    parser.add_argument("--replicates", type=int, default=1000, help="simulated replicates per scenario (default 1000)")
    parser.add_argument("--resamples", type=int, default=1000,
                        help="whole-seed bootstrap resamples per replicate for claim 3 (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulation (default 0)")
    parser.add_argument("--fit", metavar="P", help="also print the variance components fitted to protocol P's records; "
                        "P may name a study (analysis/claims.toml [studies]): the components of each of its "
                        "protocols, fitted to that protocol's records alone")
    parser.add_argument("--results", default=None, help="folder of run records for --fit (default: results)")
    parser.add_argument("--design", action="store_true",
                        help="with --fit P: simulate P's own design (its settings and alternatives, the fitted "
                             "components, each setting's own noise) instead of the standard scenarios: what the audit "
                             "would say of that grid under no effect and under a true effect of delta and 2 delta; "
                             "a study's design joins its protocols' designs (every setting of each, with that "
                             "protocol's components and seeds), judged as the study's audit")
    parser.add_argument("--seeds", type=int, default=None, metavar="N",
                        help="with --design: seeds per cell to simulate (default: the most any cell of P has)")
    parser.add_argument("--looks", metavar="A-B", default=None,
                        help="with --design: judge every simulated grid after each seed count from A to B (or a "
                             "list such as 5,8,12) and print how often some look says supported or refuted: the "
                             "error rates of reading the audit after every batch of seeds")
    parser.add_argument("--plan", nargs="?", const="", default=None, metavar="START=N,...",
                        help="with --design: simulate the final look of P's planned design (analysis/claims.toml "
                             "[plans.P]): every planned start at the target sparsities P has runs at, each with its "
                             "planned seeds; a setting without runs yet takes the pooled noise. With a value such as "
                             "dense-start=12,50%%-sparse-start=8: that design instead (to choose a plan)")
    args = _parse(parser, argv)
    if isinstance(args, int):
        return args
    if args.replicates < 1 or args.resamples < 1:
        print("error: --replicates and --resamples must be >= 1", file=sys.stderr)
        return 2
    if args.seed < 0:
        print(f"error: --seed must be a whole number >= 0 (numpy's seeds are non-negative), got {args.seed}",
              file=sys.stderr)
        return 2
    if args.results is not None and not args.fit:
        print("error: --results is read only by --fit P (the calibration itself simulates its records): add --fit P "
              "or drop --results", file=sys.stderr)
        return 2
    if (args.design or args.seeds is not None) and not args.fit:
        print("error: --design and --seeds simulate a protocol's own design: name it with --fit P", file=sys.stderr)
        return 2
    if args.seeds is not None and not args.design:
        print("error: --seeds sets the seeds of --design; add --design", file=sys.stderr)
        return 2
    if args.plan is not None and (not args.design or args.seeds is not None or args.looks is not None):
        print("error: --plan simulates the planned design's final look: use it with --design --fit P, without "
              "--seeds or --looks", file=sys.stderr)
        return 2
    looks = None
    if args.looks is not None:
        looks = _seed_counts(args.looks)
        if isinstance(looks, str):
            print(f"error: --looks {args.looks}: {looks}", file=sys.stderr)
            return 2
        if not args.design:
            print("error: --looks judges a protocol's own design at growing seed counts: add --design --fit P",
                  file=sys.stderr)
            return 2
        if args.seeds is not None:
            print("error: --looks sets the seeds (its largest count); drop --seeds", file=sys.stderr)
            return 2
        args.seeds = looks[-1]
    if args.seeds is not None and args.seeds < 2:
        print(f"error: --seeds must be at least 2 (a paired t-test needs 2 seeds), got {args.seeds}", file=sys.stderr)
        return 2
    from .calibration import design_scenarios, fit_components

    if args.fit:
        from .claims import load_claims

        runs = _load(Path(args.results or DEFAULT_RESULTS), "fit")
        if isinstance(runs, int):
            return runs
        runs = runs.runs
        try:
            members = load_claims().get("studies", {}).get(args.fit)
        except ValueError as e:
            print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
            return 2
        if members is not None:  # a study: its protocols, each fitted on its own records
            return _calibrate_study(args, runs, members, looks)
        if args.fit not in set(runs["protocol"]):
            print(f"error: no runs of protocol {args.fit}; present: {', '.join(sorted(set(runs['protocol'])))}",
                  file=sys.stderr)
            return 2
        try:
            comp = fit_components(runs[runs["protocol"] == args.fit])
        except (ValueError, KeyError) as e:
            print(f"error: cannot fit protocol {args.fit}: {' '.join(str(e).split())}", file=sys.stderr)
            return 2
        print(_components_line(args.fit, comp))
    scenarios, components = None, None
    if args.design:
        plan = None
        if args.plan == "":
            from .claims import load_claims

            plan = load_claims().get("plans", {}).get(args.fit)
            if plan is None:
                print(f"error: protocol {args.fit} has no planned seeds; add [plans.{args.fit}] to "
                      f"analysis/claims.toml or drop --plan", file=sys.stderr)
                return 2
            plan = plan["seeds"]
        elif args.plan is not None:
            plan = _plan_seeds(args.plan)
            if isinstance(plan, str):
                print(f"error: --plan {args.plan}: {plan}", file=sys.stderr)
                return 2
        design = _design_of(runs[runs["protocol"] == args.fit], comp, args.seeds, plan)
        if isinstance(design, str):
            print(f"error: cannot simulate the design of protocol {args.fit}: {design}", file=sys.stderr)
            return 2
        S, methods, K, components, text, by_setting = design
        scenarios = design_scenarios(S, K=K, seeds_by_setting=by_setting, methods=methods)
        print(f"simulated at the design of protocol {args.fit}: {text}; {args.replicates} replicates per scenario, "
              f"{args.resamples} resamples of seeds for claim 3; every replicate judged by analysis.claims.decide, the "
              f"audit's own")
    return _print_calibration(args, scenarios, components, looks)  # scenarios None: the standard ones


def _components_line(protocol: str, comp: dict) -> str:
    """The line ``calibrate --fit`` prints of one protocol's fitted variance components."""
    return (f"variance components of protocol {protocol} ({comp['settings']} settings x {comp['methods']} methods "
            f"x {comp['seeds']} seeds, random excluded"
            + (f"; {comp['collapsed_left_out']} run(s) at chance level left out"
               if comp["collapsed_left_out"] else "")
            + "), standard deviations in accuracy points: seed "
            f"{comp['seed']:.2f}, seed x setting {comp['setting_seed']:.2f}, noise {comp['noise']:.2f}; runs at "
            f"chance level: {comp['collapse_rate']:.4f} of the completed sparse runs")


def _calibrate_study(args, runs, members: list, looks) -> int:
    """``calibrate --fit STUDY``: each protocol of the study fitted on its own records; with ``--design``, the
    study's design (:func:`analysis.calibration.join_designs`) simulated and judged as the study's audit judges
    it (one decide() over every setting: Holm over all of them, seeds resampled within each protocol's starts)."""
    from .calibration import design_scenarios, fit_components, fit_shortfall, join_designs
    from .claims import load_claims

    study = args.fit
    present = set(runs["protocol"])
    missing = [p for p in members if p not in present]
    if missing:
        print(f"error: study {study} joins {', '.join(members)}, and {', '.join(missing)} has no records yet: "
              f"calibrate the protocols alone until it has", file=sys.stderr)
        return 2
    if args.plan not in (None, ""):
        print(f"error: --plan {args.plan} gives one protocol's design; study {study} joins several: give --plan "
              f"alone (each protocol's [plans.P] of analysis/claims.toml), or --fit one of {', '.join(members)}",
              file=sys.stderr)
        return 2
    comps = {}
    for p in members:
        dp = runs[runs["protocol"] == p]
        try:
            comps[p] = fit_components(dp)
        except (ValueError, KeyError):
            try:
                lacks = fit_shortfall(dp)
            except KeyError:
                lacks = ""
            print(f"error: cannot calibrate study {study}: protocol {p} has too few records to fit its variance "
                  f"components, {lacks or 'no 2 settings with a run of every method at the same 2 seeds'} (the fit "
                  f"needs 2 settings and 2 methods besides random with a completed run of each method at the same "
                  f"2 seeds, runs at chance level aside)", file=sys.stderr)
            return 2
    print(f"study {study} joins protocols {' + '.join(members)} (analysis/claims.toml [studies.{study}]), each "
          f"fitted on its own records:")
    for p in members:
        print(_components_line(p, comps[p]))
    if not args.design:
        return _print_calibration(args, None, None, looks)
    plans = load_claims().get("plans", {}) if args.plan == "" else {}
    parts, texts = [], []
    for p in members:
        plan = None
        if args.plan == "":
            if p not in plans:
                print(f"error: protocol {p} of study {study} has no planned seeds; add [plans.{p}] to "
                      f"analysis/claims.toml or drop --plan", file=sys.stderr)
                return 2
            plan = plans[p]["seeds"]
        design = _design_of(runs[runs["protocol"] == p], comps[p], args.seeds, plan)
        if isinstance(design, str):
            print(f"error: cannot simulate the design of study {study}: protocol {p}: {design}", file=sys.stderr)
            return 2
        S, methods, K, components, text, by_setting = design
        parts.append((p, S, methods, K, components, by_setting))
        texts.append((p, text))
    j = join_designs(parts)
    scenarios = design_scenarios(j["S"], K=j["K"], seeds_by_setting=j["seeds_by_setting"], methods=j["methods"],
                                 protocols=j["protocols"], absent=j["absent"])
    methods = j["methods"]
    each = ", ".join(f"{n} of {p}" for p, n, *_ in parts)
    print(f"simulated at the design of study {study}: {j['S']} settings ({each}), each protocol's simulated as its "
          f"own grid (its seeds, components and dense reference); {methods[0]} + {len(methods) - 1} other methods "
          f"({', '.join(methods[1:])}) + dense"
          + ("; a protocol without runs of a method has none in the simulation either" if j["absent"] is not None
             else "")
          + f"; {args.replicates} replicates per scenario, {args.resamples} resamples of seeds for claim 3; every "
          f"replicate judged by analysis.claims.decide, the audit's own, as the study's audit: Holm over all "
          f"{j['S']} settings, seeds resampled within each protocol's starts")
    for p, text in texts:
        print(f"  protocol {p}: {text}")
    return _print_calibration(args, scenarios, j["components"], looks)


def _print_calibration(args, scenarios, components, looks) -> int:
    """The verdict rates of ``scenarios`` (None: the standard ones, with the mini components), printed: at each
    look with ``looks``."""
    from .calibration import METHODS, MINI_COMPONENTS, SCENARIOS, calibrate, calibrate_looks

    if scenarios is None:
        scenarios = SCENARIOS
        print(f"simulated with seed {MINI_COMPONENTS['seed']}, seed x setting {MINI_COMPONENTS['setting_seed']}, "
              f"noise {MINI_COMPONENTS['noise']} (accuracy points); 6 settings, {' + '.join(METHODS)} + dense; "
              f"{args.replicates} replicates per scenario, {args.resamples} whole-seed resamples for claim 3")
    if looks is not None:
        t = calibrate_looks(list(scenarios.values()), looks, n_replicates=args.replicates, seed=args.seed,
                            n_resamples=args.resamples, components=components)
        print(f"looks: the audit read after each of {len(looks)} seed counts ({t['looks'].iloc[0]}) of the same "
              f"simulated grid; 'some look' counts a grid once if any of its looks says so")
        for name, g in t.groupby("scenario", sort=False):
            print(f"\n{name}: {scenarios[name].description}")
            for r in g.itertuples(index=False):
                print(f"  {r.claim:26s} at {looks[-1]} seeds: supported {r.final_supported:.3f} refuted "
                      f"{r.final_refuted:.3f};  some look: supported {r.any_supported:.3f} (se "
                      f"{r.se_any_supported:.3f}) refuted {r.any_refuted:.3f} (se {r.se_any_refuted:.3f})")
        return 0
    t = calibrate(list(scenarios.values()), n_replicates=args.replicates, seed=args.seed, n_resamples=args.resamples,
                  components=components)
    for name, g in t.groupby("scenario", sort=False):
        scn = scenarios[name]
        print(f"\n{name}: {scn.description}")
        for r in g.itertuples(index=False):
            print(f"  {r.claim:26s} supported {r.supported:.3f} (se {r.se_supported:.3f}; by less than delta "
                  f"{r.supported_small:.3f})  refuted {r.refuted:.3f} (se {r.se_refuted:.3f})  inconclusive "
                  f"{r.inconclusive:.3f}")
    return 0


def _seed_counts(text: str) -> list[int] | str:
    """``A-B`` or ``a,b,c`` as a sorted list of distinct seed counts >= 2, or a string saying what is wrong."""
    try:
        if "-" in text:
            a, b = (int(x) for x in text.split("-", 1))
            counts = list(range(a, b + 1))
        else:
            counts = sorted({int(x) for x in text.split(",")})
    except ValueError:
        return "give a range A-B or a list of seed counts such as 5,8,12"
    if len(counts) < 2 or counts[0] < 2:
        return "give at least two seed counts, each at least 2 (a paired t-test needs 2 seeds)"
    return counts


def _design_of(runs, comp: dict, seeds: int | None, plan: dict | None = None):
    """(S, A, K, components, text, seeds_by_setting) of one protocol's grid for ``calibrate --design``: fggp's
    settings, the alternatives of claims.toml that have runs, K seeds (``seeds``, or the most any cell has), and
    the fitted components with each setting's own noise (the pooled noise where a setting has too few complete
    runs to estimate its own); or a string saying why not. ``seeds_by_setting`` is None.

    With ``plan`` (a plan's seeds, {start label: seeds}): the planned design instead, every planned start at each
    target sparsity fggp has runs at, with that start's seeds (``seeds_by_setting``; K the most)."""
    import math

    from .calibration import TAIL_DF
    from .claims import load_claims
    from .formatting import fmt_num
    from .records import DENSE, SETTING_KEYS, method_order, setting_label, start_density

    defaults = load_claims()["defaults"]
    method = defaults["method"]
    done = runs[runs["status"] == "completed"]
    settings = sorted(tuple(k) for k in done.loc[done["method"] == method, list(SETTING_KEYS)].drop_duplicates()
                .itertuples(index=False, name=None))
    # every sparse method of the protocol: the claims pick theirs from them, as the audit does
    alternatives = [a for a in method_order(done["method"].unique()) if a not in (method, DENSE)]
    if len(settings) < 1 or not alternatives:
        return f"it needs completed {method} runs and at least one other method"
    by_seeds = None
    if plan is not None:
        cells = sorted({k[:2] + (k[2],) + k[4:] for k in settings})  # dataset, arch, sparsity, protocol
        settings = [(ds, arch, sp, start_density(start), proto) for start in plan for ds, arch, sp, proto in cells]
        by_seeds = tuple(int(plan[start]) for start in plan for _ in cells)
        K = max(by_seeds)
    else:
        K = seeds or int(done.groupby(list(SETTING_KEYS) + ["method"])["seed"].nunique().max())
    if K < 2:
        return "its cells have 1 seed; give --seeds N (N >= 2)"
    by = comp["noise_by_setting"]
    noise = [by.get(k, math.nan) for k in settings]
    pooled = [i for i, x in enumerate(noise) if not math.isfinite(x)]
    noise = [comp["noise"] if i in pooled else x for i, x in enumerate(noise)]
    labels = ", ".join(f"{fmt_num(x)} at {setting_label(*k[:4])}" for k, x in zip(settings, noise))
    seeds_text = (f"{K} seeds" if by_seeds is None else "seeds by start: " + ", ".join(
        f"{n} at the {start}" for start, n in plan.items()))
    text = (f"{len(settings)} settings, {method} + {len(alternatives)} other methods ({', '.join(alternatives)}) + "
            f"dense, {seeds_text}; standard deviations seed {comp['seed']:.2f}, seed x setting "
            f"{comp['setting_seed']:.2f}, noise {labels} (dense: the pooled {comp['noise']:.2f})"
            + (f"; {len(pooled)} setting(s) with too few complete runs (or none yet) take the pooled noise"
               if pooled else "")
            + f"; run noise Student-t with {TAIL_DF} degrees of freedom (heavy tails); runs at chance level drawn at "
              f"the fitted rate {comp['collapse_rate']:.4f} per sparse run")
    components = {"seed": comp["seed"], "setting_seed": comp["setting_seed"], "noise": comp["noise"],
                  "noise_by_setting": noise, "collapse_rate": comp["collapse_rate"], "tail_df": TAIL_DF}
    return len(settings), [method] + alternatives, K, components, text, by_seeds


def _plan_seeds(text: str) -> dict | str:
    """``dense-start=12,50%-sparse-start=5`` as {start label: seeds}, or a string saying what is wrong."""
    from .looks import start_seeds_problem

    plan = {}
    for part in text.split(","):
        start, eq, n = part.strip().partition("=")
        if not eq or not n.strip().isdigit():
            return "give START=N pairs, such as dense-start=12,50%-sparse-start=5"
        problem = start_seeds_problem(start.strip(), int(n))
        if problem:
            return problem
        plan[start.strip()] = int(n)
    return plan


def main(argv: list[str] | None = None) -> int:
    """``python -m analysis figures|audit|plan|calibrate ...``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"figures": figures_main, "audit": audit_main, "plan": plan_main, "calibrate": calibrate_main}
    if not argv or argv[0] not in commands:
        if argv and argv[0] in ("-h", "--help"):
            print("usage: python -m analysis {figures,audit,plan,calibrate} [options]  "
                  "(see python -m analysis figures --help)")
            return 0
        what = f"unknown command '{argv[0]}'" if argv else "no command given"
        print(f"python -m analysis: error: {what}; choose from figures, audit, plan, calibrate (see python -m "
              "analysis --help)", file=sys.stderr)
        return 2
    return commands[argv[0]](argv[1:])

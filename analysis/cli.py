"""Command-line entry points: ``fggp-repro figures`` and ``fggp-repro audit`` (also
``python -m analysis figures|audit``). Both take ``argv`` without the program/subcommand name and
return an exit status: 0 on success (including "nothing to draw yet"), 2 on a bad record or bad
arguments, with one line on stderr naming the file and the field."""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from pathlib import Path

from .errors import RecordError

__all__ = ["figures_main", "audit_main", "main"]


def _parse(parser: argparse.ArgumentParser, argv) -> argparse.Namespace | int:
    try:
        return parser.parse_args(list(argv) if argv is not None else None)
    except SystemExit as e:  # --help (0) or a usage error (2): return, do not exit the caller
        return int(e.code) if isinstance(e.code, int) else (0 if e.code is None else 2)


def _load(results: Path, loader, verb: str):
    """``loader(results)``, or an exit status: 0 with a plain line when there is nothing to
    ``verb`` yet, 2 with one line naming the file and field of a bad record."""
    if not results.exists():
        print(f"No results folder {results}: nothing to {verb} yet.")
        return 0
    try:
        loaded = loader(results)
    except RecordError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from .records import Records

    if (loaded.runs if isinstance(loaded, Records) else loaded).empty:
        print(f"No run records under {results}: nothing to {verb} yet.")
        return 0
    return loaded


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) or "_"


def figures_main(argv: list[str] | None = None) -> int:
    """``fggp-repro figures [--results DIR] [--out DIR] [--only NAME ...] [--protocol P ...]``:
    regenerate every registered figure and table, one protocol at a time into ``<out>/<protocol>/``."""
    from .registry import all_outputs

    parser = argparse.ArgumentParser(
        prog="fggp-repro figures",
        description="Regenerate every figure and table from the run records, one protocol at a time "
                    "into OUT/<protocol>/ (no network, no GPU; same records give the same table bytes).")
    parser.add_argument("--results", default="results", help="folder of run records, searched recursively (default: results)")
    parser.add_argument("--out", default="paper_figures", help="output folder (default: paper_figures)")
    parser.add_argument("--only", action="append", metavar="NAME", help="only this output (repeatable); see --list")
    parser.add_argument("--protocol", action="append", metavar="P", help="only this protocol (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the registered outputs and exit")
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

    from .records import load_records
    from .registry import Context, SkipOutput

    rec = _load(Path(args.results), load_records, "draw")
    if isinstance(rec, int):
        return rec
    runs = rec.runs
    protocols = sorted(runs["protocol"].unique())
    if args.protocol:
        missing = [p for p in args.protocol if p not in protocols]
        if missing:
            print(f"error: no runs of protocol {', '.join(missing)}; present: {', '.join(protocols)}", file=sys.stderr)
            return 2
        protocols = [p for p in protocols if p in args.protocol]

    for p in protocols:
        ctx = Context(
            protocol=p,
            runs=runs[runs["protocol"] == p].reset_index(drop=True),
            histories=rec.histories[rec.histories["protocol"] == p].reset_index(drop=True),
            layer_sparsity=rec.layer_sparsity[rec.layer_sparsity["protocol"] == p].reset_index(drop=True),
        )
        out_dir = Path(args.out) / _safe(p)
        n_div = int((ctx.runs["status"] == "diverged").sum())
        print(f"protocol {p}: {len(ctx.runs)} runs ({len(ctx.runs) - n_div} completed, {n_div} diverged) -> {out_dir}")
        for name, o in outputs.items():
            try:
                paths = o.func(ctx, out_dir)
            except SkipOutput as e:
                print(f"  skip {name}: {e}")
                continue
            print(f"  {name}: {', '.join(Path(x).name for x in paths)}")
    return 0


def audit_main(argv: list[str] | None = None) -> int:
    """``fggp-repro audit [RESULTS] [--protocol P] [--claims FILE]``: judge the paper's claims,
    each protocol separately, and print claim, verdict and the numbers behind it."""
    parser = argparse.ArgumentParser(
        prog="fggp-repro audit",
        description="Audit the FGGP paper's claims (analysis/claims.toml) on the run records, per protocol.")
    parser.add_argument("results", nargs="?", default="results", help="folder of run records (default: results)")
    parser.add_argument("--protocol", help="audit only this protocol")
    parser.add_argument("--claims", help="a claims TOML file instead of the packaged analysis/claims.toml")
    args = _parse(parser, argv)
    if isinstance(args, int):
        return args

    from .claims import audit
    from .records import load_runs
    from .tables import diverged_note

    runs = _load(Path(args.results), load_runs, "audit")
    if isinstance(runs, int):
        return runs
    try:
        table = audit(runs, protocol=args.protocol, claims=args.claims)
    except (ValueError, OSError) as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2

    wrap = textwrap.TextWrapper(width=110, initial_indent=" " * 4, subsequent_indent=" " * 6)
    first = True
    for p, t in table.groupby("protocol", sort=True):
        if not first:
            print()
        first = False
        pr = runs[runs["protocol"] == p]
        print(f"protocol {p}: {int(t['completed'].iloc[0])} completed runs. {diverged_note(pr)}")
        w = max(len("claim"), *(len(c) for c in t["claim"]))
        print(f"  {'claim':{w}s}  {'verdict':13s}  numbers")
        print(f"  {'-' * w}  {'-' * 13}  {'-' * 60}")
        for r in t.itertuples(index=False):
            print(f"  {r.claim:{w}s}  {r.verdict:13s}  {r.text}")
            print(wrap.fill(f"test: {r.test}"))
            print(wrap.fill(f"numbers: {r.evidence}"))
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m analysis figures|audit ...``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"figures": figures_main, "audit": audit_main}
    if not argv or argv[0] not in commands:
        if argv and argv[0] in ("-h", "--help"):
            print("usage: python -m analysis {figures,audit} [options]  (see python -m analysis figures --help)")
            return 0
        print("usage: python -m analysis {figures,audit} [options]", file=sys.stderr)
        return 2
    return commands[argv[0]](argv[1:])

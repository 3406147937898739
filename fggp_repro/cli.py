"""``fggp-repro``: the command line. Training flags are generated from the config dataclasses.

Subcommands ``figures`` and ``audit`` belong to the ``analysis`` package; they are looked up by name
only when called, so the training core never imports analysis (nor pandas), and ``analysis`` never
imports torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from . import config as C

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line (and exit 2) instead of usage + message."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


class _Fmt(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog):
        super().__init__(prog, max_help_position=34, width=110)


def _parse_int_list(text: str) -> tuple:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got '{text}'") from None


def _show(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return repr(value) if isinstance(value, str) else str(value)


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per config field (``--field-name``), grouped as in the config, defaults shown from the dataclass."""
    groups = {}
    for gname, f, typ in C.group_fields():
        if gname not in groups:
            groups[gname] = parser.add_argument_group(f"{gname} config")
        grp = groups[gname]
        flag = "--" + f.name.replace("_", "-")
        kw = dict(dest=f"cfg__{gname}__{f.name}", default=None, help=(f.metadata["help"] + f" (default: {_show(f.default)})").replace("%", "%%"))
        if typ is bool:
            grp.add_argument(flag, action=argparse.BooleanOptionalAction, **kw)
        elif typ is tuple:
            grp.add_argument(flag, type=_parse_int_list, metavar="E1,E2", **kw)
        else:
            choices = f.metadata.get("choices")
            metavar = "{" + ",".join(choices) + "}" if choices else {int: "N", float: "X", str: "TEXT"}[typ]
            grp.add_argument(flag, type=typ, metavar=metavar, **kw)


def overrides_from_args(args: argparse.Namespace) -> dict:
    out: dict[str, dict] = {}
    for key, value in vars(args).items():
        if key.startswith("cfg__") and value is not None:
            _, g, name = key.split("__")
            out.setdefault(g, {})[name] = value
    return out


def config_from_args(args: argparse.Namespace) -> C.Config:
    return C.load(preset=args.preset, file=args.config, overrides=overrides_from_args(args))


def _cmd_train(args: argparse.Namespace) -> int:
    from .data import DataError
    from .trainer import CheckpointError, train

    cfg = config_from_args(args)
    if args.print_config:
        print(C.as_toml(cfg), end="")
        return 0
    try:
        res = train(cfg, args.out, force=args.force, quiet=args.quiet, stop_after_epochs=args.stop_after_epochs,
                    deadline=args.deadline_at)
    except (DataError, CheckpointError) as e:
        print(f"fggp-repro train: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    if res.status == "skipped":
        print(f"skipped: {res.path} exists (pass --force to rerun)")
    elif res.status == "interrupted":
        print(f"stopped as asked; checkpoint {res.path}; run the same command again to resume")
    else:
        m = res.record["metrics"]
        print(f"{res.status}: {res.path}  test_acc={m['test_acc']}  sparsity={m['sparsity']:.4f}  "
              f"weights_sha256={res.record['weights_sha256'][:16]}")
    return 1 if res.status == "diverged" else 0


def _cmd_grid(args: argparse.Namespace) -> int:
    from . import grid

    methods = grid.parse_list(args.methods, "methods")
    runs = grid.expand(methods, grid.parse_list(args.sparsities, "sparsities", float),
                       grid.parse_list(args.inits, "inits"), grid.parse_seeds(args.seeds))
    extra_flags, extra = [], {"data": {}}
    if args.dataset:
        extra_flags += ["--dataset", args.dataset]
        extra["data"]["dataset"] = args.dataset
    if args.data_root:
        extra_flags += ["--data-root", args.data_root]
        extra["data"]["data_root"] = args.data_root
    if args.device:
        extra_flags += ["--device", args.device]
    if args.precision:
        extra_flags += ["--precision", args.precision]
        extra["run"] = {"precision": args.precision}
    if args.jobs < 1:
        raise C.ConfigError(f"--jobs must be >= 1, got {args.jobs}")
    if args.deadline is not None and not args.deadline > 0:
        raise C.ConfigError(f"--deadline must be a positive number of minutes, got {args.deadline}")
    failed = grid.run_grid(args.preset, runs, args.out, jobs=args.jobs, extra_flags=extra_flags, extra=extra,
                           quiet=args.quiet, deadline_minutes=args.deadline, resume_only=args.resume_only)
    return 1 if failed else 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from .data import DataError
    from .trainer import CheckpointError
    from .verify import verify

    try:
        report = verify(args.record, data_root=args.data_root, tolerance=args.tolerance, quiet=not args.verbose)
    except (DataError, CheckpointError) as e:
        print(f"fggp-repro verify: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    print("\n".join(report.lines()))
    return 0 if report.ok else 1


def _cmd_presets(args: argparse.Namespace) -> int:
    for name in C.preset_names():
        print(name)
    return 0


def _run_external(name: str, argv: list[str]) -> int:
    """A subcommand implemented elsewhere as ``module:function(argv) -> int``, imported when called."""
    module, func = EXTERNAL[name][1].split(":")
    return getattr(importlib.import_module(module), func)(argv)


# name -> (help, handler); figures/audit forward their own arguments to the analysis package
EXTERNAL = {
    "figures": ("regenerate every figure and table in paper_figures/ from the run records in results/",
                "analysis.cli:figures_main"),
    "audit": ("audit the paper's three claims against the run records", "analysis.cli:audit_main"),
    "plan": ("seeds each setting needs to detect a given effect, from the observed seed spread",
             "analysis.cli:plan_main"),
}


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="fggp-repro", description="FGGP reproducibility package: train, regenerate figures, audit claims.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="train one run (dense or pruned) and write its record", formatter_class=_Fmt,
                       description="Train one run and write its JSON record to <out>/raw/<dataset>/<arch>/<method>/<run_id>.json.\n"
                                   "Precedence: config defaults (the paper protocol) < --preset < --config < flags.")
    t.add_argument("--preset", help="a shipped preset: " + ", ".join(C.preset_names()))
    t.add_argument("--config", metavar="FILE", help="a TOML file with [data] [model] [pruning] [training] [run] tables")
    t.add_argument("--out", default="runs",
                   help="output folder: records under <out>/raw, checkpoints under <out>/checkpoints (default: runs)")
    t.add_argument("--force", action="store_true", help="rerun even when the record exists (discards its checkpoint)")
    t.add_argument("--quiet", action="store_true", help="no progress output")
    t.add_argument("--stop-after-epochs", type=int, metavar="N",
                   help="stop after N epochs of this call, leaving a checkpoint to resume from (for time-sliced machines)")
    t.add_argument("--deadline-at", type=float, metavar="UNIX_TIME",
                   help="stop after the last epoch that ends before this time.time() value, leaving a checkpoint "
                        "(set by `grid --deadline`)")
    t.add_argument("--print-config", action="store_true", help="print the resolved config as TOML and exit")
    add_config_flags(t)
    t.set_defaults(func=_cmd_train)

    g = sub.add_parser("grid", help="run every missing run of a grid of methods, sparsities, starts and seeds",
                       formatter_class=_Fmt,
                       description="Run every missing run of the grid (finished records are skipped, interrupted runs\n"
                                   "resume from their checkpoints), each as its own `fggp-repro train` process.")
    g.add_argument("--preset", required=True, help="the protocol: " + ", ".join(C.preset_names()))
    g.add_argument("--methods", default="dense,fggp,annealed,gf-annealed,mf-fixed,gmp,random",
                   help="comma-separated methods; dense adds one run per seed; METHOD:r0=X (or :rate=X, :r_min=X) "
                        "is a variant, e.g. annealed:r0=0.01 (default: %(default)s)")
    g.add_argument("--sparsities", default="0.9,0.95,0.98", help="target sparsities (default: %(default)s)")
    g.add_argument("--inits", default="dense,sparse50", help="starting networks (default: %(default)s)")
    g.add_argument("--seeds", default="0-4", help="seeds, ranges and lists: 0-4 or 0,2,5 (default: %(default)s)")
    g.add_argument("--jobs", type=int, default=1, help="runs at a time, sharing the CPU cores (default: 1)")
    g.add_argument("--out", default="results", help="output folder (default: results)")
    g.add_argument("--dataset", choices=C.DATASETS, help="dataset of every run (default: the preset's)")
    g.add_argument("--data-root", help="dataset folder, passed to every run")
    g.add_argument("--device", help="device, passed to every run")
    g.add_argument("--precision", choices=C.PRECISIONS, help="precision of every run (default: the preset's)")
    g.add_argument("--deadline", type=float, metavar="MINUTES",
                   help="stop every run at its last epoch that ends within MINUTES (checkpointed; the same call "
                        "resumes them), start none in the last minute, print done / in flight / left, exit 0")
    g.add_argument("--resume-only", action="store_true",
                   help="run only the runs that have a checkpoint in OUT (finish what is in flight, start nothing new)")
    g.add_argument("--quiet", action="store_true", help="print failures and the summary only")
    g.set_defaults(func=_cmd_grid)

    v = sub.add_parser("verify", help="rerun a record's config and seed and compare, field by field",
                       formatter_class=_Fmt,
                       description="Rerun RECORD's config and seed in a scratch folder and compare the new record with it.\n"
                                   "Same platform (torch, device, CPU instruction set, strict mode): everything exact,\n"
                                   "weights_sha256 included. Otherwise: accuracies within --tolerance points, losses within\n"
                                   "10 %% relative, mask counts within one weight. Exit 0 on a match, 1 on a mismatch.")
    v.add_argument("record", help="a run record (JSON)")
    v.add_argument("--data-root", help="dataset folder on this machine (default: the record's, or $FGGP_DATA)")
    v.add_argument("--tolerance", type=float, default=1.0,
                   help="accuracy tolerance in percentage points across platforms (default: 1.0)")
    v.add_argument("--verbose", action="store_true", help="show the rerun's progress")
    v.set_defaults(func=_cmd_verify)

    pr = sub.add_parser("presets", help="list the shipped presets")
    pr.set_defaults(func=_cmd_presets)

    for name, (help_text, _) in EXTERNAL.items():
        # listed for --help only: main() hands their arguments over untouched
        sub.add_parser(name, help=help_text + f" (see `fggp-repro {name} --help`)", add_help=False)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in EXTERNAL:
        return _run_external(argv[0], argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except C.ConfigError as e:
        print(f"fggp-repro {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())

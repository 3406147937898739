"""``fggp-repro``: the command line. Training flags are generated from the config dataclasses.

Subcommands ``figures`` and ``audit`` belong to the ``analysis`` package; they are looked up by name
only when called, so the training core never imports analysis (nor pandas), and ``analysis`` never
imports torch.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading

from . import __version__, grid, selftest
from .interrupts import GridInterrupted, RunInterrupted, Terminated, by_sigterm
from .spec import config as C
from .spec.exits import (
    EXIT_BROKEN_PIPE,
    EXIT_DIVERGED,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_STOPPED,
    EXIT_TERMINATED,
    EXIT_USAGE,
)

# The commands that train or load data (train, verify, data) import torch; they import their modules when called,
# so that the others (presets, grid --print-commands, figures, audit, --help) start without it.


def _on_sigterm(signum, frame):
    # once: a second SIGTERM (the grid's own, after a scheduler's to the whole process group) must not break into
    # the orderly stop the first one started; main() puts the previous handler back when the command ends
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated()


def _stop_on_sigterm():
    """SIGTERM stops a command the way Ctrl-C does. It matters where SIGINT cannot arrive: a shell starts background
    jobs with SIGINT ignored, and a grid killed outright would leave its runs training as orphans. Returns the
    handler it replaced, for ``main()`` to put back (a caller such as a test keeps its own). Only the main thread
    may set a handler: ``main()`` called from another thread keeps the current one (returns None)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _on_sigterm)


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
        help_text = f.metadata["help"] + f" (default: {_show(f.default)})"
        kw = dict(dest=f"cfg__{gname}__{f.name}", default=None, help=help_text.replace("%", "%%"))
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


def _dense_note(args: argparse.Namespace, cfg: C.Config) -> None:
    """A dense run ignores the pruning flags of C.DENSE_IGNORED: say so rather than silently."""
    if cfg.pruning.method != "dense":
        return
    given = [f"--{k.replace('_', '-')}" for k in C.DENSE_IGNORED
             if overrides_from_args(args).get("pruning", {}).get(k) is not None]
    if given:
        print(f"note: a dense run ignores {', '.join(given)} (one dense run per seed: its run id leaves them out)",
              file=sys.stderr)


def _cmd_train(args: argparse.Namespace) -> int:
    from .trainer import model_path, train  # imports torch: see the note at the top

    if args.stop_after_epochs is not None and args.stop_after_epochs < 1:
        raise C.ConfigError(f"--stop-after-epochs must be >= 1 (the epochs this call trains), got "
                            f"{args.stop_after_epochs}")
    cfg = config_from_args(args)
    _dense_note(args, cfg)
    if args.print_config:
        print(C.as_toml(cfg), end="")
        return EXIT_OK
    from .isa import slow_bf16_note

    note = None if args.quiet else slow_bf16_note(cfg.run.precision, cfg.run.cpu_isa, cfg.run.device)
    if note:
        print(note, file=sys.stderr)
    res = train(cfg, args.out, force=args.force, quiet=args.quiet, stop_after_epochs=args.stop_after_epochs,
                deadline=args.deadline_at, save_model=args.save_model)
    if res.status == "skipped":
        missing = args.save_model and not model_path(res.path).is_file()
        print(f"skipped: {res.path} exists (pass --force to rerun"
              + (", which also saves its model: a finished run's network is kept only when --save-model was given "
                 "as it ran)" if missing else ")"))
    elif res.status == "interrupted":
        print(f"stopped as asked; checkpoint {res.path}; run the same command again to resume")
        return EXIT_STOPPED
    else:
        m = res.record["metrics"]
        print(f"{res.status}: {res.path}  test_acc={m['test_acc']}  sparsity={m['sparsity']:.4f}  "
              f"weights_sha256={res.record['weights_sha256'][:16]}")
    return EXIT_DIVERGED if res.status == "diverged" else EXIT_OK


def _cmd_grid(args: argparse.Namespace) -> int:
    methods = grid.parse_list(args.methods, "methods")
    runs = grid.expand(methods, grid.parse_list(args.sparsities, "sparsities", float),
                       grid.parse_list(args.inits, "inits"), grid.parse_seeds(args.seeds),
                       grid.parse_seeds(args.init_seeds, "--init-seeds") if args.init_seeds else None,
                       grid.parse_seeds(args.order_seeds, "--order-seeds") if args.order_seeds else None)
    extra_flags, extra = [], {"data": {}}
    if args.dataset:
        extra_flags += ["--dataset", args.dataset]
        extra["data"]["dataset"] = args.dataset
    if args.data_root:
        extra_flags += ["--data-root", args.data_root]
        extra["data"]["data_root"] = args.data_root
    if args.device:
        extra_flags += ["--device", args.device]
        extra.setdefault("run", {})["device"] = args.device
    if args.precision:
        extra_flags += ["--precision", args.precision]
        extra.setdefault("run", {})["precision"] = args.precision
    if args.save_model:
        extra_flags += ["--save-model"]
    if args.cpu_isa:
        extra_flags += ["--cpu-isa", args.cpu_isa]
        extra.setdefault("run", {})["cpu_isa"] = args.cpu_isa
    if args.no_check_copy:
        extra_flags += ["--no-check-copy"]
        extra["data"]["check_copy"] = False
    if args.protocol:
        extra_flags += ["--protocol", args.protocol]
        extra.setdefault("run", {})["protocol"] = args.protocol
    if (args.init_seeds or args.order_seeds) and not args.protocol:
        raise C.ConfigError("a crossed design (--init-seeds, --order-seeds) needs --protocol LABEL, e.g. "
                            f"--protocol {args.preset}-crossed: its runs share seeds, so the preset's own grid and "
                            "audit must not pool them")
    if args.jobs < 1:
        raise C.ConfigError(f"--jobs must be >= 1, got {args.jobs}")
    if args.threads is not None and args.threads < 1:
        raise C.ConfigError(f"--threads must be >= 1, got {args.threads}")
    if args.deadline is not None and not args.deadline > 0:
        raise C.ConfigError(f"--deadline must be a positive number of minutes, got {args.deadline}")
    threads = args.threads or grid.default_threads(args.jobs)
    if args.print_commands or args.dry_run:
        p = grid.plan(args.preset, runs, args.out, extra, args.resume_only)
        if args.print_commands:
            print(f"# {len(p.runs)} runs, {p.recorded} already recorded in {args.out}: {len(p.todo)} commands",
                  file=sys.stderr)
            for line in grid.command_lines(args.preset, p, args.out, threads, extra_flags):
                print(line)
        else:
            print("\n".join(grid.dry_run_lines(args.preset, p, args.out, args.jobs, threads)))
        return EXIT_OK
    failed = grid.run_grid(args.preset, runs, args.out, jobs=args.jobs, extra_flags=extra_flags, extra=extra,
                           quiet=args.quiet, deadline_minutes=args.deadline, resume_only=args.resume_only,
                           threads=threads)
    return EXIT_FAILED if failed else EXIT_OK


def _cmd_verify(args: argparse.Namespace) -> int:
    from .verify import verify  # imports torch: see the note at the top

    report = verify(args.record, data_root=args.data_root, tolerance=args.tolerance, level=args.level,
                    results=args.results or (), quiet=args.quiet, threads=args.threads, cpu_isa=args.cpu_isa)
    print("\n".join(report.lines()))
    return EXIT_OK if report.ok else EXIT_FAILED


def _cmd_data(args: argparse.Namespace) -> int:
    from . import data as D  # imports torch: see the note at the top

    if bool(args.source) == bool(args.download):
        raise C.ConfigError("pass --from PATH (the cifar10-jpeg tarball or folder, cifar-10-python.tar.gz or a "
                            "cifar-10-batches-py folder) or --download (genuine CIFAR-10 from the internet)")
    report = D.setup(args.source, args.data_root, force=args.force, download=args.download,
                     log=lambda line: print(line, file=sys.stderr, flush=True))
    print("\n".join(report.lines()))
    return EXIT_OK


def _cmd_selftest(args: argparse.Namespace) -> int:
    if args.save:
        selftest.save(args.save, data_root=args.data_root, only=args.probe)
        return EXIT_OK
    _, defects = selftest.selftest(data_root=args.data_root, only=args.probe)
    return EXIT_FAILED if defects else EXIT_OK


def _cmd_presets(args: argparse.Namespace) -> int:
    for name in C.preset_names():
        print(C.preset_summary(name))
    return EXIT_OK


def _run_external(name: str, argv: list[str]) -> int:
    """A subcommand implemented elsewhere as ``module:function(argv) -> int``, imported when called."""
    module, func = EXTERNAL[name][1].split(":")
    return getattr(importlib.import_module(module), func)(argv)


# name -> (help, handler); figures/audit forward their own arguments to the analysis package
EXTERNAL = {
    "figures": ("regenerate every figure and table in paper_figures/ from the run records in results/",
                "analysis.cli:figures_main"),
    "audit": ("audit the five claims of the paper's abstract against the run records", "analysis.cli:audit_main"),
    "plan": ("seeds each setting needs to detect a given effect, from the observed seed spread",
             "analysis.cli:plan_main"),
    "variance": ("seeds by source: the variance from init and from data order in a crossed design, and what "
                 "pairing on seeds saves", "analysis.variance:main"),
}


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="fggp-repro", description="FGGP reproducibility package: train, regenerate figures, audit claims.")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="train one run (dense or pruned) and write its record", formatter_class=_Fmt,
                       description="Train one run and write its JSON record to "
                                   "<out>/raw/<dataset>/<arch>/<method>/<run_id>.json.\n"
                                   "Precedence: config defaults (the paper protocol) < --preset < --config < flags.")
    t.add_argument("--preset", help="a shipped preset: " + ", ".join(C.preset_names()))
    t.add_argument("--config", metavar="FILE", help="a TOML file with [data] [model] [pruning] [training] [run] tables")
    t.add_argument("--out", default="runs",
                   help="output folder: records under <out>/raw, checkpoints under <out>/checkpoints (default: runs)")
    t.add_argument("--force", action="store_true", help="rerun even when the record exists (discards its checkpoint)")
    t.add_argument("--quiet", action="store_true", help="no progress output")
    t.add_argument("--stop-after-epochs", type=int, metavar="N",
                   help="stop after N epochs of this call, leaving a checkpoint to resume from (for time-sliced "
                        "machines)")
    t.add_argument("--deadline-at", type=float, metavar="UNIX_TIME",
                   help="stop after the last epoch that ends before this time.time() value, leaving a checkpoint "
                        "(set by `grid --deadline`)")
    t.add_argument("--save-model", action="store_true",
                   help="keep the final network beside the record (<run_id>.pt: masks bit-packed, values under them; "
                        "fggp_repro.load_model(path) rebuilds it)")
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
    g.add_argument("--init-seeds", metavar="SEEDS",
                   help="a crossed design: seeds of the initial network (weights, ERK mask), crossed with "
                        "--order-seeds for every run seed, e.g. --seeds 0 --init-seeds 0-2 --order-seeds 0-2 "
                        "(9 runs a cell)")
    g.add_argument("--order-seeds", metavar="SEEDS", help="a crossed design: seeds of the data order and augmentation")
    g.add_argument("--protocol", metavar="LABEL",
                   help="label the records with this protocol instead of the preset's name (a check or a crossed "
                        "design, analysed apart from the preset's grid)")
    g.add_argument("--jobs", type=int, default=1, help="runs at a time, sharing the CPU cores (default: 1)")
    g.add_argument("--threads", type=int, metavar="N",
                   help="torch threads of each run (default: this machine's cores divided by --jobs); results "
                        "depend on it, so every record states it")
    g.add_argument("--out", default="results", help="output folder (default: results)")
    g.add_argument("--dataset", choices=C.DATASETS, help="dataset of every run (default: the preset's)")
    g.add_argument("--data-root", help="dataset folder, passed to every run")
    g.add_argument("--device", help="device, passed to every run")
    g.add_argument("--no-check-copy", action="store_true",
                   help="cifar10 and cifar10-jpeg: train every run on a copy whose images per class or fingerprint "
                        "differ from the complete dataset's (each under a run id of its own)")
    g.add_argument("--precision", choices=C.PRECISIONS, help="precision of every run (default: the preset's)")
    g.add_argument("--cpu-isa", choices=C.CPU_ISAS,
                   help="oneDNN instruction set of every run: native, or portable (the same kernels on AMD and "
                        "Intel; default: the preset's)")
    g.add_argument("--deadline", type=float, metavar="MINUTES",
                   help="stop every run at its last epoch that ends within MINUTES (checkpointed; the same call "
                        "resumes them), start none in the last minute, print done / in flight / left, exit 0")
    g.add_argument("--resume-only", action="store_true",
                   help="run only the runs that have a checkpoint in OUT (finish what is in flight, start nothing new)")
    g.add_argument("--save-model", action="store_true", help="keep every run's final network beside its record")
    g.add_argument("--quiet", action="store_true", help="print failures and the summary only")
    g.add_argument("--print-commands", action="store_true",
                   help="print one self-contained `fggp-repro train ...` command per run still to run (for GNU "
                        "parallel or a SLURM job array) and exit")
    g.add_argument("--dry-run", action="store_true",
                   help="print what would run, the estimated cost, whether the data is there and whether the "
                        "output folder can be written, and exit")
    g.set_defaults(func=_cmd_grid)

    v = sub.add_parser("verify", help="rerun a record's config and seed and compare, field by field",
                       formatter_class=_Fmt,
                       description=(
                           "Check RECORD, rerun its config and seed (with its thread count and oneDNN instruction\n"
                           "set, on the kind of device that made it) in a scratch folder and compare the new\n"
                           "record. Bit-identical weights, or the same platform (torch version, device model, CPU\n"
                           "and oneDNN instruction sets, threads, precision, strict mode, memory format): every\n"
                           "field exact (\"exact\"). Another platform: the final accuracy must lie in the 99 %\n"
                           "(--level) prediction interval for a new seed from the records of the same cell (same\n"
                           "config but the seed; RECORD's folder and --results), with its p-value; a correct rerun\n"
                           "falls outside it 1 time in 100. Within --tolerance points when the cell has fewer than\n"
                           "2 records; mask bookkeeping within one weight. Exit 0 on a match, 1 on a mismatch, 2 on\n"
                           "bad input."))
    v.add_argument("record", help="a run record (JSON)")
    v.add_argument("--data-root", help="dataset folder on this machine (default: the record's when it holds the "
                                       "data, else $FGGP_DATA or ~/.cache/fggp-data)")
    v.add_argument("--results", action="append", metavar="DIR",
                   help="another results folder to find records of the same cell in (repeatable)")
    v.add_argument("--level", type=float, default=0.99,
                   help="across platforms: coverage of the prediction interval; a rerun as good as a new seed "
                        "falls outside it with probability 1 - LEVEL (default: 0.99)")
    v.add_argument("--threads", type=int, metavar="N",
                   help="rerun with N torch threads instead of the record's (another platform: the check is "
                        "statistical unless the weights come out identical)")
    v.add_argument("--cpu-isa", choices=C.CPU_ISAS,
                   help="rerun with this oneDNN instruction set instead of the record's (portable: the kernels the "
                        "AMD and Intel CPUs share)")
    v.add_argument("--tolerance", type=float, default=1.0,
                   help="across platforms, for a cell of fewer than 2 records: accuracy tolerance in percentage "
                        "points (default: 1.0)")
    v.add_argument("--quiet", action="store_true", help="no progress output while it reruns")
    v.set_defaults(func=_cmd_verify)

    d = sub.add_parser("data", help="set up a dataset in the data root and check it", formatter_class=_Fmt,
                       description="Unpack or copy a dataset into the data root ($FGGP_DATA, else ~/.cache/fggp-data,\n"
                                   "or --data-root), check it (10 classes, images per class, every image decodes) and\n"
                                   "print the fingerprint of its decoded arrays, which every run record repeats.\n"
                                   "Nothing is left behind when it fails.")
    d.add_argument("--from", dest="source", metavar="PATH",
                   help="cifar10-jpeg.tar.gz or its unpacked folder, or CIFAR-10's cifar-10-python.tar.gz or "
                        "cifar-10-batches-py folder")
    d.add_argument("--download", action="store_true",
                   help="download genuine CIFAR-10 (cifar-10-python.tar.gz, MD5-checked) instead")
    d.add_argument("--data-root", metavar="DIR", help="where to put it (default: $FGGP_DATA or ~/.cache/fggp-data)")
    d.add_argument("--force", action="store_true", help="replace a different copy already there")
    d.set_defaults(func=_cmd_data)

    st = sub.add_parser("selftest", help="rerun the reference probes (seconds each) and say, per probe, whether "
                                         "this machine reproduces them bit for bit", formatter_class=_Fmt,
                        description=(
                            "Rerun each committed probe (a shipped preset cut to 20 training iterations,\n"
                            "pruned by FGGP to 90 %; one combination of precision, threads and oneDNN instruction\n"
                            "set each) in a process of its own and compare its weights with the committed record:\n"
                            "\"bit-identical\", or \"drifts\" with the platform fields in which this machine differs.\n"
                            "The first thing to run on a new machine or cluster node. Needs the cifar10-jpeg data."))
    st.add_argument("--data-root", metavar="DIR", help="dataset folder (default: $FGGP_DATA or ~/.cache/fggp-data)")
    st.add_argument("--probe", action="append", metavar="NAME", help="run only this probe (repeatable)")
    st.add_argument("--save", metavar="DIR", help="make the probes here and write their records to DIR instead "
                                                   "(the reference records: fggp_repro/probes/)")
    st.set_defaults(func=_cmd_selftest)

    pr = sub.add_parser("presets", help="list the shipped presets: what each is and what a run costs")
    pr.set_defaults(func=_cmd_presets)

    for name, (help_text, _) in EXTERNAL.items():
        # listed for --help only: main() hands their arguments over untouched
        sub.add_parser(name, help=help_text + f" (see `fggp-repro {name} --help`)", add_help=False)
    return p


def _interrupted(command: str, e: KeyboardInterrupt) -> str:
    """The one line Ctrl-C ends a command with."""
    if isinstance(e, RunInterrupted) and e.checkpoint is not None:
        return (f"interrupted: the checkpoint after epoch {e.epoch} is kept ({e.checkpoint}); run the same command "
                "again to resume from it")
    if command == "train":
        return "interrupted before the first checkpoint: nothing was written; the same command starts the run again"
    if command == "grid":
        n = e.in_flight if isinstance(e, GridInterrupted) else 0
        return (f"interrupted: {n} run(s) in flight stopped, each keeping the checkpoint of its last finished epoch, "
                "and every finished record is kept; run the same command again to resume")
    if command == "verify":
        return "interrupted: the rerun and its scratch folder are gone; the record is untouched"
    if command == "data":
        return "interrupted: nothing was kept"
    return "interrupted"


def _stdout_closed() -> int:
    """The reader of our output went away (``fggp-repro audit | head``): stop quietly, as Unix tools do."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at interpreter exit
    except OSError:
        pass
    return EXIT_BROKEN_PIPE  # what a shell reports for a tool ended by a closed pipe


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        return _stdout_closed()


def _main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in EXTERNAL:
        try:
            return _run_external(argv[0], argv[1:])
        except KeyboardInterrupt:
            print(f"fggp-repro {argv[0]}: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
    args = build_parser().parse_args(argv)
    previous = _stop_on_sigterm()
    try:
        return args.func(args)
    except C.UserError as e:
        print(f"fggp-repro {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        raise  # the reader went away: main() ends quietly
    except OSError as e:  # an environment problem outside the checked paths (disk full, permissions)
        print(f"fggp-repro {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as e:
        term = by_sigterm(e)
        what = "terminated (SIGTERM)" if term else "interrupted"
        print(f"fggp-repro {args.command}: {what}{_interrupted(args.command, e)[len('interrupted'):]}",
              file=sys.stderr)
        return EXIT_TERMINATED if term else EXIT_INTERRUPTED
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())

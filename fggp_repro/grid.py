"""The grid runner: every (method, sparsity, start, seed) of a preset, missing runs only, N at a time.

Each run is a separate ``fggp-repro train`` process, so every record carries the exact command
that reproduces it, a crash stays contained, and an interrupted grid resumes: finished records are
skipped and half-done runs continue from their checkpoints. Dense runs are one per seed (their
setting has no sparsity or start).
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .interrupts import GridInterrupted, by_sigterm
from .records import checkpoint_path, record_path
from .spec import config as C
from .spec.exits import EXIT_DIVERGED, EXIT_STOPPED
from .spec.files import OutputError, check_writable
from .spec.methods import DENSE, VARIANT_FIELDS


@dataclass(frozen=True)
class GridRun:
    method: str
    sparsity: float | None  # None for dense
    init: str | None
    seed: int
    variant: tuple = ()  # ((pruning field, value), ...) from a method token such as "annealed:r0=0.01"
    init_seed: int | None = None  # a crossed design's seed of the initial network (None: the run seed)
    order_seed: int | None = None  # a crossed design's seed of the data order (None: the run seed)

    def flags(self) -> list[str]:
        out = ["--method", self.method, "--seed", str(self.seed)]
        if self.method != DENSE:
            out += ["--sparsity", repr(self.sparsity), "--init", self.init]
        for k, v in self.variant:
            out += ["--" + k.replace("_", "-"), repr(v)]
        if self.init_seed is not None:
            out += ["--init-seed", str(self.init_seed)]
        if self.order_seed is not None:
            out += ["--order-seed", str(self.order_seed)]
        return out

    def label(self) -> str:
        crossed = "".join(f" {k} {v}" for k, v in (("init", self.init_seed), ("order", self.order_seed))
                          if v is not None)
        if self.method == DENSE:
            return f"dense seed {self.seed}{crossed}"
        var = "".join(f":{k}={v:g}" for k, v in self.variant)
        return f"{self.method}{var} {self.sparsity:g} {self.init} seed {self.seed}{crossed}"


def parse_method(token: str) -> tuple[str, tuple]:
    """``"annealed"`` -> ("annealed", ()); ``"annealed:r0=0.01"`` -> ("annealed", (("r0", 0.01),))."""
    name, *parts = token.split(":")
    variant = []
    for part in parts:
        key, eq, value = part.partition("=")
        if not eq or key not in VARIANT_FIELDS:
            raise C.ConfigError(f"method '{token}': a variant is METHOD:FIELD=VALUE with FIELD one of "
                                f"{', '.join(VARIANT_FIELDS)} (e.g. annealed:r0=0.01)")
        try:
            variant.append((key, float(value)))
        except ValueError:
            raise C.ConfigError(f"method '{token}': {key} must be a number, got '{value}'") from None
    if name == DENSE and variant:
        raise C.ConfigError(f"method '{token}': dense takes no variant")
    return name, tuple(variant)


def parse_seeds(text: str, flag: str = "--seeds") -> list[int]:
    """``"0-4"`` -> [0, 1, 2, 3, 4]; ``"0,2,5"`` -> [0, 2, 5]; ranges and lists combine."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            lo, hi = map(int, part.split("-")) if "-" in part else (int(part), int(part))
        except ValueError:
            raise C.ConfigError(f"{flag} takes ranges and lists like 0-4 or 0,2,5, got '{text}'") from None
        if lo > hi:
            raise C.ConfigError(f"{flag}: the range {part} runs backwards; write it low-high, e.g. {hi}-{lo}")
        seeds += range(lo, hi + 1)
    if not seeds:
        raise C.ConfigError(f"{flag} names no seed; give ranges and lists like 0-4 or 0,2,5")
    if min(seeds) < 0:
        raise C.ConfigError(f"{flag} must name non-negative seeds, got '{text}'")
    return sorted(set(seeds))


def parse_list(text: str, name: str, kind=str) -> list:
    try:
        items = [kind(v.strip()) for v in text.split(",") if v.strip()]
    except ValueError:
        raise C.ConfigError(f"--{name} takes a comma-separated list, got '{text}'") from None
    if not items:
        raise C.ConfigError(f"--{name} names none; give a comma-separated list (see --help for the default)")
    return items


def expand(methods: list[str], sparsities: list[float], inits: list[str], seeds: list[int],
           init_seeds: list[int] | None = None, order_seeds: list[int] | None = None) -> list[GridRun]:
    """The runs of the grid, seed by seed (so a grid stopped part-way covers every setting with its
    first seeds): per seed, dense (one run), then by sparsity, start and method. A method may carry a
    variant (``annealed:r0=0.01``, see :func:`parse_method`). ``init_seeds`` and ``order_seeds`` cross the
    seed of the initial network with the seed of the data order, every pair, for each run seed."""
    parsed = [parse_method(m) for m in methods]
    pairs = [(i, o) for i in (init_seeds or [None]) for o in (order_seeds or [None])]
    runs = []
    for s in seeds:
        for i, o in pairs:
            if any(m == DENSE for m, _ in parsed):
                runs.append(GridRun(DENSE, None, None, s, (), i, o))
            runs += [GridRun(m, sp, init, s, var, i, o) for sp in sparsities for init in inits for m, var in parsed
                     if m != DENSE]
    return runs


def config_of(run: GridRun, preset: str, extra: dict) -> C.Config:
    over = {"pruning": {"method": run.method}, "run": {"seed": run.seed}}
    if run.init_seed is not None:
        over["run"]["init_seed"] = run.init_seed
    if run.order_seed is not None:
        over["run"]["order_seed"] = run.order_seed
    if run.method != DENSE:
        over["pruning"].update(sparsity=run.sparsity, init=run.init)
    over["pruning"].update(dict(run.variant))
    for g, vals in extra.items():
        over.setdefault(g, {}).update(vals)
    return C.load(preset=preset, overrides=over)


def _fmt_time(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}h{s // 60 % 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def default_threads(jobs: int) -> int:
    """Torch threads per run when ``jobs`` runs share this machine's cores."""
    return max(1, (os.cpu_count() or 1) // jobs)


def train_args(run: GridRun, preset: str, out: str, threads: int, extra_flags: list[str] = ()) -> list[str]:
    """The ``fggp-repro train`` arguments of one run (without the program name)."""
    return ["train", "--preset", preset, *run.flags(), "--out", str(out), "--threads", str(threads), *extra_flags]


@dataclass
class Plan:
    runs: list  # every run of the grid (or, resume-only, those with a checkpoint)
    todo: list  # the runs still to run
    configs: dict  # GridRun -> Config
    recorded: int  # runs whose record exists
    resumable: int  # runs of todo with a checkpoint to resume from


def plan(preset: str, runs: list[GridRun], out: str, extra: dict | None = None, resume_only: bool = False) -> Plan:
    """Validate every run's config (before anything starts) and find what is left to run in ``out``."""
    extra = extra or {}
    configs, todo, recorded, resumable = {}, [], 0, 0
    for r in runs:
        cfg = config_of(r, preset, extra)
        configs[r] = cfg
        rid = C.run_id(cfg)
        if record_path(out, cfg.data.dataset, cfg.model.arch, cfg.pruning.method, rid).is_file():
            recorded += 1
            continue
        has_ckpt = checkpoint_path(out, rid).is_file()
        if resume_only and not has_ckpt:
            continue
        resumable += has_ckpt
        todo.append(r)
    if resume_only:
        runs = todo
        recorded = 0
    return Plan(runs, todo, configs, recorded, resumable)


def check_data(configs) -> list[str]:
    """Load each distinct dataset of the grid once (raising DataError in one line if one is missing or
    corrupt, before any run starts); returns one line per dataset with its fingerprint. Also fills the
    decoded-image cache that every run then reads."""
    seen, lines = set(), []
    for cfg in configs:
        d = cfg.data
        if d.dataset == "synthetic":
            continue  # generated in each run: nothing to check (and no torch import to wait for)
        from . import data as D  # imports torch: only for a grid whose data is on disk

        key = (d.dataset, str(D.data_root(d)), d.synthetic_train, d.synthetic_test, d.train_subset, d.subset_seed)
        if key in seen:
            continue
        seen.add(key)
        ds = D.load(d)
        lines.append(f"grid: data {d.dataset} in {D.data_root(d)}: {len(ds.train_y)} training + "
                     f"{len(ds.test_y)} test images, fingerprint {ds.fingerprint[:16]}")
    return lines


_DEFAULT_PRECISION = C.RunConfig().precision


def _walls(out: str, protocol: str, precision: str | None = None) -> list[float]:
    """``wall_seconds`` of the completed records of ``protocol`` in ``out`` (made in ``precision``, when given)."""
    walls = []
    for f in Path(out).glob("raw/*/*/*/*.json"):
        try:
            rec = json.loads(f.read_text())
            if rec.get("status") != "completed" or rec["setting"]["protocol"] != protocol:
                continue
            made_in = rec.get("config", {}).get("run", {}).get("precision") or _DEFAULT_PRECISION  # older: fp32
            if precision is not None and made_in != precision:
                continue
            walls.append(float(rec["provenance"]["wall_seconds"]))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
    return walls


def estimate(preset: str, out: str, protocol: str | None = None, precision: str | None = None
             ) -> tuple[float | None, str]:
    """(seconds a run, where that figure comes from): the median ``wall_seconds`` of the completed records in
    ``out`` of the grid's protocol label (``protocol``, default the preset's name), else of the preset's protocol;
    in the grid's ``precision`` when given (bf16 and fp32 cost differently); else the preset's nominal figure
    (``config.PRESET_INFO``, for the preset's own precision only), else None."""
    what = f" {precision}" if precision is not None else ""
    labels = list(dict.fromkeys([protocol or preset, preset]))
    for label in labels:
        walls = _walls(out, label, precision)
        if walls:
            return (statistics.median(walls),
                    f"median wall time of the {len(walls)}{what} {label} record(s) in {out}")
    info = C.PRESET_INFO.get(preset)
    own = precision is None or C.preset_dict(preset).get("run", {}).get("precision", _DEFAULT_PRECISION) == precision
    if info and info.seconds and own:
        return info.seconds, f"the {preset} preset's nominal figure ({info.cost})"
    return None, f"no{what} {' or '.join(labels)} record in {out} to estimate from"


def _fmt_cost(seconds: float) -> str:
    return _fmt_time(seconds) if seconds >= 60 else f"{seconds:.0f}s"


def _slow_bf16_note(p: Plan) -> str | None:
    """The slow-bf16 note for the first run to do (the grid's runs share precision, instruction set and device)."""
    from .isa import slow_bf16_note  # imports torch

    if not p.todo:
        return None
    r = p.configs[p.todo[0]].run
    return slow_bf16_note(r.precision, r.cpu_isa, r.device)


def dry_run_lines(preset: str, p: Plan, out: str, jobs: int, threads: int) -> list[str]:
    """What ``grid --dry-run`` prints: the runs that would run, and the estimated cost."""
    from . import data as D  # imports torch: the grid's other commands (--print-commands) start without it

    lines = [f"grid (dry run): {len(p.runs)} runs, {p.recorded} already recorded in {out}, {len(p.todo)} to run "
             f"({p.resumable} resume from a checkpoint) with {jobs} job(s) of {threads} thread(s)"]
    lines += [f"  would run: {r.label()}  [{C.run_id(p.configs[r])}]" for r in p.todo]
    first = p.configs[p.todo[0]].run if p.todo else None
    per_run, source = estimate(preset, out, first and first.protocol, first and first.precision)
    note = _slow_bf16_note(p)
    if note:
        lines.append(note + "; the estimate below comes from records, which may have been made on another CPU")
    if p.todo and per_run is not None:
        total = per_run * len(p.todo)
        lines.append(f"estimated cost: {len(p.todo)} runs x {_fmt_cost(per_run)} = {_fmt_cost(total)} of run time, "
                     f"about {_fmt_cost(total / min(jobs, len(p.todo)))} of wall time with --jobs {jobs} "
                     f"(per run: {source}; resumed runs cost less)")
    elif p.todo:
        lines.append(f"estimated cost: unknown ({source})")
    for cfg in {C.run_id(c): c for c in p.configs.values()}.values():
        if not D.present(cfg.data):
            lines.append(f"data: {cfg.data.dataset} NOT FOUND in {D.data_root(cfg.data)}: "
                         f"{D.SETUP_HINT[cfg.data.dataset]}, or pass --data-root DIR")
            break
    else:
        lines.append("data: found")
    try:
        check_writable(Path(out) / "raw", "output folder")
        lines.append("output folder: writable")
    except OutputError as e:
        lines.append(f"output folder: NOT WRITABLE: {e}")
    return lines


def run_grid(preset: str, runs: list[GridRun], out: str, *, jobs: int = 1, extra_flags: list[str] = (),
             extra: dict | None = None, quiet: bool = False, deadline_minutes: float | None = None,
             resume_only: bool = False, threads: int | None = None) -> int:
    """Run every missing run; returns the number of runs that failed (diverged runs are not failures).

    Before any run starts: every config is validated, the output folder checked, and each dataset loaded
    once (a missing dataset is one DataError, not one failure per run).
    With ``deadline_minutes`` every run stops at the end of its last epoch that fits before the deadline,
    leaving a checkpoint; no run starts in the last minute (a fifth of a deadline under five minutes);
    ``resume_only`` runs only the runs that have a checkpoint (the last job before a machine goes away: finish what is
    in flight, start nothing that cannot end before the machine goes back); a summary says what is done, in flight
    (checkpointed, resumed by the same call) and left. Ctrl-C stops the runs in flight (each keeps its last
    checkpoint) and raises :class:`GridInterrupted`.
    """
    t_begin = time.time()
    deadline = None if deadline_minutes is None else t_begin + 60.0 * deadline_minutes
    # no run starts this close to the deadline: a minute, or a fifth of a short deadline
    no_start = 0.0 if deadline_minutes is None else min(60.0, 12.0 * deadline_minutes)
    p = plan(preset, runs, out, extra, resume_only)
    todo = p.todo
    total, done_before = len(p.runs), p.recorded
    threads = threads or default_threads(jobs)
    print(f"grid: {total} runs, {done_before} already recorded, {len(todo)} to run with {jobs} job(s)"
          + (" (resume only)" if resume_only else ""), flush=True)
    if not todo:
        return 0
    check_writable(Path(out) / "raw", "output folder")
    for line in check_data(p.configs[r] for r in todo):
        print(line, flush=True)
    note = _slow_bf16_note(p)
    if note:
        print(note, flush=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    running: list[tuple[GridRun, subprocess.Popen, float]] = []
    queue = list(todo)
    finished, failed, paused, t0 = 0, 0, 0, time.time()
    deadline_flags = [] if deadline is None else ["--deadline-at", repr(deadline)]
    try:
        while queue or running:
            while queue and len(running) < jobs and (deadline is None or time.time() < deadline - no_start):
                r = queue.pop(0)
                cmd = [sys.executable, "-m", "fggp_repro",
                       *train_args(r, preset, out, threads, [*extra_flags, "--quiet", *deadline_flags])]
                running.append((r, subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                                    text=True), time.time()))
            time.sleep(0.2)
            for item in list(running):
                r, proc, started = item
                if proc.poll() is None:
                    continue
                running.remove(item)
                output = proc.stdout.read().strip()
                if proc.returncode == EXIT_STOPPED:
                    paused += 1
                    print(f"{r.label()}: checkpointed at the deadline ({time.time() - started:.0f}s)", flush=True)
                    continue
                finished += 1
                if proc.returncode not in (0, EXIT_DIVERGED):  # a diverged run is recorded as such
                    failed += 1
                elapsed = time.time() - t0
                eta = elapsed / finished * (len(todo) - finished)
                status = output.splitlines()[-1] if output else f"exit {proc.returncode}"
                if not quiet or proc.returncode not in (0, EXIT_DIVERGED):
                    print(f"[{done_before + finished}/{total}] {r.label()}: {status[:160]} "
                          f"({time.time() - started:.0f}s; elapsed {_fmt_time(elapsed)}, ETA {_fmt_time(eta)})",
                          flush=True)
            if deadline is not None and not running and queue and time.time() >= deadline - no_start:
                break
    except KeyboardInterrupt as e:
        terminated = by_sigterm(e)
        completed = _stop(running, terminated)
        raise GridInterrupted(len(running) - completed, finished + completed, terminated) from None
    print(f"grid: finished {finished} runs in {_fmt_time(time.time() - t0)}, {failed} failed", flush=True)
    if deadline is not None:
        print(f"grid: deadline summary: done {done_before + finished - failed} of {total}, in flight (checkpointed) "
              f"{paused}, left {len(queue)}, failed {failed}", flush=True)
    return failed


def _stop(running: list, terminated: bool) -> int:
    """Stop the runs in flight, each keeping the checkpoint of its last finished epoch; returns how many of them
    finished instead (a run in its last moments writes its record; exit 0, or 3 if it diverged).

    Ctrl-C from a terminal reached the runs too (one process group): they get two seconds, all together, to stop on
    their own. SIGTERM to the grid alone (kill, a scheduler's time limit) never reaches them, and a grid started as
    a shell's background job passes SIGINT on ignored: those runs get SIGTERM at once (the CLI stops on it as on
    Ctrl-C). A run still alive a minute later is killed."""
    procs = [proc for _, proc, _ in running]
    if not terminated:
        end = time.time() + 2.0
        while time.time() < end and any(proc.poll() is None for proc in procs):
            time.sleep(0.05)
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return sum(proc.returncode in (0, EXIT_DIVERGED) for proc in procs)


def command_lines(preset: str, p: Plan, out: str, threads: int, extra_flags: list[str]) -> list[str]:
    """One self-contained shell command per run still to run (``grid --print-commands``)."""
    return [shlex.join(["fggp-repro", *train_args(r, preset, out, threads, extra_flags)]) for r in p.todo]

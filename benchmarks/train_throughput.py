"""Training throughput: the project's step (fp32, bf16, N processes, torch.compile) against the authors' loop.

Everything is measured in one command on one device, so the ratios are what to read:

- **authors' loop** (the reference of every ratio): the loop of the FGGP authors' script, fp32, channels-first:
  a torchvision ``DataLoader`` (shuffle, ``--workers`` worker processes) over PIL images with
  ``RandomCrop(32, padding=4)``, ``RandomHorizontalFlip``, ``ToTensor``, ``Normalize``; batches copied to the
  device; forward, cross-entropy, backward, SGD step. One process.
- **project step**: what ``fggp-repro train`` executes per iteration (``engine.train_step``: on-device augmentation
  from seeded generators, strict deterministic algorithms, channels-last, an fggp pruner hook and a mask
  multiply after every step; pruning events off so the steady state is timed), in fp32 and bf16, run by N
  processes at once sharing the device (``--concurrency``, default 1, 6 and 12), as ``fggp-repro grid --jobs N``
  does. A cell's images/s is the aggregate: all the processes' timed images over the span from the first timed
  step's start to the last one's end. The processes warm up, then wait for a common start.
- **torch.compile**: the project step with the model compiled (``--compile``, default the modes ``default`` and
  ``reduce-overhead``), one process, in ``--compile-precision`` (default fp32, the presets' precision). Each mode
  runs in a process of its own: a mode that cannot compile here (no compiler, a CPU-only build, an unsupported
  Python) or takes too long is ended and its cell reads ``n/a (reason)``.
- **FLOPs per image** of one training step (forward + backward) from ``torch.utils.flop_counter``, and each cell's
  utilisation: achieved FLOP/s against a matrix product's rate measured here in the same precision.

One table, printed and written to ``--out DIR`` as ``DIR/train_throughput.md`` (rewritten after every cell, so a
command cut off leaves the cells it measured). Its rows: per architecture, the authors' loop, the project step in
fp32 and bf16 at each concurrency, and each compile mode; its columns: arch, loop, precision, compile,
processes, threads each, img/s, ratio to authors, util.

How the time is kept (``--budget``, default 170 s on a GPU, none on the CPU, counted from the command's start):

- every cell times at most ``--steps`` steps or ``--seconds`` seconds, whichever ends first (default 1000 steps
  and 2 s on a GPU), after ``--warmup`` steps;
- the concurrency cells share one set of max(N) processes started once (and started again only after a failure);
  the inactive ones wait idle; each cell warms up and times only its N;
- the compile cells come last: each is given the rest of the budget divided among the compile cells left (at most
  ``--compile-limit`` seconds when given), covering its process's start, compilation, warm-up and timing, and
  is ended when that runs out;
- a cell reached when the budget is spent is not measured: ``n/a (budget of B s spent)``.

    python benchmarks/train_throughput.py --device cuda --out DIR       # a GPU, full size, within --budget
    python benchmarks/train_throughput.py --threads 1 --concurrency 1,2 # the CPU: width 1/8, 8 steps a cell
"""

# ruff: noqa: E402  (the clock starts before torch is imported)
from __future__ import annotations

import time

_STARTED = time.time()  # the budget counts from here

import argparse
import gc
import json
import math
import os
import queue
import subprocess
import sys
import threading
from collections import deque
from pathlib import Path

import torch
import torch.nn.functional as F

import fggp_repro
from fggp_repro import data as D
from fggp_repro import engine as E
from fggp_repro import models
from fggp_repro.pruning.pruner import make_pruner
from fggp_repro.seeding import set_strict_determinism
from fggp_repro.spec import config as C

PRECISIONS = ("fp32", "bf16")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
TABLE_FILE = "train_throughput.md"
COLUMNS = ("arch", "loop", "precision", "compile", "processes", "threads each", "img/s", "ratio to authors", "util.")
REPLY = "@@ "  # prefix of a measuring process's replies on its stdout (anything else there is ignored)
_WAIT = 900.0  # longest wait for one reply when no budget is set


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _cfg(arch, width, batch, precision="fp32"):
    return C.load(overrides={"model": {"arch": arch, "width": width, "weight_init": "authors"},
                             "pruning": {"method": "fggp", "update_interval": 10**9},
                             "training": {"batch_size": batch}, "run": {"precision": precision}})


def _reason(exc: BaseException | str) -> str:
    """One short line for a table cell: the root cause's type and the first line of its message."""
    for _ in range(8):  # down to the root cause: a compiler's error is wrapped
        inner = getattr(exc, "inner_exception", None) or getattr(exc, "__cause__", None)
        if not isinstance(inner, BaseException):
            break
        exc = inner
    text = exc if isinstance(exc, str) else f"{type(exc).__name__}: {str(exc).strip()}"
    line = next((s.strip() for s in text.splitlines() if s.strip()), "no message")
    line = line.replace("|", "/").replace("(", "[").replace(")", "]")
    return line if len(line) <= 100 else line[:97] + "..."


# ---------------------------------------------------------------------------------------------------------------
# the project's step, in a measuring process


class ProjectStep:
    """The project's training step on synthetic data: model, optimizer, fggp pruner (no events), batches."""

    def __init__(self, arch, width, batch, device, compile_mode=None):
        cfg = _cfg(arch, width, batch)
        self.arch, self.batch, self.device = arch, batch, device
        ds = D.synthetic(32 * batch, 10)  # whole batches only: a compiled model sees one shape
        self.loader = D.DeviceLoader(ds.train_x, ds.train_y, device, channels_last=True)
        self.model = E.build_model(cfg, device)
        self.opt = E.make_optimizer(self.model, cfg.training)
        self.pruner = make_pruner(cfg)
        self.pruner.setup(self.model, self.opt, total_iters=10**9, seed=0)  # events at multiples of 1e9: none here
        self.net = torch.compile(self.model, mode=compile_mode) if compile_mode else self.model
        self.cudagraphs = compile_mode in ("reduce-overhead", "max-autotune")  # the modes that use CUDA graphs
        self.criterion = torch.nn.CrossEntropyLoss()
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        self.it = 0
        self.batches = self._batches()

    def _batches(self):
        epoch = 0
        while True:
            yield from self.loader.train_epoch(0, epoch, self.batch, True)
            epoch += 1

    def step(self, precision):
        x, y = next(self.batches)
        self.it += 1
        if self.cudagraphs:
            torch.compiler.cudagraph_mark_step_begin()
        loss, _ = E.train_step(self.net, x, y, self.criterion, self.opt, self.pruner, self.it, precision)
        self.loss_sum += loss * len(y)

    def timed(self, precision, steps, seconds):
        """``(images, t_start, t_end)`` in wall-clock time of up to ``steps`` steps or ``seconds`` seconds."""
        _sync(self.device)
        t0 = time.time()
        n = 0
        while n < steps:
            self.step(precision)
            n += 1
            if time.time() - t0 >= seconds:  # the device may lag: the span below waits for it
                break
        _sync(self.device)
        return n * self.batch, t0, time.time()


def _reply(**kw):
    print(REPLY + json.dumps(kw), flush=True)


def serve(args):
    """A measuring process: JSON commands on stdin, one reply line each (``REPLY`` + JSON) on stdout.

    ``prepare`` (arch, precision, warmup, threads) builds the step (kept while the arch stays) and warms it up;
    ``run`` (start_at, steps, seconds) waits for the common start and times it.
    """
    set_strict_determinism(True)  # before the first CUDA call (cuBLAS)
    device = torch.device(args.device)
    torch.set_num_threads(max(1, args.threads))
    torch.zeros(1, device=device)  # the device's context, before the hello
    _reply(hello=os.getpid())
    step, precision = None, "fp32"
    for line in sys.stdin:
        cmd = json.loads(line)
        try:
            if cmd["op"] == "prepare":
                torch.set_num_threads(cmd["threads"])
                if step is None or step.arch != cmd["arch"]:
                    step = None
                    gc.collect()
                    if device.type == "cuda":
                        torch.cuda.empty_cache()
                    step = ProjectStep(cmd["arch"], args.width, args.batch, device, args.compile_mode)
                precision = cmd["precision"]
                for _ in range(cmd["warmup"]):
                    step.step(precision)
                _sync(device)
                _reply(ready=True)
            elif cmd["op"] == "run":
                while time.time() < cmd["start_at"]:
                    time.sleep(0.002)
                images, t0, t1 = step.timed(precision, cmd["steps"], cmd["seconds"])
                _reply(images=images, t0=t0, t1=t1)
        except Exception as exc:  # the cell reads n/a (reason); the parent decides what comes next
            _reply(error=_reason(exc))


# ---------------------------------------------------------------------------------------------------------------
# the measuring processes, from the parent


class Failed(Exception):
    """A cell that could not be measured; its message is the cell's reason."""


class TimedOut(Failed):
    """A measuring process did not answer in the time given."""


class Proc:
    """A measuring process (``--worker``), spoken to by JSON lines."""

    def __init__(self, args, threads, compile_mode=None):
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--device", args.device, "--width",
               repr(args.width), "--batch", str(args.batch), "--threads", str(threads)]
        if compile_mode:
            cmd += ["--compile-mode", compile_mode]
        root = str(Path(fggp_repro.__file__).resolve().parent.parent)  # the same fggp_repro as this process
        env = dict(os.environ, OMP_NUM_THREADS=str(threads),
                   PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, env=env)
        self.replies: queue.Queue = queue.Queue()
        self.err: deque = deque(maxlen=40)
        threading.Thread(target=self._read_out, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read_out(self):
        for line in self.p.stdout:
            if line.startswith(REPLY):
                self.replies.put(json.loads(line[len(REPLY):]))
        self.replies.put(None)

    def _read_err(self):
        for line in self.p.stderr:
            if line.strip():
                self.err.append(line.strip())

    def send(self, **cmd):
        try:
            self.p.stdin.write(json.dumps(cmd) + "\n")
            self.p.stdin.flush()
        except (BrokenPipeError, OSError):
            raise Failed(self._exit_reason()) from None

    def reply(self, until: float, what: str) -> dict:
        try:
            msg = self.replies.get(timeout=max(0.0, until - time.time()))
        except queue.Empty:
            raise TimedOut(f"{what} not done in the time given") from None
        if msg is None:
            raise Failed(self._exit_reason())
        if "error" in msg:
            raise Failed(msg["error"])
        return msg

    def _exit_reason(self):
        try:
            rc = self.p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            rc = None
        last = self.err[-1] if self.err else "no output"
        return f"process ended [status {rc}]: {last}"



def measure(procs, arch, precision, threads, args, until, warmup) -> float:
    """Aggregate images/s of ``procs`` stepping at once (each warmed up first, then a common start), all done
    by wall-clock time ``until``."""
    for p in procs:
        p.send(op="prepare", arch=arch, precision=precision, warmup=warmup, threads=threads)
    for p in procs:
        p.reply(until, "warm-up")
    start_at = time.time() + 0.1 + 0.01 * len(procs)
    for p in procs:
        p.send(op="run", start_at=start_at, steps=args.steps, seconds=args.seconds)
    out = [p.reply(until, "timing") for p in procs]
    # all images over the span from the first timed step's start to the last one's end: never more than the
    # device delivered, even where the processes' timed windows do not overlap exactly
    span = max(o["t1"] for o in out) - min(o["t0"] for o in out)
    return sum(o["images"] for o in out) / span


# ---------------------------------------------------------------------------------------------------------------
# the authors' loop, FLOPs and the matrix product, in this process


class _PILSet(torch.utils.data.Dataset):
    """CIFAR-shaped PIL images with the authors' transforms (their ``data.get_dataset``)."""

    def __init__(self, x_uint8, y):
        import torchvision.transforms as TT
        from torchvision.transforms.functional import to_pil_image

        self.images = [to_pil_image(img) for img in x_uint8]
        self.y = y.tolist()
        self.tf = TT.Compose([TT.RandomCrop(32, padding=4), TT.RandomHorizontalFlip(), TT.ToTensor(),
                              TT.Normalize(D.MEAN, D.STD)])

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.tf(self.images[i]), self.y[i]


def authors_loop(arch, width, batch, device, steps, warmup, workers, seconds=math.inf, n_images=2048):
    """Images/s of the authors' loop: DataLoader over PIL images, fp32, channels-first, no pruning hook;
    up to ``steps`` timed steps or ``seconds`` seconds after ``warmup`` steps."""
    torch.use_deterministic_algorithms(False)
    ds = D.synthetic(n_images, 10)
    loader = torch.utils.data.DataLoader(_PILSet(ds.train_x, ds.train_y), batch_size=batch, shuffle=True,
                                         num_workers=workers, drop_last=False,
                                         persistent_workers=workers > 0)
    torch.manual_seed(0)
    model = models.build(arch, width, weight_init="authors").to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
    it, n, t0 = 0, 0, None
    while t0 is None or n < steps:
        for x, y in loader:
            if it == warmup:
                _sync(device)
                t0 = time.perf_counter()
            it += 1
            x, y = x.to(device), y.to(device)
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            if t0 is not None:
                n += 1
                if n >= steps or time.perf_counter() - t0 >= seconds:
                    steps = n
                    break
    _sync(device)
    rate = n * batch / (time.perf_counter() - t0)
    del loader, model, opt
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return rate


def flops_per_image(arch, width, batch, device):
    """FLOPs of one training step (forward + backward) per image, by torch.utils.flop_counter."""
    from torch.utils.flop_counter import FlopCounterMode

    model = models.build(arch, width).to(device)
    x = torch.randn(batch, 3, 32, 32, device=device)
    y = torch.zeros(batch, dtype=torch.int64, device=device)
    counter = FlopCounterMode(display=False)
    with counter:
        F.cross_entropy(model(x), y).backward()
    return counter.get_total_flops() / batch


def matmul_rate(device, dtype, n):
    """FLOP/s of an n x n matrix product in ``dtype`` (best of 5)."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(5):
        _sync(device)
        t = time.perf_counter()
        a @ b
        _sync(device)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


# ---------------------------------------------------------------------------------------------------------------
# the table


class Table:
    """The cells, in table order, each a number (img/s) or a reason; written whole after every cell."""

    def __init__(self, args, header):
        self.args, self.header = args, header
        self.rows: dict = {}  # (arch, loop, precision, compile, processes) -> [threads, img/s or reason]
        self.flops: dict = {}
        self.mm: dict = {}
        self.footer: list[str] = []
        for arch in args.arch_list:
            self.rows[(arch, "authors", "fp32", "none", 1)] = [None, "not measured yet"]
            for n in (args.conc_list if arch in args.conc_archs else (1,)):
                for prec in PRECISIONS:
                    self.rows[(arch, "project", prec, "none", n)] = [None, "not measured yet"]
            if arch in args.compile_archs:
                for mode in args.compile_modes:
                    self.rows[(arch, "project", args.compile_precision, mode, 1)] = [None, "not measured yet"]

    def set(self, key, threads, value):
        self.rows[key] = [threads, value]
        arch, loop, prec, comp, n = key
        shown = f"{value:.1f} img/s" if isinstance(value, float) else f"n/a ({value})"
        print(f"  {arch} {loop} {prec} compile={comp} x{n}: {shown}", file=sys.stderr, flush=True)
        self.write()

    def text(self) -> str:
        lines = list(self.header)
        if self.mm:
            lines.append("matrix product: " + ", ".join(f"{p} {r / 1e9:.1f} GFLOP/s" for p, r in self.mm.items()))
        if self.flops:
            lines.append("GFLOP per image of a training step: "
                         + ", ".join(f"{a} {f / 1e9:.3f}" for a, f in self.flops.items()))
        lines += ["", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        for (arch, loop, prec, comp, n), (threads, value) in self.rows.items():
            ref = self.rows[(arch, "authors", "fp32", "none", 1)][1]
            if isinstance(value, float):
                rate = f"{value:.1f}"
                ratio = f"{value / ref:.2f}" if isinstance(ref, float) else f"n/a (authors' loop: {ref})"
                fpi, mm = self.flops.get(arch), self.mm.get(prec)
                util = f"{fpi * value / mm:.1%}" if fpi and mm else "n/a"
            else:
                rate, ratio, util = "n/a", f"n/a ({value})", "n/a"
            lines.append(f"| {arch} | {loop} | {prec} | {comp} | {n} | {threads if threads else '-'} | {rate} | "
                         f"{ratio} | {util} |")
        return "\n".join(lines + self.footer) + "\n"

    def write(self):
        if self.args.out:
            out = Path(self.args.out)
            out.mkdir(parents=True, exist_ok=True)
            tmp = out / (TABLE_FILE + ".tmp")
            tmp.write_text(self.text())
            tmp.replace(out / TABLE_FILE)


# ---------------------------------------------------------------------------------------------------------------
# the command


class _Parser(argparse.ArgumentParser):
    """A usage error is one line and exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _parser():
    ap = _Parser(prog="train_throughput.py", description=__doc__,
                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--archs", default="vgg19,resnet50", help=f"comma-separated, of: {', '.join(models.MODELS)}")
    ap.add_argument("--width", type=float, default=None, help="channel width (default: 1 on a GPU, 1/8 on the CPU)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=None,
                    help="most timed steps of a cell (default: 1000 on a GPU, 8 on the CPU)")
    ap.add_argument("--seconds", type=float, default=None,
                    help="most timed seconds of a cell (default: 2 on a GPU, 30 on the CPU)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps before a cell's timing (default: 3)")
    ap.add_argument("--workers", type=int, default=None, help="DataLoader workers of the authors' loop "
                    "(default: 4 as the authors on a GPU, 1 on the CPU)")
    ap.add_argument("--concurrency", default="1,6,12", help="processes at once sharing the device (default: 1,6,12)")
    ap.add_argument("--concurrency-archs", default=None,
                    help="architectures measured at every concurrency (default: all of --archs; the others at 1)")
    ap.add_argument("--compile", default=",".join(COMPILE_MODES[:2]),
                    help=f"torch.compile modes, comma-separated, of: {', '.join(COMPILE_MODES)}; 'none' for none "
                         "(default: default,reduce-overhead)")
    ap.add_argument("--compile-archs", default=None, help="architectures compiled (default: the first of --archs)")
    ap.add_argument("--compile-precision", default="fp32", choices=PRECISIONS,
                    help="precision of the compile cells (default: fp32, the presets')")
    ap.add_argument("--compile-limit", type=float, default=None,
                    help="most seconds of one compile cell, its process's start included (default: its share of "
                         "what is left of --budget)")
    ap.add_argument("--budget", type=float, default=None,
                    help="seconds of the whole command; cells reached after it read n/a (default: 170 on a GPU, "
                         "none on the CPU)")
    ap.add_argument("--threads", type=int, default=0,
                    help="torch threads of this process and of each measuring process (default: on the CPU, the "
                         "cores divided by the processes at once; on a GPU, 1 each). On a shared CPU use 1: "
                         "multi-threaded runs collapse under outside load")
    ap.add_argument("--out", metavar="DIR", help=f"write the table to DIR/{TABLE_FILE}")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--compile-mode", default=None, help=argparse.SUPPRESS)
    return ap


def _names(ap, text, what, allowed):
    names = [v.strip() for v in text.split(",") if v.strip()]
    bad = [v for v in names if v not in allowed]
    if bad:
        ap.error(f"unknown {what} '{bad[0]}' (choose from: {', '.join(allowed)})")
    return names


def _check(ap, args):
    """Every argument checked before anything is measured; defaults by device."""
    try:
        device = torch.device(args.device)
    except (RuntimeError, ValueError) as exc:
        ap.error(f"--device {args.device}: {_reason(exc)}")
    if device.type == "cuda" and not torch.cuda.is_available():
        ap.error(f"--device {args.device}: no CUDA device here (torch {torch.__version__})")
    gpu = device.type == "cuda"
    args.width = args.width if args.width is not None else (1.0 if gpu else 0.125)
    args.steps = args.steps if args.steps is not None else (1000 if gpu else 8)
    args.seconds = args.seconds if args.seconds is not None else (2.0 if gpu else 30.0)
    args.workers = args.workers if args.workers is not None else (4 if gpu else 1)
    args.budget = args.budget if args.budget is not None else (170.0 if gpu else math.inf)
    for name, ok in (("width", args.width > 0), ("batch", args.batch >= 1), ("steps", args.steps >= 1),
                     ("seconds", args.seconds > 0), ("warmup", args.warmup >= 0), ("workers", args.workers >= 0),
                     ("threads", args.threads >= 0), ("budget", args.budget > 0),
                     ("compile-limit", args.compile_limit is None or args.compile_limit > 0)):
        if not ok:
            ap.error(f"--{name} {getattr(args, name.replace('-', '_'))}: out of range")
    args.arch_list = _names(ap, args.archs, "architecture", list(models.MODELS))
    if not args.arch_list:
        ap.error("--archs: no architecture given")
    try:
        args.conc_list = sorted({int(v) for v in args.concurrency.split(",") if v.strip()})
    except ValueError:
        ap.error(f"--concurrency: expected comma-separated process counts, got '{args.concurrency}'")
    if not args.conc_list or args.conc_list[0] < 1:
        ap.error(f"--concurrency: expected process counts of at least 1, got '{args.concurrency}'")
    args.conc_archs = _names(ap, args.concurrency_archs or args.archs, "--concurrency-archs architecture",
                             args.arch_list)
    args.compile_modes = ([] if args.compile.strip() in ("", "none")
                          else _names(ap, args.compile, "compile mode", list(COMPILE_MODES)))
    args.compile_archs = _names(ap, args.compile_archs or args.arch_list[0], "--compile-archs architecture",
                                args.arch_list)
    return device


def main(argv=None):
    ap = _parser()
    args = ap.parse_args(argv)
    if args.worker:
        return serve(args)
    device = _check(ap, args)
    gpu = device.type == "cuda"
    cores = os.cpu_count() or 1
    size = max(args.conc_list)
    if args.threads:
        torch.set_num_threads(args.threads)
    until_budget = _STARTED + args.budget

    def threads_for(n):
        return args.threads or (1 if gpu else max(1, cores // n))

    def spent():
        return f"budget of {args.budget:g} s spent" if time.time() >= until_budget else None

    name = torch.cuda.get_device_name(device) if gpu else f"cpu ({_cpu()}, {cores} cores)"
    header = [f"# Training throughput: {name}", "",
              f"torch {torch.__version__}; width {args.width:g}; batch {args.batch}; each cell up to {args.steps} "
              f"timed steps or {args.seconds:g} s after {args.warmup} warm-up steps (compile cells: at least 3, "
              f"compilation included); " + (f"budget {args.budget:g} s" if args.budget < math.inf else "no budget"),
              "project step: strict, channels-last, fggp pruner hook (no events), on-device augmentation; "
              f"authors' loop: fp32, channels-first, DataLoader with {args.workers} worker(s), "
              f"{torch.get_num_threads()} thread(s)"]
    table = Table(args, header)
    for arch in args.arch_list:
        table.flops[arch] = flops_per_image(arch, args.width, args.batch, device)
    for prec, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        table.mm[prec] = matmul_rate(device, dtype, 8192 if gpu else 1024)
    if gpu:
        torch.cuda.empty_cache()
    table.write()
    pool: list[Proc] = []  # the processes of the concurrency cells, started at the first of them
    try:
        for arch in args.arch_list:
            key = (arch, "authors", "fp32", "none", 1)
            if spent():
                table.set(key, None, spent())
            else:
                try:
                    table.set(key, torch.get_num_threads(),
                              authors_loop(arch, args.width, args.batch, device, args.steps, args.warmup,
                                           args.workers, args.seconds))
                except Exception as exc:
                    table.set(key, None, _reason(exc))
            for n in (args.conc_list if arch in args.conc_archs else (1,)):
                for prec in PRECISIONS:
                    key = (arch, "project", prec, "none", n)
                    if spent():
                        table.set(key, None, spent())
                        continue
                    until = min(until_budget, time.time() + _WAIT)
                    try:
                        if not pool:  # all at once, each holding its device context, idle while not in a cell
                            pool = [Proc(args, threads_for(size)) for _ in range(size)]
                            for p in pool:
                                p.reply(until, "start")
                        table.set(key, threads_for(n),
                                  measure(pool[:n], arch, prec, threads_for(n), args, until, args.warmup))
                    except Failed as exc:
                        reason = f"{spent()}: {exc}" if isinstance(exc, TimedOut) and spent() else str(exc)
                        table.set(key, None, _reason(reason))
                        _kill(pool)  # a process may be mid-command or gone: start afresh for the next cell
                        pool = []
        _close(pool)
        pool = []
        compile_keys = [k for k in table.rows if k[3] != "none"]
        for i, key in enumerate(compile_keys):
            arch, _, prec, mode, _ = key
            if spent():
                table.set(key, None, spent())
                continue
            # its share of the budget left, its process's start, compilation (in the warm-up) and timing included
            limit = min((until_budget - time.time()) / (len(compile_keys) - i), args.compile_limit or _WAIT)
            until = time.time() + limit
            pool = [Proc(args, threads_for(1), compile_mode=mode)]
            try:
                pool[0].reply(until, "start")
                value = measure(pool, arch, prec, threads_for(1), args, until, max(args.warmup, 3))
                table.set(key, threads_for(1), value)
            except TimedOut:
                table.set(key, None, f"not compiled and timed within {limit:.0f} s")
            except Failed as exc:
                table.set(key, None, _reason(str(exc)))
            _kill(pool)
            pool = []
    finally:
        _kill(pool)
    table.footer = ["", f"command took {time.time() - _STARTED:.0f} s"]
    table.write()
    print(table.text(), end="")


def _close(procs, seconds=10.0):
    """End the measuring processes: their input closed, all given ``seconds`` together to exit, then killed."""
    for p in procs:
        try:
            p.p.stdin.close()
        except OSError:
            pass
    until = time.time() + seconds
    for p in procs:
        try:
            p.p.wait(timeout=max(0.0, until - time.time()))
        except subprocess.TimeoutExpired:
            pass
    _kill(procs)


def _kill(procs):
    for p in procs:
        if p.p.poll() is None:
            p.p.kill()
        p.p.wait()


def _cpu():
    from fggp_repro.provenance import cpu_model

    return cpu_model()


if __name__ == "__main__":
    main()

"""Training throughput: the project's loop (fp32, bf16) against the authors' loop, FLOPs, utilisation, concurrency.

Everything is measured in one run on one device, so the ratios are what to read:

- **project loop**: what ``fggp-repro train`` executes per iteration (``trainer.train_step``: on-device
  augmentation from seeded generators, strict deterministic algorithms, channels-last, an fggp pruner hook
  and a mask multiply after every step; pruning events off so the steady state is timed), in fp32 and bf16.
- **authors' loop**: the loop of the FGGP authors' script, fp32: a torchvision ``DataLoader`` (shuffle,
  ``--workers`` worker processes) over PIL images with ``RandomCrop(32, padding=4)``, ``RandomHorizontalFlip``,
  ``ToTensor``, ``Normalize``; batches copied to the device; forward, cross-entropy, backward, SGD step.
- **FLOPs per image** of one training step (forward + backward) from ``torch.utils.flop_counter``, the
  achieved FLOP/s, and utilisation against a matrix product's rate measured here in the same precision.
- **concurrency**: the aggregate images/s of 1, 2, 4, 8 project-loop processes (bf16) sharing the device,
  each with ``cores // N`` threads (at least 1): all their timed images over the span from the first timed
  step's start to the last one's end.

    python benchmarks/train_throughput.py                      # CPU: small widths, a few steps
    python benchmarks/train_throughput.py --device cuda --width 1 --steps 100   # a GPU, full size (about 3 min)

Prints a markdown table (also written to ``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

from fggp_repro import data as D
from fggp_repro import engine as E
from fggp_repro import models
from fggp_repro.pruning.pruner import make_pruner
from fggp_repro.seeding import set_strict_determinism
from fggp_repro.spec import config as C


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _cfg(arch, width, batch, precision="fp32"):
    return C.load(overrides={"model": {"arch": arch, "width": width, "weight_init": "authors"},
                             "pruning": {"method": "fggp", "update_interval": 10**9},
                             "training": {"batch_size": batch}, "run": {"precision": precision}})


def project_loop(arch, width, batch, precision, device, steps, warmup, n_images=2048, window=False):
    """Images/s of the project's training step (trainer.train_step) in ``precision``; with ``window``,
    ``(images, t_start, t_end)`` of the timed steps in wall-clock time instead."""
    cfg = _cfg(arch, width, batch, precision)
    set_strict_determinism(True)
    ds = D.synthetic(n_images, 10)
    loader = D.DeviceLoader(ds.train_x, ds.train_y, device, channels_last=True)
    model = E.build_model(cfg, device)
    opt = E.make_optimizer(model, cfg.training)
    pruner = make_pruner(cfg)
    pruner.setup(model, opt, total_iters=10**9, seed=0)  # events at multiples of 1e9: none while timed
    criterion = torch.nn.CrossEntropyLoss()
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    it, epoch, t0 = 0, 0, None
    while it < warmup + steps:
        for x, y in loader.train_epoch(0, epoch, batch, True):
            if it == warmup:
                _sync(device)
                t0, w0 = time.perf_counter(), time.time()
            it += 1
            loss, _ = E.train_step(model, x, y, criterion, opt, pruner, it, precision)
            loss_sum += loss * len(y)
            if it == warmup + steps:
                break
        epoch += 1
    _sync(device)
    if window:
        return steps * batch, w0, time.time()
    return steps * batch / (time.perf_counter() - t0)


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


def authors_loop(arch, width, batch, device, steps, warmup, workers, n_images=2048):
    """Images/s of the authors' loop: DataLoader over PIL images, fp32, channels-first, no pruning hook."""
    torch.use_deterministic_algorithms(False)
    ds = D.synthetic(n_images, 10)
    loader = torch.utils.data.DataLoader(_PILSet(ds.train_x, ds.train_y), batch_size=batch, shuffle=True,
                                         num_workers=workers, drop_last=False,
                                         persistent_workers=workers > 0)
    torch.manual_seed(0)
    model = models.build(arch, width, weight_init="authors").to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
    it, t0 = 0, None
    while it < warmup + steps:
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
            if it == warmup + steps:
                break
    _sync(device)
    return steps * batch / (time.perf_counter() - t0)


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


def _worker(args):
    """One concurrency process: wait for the common start, time the project loop, print JSON."""
    torch.set_num_threads(max(1, args.threads))
    device = torch.device(args.device)
    while time.time() < args.start_at:
        time.sleep(0.01)
    images, t0, t1 = project_loop(args.archs, args.width, args.batch, "bf16", device, args.steps, args.warmup,
                                  window=True)
    print(json.dumps({"images": images, "t0": t0, "t1": t1}))


def concurrency(args, arch, n_procs):
    cores = os.cpu_count() or 1
    threads = max(1, cores // n_procs) if args.device == "cpu" else 1
    start_at = time.time() + 8.0 + 1.5 * n_procs  # every process imported torch and built its model by then
    cmd = [sys.executable, __file__, "--worker", "--archs", arch, "--width", str(args.width), "--batch",
           str(args.batch), "--device", args.device, "--steps", str(args.steps), "--warmup", str(args.warmup),
           "--threads", str(threads), "--start-at", repr(start_at)]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env) for _ in range(n_procs)]
    out = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
    # all images over the span from the first timed step's start to the last one's end: never more than
    # the device delivered, even where the processes' timed windows do not overlap exactly
    span = max(o["t1"] for o in out) - min(o["t0"] for o in out)
    return sum(o["images"] for o in out) / span, threads


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--archs", default="vgg19,resnet50,resnet50-6n2")
    ap.add_argument("--width", type=float, default=None, help="channel width (default: 1 on a GPU, 1/8 on the CPU)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=None, help="timed steps (default: 100 on a GPU, 8 on the CPU)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--workers", type=int, default=None, help="DataLoader workers of the authors' loop "
                    "(default: 4 as the authors on a GPU, 1 on the CPU)")
    ap.add_argument("--concurrency", default="1,2,4,8")
    ap.add_argument("--concurrency-archs", default=None,
                    help="architectures whose concurrency is measured (default: the first of --archs)")
    ap.add_argument("--out", help="also write the table to this file")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=0,
                    help="torch threads of the single-process measurements (0: torch's default). On a shared CPU "
                         "use 1: multi-threaded runs collapse under outside load")
    ap.add_argument("--start-at", type=float, default=0.0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    gpu = args.device.startswith("cuda")
    if args.width is None:
        args.width = 1.0 if gpu else 0.125
    if args.steps is None:
        args.steps = 100 if gpu else 8
    if args.workers is None:
        args.workers = 4 if gpu else 1
    if args.worker:
        return _worker(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if gpu else f"cpu ({_cpu()}, {torch.get_num_threads()} threads)"
    mm32 = matmul_rate(device, torch.float32, 8192 if gpu else 1024)
    mm16 = matmul_rate(device, torch.bfloat16, 8192 if gpu else 1024)
    lines = [f"device: {name}; torch {torch.__version__}; width {args.width:g}; batch {args.batch}; "
             f"{args.steps} timed steps after {args.warmup}; authors' loop with {args.workers} DataLoader worker(s)",
             f"matrix product: fp32 {mm32 / 1e9:.1f} GFLOP/s, bf16 {mm16 / 1e9:.1f} GFLOP/s", "",
             "| arch | GFLOP/img (train step) | authors fp32 img/s | project fp32 img/s | project bf16 img/s | "
             "project fp32 / authors | bf16 / fp32 | util. fp32 | util. bf16 |",
             "|---|---|---|---|---|---|---|---|---|"]
    conc_rows = []
    for arch in args.archs.split(","):
        fpi = flops_per_image(arch, args.width, args.batch, device)
        a = authors_loop(arch, args.width, args.batch, device, args.steps, args.warmup, args.workers)
        p32 = project_loop(arch, args.width, args.batch, "fp32", device, args.steps, args.warmup)
        p16 = project_loop(arch, args.width, args.batch, "bf16", device, args.steps, args.warmup)
        lines.append(f"| {arch} | {fpi / 1e9:.3f} | {a:.1f} | {p32:.1f} | {p16:.1f} | {p32 / a:.2f} | "
                     f"{p16 / p32:.2f} | {fpi * p32 / mm32:.1%} | {fpi * p16 / mm16:.1%} |")
        print(lines[-1], file=sys.stderr, flush=True)
        conc_archs = (args.concurrency_archs or args.archs.split(",")[0]).split(",")
        for n in (int(v) for v in args.concurrency.split(",") if v.strip() and arch in conc_archs):
            total, threads = concurrency(args, arch, n)
            conc_rows.append((arch, n, threads, total))
            print(f"  {arch} x{n}: {total:.1f} img/s", file=sys.stderr, flush=True)
    lines += ["", "Concurrency (project loop, bf16): aggregate images/s of N processes on the device", "",
              "| arch | processes | threads each | aggregate img/s | vs 1 process |", "|---|---|---|---|---|"]
    base = {}
    for arch, n, threads, total in conc_rows:
        base.setdefault(arch, total if n == 1 else None)
        rel = f"{total / base[arch]:.2f}" if base.get(arch) else "n/a"
        lines.append(f"| {arch} | {n} | {threads} | {total:.1f} | {rel} |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text + "\n")


def _cpu():
    from fggp_repro.provenance import cpu_model

    return cpu_model()


if __name__ == "__main__":
    main()

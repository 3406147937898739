"""Training-loop throughput: the project's loop against a bare PyTorch loop, same model and batch, same run.

The project's loop adds what a reproducible pruning run needs: on-device augmentation from seeded
generators, strict deterministic algorithms, the pruner hook and a mask multiply after every step
(an fggp pruner at 90 % target sparsity, with events off so the steady state is timed). The bare loop
is plain SGD on pre-made batches. The ratio (project / bare images per second) is the number to
watch: the issue's target is >= 0.9 on the CPU.

    python benchmarks/train_loop.py [--arch vgg19] [--width 0.125] [--steps 30] [--device cpu]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from fggp_repro import data as D
from fggp_repro import engine as E
from fggp_repro.pruning.pruner import make_pruner
from fggp_repro.seeding import set_strict_determinism
from fggp_repro.spec import config as C


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def bare(cfg, device, x, y, steps, warmup):
    model = E.build_model(cfg, device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
    bs = cfg.training.batch_size
    xs = [((x[i:i + bs].float() / 255) - 0.5) / 0.25 for i in range(0, len(x) - bs + 1, bs)]
    ys = [y[i:i + bs] for i in range(0, len(y) - bs + 1, bs)]
    t0 = None
    for s in range(warmup + steps):
        if s == warmup:
            _sync(device)
            t0 = time.perf_counter()
        xb, yb = xs[s % len(xs)], ys[s % len(ys)]
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(xb), yb).backward()
        opt.step()
    _sync(device)
    return steps * bs / (time.perf_counter() - t0)


def project(cfg, device, x, y, steps, warmup):
    set_strict_determinism(cfg.run.strict)
    model = E.build_model(cfg, device)
    opt = E.make_optimizer(model, cfg.training)
    pruner = make_pruner(cfg)
    pruner.setup(model, opt, total_iters=10**9, seed=0)  # events at multiples of 1e9: none while timed
    criterion = torch.nn.CrossEntropyLoss()
    loader = D.DeviceLoader(x, y, device)
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    it, t0, epoch = 0, None, 0
    while it < warmup + steps:
        for xb, yb in loader.train_epoch(0, epoch, cfg.training.batch_size, True):
            if it == warmup:
                _sync(device)
                t0 = time.perf_counter()
            it += 1
            loss, _ = E.train_step(model, xb, yb, criterion, opt, pruner, it, cfg.run.precision)
            loss_sum += loss * len(yb)
            if it == warmup + steps:
                break
        epoch += 1
    _sync(device)
    return steps * cfg.training.batch_size / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="vgg19")
    ap.add_argument("--width", type=float, default=0.125)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    device = torch.device(args.device)
    cfg = C.load(overrides={"model": {"arch": args.arch, "width": args.width},
                            "pruning": {"method": "fggp", "update_interval": 10**9},
                            "training": {"batch_size": args.batch}})
    ds = D.synthetic(args.batch * 16, 10)
    x, y = ds.train_x.to(device), ds.train_y.to(device)
    rb, rp = [], []
    for _ in range(args.repeat):  # interleaved, so drifting machine load hits both alike
        rb.append(bare(cfg, device, x, y, args.steps, args.warmup))
        rp.append(project(cfg, device, x, y, args.steps, args.warmup))
    b, p = max(rb), max(rp)
    print(f"device={device} threads={torch.get_num_threads()} arch={args.arch} width={args.width} batch={args.batch}")
    print(f"bare PyTorch loop : {b:9.1f} img/s (best of {args.repeat})")
    print(f"project loop      : {p:9.1f} img/s (best of {args.repeat})")
    print(f"ratio project/bare: {p / b:.3f}")


if __name__ == "__main__":
    main()

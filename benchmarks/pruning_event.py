"""One pruning event against one training step, on the full VGG-19 (20 M prunable weights), same run.

The event is the whole ``on_backward`` of the method's pruner at an event iteration: flattening |w| and |g|,
the method's selection (exact count, deterministic ties), updating the masks, zeroing weights and
momentum. The step is forward + backward + SGD step + mask multiply at batch 64. Target (issue):
event / step <= 2 on the CPU.

    python benchmarks/pruning_event.py [--methods fggp,annealed,gmp,random] [--device cpu] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from fggp_repro import engine as E
from fggp_repro.pruning.pruner import make_pruner
from fggp_repro.spec import config as C


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="vgg19")
    ap.add_argument("--methods", default="fggp,annealed,gmp,random")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    device = torch.device(args.device)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, 32, 32, generator=g).to(device, memory_format=torch.channels_last)
    y = torch.randint(0, 10, (64,), generator=g).to(device)
    print(f"device={device} threads={torch.get_num_threads()} arch={args.arch} batch=64")
    for method in args.methods.split(","):
        cfg = C.load(overrides={"model": {"arch": args.arch}, "pruning": {"method": method, "update_interval": 1}})
        model = E.build_model(cfg, device)
        opt = E.make_optimizer(model, cfg.training)
        pruner = make_pruner(cfg)
        total = 10_000  # T_end = 8,000: every timed event is mid-schedule, pruning a realistic n
        pruner.setup(model, opt, total, seed=0)
        steps, events = [], []
        for it in range(1, args.repeat + 2):
            _sync(device)
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            _sync(device)
            t1 = time.perf_counter()
            pruner.on_backward(it * 400)  # an event; the schedule removes a few % of the weights
            _sync(device)
            t2 = time.perf_counter()
            opt.step()
            pruner.apply_masks()
            _sync(device)
            t3 = time.perf_counter()
            if it > 1:  # the first iteration warms up allocators and kernels
                steps.append((t1 - t0) + (t3 - t2))
                events.append(t2 - t1)
        s, e = statistics.median(steps), statistics.median(events)
        print(f"{method:10s} step {s * 1000:8.1f} ms   event {e * 1000:8.1f} ms   event/step {e / s:5.2f}   "
              f"(pruned {pruner.events[-1]['n_pruned']:,} of {pruner.n_prunable:,} at the last event)")


if __name__ == "__main__":
    main()

"""Where a training step's time goes: the project's step of a preset, profiled by torch's profiler.

Runs the step ``fggp-repro train`` runs (``engine.train_step``: forward and loss under the preset's precision,
backward, the pruner hook, SGD, the mask multiply; an fggp pruner with its events off, so the steady state is
measured) on synthetic 32 x 32 images at the preset's network, width, batch, precision, strict mode, memory format
and instruction-set mode, and prints the self CPU time per step of each group of operators, as a share of the
profiled total (the loader's operators included, in their groups), with the time the loader took to make the
batches beside it. What to read: the shares, not the milliseconds (they depend on what else the machine runs).

    python benchmarks/step_profile.py [--preset cpu-resnet] [--threads 1] [--steps 20] [--warmup 5] [--top 10]
"""

from __future__ import annotations

import argparse
import os
import time
from collections import defaultdict

# the profiler's library logs an ERROR line on a CPU-only machine with torch's CUDA build (no GPU to count); it
# is no error of the measurement
os.environ.setdefault("KINETO_LOG_LEVEL", "5")

import torch  # noqa: E402

#: operator groups by aten name (self CPU time); every other operator counts as "everything else"
GROUPS = {
    "convolution, forward": ("aten::mkldnn_convolution", "aten::_slow_conv2d_forward", "aten::thnn_conv2d",
                             "aten::_convolution", "aten::convolution", "aten::conv2d"),
    "convolution, backward": ("aten::convolution_backward", "aten::mkldnn_convolution_backward",
                              "aten::_slow_conv2d_backward"),
    "batch norm, forward": ("aten::native_batch_norm", "aten::_native_batch_norm_legit",
                            "aten::_native_batch_norm_legit_no_training", "aten::_batch_norm_impl_index",
                            "aten::batch_norm", "aten::_batch_norm_with_update"),
    "batch norm, backward": ("aten::native_batch_norm_backward", "aten::batch_norm_backward"),
    "ReLU, forward and backward": ("aten::relu", "aten::relu_", "aten::clamp_min", "aten::clamp_min_",
                                   "aten::threshold_backward"),
    "linear layer and loss": ("aten::addmm", "aten::mm", "aten::linear", "aten::_log_softmax",
                              "aten::_log_softmax_backward_data", "aten::nll_loss_forward",
                              "aten::nll_loss_backward", "aten::avg_pool2d", "aten::avg_pool2d_backward",
                              "aten::max_pool2d_with_indices", "aten::max_pool2d_with_indices_backward",
                              "aten::adaptive_avg_pool2d", "aten::mean", "aten::sum"),
    "elementwise (optimizer, masks, residual adds, casts)": ("aten::add", "aten::add_", "aten::mul", "aten::mul_",
                                                             "aten::copy_", "aten::_foreach_add_",
                                                             "aten::_foreach_mul_", "aten::lerp_"),
}
#: the network's own kernels, whose share says how much a leaner loop could save at most
KERNELS = ("convolution, forward", "convolution, backward", "batch norm, forward", "batch norm, backward",
           "ReLU, forward and backward")
OTHER = "everything else (dispatch, autograd, allocation, Python)"


def group_of(name: str) -> str:
    for g, names in GROUPS.items():
        if name in names:
            return g
    return OTHER


def group_times(events) -> dict[str, float]:
    """Self CPU microseconds per group from ``profile.key_averages()`` rows (name ``key``, ``self_cpu_time_total``)."""
    out: dict[str, float] = defaultdict(float)
    for e in events:
        out[group_of(e.key)] += e.self_cpu_time_total
    return dict(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="cpu-resnet")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--top", type=int, default=10, help="also list the N operators with the most self CPU time")
    args = ap.parse_args(argv)

    from fggp_repro import data as D
    from fggp_repro import engine as E
    from fggp_repro import isa
    from fggp_repro.pruning.pruner import make_pruner
    from fggp_repro.seeding import set_strict_determinism
    from fggp_repro.spec import config as C

    over = {"pruning": {"method": "fggp", "update_interval": 10**9}}
    if args.steps < 1 or args.warmup < 0 or args.threads < 1:
        print("step_profile: error: --steps and --threads must be at least 1, --warmup at least 0")
        return 2
    try:
        cfg = C.load(preset=args.preset, overrides=over)
    except C.ConfigError as e:
        print(f"step_profile: error: {e}")
        return 2
    isa.apply(cfg.run.cpu_isa)
    torch.set_num_threads(args.threads)
    set_strict_determinism(cfg.run.strict)
    device = torch.device("cpu")
    bs = cfg.training.batch_size
    ds = D.synthetic(bs * 8, 10)
    model = E.build_model(cfg, device)
    opt = E.make_optimizer(model, cfg.training)
    pruner = make_pruner(cfg)
    pruner.setup(model, opt, total_iters=10**9, seed=0)  # events at multiples of 1e9: none while profiled
    criterion = torch.nn.CrossEntropyLoss()
    loader = D.DeviceLoader(ds.train_x, ds.train_y, device)

    def batches():
        epoch = 0
        while True:
            yield from loader.train_epoch(0, epoch, bs, cfg.data.augment)
            epoch += 1

    it = 0
    stream = batches()

    def steps(n: int) -> float:
        nonlocal it
        data_s = 0.0
        for _ in range(n):
            t0 = time.perf_counter()
            x, y = next(stream)
            data_s += time.perf_counter() - t0
            it += 1
            E.train_step(model, x, y, criterion, opt, pruner, it, cfg.run.precision)
        return data_s

    steps(args.warmup)
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        data_s = steps(args.steps)
    rows = prof.key_averages()
    groups = group_times(rows)
    total = sum(groups.values())
    m = cfg.model
    print(f"preset {args.preset}: {m.arch} width {m.width:g}, batch {bs}, {cfg.run.precision}, strict "
          f"{cfg.run.strict}, channels_last {cfg.run.channels_last}, cpu_isa {cfg.run.cpu_isa}; "
          f"{torch.get_num_threads()} thread(s); {args.steps} profiled steps after {args.warmup}")
    print(f"profiled self CPU time: {total / 1e3 / args.steps:.1f} ms a step; the loader's batches (outside the "
          f"step): {data_s * 1e3 / args.steps:.1f} ms a step\n")
    print("| operators | ms a step | share |\n|---|---|---|")
    for g in list(GROUPS) + [OTHER]:
        t = groups.get(g, 0.0)
        print(f"| {g} | {t / 1e3 / args.steps:.1f} | {100 * t / total:.1f} % |")
    kernels = sum(groups.get(g, 0.0) for g in KERNELS)
    print(f"\nconvolution, batch norm and ReLU together: {100 * kernels / total:.1f} % of the profiled time; the "
          f"loader's batches: {100 * data_s * 1e6 / total:.1f} % of it")
    if args.top:
        print(f"\n| operator (top {args.top} by self CPU time) | group | calls a step | ms a step | share |\n"
              "|---|---|---|---|---|")
        for e in sorted(rows, key=lambda e: -e.self_cpu_time_total)[:args.top]:
            print(f"| {e.key} | {group_of(e.key)} | {e.count / args.steps:g} | "
                  f"{e.self_cpu_time_total / 1e3 / args.steps:.1f} | {100 * e.self_cpu_time_total / total:.1f} % |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

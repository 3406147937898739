"""Eval-mode BatchNorm diagnosis of a checkpoint: dead channels, their running statistics, and the test accuracy
before and after recalibrating BatchNorm's running statistics on training batches.

A channel whose convolution weights are all pruned outputs its (unpruned) conv bias, a constant: train mode
normalises it to exactly 0, but its running variance decays toward 0 while its running mean lags the bias, so in
eval mode (bias - running_mean) / sqrt(running_var + eps) is an offset train mode never sees. Recalibration
(running statistics recomputed as a cumulative average over N training batches) removes the lag.

    PYTHONPATH=. python scripts/bn_diagnose.py CHECKPOINT --preset cpu --method annealed --sparsity 0.98 \\
        --data-root .cache/data/cifar10-jpeg [--batches 50]

The checkpoint is a run's own (``<out>/checkpoints/<run_id>.pt``, e.g. left by ``train --stop-after-epochs N``);
the flags must give that run's config. VGG-19 only (features = conv, BN, ReLU triples).
"""

from __future__ import annotations

import argparse

import torch

from fggp_repro import data as D
from fggp_repro import engine as E
from fggp_repro.spec import config as C


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--preset", required=True)
    ap.add_argument("--method", required=True)
    ap.add_argument("--sparsity", type=float, default=0.9)
    ap.add_argument("--data-root", required=True)
    ap.add_argument("--batches", type=int, default=50)
    args = ap.parse_args()
    cfg = C.load(preset=args.preset, overrides={"pruning": {"method": args.method, "sparsity": args.sparsity},
                                                "data": {"data_root": args.data_root}})
    torch.set_num_threads(1)
    dev = torch.device("cpu")
    model = E.build_model(cfg, dev)
    state = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
    if state.get("run_id") != C.run_id(cfg):
        print(f"the checkpoint belongs to {state.get('run_id')}, the flags give {C.run_id(cfg)}: fix the flags")
        return 2
    model.load_state_dict(state["model"])
    ds = D.load(cfg.data)
    test = D.DeviceLoader(ds.test_x, ds.test_y, dev, cfg.run.channels_last)
    train = D.DeviceLoader(ds.train_x, ds.train_y, dev, cfg.run.channels_last)
    prec = cfg.run.precision
    print(f"{state['run_id']} after epoch {state['epoch']}; recorded test accuracy by epoch: "
          f"{[h['test_acc'] for h in state['history']]}")
    print(f"eval ({prec}): {E.evaluate(model, test, 1000, prec)} %; "
          f"eval (fp32): {E.evaluate(model, test, 1000, 'fp32')} %")
    convs = [m for m in model.features if isinstance(m, torch.nn.Conv2d)]
    bns = [m for m in model.features if isinstance(m, torch.nn.BatchNorm2d)]
    for i, (c, b) in enumerate(zip(convs, bns)):
        dead = (c.weight.detach().flatten(1) == 0).all(1)
        if int(dead.sum()):
            gap = (c.bias.detach()[dead] - b.running_mean[dead]).abs()
            rv = b.running_var[dead]
            offset = float((gap / torch.sqrt(rv + b.eps)).max())
            print(f"conv {i}: {int(dead.sum())}/{c.out_channels} channels dead; running_var of those "
                  f"{float(rv.min()):.3g}..{float(rv.max()):.3g}; largest eval-mode offset "
                  f"|bias - running_mean| / sqrt(running_var + eps) = {offset:.3g}")
    for b in bns:
        b.reset_running_stats()
        b.momentum = None  # cumulative average
    model.train()
    with torch.no_grad():
        for k, (x, _) in enumerate(train.train_epoch(cfg.run.seed, 10**6, cfg.training.batch_size, True)):
            with E.autocast(prec, dev):
                model(x)
            if k + 1 == args.batches:
                break
    print(f"eval ({prec}) after recalibrating BatchNorm on {args.batches} training batches: "
          f"{E.evaluate(model, test, 1000, prec)} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

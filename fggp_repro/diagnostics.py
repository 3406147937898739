"""End-of-run diagnostics stored in a record's ``diagnostics`` (never part of the run id, never the metric).

Pruning can remove every weight of an output unit (a conv filter, a linear row): a *dead unit*. A dead conv
channel outputs its conv bias, a constant. BatchNorm in train mode normalises a constant to exactly 0, but its
running statistics lag it: the running variance decays towards 0 and the running mean trails the (still
decaying) bias, so in eval mode ``(bias - running_mean) / sqrt(running_var + eps)`` is an offset the network
never saw in training. Enough such offsets can send a well-trained network (train accuracy 75 %) to chance
level on the test set (``scripts/bn_diagnose.py`` diagnoses a checkpoint).

:func:`run_diagnostics` records, for the final weights:

- ``dead_units``: the number of dead output units of each prunable layer that has any, and their total;
- ``bn_recalibrated_test_acc``: the test accuracy after BatchNorm's running statistics are recomputed (a
  cumulative average) over ``bn_recalibration_batches`` training batches, on a copy of the model. It tells
  an eval-mode BatchNorm artefact (recalibrated accuracy far above the recorded one) from a network that
  really lost its accuracy (both low). The record's metric stays the plain final test accuracy, as in the
  paper; this is only a diagnosis.

The batches are those of epoch index ``epochs`` (one past the last trained epoch) of the run's own data
streams, so the diagnosis is deterministic and uses no global random state.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from . import models
from .engine import autocast, evaluate

#: Training batches BatchNorm statistics are recomputed on (of the run's training batch size).
BN_RECALIBRATION_BATCHES = 50


def dead_units(model: nn.Module) -> dict:
    """``{"total": n, "per_layer": {"<layer>.weight": k, ...}}``: output units (dim 0 of the weight) whose
    weights are all exactly zero, over the prunable layers; layers without any are left out."""
    per_layer = {}
    for name, m in models.prunable_layers(model):
        k = int((m.weight.detach().flatten(1) == 0).all(1).sum())
        if k:
            per_layer[f"{name}.weight"] = k
    return {"total": sum(per_layer.values()), "per_layer": per_layer}


@torch.no_grad()
def bn_recalibrated_accuracy(model: nn.Module, train_loader, test_loader, *, seed: int, epoch: int,
                             batch_size: int, eval_batch_size: int, augment: bool, precision: str,
                             batches: int = BN_RECALIBRATION_BATCHES) -> float | None:
    """Test accuracy (percent) of a copy of ``model`` whose BatchNorm running statistics were reset and
    recomputed as a cumulative average over ``batches`` training batches of epoch index ``epoch``.
    ``None`` for a model without BatchNorm. ``model`` itself is not changed."""
    m = copy.deepcopy(model)
    bns = [b for b in m.modules() if isinstance(b, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return None
    for b in bns:
        b.reset_running_stats()
        b.momentum = None  # cumulative moving average over the batches below
    m.train()
    for k, (x, _) in enumerate(train_loader.train_epoch(seed, epoch, batch_size, augment)):
        if k == batches:
            break
        with autocast(precision, x.device):
            m(x)
    return evaluate(m, test_loader, eval_batch_size, precision)


def run_diagnostics(model: nn.Module, train_loader, test_loader, cfg) -> dict:
    """The ``diagnostics`` entry of a completed run's record (see the module docstring)."""
    tc = cfg.training
    acc = bn_recalibrated_accuracy(model, train_loader, test_loader, seed=cfg.order_seed, epoch=tc.epochs,
                                   batch_size=tc.batch_size, eval_batch_size=tc.eval_batch_size,
                                   augment=cfg.data.augment, precision=cfg.run.precision)
    return {"dead_units": dead_units(model), "bn_recalibrated_test_acc": acc,
            "bn_recalibration_batches": BN_RECALIBRATION_BATCHES}

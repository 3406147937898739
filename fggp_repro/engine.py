"""What a run computes on a network: its set-up (device, initial weights, optimizer), one training step, the
test accuracy, the sparsity and the fingerprint of the weights. The trainer and the diagnostics build on these.

A training step is: forward, loss, backward, ``pruner.on_backward(t)`` (a pruning event sees this minibatch's raw
loss gradients and the weights before the step), ``optimizer.step()``, ``pruner.apply_masks()``,
``pruner.after_step(t)`` (GraNet's prune-and-regrow, after the step as in GraNet's code). Nothing here
synchronises with the device: losses and logits stay on it.
"""

from __future__ import annotations

import hashlib

import torch
import torch.nn as nn

from . import data as D
from . import models
from .pruning.base import Pruner
from .seeding import derive_seed
from .spec import config as C


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise C.ConfigError("device 'cuda' asked for but torch sees no CUDA device: use --device cpu")
    return torch.device(name)


def build_model(cfg: C.Config, device: torch.device) -> nn.Module:
    """The network, initialised from the run's own 'init' stream (independent of device and global RNG)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(cfg.init_seed, "init"))
        model = models.build(cfg.model.arch, cfg.model.width, weight_init=cfg.model.weight_init)
    return model.to(device, memory_format=torch.channels_last if cfg.run.channels_last else torch.contiguous_format)


def make_optimizer(model: nn.Module, tc: C.TrainingConfig) -> torch.optim.SGD:
    return torch.optim.SGD(model.parameters(), lr=tc.lr, momentum=tc.momentum, nesterov=tc.nesterov,
                           weight_decay=tc.weight_decay)


def lr_at(tc: C.TrainingConfig, epoch: int) -> float:
    """Learning rate of 0-based ``epoch``: lr x gamma^(milestones passed), as MultiStepLR stepped per epoch."""
    return tc.lr * tc.gamma ** sum(1 for m in tc.milestones if epoch >= m)


def autocast(precision: str, device: torch.device):
    """The forward pass's autocast context: bf16 autocast for ``precision="bf16"``, a no-op for fp32.

    Only the forward pass and the loss run under it; parameters, their gradients, optimizer state, masks
    and pruning scores stay fp32 (autocast casts copies of the weights, the gradients land in fp32).
    """
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def train_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, criterion, optimizer, pruner: Pruner,
               iteration: int, precision: str = "fp32") -> tuple[torch.Tensor, torch.Tensor]:
    """One training iteration (forward, loss, backward, pruning hook, step, masks); returns (loss, logits),
    detached and still on the device, so nothing here waits for the device."""
    with autocast(precision, x.device):
        logits = model(x)
        loss = criterion(logits, y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    pruner.on_backward(iteration)
    optimizer.step()
    pruner.apply_masks()
    pruner.after_step(iteration)
    return loss.detach(), logits.detach()


@torch.no_grad()
def evaluate(model: nn.Module, loader: D.DeviceLoader, batch_size: int, precision: str = "fp32") -> float:
    """Test accuracy in percent (the forward pass in the run's precision)."""
    model.eval()
    correct = torch.zeros((), dtype=torch.int64, device=loader.device)
    for x, y in loader.eval_batches(batch_size):
        with autocast(precision, x.device):
            logits = model(x)
        correct += (logits.argmax(1) == y).sum()
    model.train()
    return 100.0 * int(correct) / len(loader)


def measure_sparsity(model: nn.Module) -> dict:
    """Zero fractions of the actual weights: over the authors' denominator, over prunable weights, per layer."""
    total = zeros = 0
    for _, m in models.conv_linear_weights(model):
        for p in (m.weight, m.bias):
            if p is not None:
                total += p.numel()
                zeros += int((p == 0).sum())
    per_layer, pz, pn = {}, 0, 0
    for name, m in models.prunable_layers(model):
        z = int((m.weight == 0).sum())
        per_layer[f"{name}.weight"] = z / m.weight.numel()
        pz += z
        pn += m.weight.numel()
    return {"sparsity": zeros / total, "prunable_sparsity": pz / pn, "per_layer_sparsity": per_layer,
            "counts": {"denominator": total, "zero": zeros, "prunable": pn, "prunable_zero": pz}}


def weights_sha256(model: torch.nn.Module) -> str:
    """SHA-256 over every parameter and buffer (name, dtype, shape, bytes), in sorted name order."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()

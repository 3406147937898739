"""The model-facing pruners, one per method family (``methods.FAMILY``): masks over layers, the cubic schedule,
events, the ERK start. :func:`make_pruner` picks the one of a config's method.

Bookkeeping follows docs/protocol.md (sparsity bookkeeping). Prunable = every Conv2d/Linear weight but the first
convolution (GraNet masks that one too). The schedule's density is over the authors' denominator (all
Conv2d/Linear weights and biases); only prunable weights are ever removed, so at an event
``n = round((1 - d(t)) * denominator) - (prunable weights already masked)``.

- :class:`MaskPruner` (fggp, annealed, gf-annealed, mf-fixed, gmp, gmp-mt): at each event up to T_end, the method's
  selection rule on the weights before that iteration's step and its raw gradients;
- :class:`RandomPruner` (random): the same, with a generator seeded by (init seed, event index) for the draws;
- :class:`PruneRegrowPruner` (granet): after the step, up to the end of the run, a global magnitude step to d(t),
  then per layer magnitude death and gradient regrowth at the cosine rate, the first convolution included.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .. import models
from ..seeding import generator
from ..spec import config as C
from .base import Divergence, Pruner
from .erk import erk_masks
from .methods import FAMILY, EventContext, granet_prune_regrow, prune_mask
from .schedule import cosine_rate, cubic_density, prune_count


class GradualPruner(Pruner):
    """What every pruning family shares: masks over its layers, the ERK start, the cubic schedule and the count of
    an event, the masked weights (and their momentum) kept at zero, the state a checkpoint holds. A family says
    which layers it masks (:meth:`_layers`), until when events happen (:meth:`_last_event`), in which hook, and what
    an event does to the masks (:meth:`_update`)."""

    family = ""

    def __init__(self, cfg: C.Config):
        super().__init__(cfg)
        self.method = cfg.pruning.method
        if FAMILY[self.method] != self.family:
            raise ValueError(f"{type(self).__name__} runs the {self.family} family, not {self.method} "
                             f"({FAMILY[self.method]}): use make_pruner(cfg)")

    def _layers(self, model: nn.Module) -> list[tuple[str, nn.Module]]:
        return models.prunable_layers(model)

    def _last_event(self) -> int:
        """The last iteration at which an event may happen."""
        return self.prune_end

    def _update(self, t: int, n: int, w_abs: torch.Tensor, g_abs: torch.Tensor, active: torch.Tensor,
                remain: int | None) -> int:
        """Change the masks at the event of iteration ``t``, which removes ``n`` active weights; returns the number
        of weights regrown. ``remain``: the authors' count the candidate fractions apply to (None: the exact one)."""
        raise NotImplementedError

    # ---- set-up ----------------------------------------------------------------------------------
    def setup(self, model: nn.Module, optimizer: torch.optim.Optimizer, total_iters: int, seed: int) -> None:
        p = self.cfg.pruning
        layers = self._layers(model)
        self.names = [f"{n}.weight" for n, _ in layers]
        self.all_layers = [m for _, m in models.conv_linear_weights(model)]
        self.weights = [m.weight for _, m in layers]
        self.sizes = [w.numel() for w in self.weights]
        self.optimizer = optimizer
        self.seed = seed
        self.total_iters = total_iters
        self.denominator = models.denominator(model)
        self.n_prunable = sum(self.sizes)
        self.d_initial = self.cfg.initial_density
        self.d_final = 1.0 - p.sparsity
        self.prune_end = int(p.end_fraction * total_iters)
        fixed = self.denominator - self.n_prunable  # weights and biases that are never pruned
        if round((1 - self.d_final) * self.denominator) > self.n_prunable:
            raise C.ConfigError(f"sparsity {p.sparsity} is unreachable: {fixed} of the {self.denominator} "
                                "weights and biases are not prunable")
        device = self.weights[0].device
        self.layer_index = torch.repeat_interleave(torch.arange(len(self.sizes), device=device),
                                                   torch.tensor(self.sizes, device=device))
        self.min_per_layer = int(round(p.mt_fraction * self.n_prunable))

        if self.d_initial < 1.0:
            # ERK over the prunable weights, at the density that puts the whole denominator at d_initial
            d_prunable = (self.d_initial * self.denominator - fixed) / self.n_prunable
            masks = erk_masks([tuple(w.shape) for w in self.weights], d_prunable, generator(seed, "erk"))
            self.masks = [m.to(device) for m in masks]
        else:
            self.masks = [torch.ones_like(w, dtype=torch.bool) for w in self.weights]
        self._refresh()
        self._zero_masked()
        if self.d_initial < 1.0:
            self.events.append(self._event(0, self.d_initial, self.n_prunable - self.n_active, 0))

    def _refresh(self) -> None:
        self._fmasks = [m.to(w.dtype) for m, w in zip(self.masks, self.weights)]
        self.n_active = int(sum(int(m.sum()) for m in self.masks))

    @torch.no_grad()
    def _zero_masked(self) -> None:
        torch._foreach_mul_(self.weights, self._fmasks)
        for w, fm in zip(self.weights, self._fmasks):
            buf = self.optimizer.state.get(w, {}).get("momentum_buffer")
            if buf is not None:
                buf.mul_(fm)

    def _event(self, t: int, target: float, n_pruned: int, n_regrown: int) -> dict:
        masked = self.n_prunable - self.n_active
        return {"iteration": t, "target_density": target, "n_pruned": n_pruned, "n_regrown": n_regrown,
                "density": 1.0 - masked / self.denominator}

    # ---- events ----------------------------------------------------------------------------------
    def is_event(self, t: int) -> bool:
        if t % self.cfg.pruning.update_interval:
            return False
        return t <= self._last_event()

    @torch.no_grad()
    def _event_now(self, t: int) -> None:
        """The event of iteration ``t``: how many weights the schedule removes now, the scores, the family's
        update of the masks."""
        p = self.cfg.pruning
        d = cubic_density(min(t, self.prune_end), self.prune_end, self.d_initial, self.d_final)
        remain = None
        if p.counts == "authors":
            # the authors' script: zeros counted in every conv/linear weight (first conv included),
            # remain = denominator - zeros (every bias counts, whatever its value)
            zeros = sum(int((m.weight == 0).sum()) for m in self.all_layers)
            n = prune_count(self.denominator, d, zeros, "authors")
            remain = self.denominator - zeros
        else:
            n = prune_count(self.denominator, d, self.n_prunable - self.n_active, "exact")
        n = min(max(0, n), self.n_active)
        w_abs = torch.cat([w.detach().abs().flatten() for w in self.weights])
        g_abs = torch.cat([w.grad.detach().abs().flatten() for w in self.weights])
        active = torch.cat([m.flatten() for m in self.masks])
        if not (bool(torch.isfinite(w_abs).all()) and bool(torch.isfinite(g_abs).all())):
            raise Divergence(f"non-finite weights or gradients at pruning event t={t}")
        n_regrown = self._update(t, n, w_abs, g_abs, active, remain)
        self.events.append(self._event(t, d, n, n_regrown))

    def _set_flat_mask(self, flat: torch.Tensor) -> None:
        self.masks = [m.view_as(w) for m, w in zip(flat.split(self.sizes), self.weights)]
        self._refresh()
        self._zero_masked()

    @torch.no_grad()
    def apply_masks(self) -> None:
        torch._foreach_mul_(self.weights, self._fmasks)

    def masks_by_name(self) -> dict[str, torch.Tensor]:
        return dict(zip(self.names, self.masks))

    # ---- state -----------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"events": list(self.events), "masks": [m.cpu() for m in self.masks]}

    def load_state_dict(self, state: dict) -> None:
        self.events = list(state["events"])
        masks = state["masks"]
        if [tuple(m.shape) for m in masks] != [tuple(w.shape) for w in self.weights]:
            raise ValueError("checkpoint masks do not match the model's prunable layers")
        self.masks = [m.to(w.device, torch.bool) for m, w in zip(masks, self.weights)]
        self._refresh()


class MaskPruner(GradualPruner):
    """Gradual pruning by the method's selection rule (``methods.SELECTION_RULES``), at each event up to T_end,
    on the weights before that iteration's step and its raw gradients."""

    family = "mask"

    @torch.no_grad()
    def on_backward(self, t: int) -> None:
        if self.is_event(t):
            self._event_now(t)

    def _generator(self, device: torch.device) -> torch.Generator | None:
        """The generator of the event's random draws (None: the rule draws none)."""
        return None

    def _update(self, t, n, w_abs, g_abs, active, remain) -> int:
        p = self.cfg.pruning
        ctx = EventContext(t=t, t_total=self.total_iters, rho=p.rate, r0=p.r0, r_min=p.r_min,
                           generator=self._generator(w_abs.device), layer_index=self.layer_index,
                           min_per_layer=self.min_per_layer, remain=remain)
        pruned = prune_mask(self.method, w_abs, g_abs, active, n, ctx)
        self._set_flat_mask(active & ~pruned)
        return 0


class RandomPruner(MaskPruner):
    """Random pruning: each event draws from a generator of its own, seeded by (init seed, event index)."""

    family = "random"

    def _generator(self, device: torch.device) -> torch.Generator:
        return generator(self.seed, "random-prune", len(self.events), device=device)


class PruneRegrowPruner(GradualPruner):
    """GraNet, after ``optimizer.step()`` and the mask as in GraNet's ``Masking.step``, at each event up to the end
    of the run: |w| after the step and the gradients of this iteration's minibatch; a global magnitude step to d(t)
    (the method's rule), then per layer magnitude death and gradient regrowth at the cosine rate. Regrown weights
    start at zero, with no momentum, and stay zero until the next step. The first convolution is masked too."""

    family = "prune-and-regrow"

    def _layers(self, model: nn.Module) -> list[tuple[str, nn.Module]]:
        return models.conv_linear_weights(model)

    def _last_event(self) -> int:
        return self.total_iters

    @torch.no_grad()
    def after_step(self, t: int) -> None:
        if self.is_event(t):
            self._event_now(t)

    def _update(self, t, n, w_abs, g_abs, active, remain) -> int:
        pruned = prune_mask(self.method, w_abs, None, active, n, EventContext(t=t, t_total=self.total_iters))
        return self._regrow(t, w_abs, g_abs, active & ~pruned)

    def _regrow(self, t: int, w_abs, g_abs, active) -> int:
        """Per-layer magnitude death and gradient regrowth at the cosine rate; regrown weights start at zero."""
        rate = cosine_rate(t, self.total_iters, self.cfg.pruning.r0, self.cfg.pruning.r_min)
        new, grown = [], []
        for wl, gl, al in zip(w_abs.split(self.sizes), g_abs.split(self.sizes), active.split(self.sizes)):
            death, regrow = granet_prune_regrow(wl, gl, al, rate)
            new.append((al & ~death) | regrow)
            grown.append(regrow & ~al)  # newly active: were zero (masked or just killed)
        grown = torch.cat(grown)
        self._set_flat_mask(torch.cat(new))
        # a regrown weight starts at exactly zero, with no momentum carried over from when it was masked
        self._reset(grown)
        return int(grown.sum())

    def _reset(self, flat: torch.Tensor) -> None:
        for w, r in zip(self.weights, flat.split(self.sizes)):
            keep = r.view_as(w).logical_not().to(w.dtype)
            w.mul_(keep)
            buf = self.optimizer.state.get(w, {}).get("momentum_buffer")
            if buf is not None:
                buf.mul_(keep)


#: family -> the pruner that runs it
PRUNERS: dict[str, type[Pruner]] = {"dense": Pruner, "mask": MaskPruner, "random": RandomPruner,
                                    "prune-and-regrow": PruneRegrowPruner}


def make_pruner(cfg: C.Config) -> Pruner:
    """The pruner of ``cfg``'s method (its family's, ``methods.FAMILY``)."""
    return PRUNERS[FAMILY[cfg.pruning.method]](cfg)

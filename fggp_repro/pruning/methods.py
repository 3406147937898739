"""Selection rules of one pruning event, on flat tensors (no nn.Module).

Every rule takes the flat absolute scores of all prunable weights, ``w_abs = |w|`` and ``g_abs = |dL/dw|``
(the caller takes the absolute values), the bool ``active`` mask and the number ``n`` of weights to remove,
and returns a bool mask with exactly ``n`` True entries, all active. ``R`` = active count.

================  ========================  ==============================================================
method            (order, rate)             rule
================  ========================  ==============================================================
``fggp``          gradient-first, fixed     ``select_two_step(|g|, |w|, active, n, floor(rho * R))``
``annealed``      magnitude-first, annealed ``select_two_step(|w|, |g|, active, n, n + a)``
``gf-annealed``   gradient-first, annealed  ``select_two_step(|g|, |w|, active, n, n + a)``
``mf-fixed``      magnitude-first, fixed    ``select_two_step(|w|, |g|, active, n, floor(rho * R))``
``gmp``           --                        the ``n`` active with the smallest ``|w|``
``gmp-mt``        --                        ``gmp`` with a per-layer minimum (``ctx.min_per_layer``)
``random``        --                        ``n`` active uniformly at random (``ctx.generator``)
``dense``         --                        ``n`` must be 0
``granet``        --                        its global step (= ``gmp``); the per-layer prune-and-regrow
                                            step is :func:`granet_prune_regrow`, applied by the caller
================  ========================  ==============================================================

with ``a = floor((R - n) * cosine_rate(ctx.t, ctx.t_total, ctx.r0, ctx.r_min))``. Candidate counts are
capped at ``R`` and raised to ``n`` (see :func:`select_two_step`).

Tie semantics (all rules): whenever entries tie on the score that decides, the one with the lower flat
index is taken first -- as a candidate and as a pruned weight. For ``annealed``, the protocol's rule
(docs/protocol.md, selection rules) "of the n + a candidates, the a with the largest |g| are kept, the other n
pruned" is implemented as "prune the n
candidates with the smallest |g|"; the two are the same set, and on ties in |g| the lower index is pruned
(equivalently, the higher index is kept).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Dict, Optional

import torch

from .criteria import _as_count, _check_mask, _check_score, select_two_step, smallest_k
from .schedule import cosine_rate

__all__ = [
    "EventContext",
    "SelectionRule",
    "SELECTION_RULES",
    "ORDER_RATE",
    "METHOD_NAMES",
    "FAMILY",
    "prune_mask",
    "granet_prune_regrow",
]


@dataclass(frozen=True)
class EventContext:
    """What a selection rule may need besides the scores.

    Attributes:
        t: iteration of the event (for the annealed rate).
        t_total: iterations of the whole run (the cosine annealing horizon).
        rho: fixed candidate fraction of the fixed-rate rules (``fggp``, ``mf-fixed``).
        r0, r_min: start and end of the cosine-annealed rate r(t) (``annealed``, ``gf-annealed``).
        generator: torch.Generator for ``random`` (required there), on the scores' device.
        layer_index: for ``gmp-mt``, a 1-D integer tensor with the layer id of every flat entry.
        min_per_layer: for ``gmp-mt``, the minimum number of active weights each layer keeps.
        remain: the count the candidate fractions apply to. ``None`` (the exact convention): the active
            count ``R``. The FGGP authors' convention passes their ``remain`` (every nonzero conv/linear
            weight plus every bias, the unpruned first convolution included), so that the fixed rules take
            ``floor(rho * remain)`` candidates and the annealed ones ``n + floor((remain - n) * r(t))``.
    """

    t: int
    t_total: int
    rho: float = 0.5
    r0: float = 0.5
    r_min: float = 0.005
    generator: Optional[torch.Generator] = None
    layer_index: Optional[torch.Tensor] = None
    min_per_layer: int = 0
    remain: Optional[int] = None

    def __post_init__(self):
        if self.t < 0:
            raise ValueError(f"t must be >= 0, got {self.t}")
        if self.t_total <= 0:
            raise ValueError(f"t_total must be > 0, got {self.t_total}")
        for name in ("rho", "r0", "r_min"):
            v = getattr(self, name)
            if not (math.isfinite(v) and 0.0 <= v <= 1.0):
                raise ValueError(f"{name} must be in [0, 1], got {v}")
        if self.min_per_layer < 0:
            raise ValueError(f"min_per_layer must be >= 0, got {self.min_per_layer}")
        if self.remain is not None and self.remain < 0:
            raise ValueError(f"remain must be >= 0, got {self.remain}")
        if self.generator is not None and not isinstance(self.generator, torch.Generator):
            raise ValueError(f"generator must be a torch.Generator, got {type(self.generator).__name__}")

    def rate(self) -> float:
        """The annealed rate r(t) = cosine_rate(t, t_total, r0, r_min)."""
        return cosine_rate(self.t, self.t_total, self.r0, self.r_min)


# A rule gets (w_abs, g_abs or None, active, n, n_active, ctx) with everything already validated.
SelectionRule = Callable[
    [torch.Tensor, Optional[torch.Tensor], torch.Tensor, int, int, EventContext], torch.Tensor
]


def _need_grad(g_abs: Optional[torch.Tensor], method: str) -> torch.Tensor:
    if g_abs is None:
        raise ValueError(f"method {method!r} needs g_abs (|dL/dw|), got None")
    return g_abs


def _fixed_candidates(n_active: int, ctx: EventContext) -> int:
    base = n_active if ctx.remain is None else ctx.remain
    return math.floor(ctx.rho * base)


def _annealed_candidates(n: int, n_active: int, ctx: EventContext) -> int:
    base = n_active if ctx.remain is None else ctx.remain
    return n + math.floor(max(0, base - n) * ctx.rate())


def _rule_fggp(w_abs, g_abs, active, n, n_active, ctx):
    g_abs = _need_grad(g_abs, "fggp")
    return select_two_step(g_abs, w_abs, active, n, _fixed_candidates(n_active, ctx))


def _rule_annealed(w_abs, g_abs, active, n, n_active, ctx):
    g_abs = _need_grad(g_abs, "annealed")
    return select_two_step(w_abs, g_abs, active, n, _annealed_candidates(n, n_active, ctx))


def _rule_gf_annealed(w_abs, g_abs, active, n, n_active, ctx):
    g_abs = _need_grad(g_abs, "gf-annealed")
    return select_two_step(g_abs, w_abs, active, n, _annealed_candidates(n, n_active, ctx))


def _rule_mf_fixed(w_abs, g_abs, active, n, n_active, ctx):
    g_abs = _need_grad(g_abs, "mf-fixed")
    return select_two_step(w_abs, g_abs, active, n, _fixed_candidates(n_active, ctx))


def _rule_gmp(w_abs, g_abs, active, n, n_active, ctx):
    return smallest_k(w_abs, active, n)


def _protected_per_layer(w_abs, active, layer_index, m):
    """Per layer, its ``m`` largest-|w| active entries (all its active ones if it has <= m).

    The protected entries are the last ``m`` of the layer in the pruning order (|w| ascending, index
    ascending), so on ties in |w| the higher index is protected.
    """
    protected = torch.zeros_like(active)
    if m == 0 or active.numel() == 0:
        return protected
    sorted_ids = bool((layer_index[1:] >= layer_index[:-1]).all()) if layer_index.numel() > 1 else True
    if sorted_ids:
        perm = None
        w_p, a_p, lid = w_abs, active, layer_index
    else:  # stable: inside a layer the flat-index order (the tie order) is kept
        perm = torch.argsort(layer_index, stable=True)
        w_p, a_p, lid = w_abs[perm], active[perm], layer_index[perm]
    _, counts = torch.unique_consecutive(lid, return_counts=True)
    prot_p = torch.zeros_like(a_p)
    start = 0
    for c in counts.tolist():
        sl = slice(start, start + c)
        start += c
        a_l = a_p[sl]
        n_l = int(torch.count_nonzero(a_l))
        if n_l <= m:
            prot_p[sl] = a_l
        else:
            prot_p[sl] = a_l & ~smallest_k(w_p[sl], a_l, n_l - m)
    if perm is None:
        return prot_p
    protected[perm] = prot_p
    return protected


def _rule_gmp_mt(w_abs, g_abs, active, n, n_active, ctx):
    li = ctx.layer_index
    if li is None:
        raise ValueError("method 'gmp-mt' needs ctx.layer_index (layer id of every flat entry)")
    if not isinstance(li, torch.Tensor) or li.dim() != 1 or li.shape != w_abs.shape:
        raise ValueError(
            f"ctx.layer_index must be a 1-D tensor of shape {tuple(w_abs.shape)}, got "
            f"{tuple(li.shape) if isinstance(li, torch.Tensor) else type(li).__name__}"
        )
    if li.is_floating_point() or li.is_complex() or li.dtype == torch.bool:
        raise ValueError(f"ctx.layer_index must be an integer tensor, got dtype {li.dtype}")
    li = li.to(w_abs.device)
    protected = _protected_per_layer(w_abs, active, li, int(ctx.min_per_layer))
    prunable = active & ~protected
    n_prunable = int(torch.count_nonzero(prunable))
    if n > n_prunable:
        raise ValueError(
            f"gmp-mt cannot prune {n} weights: only {n_prunable} active weights are above the per-layer "
            f"minimum of {ctx.min_per_layer}"
        )
    return smallest_k(w_abs, prunable, n)


def _rule_random(w_abs, g_abs, active, n, n_active, ctx):
    gen = ctx.generator
    if gen is None:
        raise ValueError("method 'random' needs ctx.generator (a seeded torch.Generator)")
    if n == 0:
        return torch.zeros_like(active)
    scores = torch.rand(w_abs.numel(), generator=gen, device=gen.device, dtype=torch.float64)
    return smallest_k(scores.to(w_abs.device), active, n)


def _rule_dense(w_abs, g_abs, active, n, n_active, ctx):
    if n != 0:
        raise ValueError(f"method 'dense' prunes nothing: n must be 0, got {n}")
    return torch.zeros_like(active)


#: One entry per method: adding a method is one entry here and one in FAMILY (plus ORDER_RATE for a 2x2 cell).
SELECTION_RULES: Dict[str, SelectionRule] = {
    "fggp": _rule_fggp,
    "annealed": _rule_annealed,
    "gf-annealed": _rule_gf_annealed,
    "mf-fixed": _rule_mf_fixed,
    "gmp": _rule_gmp,
    "gmp-mt": _rule_gmp_mt,
    "random": _rule_random,
    "dense": _rule_dense,
    # GraNet's global step is global magnitude pruning to d(t); its per-layer prune-and-regrow is
    # granet_prune_regrow, which the caller applies per layer.
    "granet": _rule_gmp,
}

#: The 2 x 2 ablation: method -> (order, rate).
ORDER_RATE = {
    "fggp": ("gradient-first", "fixed"),
    "annealed": ("magnitude-first", "annealed"),
    "gf-annealed": ("gradient-first", "annealed"),
    "mf-fixed": ("magnitude-first", "fixed"),
}

#: Every method name the package knows.
METHOD_NAMES = tuple(SELECTION_RULES)

#: method -> the family of pruner that runs it (``pruning/pruner.py``): ``dense`` never prunes; ``mask`` prunes the
#: prunable weights at each event by the method's selection rule, on the weights before that iteration's step;
#: ``random`` likewise, drawing from a seeded generator per event; ``prune-and-regrow`` is GraNet's (global
#: magnitude step, then per layer :func:`granet_prune_regrow`, after the step, the first convolution included).
FAMILY: Dict[str, str] = {
    "dense": "dense",
    "fggp": "mask",
    "annealed": "mask",
    "gf-annealed": "mask",
    "mf-fixed": "mask",
    "gmp": "mask",
    "gmp-mt": "mask",
    "random": "random",
    "granet": "prune-and-regrow",
}


def prune_mask(
    method: str,
    w_abs: torch.Tensor,
    g_abs: Optional[torch.Tensor],
    active: torch.Tensor,
    n_prune: int,
    ctx: EventContext,
) -> torch.Tensor:
    """Bool mask of the weights ``method`` prunes at one event (exactly ``n_prune`` True, all active).

    Args:
        method: a key of :data:`SELECTION_RULES`.
        w_abs: 1-D floating tensor of |w| over all prunable weights (flat, global order).
        g_abs: 1-D tensor of |dL/dw| (same shape and dtype); may be None for gmp, gmp-mt, random, dense,
            granet.
        active: 1-D bool tensor, the current mask.
        n_prune: number of weights to remove now, ``0 <= n_prune <= active.sum()``.
        ctx: the :class:`EventContext`.

    Raises ``ValueError`` for an unknown method, invalid inputs, or a request the rule cannot meet.
    """
    rule = SELECTION_RULES.get(method)
    if rule is None:
        raise ValueError(f"unknown pruning method {method!r}; known: {', '.join(SELECTION_RULES)}")
    if not isinstance(ctx, EventContext):
        raise ValueError(f"ctx must be an EventContext, got {type(ctx).__name__}")
    _check_score("w_abs", w_abs)
    if g_abs is not None:
        _check_score("g_abs", g_abs)
        if g_abs.shape != w_abs.shape or g_abs.dtype != w_abs.dtype or g_abs.device != w_abs.device:
            raise ValueError(
                f"g_abs ({tuple(g_abs.shape)}, {g_abs.dtype}, {g_abs.device}) does not match w_abs "
                f"({tuple(w_abs.shape)}, {w_abs.dtype}, {w_abs.device})"
            )
    _check_mask("active", active, w_abs, "w_abs")
    n = _as_count("n_prune", n_prune)
    n_active = int(torch.count_nonzero(active))
    if n < 0 or n > n_active:
        raise ValueError(f"n_prune must be in [0, {n_active}] (the active count), got {n}")
    return rule(w_abs, g_abs, active, n, n_active, ctx)


def granet_prune_regrow(
    w_abs: torch.Tensor, g_abs: torch.Tensor, active: torch.Tensor, rate: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """GraNet's per-layer prune-and-regrow step on one layer's flat tensors.

    ``n_d = min(ceil(rate * R), R)`` (``R`` = active count; ``math.ceil(rate * R)`` in floating point, as
    GraNet computes it). ``death`` = the ``n_d`` active entries with the smallest ``|w|``; ``regrow`` = the
    ``n_d`` entries with the largest ``|g|`` among all entries that are zero after the death (the inactive
    ones plus the ones just killed). Ties: lower index first in both steps. A weight may be in both masks
    (killed, then regrown); the new mask is ``(active & ~death) | regrow``, with the same active count.
    Entries regrown from the inactive set are zero already. In GraNet's code the mask is applied to the
    weights only after the regrowth, so an entry in both masks keeps its value (``regrow & ~active`` are the
    newly grown ones); what the caller zeroes is its decision.

    Differences from GraNet's code, on ties only: GraNet kills every weight at or below the threshold value
    (may kill more than ``n_d``) and regrows via an unstable sort; here both counts are exact.

    Returns ``(death_mask, regrow_mask)``, both bool, each with exactly ``n_d`` True entries.
    """
    _check_score("w_abs", w_abs)
    _check_score("g_abs", g_abs)
    if g_abs.shape != w_abs.shape or g_abs.device != w_abs.device:
        raise ValueError(
            f"g_abs ({tuple(g_abs.shape)}, {g_abs.device}) does not match w_abs "
            f"({tuple(w_abs.shape)}, {w_abs.device})"
        )
    _check_mask("active", active, w_abs, "w_abs")
    rate = float(rate)
    if not (math.isfinite(rate) and 0.0 <= rate <= 1.0):
        raise ValueError(f"rate must be in [0, 1], got {rate}")
    n_active = int(torch.count_nonzero(active))
    n_d = min(math.ceil(rate * n_active), n_active)
    death = smallest_k(w_abs, active, n_d)
    zero_after = ~active | death
    regrow = smallest_k(-g_abs, zero_after, n_d)
    return death, regrow

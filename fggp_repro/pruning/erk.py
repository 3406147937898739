"""Erdos-Renyi-Kernel (ERK) layer densities and random ERK masks (RigL, Evci et al. 2020; GraNet).

Rule (as in RigL's / GraNet's ``sparse_init``, ``erk_power_scale = 1``): the raw score of a layer is
``sum(shape) / prod(shape)``; find ``eps`` with ``sum_l min(1, eps * score_l) * n_l == density * sum_l n_l``.
Solved like RigL / GraNet: solve for ``eps`` over the non-dense layers; if the layer(s) with the largest raw
score would get a density > 1, fix them dense (density 1) and re-solve over the rest; repeat.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

__all__ = ["erk_densities", "erk_masks"]


def _shape_tuple(i: int, shape) -> tuple[int, ...]:
    try:
        dims = tuple(int(d) for d in shape)
    except TypeError:
        raise ValueError(f"shapes[{i}] must be a sequence of ints, got {shape!r}") from None
    if len(dims) == 0 or any(d <= 0 for d in dims):
        raise ValueError(f"shapes[{i}] must have >= 1 dimension, all positive, got {shape!r}")
    return dims


def _check_density(density) -> float:
    d = float(density)
    if not (math.isfinite(d) and 0.0 < d <= 1.0):
        raise ValueError(f"density must be in (0, 1], got {density!r}")
    return d


def erk_densities(shapes: Sequence[Sequence[int]], density: float) -> list[float]:
    """Per-layer ERK densities whose numel-weighted mean is ``density`` (up to float error).

    Args:
        shapes: weight tensor shapes, e.g. ``[(64, 3, 3, 3), (10, 512)]`` (``torch.Size`` works).
        density: global density in ``(0, 1]``.

    Returns a list of floats in ``(0, 1]``, one per shape; layers whose ERK density would exceed 1 get exactly
    1.0. Two non-clamped layers have densities in the ratio of their raw scores ``sum(shape)/prod(shape)``.
    """
    density = _check_density(density)
    dims = [_shape_tuple(i, s) for i, s in enumerate(shapes)]
    if not dims:
        return []
    numel = [math.prod(d) for d in dims]
    raw = [sum(d) / n for d, n in zip(dims, numel)]
    total = sum(numel)
    dense: set[int] = set()
    eps = 0.0
    while True:
        rest = [i for i in range(len(dims)) if i not in dense]
        if not rest:  # everything dense (only possible for density == 1 up to float error)
            break
        budget = density * total - sum(numel[i] for i in dense)
        divisor = sum(raw[i] * numel[i] for i in rest)
        eps = budget / divisor
        max_raw = max(raw[i] for i in rest)
        if eps * max_raw > 1.0:
            # GraNet / RigL: make the layer(s) with the largest raw score dense, then re-solve.
            dense.update(i for i in rest if raw[i] == max_raw)
        else:
            break
    return [1.0 if i in dense else min(1.0, eps * raw[i]) for i in range(len(dims))]


def erk_masks(
    shapes: Sequence[Sequence[int]], density: float, generator: torch.Generator
) -> list[torch.Tensor]:
    """Random ERK masks: layer ``l`` gets exactly ``round(d_l * n_l)`` True entries, uniform without
    replacement (``torch.randperm`` with ``generator``), so equal generator states give equal masks.

    ``round`` is Python's (half to even); ``d_l`` from :func:`erk_densities`. Masks are CPU bool tensors of
    the given shapes when ``generator`` is a CPU generator (on the generator's device otherwise).
    """
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    dens = erk_densities(shapes, density)
    masks = []
    for shape, d in zip(shapes, dens):
        dims = tuple(int(x) for x in shape)
        n = math.prod(dims)
        k = min(n, int(round(d * n)))
        perm = torch.randperm(n, generator=generator, device=generator.device)
        flat = torch.zeros(n, dtype=torch.bool, device=generator.device)
        flat[perm[:k]] = True
        masks.append(flat.view(dims))
    return masks

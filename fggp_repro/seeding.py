"""Derived random streams: one run seed fans out into independent, named generators.

Each consumer (weight init, ERK mask, data order, augmentation, random pruning) gets its own
generator seeded from ``(seed, tag, *indices)`` through SHA-256, so changing how much randomness one
consumer draws never shifts another's stream, and a resumed run re-derives the same streams.
"""

from __future__ import annotations

import hashlib
import os

import torch


def derive_seed(seed: int, tag: str, *indices: int) -> int:
    """A 63-bit seed for the stream ``tag`` (e.g. "order", epoch 3) of run seed ``seed``."""
    key = ":".join([str(int(seed)), tag, *(str(int(i)) for i in indices)])
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little") >> 1


def generator(seed: int, tag: str, *indices: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch.Generator on ``device`` seeded by :func:`derive_seed`."""
    g = torch.Generator(device=device)
    g.manual_seed(derive_seed(seed, tag, *indices))
    return g


def set_strict_determinism(strict: bool) -> None:
    """Deterministic kernels on (strict) or off. Set before the first CUDA call for cuBLAS."""
    if strict:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(strict)
    # strict mode also fills new tensors with NaN (a guard against reading uninitialised memory); the project's
    # kernels never read it, the fill costs a few percent of a step on the CPU, and the weights are the same
    # without it: checked on committed records (docs/running.md)
    torch.utils.deterministic.fill_uninitialized_memory = False
    torch.backends.cudnn.deterministic = strict
    # benchmark picks kernels by timing, which differs run to run: never together with strict
    torch.backends.cudnn.benchmark = not strict

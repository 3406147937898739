"""Exact-count selection primitives on flat (1-D) score tensors.

- :func:`smallest_k` -- the ``k`` eligible entries with the smallest score, ties broken by lower flat index.
  O(n): one ``torch.kthvalue`` (selection, not a sort) on the eligible scores gives the k-th smallest value
  ``v``; every eligible entry ``< v`` is taken and the remaining slots go to the eligible entries ``== v`` in
  increasing index order.
- :func:`select_two_step` -- the two-step (candidates, then prune) rule shared by every FGGP / GraNet-style
  method: candidates = the ``max(n_candidates, n_prune)`` active entries with the smallest ``first_score``
  (capped at the active count), then the ``n_prune`` candidates with the smallest ``second_score``.

Both return a fresh bool mask with *exactly* the requested number of True entries (no threshold
over-selection on ties). Scores are used as given: callers pass absolute values (|w|, |dL/dw|).
"""

from __future__ import annotations

import operator

import torch

__all__ = ["smallest_k", "select_two_step"]


def _as_count(name: str, value) -> int:
    """An integer count (Python int, numpy int, 0-dim integer tensor); bool and floats are refused."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer, got a bool ({value!r})")
    try:
        return operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer, got {type(value).__name__} ({value!r})") from None


def _check_score(name: str, score) -> None:
    if not isinstance(score, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(score).__name__}")
    if score.dim() != 1:
        raise ValueError(f"{name} must be 1-D, got shape {tuple(score.shape)}")
    if not score.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {score.dtype}")


def _check_mask(name: str, mask, like: torch.Tensor, like_name: str) -> None:
    if not isinstance(mask, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(mask).__name__}")
    if mask.dtype != torch.bool:
        raise ValueError(f"{name} must be a bool tensor, got dtype {mask.dtype}")
    if mask.dim() != 1:
        raise ValueError(f"{name} must be 1-D, got shape {tuple(mask.shape)}")
    if mask.shape != like.shape:
        raise ValueError(
            f"{name} has shape {tuple(mask.shape)} but {like_name} has shape {tuple(like.shape)}"
        )
    if mask.device != like.device:
        raise ValueError(f"{name} is on {mask.device} but {like_name} is on {like.device}")


def smallest_k(score: torch.Tensor, eligible: torch.Tensor, k: int) -> torch.Tensor:
    """Bool mask of the ``k`` eligible entries with the smallest ``score``; ties -> lower index first.

    Args:
        score: 1-D floating tensor (float32 or float64).
        eligible: 1-D bool tensor of the same length and device.
        k: number of entries to select, ``0 <= k <= eligible.sum()``.

    Returns a new bool tensor with exactly ``k`` True entries, all eligible.

    Raises ``ValueError`` on non-1-D or mismatched inputs, a non-bool ``eligible``, ``k`` out of range, or a
    NaN among the eligible scores (ineligible entries are never looked at).
    """
    _check_score("score", score)
    _check_mask("eligible", eligible, score, "score")
    k = _as_count("k", k)
    count = int(torch.count_nonzero(eligible))
    if k < 0 or k > count:
        raise ValueError(f"k must be in [0, {count}] (the eligible count), got {k}")
    if count == score.numel():
        vals = score
    else:  # compact the eligible scores (nonzero + index_select is faster than masked_select on CPU)
        vals = score.index_select(0, torch.nonzero(eligible).squeeze(1))
    if count and bool(torch.isnan(vals).any()):
        raise ValueError("score has NaN entries among the eligible ones")
    if k == 0:
        return torch.zeros_like(eligible)
    if k == count:
        return eligible.clone()
    v = torch.kthvalue(vals, k).values  # 0-dim tensor: the k-th smallest eligible score
    del vals
    # Ineligible entries never pass the comparisons below (NaN ones included: NaN <= v is False).
    out = eligible & (score <= v)
    n_le = int(torch.count_nonzero(out))
    if n_le == k:  # the usual case: no surplus ties at v
        return out
    out = eligible & (score < v)
    need = k - int(torch.count_nonzero(out))  # 1 <= need < (number of eligible entries equal to v)
    eq = eligible & (score == v)
    out[torch.nonzero(eq).squeeze(1)[:need]] = True  # surplus ties at v: the lowest flat indices first
    return out


def select_two_step(
    first_score: torch.Tensor,
    second_score: torch.Tensor,
    active: torch.Tensor,
    n_prune: int,
    n_candidates: int,
) -> torch.Tensor:
    """Two-step selection: candidates by ``first_score``, then the pruned ones by ``second_score``.

    Among the ``active`` entries, the candidates are the ``min(max(n_candidates, n_prune), R)`` with the
    smallest ``first_score`` (``R`` = active count); of those, the ``n_prune`` with the smallest
    ``second_score`` are returned as a bool mask. Ties: lower flat index first, in both steps.

    - gradient-first (FGGP): ``select_two_step(|g|, |w|, active, n, floor(rho * R))``
    - magnitude-first: ``select_two_step(|w|, |g|, active, n, n + a)``

    Returns exactly ``n_prune`` True entries, all active; all False when ``n_prune == 0``.

    Raises ``ValueError`` if the inputs are not 1-D, lengths/devices differ, ``active`` is not bool, the
    scores are not floating or of different dtypes, ``n_prune < 0``, ``n_candidates < 0``,
    ``n_prune > R``, or a NaN is met among the scores that are compared.
    """
    _check_score("first_score", first_score)
    _check_score("second_score", second_score)
    if second_score.shape != first_score.shape:
        raise ValueError(
            f"second_score has shape {tuple(second_score.shape)} but first_score has shape "
            f"{tuple(first_score.shape)}"
        )
    if second_score.dtype != first_score.dtype:
        raise ValueError(
            f"first_score and second_score dtypes differ ({first_score.dtype} vs {second_score.dtype})"
        )
    if second_score.device != first_score.device:
        raise ValueError(
            f"first_score is on {first_score.device} but second_score is on {second_score.device}"
        )
    _check_mask("active", active, first_score, "first_score")
    n_prune = _as_count("n_prune", n_prune)
    n_candidates = _as_count("n_candidates", n_candidates)
    if n_prune < 0:
        raise ValueError(f"n_prune must be >= 0, got {n_prune}")
    if n_candidates < 0:
        raise ValueError(f"n_candidates must be >= 0, got {n_candidates}")
    n_active = int(torch.count_nonzero(active))
    if n_prune > n_active:
        raise ValueError(f"n_prune ({n_prune}) exceeds the number of active entries ({n_active})")
    if n_prune == 0:
        return torch.zeros_like(active)
    m = min(max(n_candidates, n_prune), n_active)
    candidates = smallest_k(first_score, active, m)
    return smallest_k(second_score, candidates, n_prune)

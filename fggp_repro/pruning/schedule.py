"""Pruning schedules: the cubic density schedule and the cosine-annealed subselection rate.

Pure functions of numbers; no torch.

- :func:`cubic_density` -- Zhu & Gupta (2017) gradual schedule,
  ``d(t) = d_f + (d_i - d_f) * (1 - t / T_end)^3`` for ``0 <= t < T_end`` and ``d_f`` from ``T_end`` on.
- :func:`cosine_rate` -- GraNet's CosineDecay of the prune-and-regrow / subselection rate,
  ``r(t) = r_min + (r0 - r_min) * (1 + cos(pi * t / T_total)) / 2`` with ``t`` clamped to ``[0, T_total]``.
"""

from __future__ import annotations

import math

__all__ = ["cubic_density", "cosine_rate", "prune_count"]


def _check_finite(name: str, value: float) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real number, got {value!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return v


def cubic_density(t: float, t_end: float, d_initial: float, d_final: float) -> float:
    """Density (fraction of weights kept) at iteration ``t`` of the cubic gradual schedule.

    ``d_final + (d_initial - d_final) * (1 - t / t_end) ** 3`` for ``0 <= t < t_end``; exactly ``d_final``
    for ``t >= t_end`` (no mask change after ``t_end``).

    Raises ``ValueError`` if ``t < 0``, ``t_end <= 0``, a density is outside ``(0, 1]`` or
    ``d_final > d_initial``.
    """
    t = _check_finite("t", t)
    t_end = _check_finite("t_end", t_end)
    d_initial = _check_finite("d_initial", d_initial)
    d_final = _check_finite("d_final", d_final)
    if t < 0:
        raise ValueError(f"t must be >= 0, got {t}")
    if t_end <= 0:
        raise ValueError(f"t_end must be > 0, got {t_end}")
    for name, d in (("d_initial", d_initial), ("d_final", d_final)):
        if not 0.0 < d <= 1.0:
            raise ValueError(f"{name} must be in (0, 1], got {d}")
    if d_final > d_initial:
        raise ValueError(f"d_final ({d_final}) must not exceed d_initial ({d_initial})")
    if t >= t_end:
        return d_final
    return d_final + (d_initial - d_final) * (1.0 - t / t_end) ** 3


def cosine_rate(t: float, t_total: float, r0: float, r_min: float = 0.005) -> float:
    """Cosine-annealed rate: ``r_min + (r0 - r_min) * (1 + cos(pi * t / t_total)) / 2``.

    ``t`` is clamped to ``[0, t_total]``, so the rate is ``r0`` at and before 0 and ``r_min`` at and after
    ``t_total``. Raises ``ValueError`` if ``t_total <= 0`` or a rate is outside ``[0, 1]``.
    """
    t = _check_finite("t", t)
    t_total = _check_finite("t_total", t_total)
    r0 = _check_finite("r0", r0)
    r_min = _check_finite("r_min", r_min)
    if t_total <= 0:
        raise ValueError(f"t_total must be > 0, got {t_total}")
    for name, r in (("r0", r0), ("r_min", r_min)):
        if not 0.0 <= r <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {r}")
    t = min(max(t, 0.0), t_total)
    return r_min + (r0 - r_min) * (1.0 + math.cos(math.pi * t / t_total)) / 2.0


def prune_count(denominator: int, density: float, already_zero: int, counts: str = "exact") -> int:
    """How many more weights an event removes to reach ``density`` over ``denominator`` (not clipped).

    ``counts="exact"``: ``round((1 - density) * denominator) - already_zero`` (``already_zero`` = the
    prunable weights already masked). ``counts="authors"`` (the FGGP authors' script):
    ``floor(denominator * (1 - density) - already_zero)`` (``already_zero`` = every conv/linear weight
    that is exactly zero).
    """
    if counts == "exact":
        return round((1.0 - density) * denominator) - already_zero
    if counts == "authors":
        return math.floor(denominator * (1.0 - density) - already_zero)
    raise ValueError(f"counts must be 'exact' or 'authors', got {counts!r}")

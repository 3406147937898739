"""Pruning: the pure mathematical layer (schedules, exact-count selection, ERK, selection rules).

Imports only torch and the standard library; the model-facing pruner builds on these names.
"""

from .criteria import select_two_step, smallest_k
from .erk import erk_densities, erk_masks
from .methods import (
    FAMILY,
    METHOD_NAMES,
    ORDER_RATE,
    SELECTION_RULES,
    EventContext,
    granet_prune_regrow,
    prune_mask,
)
from .schedule import cosine_rate, cubic_density

__all__ = [
    "cubic_density",
    "cosine_rate",
    "smallest_k",
    "select_two_step",
    "erk_densities",
    "erk_masks",
    "EventContext",
    "prune_mask",
    "granet_prune_regrow",
    "SELECTION_RULES",
    "ORDER_RATE",
    "METHOD_NAMES",
    "FAMILY",
]

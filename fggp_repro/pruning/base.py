"""The trainer's pruning interface and the divergence signal: the trainer imports these, never the reverse."""

from __future__ import annotations

import torch.nn as nn


class Divergence(RuntimeError):
    """Raised inside the loop (e.g. by a pruning event that meets non-finite scores) to end a diverged run."""


class Pruner:
    """The trainer's pruning interface. This base class is the dense method: it never prunes.

    ``setup`` binds to the model and draws the starting masks (on resume ``load_state_dict`` follows it);
    ``on_backward(t)`` is called with the 1-based iteration after each backward pass;
    ``apply_masks`` after each optimizer step keeps masked weights exactly zero;
    ``after_step(t)`` follows it (GraNet prunes and regrows there, on the weights after the step).
    """

    method = "dense"
    family = "dense"
    events: list

    def __init__(self, cfg=None):
        self.cfg = cfg
        self.events = []
        self.prune_end = 0  # last iteration at which masks may still change (0: never pruned)

    def setup(self, model: nn.Module, optimizer, total_iters: int, seed: int) -> None:
        pass

    def on_backward(self, iteration: int) -> None:
        pass

    def apply_masks(self) -> None:
        pass

    def after_step(self, iteration: int) -> None:
        pass

    def masks_by_name(self) -> dict:
        """The masks by parameter name (``features.3.weight``): none for the dense method."""
        return {}

    def state_dict(self) -> dict:
        return {"events": list(self.events)}

    def load_state_dict(self, state: dict) -> None:
        self.events = list(state["events"])

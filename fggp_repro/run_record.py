"""The record of a finished run (docs/RECORD_SCHEMA.md), assembled in the order of the schema's one definition
(``fggp_repro/spec/record.py``) from the network, the pruner and the run's state."""

from __future__ import annotations

import torch
import torch.nn as nn

from .checkpoint import RunState
from .engine import measure_sparsity, weights_sha256
from .pruning.base import Pruner
from .records import now
from .spec import config as C
from .spec.record import assemble, setting


def metrics(history: list[dict], prune_end: int, sparsity: dict, diverged: bool) -> dict:
    """The metric (the last epoch's test accuracy) and what is reported beside it; null where a diverged run has
    no value. The best accuracy after pruning is over the epochs that end at or after ``prune_end``."""
    after = [h["test_acc"] for h in history if h["iteration"] >= prune_end]
    return {"test_acc": None if diverged else history[-1]["test_acc"],
            "best_test_acc_after_pruning": None if diverged or not after else max(after),
            "final_train_loss": None if diverged else history[-1]["train_loss"],
            "sparsity": sparsity["sparsity"], "prunable_sparsity": sparsity["prunable_sparsity"]}


def build(cfg: C.Config, rid: str, model: nn.Module, pruner: Pruner, state: RunState, divergence: dict | None,
          diagnostics: dict | None, provenance: dict, spent: tuple[float, float]) -> dict:
    """The record: ``provenance`` as the run started, completed by its times; ``spent``: its (wall, CPU) seconds."""
    sp = measure_sparsity(model)
    wall, cpu = spent
    return assemble(
        run_id=rid,
        status="diverged" if divergence else "completed",
        config=cfg.to_dict(),
        setting=setting(cfg),
        metrics=metrics(state.history, pruner.prune_end, sp, divergence is not None),
        per_layer_sparsity=sp["per_layer_sparsity"],
        weight_counts=sp["counts"],
        weights_sha256=weights_sha256(model),
        history=state.history,
        pruning_events=pruner.events,
        divergence=divergence,
        diagnostics=diagnostics,
        provenance={**provenance, "started": state.started, "finished": now(), "torch_threads": torch.get_num_threads(),
                    "wall_seconds": round(wall, 3), "cpu_seconds": round(cpu, 3)},
    )

"""Checkpoints: a run's whole state after a finished epoch (weights, optimizer, masks, random state, history), so
that an interrupted run resumes to the same bits as one never interrupted. One file a run,
``<out>/checkpoints/<run_id>.pt``, written whole or not at all and removed once the record is written."""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .spec.config import UserError
from .spec.files import atomic_write_bytes


class CheckpointError(UserError, RuntimeError):
    """An unreadable or mismatched checkpoint; the CLI prints the message as one line and exits 2."""


@dataclass
class RunState:
    """Where a run stands, besides its tensors: what a checkpoint holds and the record reports."""

    started: str  # when the run's first call started (UTC, ISO 8601)
    epoch: int = 0  # epochs done
    iteration: int = 0  # iterations done
    history: list[dict] = field(default_factory=list)  # one entry per epoch done
    wall_before: float = 0.0  # seconds spent by the earlier calls of a resumed run
    cpu_before: float = 0.0  # CPU seconds spent by them


@dataclass(frozen=True)
class Clock:
    """The wall and CPU time of this call (CPU: this process, all threads: a run's cost on a shared machine)."""

    wall: float
    cpu: float

    @classmethod
    def start(cls) -> "Clock":
        return cls(time.time(), time.process_time())

    def spent(self, state: RunState) -> tuple[float, float]:
        """(wall seconds, CPU seconds) of the run so far, earlier calls of a resumed run included."""
        return state.wall_before + time.time() - self.wall, state.cpu_before + time.process_time() - self.cpu


class Checkpoint:
    """The checkpoint file of one run. ``epoch``: the epochs that the file on disk holds, as this call saved or
    resumed it (None: neither yet)."""

    def __init__(self, path: Path, rid: str):
        self.path = path
        self.rid = rid
        self.epoch: int | None = None

    @property
    def kept(self) -> Path | None:
        """The checkpoint left on disk for a later call, or None."""
        return self.path if self.epoch is not None and self.path.is_file() else None

    def save(self, state: RunState, model, optimizer, pruner, spent: tuple[float, float]) -> None:
        """Save the run after ``state.epoch`` epochs; ``spent``: the run's (wall, CPU) seconds so far."""
        data = {"run_id": self.rid, "epoch": state.epoch, "iteration": state.iteration, "history": state.history,
                "wall_before": spent[0], "cpu_before": spent[1], "started": state.started,
                "model": model.state_dict(), "optimizer": optimizer.state_dict(), "pruner": pruner.state_dict(),
                "torch_rng": torch.get_rng_state()}
        if torch.cuda.is_available():
            data["cuda_rng"] = torch.cuda.get_rng_state_all()
        buf = io.BytesIO()
        torch.save(data, buf)
        atomic_write_bytes(self.path, buf.getvalue())
        self.epoch = state.epoch

    def resume(self, model, optimizer, pruner, device) -> RunState | None:
        """Load the checkpoint into the freshly set-up run, if there is one; its state, or None.
        Raises :class:`CheckpointError` for another run's or an unreadable checkpoint."""
        if not self.path.is_file():
            return None
        path, rid = self.path, self.rid
        try:
            data = torch.load(path, map_location=device, weights_only=True)
            if data.get("run_id") != rid:
                raise CheckpointError(f"checkpoint {path} belongs to run {data.get('run_id')}, not {rid}; "
                                      "delete it or pass --force")
            model.load_state_dict(data["model"])
            optimizer.load_state_dict(data["optimizer"])
            pruner.load_state_dict(data["pruner"])
            torch.set_rng_state(data["torch_rng"].cpu())
            if "cuda_rng" in data and torch.cuda.is_available():
                torch.cuda.set_rng_state_all([s.cpu() for s in data["cuda_rng"]])
            state = RunState(started=data["started"], epoch=data["epoch"], iteration=data["iteration"],
                             history=data["history"], wall_before=data["wall_before"],
                             cpu_before=data.get("cpu_before", 0.0))
        except CheckpointError:
            raise
        except Exception as e:
            first = str(e).splitlines()[0] if str(e) else ""
            raise CheckpointError(f"checkpoint {path} is unreadable ({type(e).__name__}: {first}); "
                                  "delete it or pass --force to restart the run") from None
        self.epoch = state.epoch
        return state

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)

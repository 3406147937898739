"""Commands stopped by a signal: Ctrl-C (SIGINT) and SIGTERM stop them the same orderly way, and what each kept
travels with the exception as typed fields, for the CLI's one line."""

from __future__ import annotations

from pathlib import Path


class Interrupted(KeyboardInterrupt):
    """A command stopped by a signal after putting its work in order; ``terminated``: by SIGTERM, not Ctrl-C."""

    terminated: bool = False


class Terminated(Interrupted):
    """SIGTERM, raised by the CLI's handler in the code it interrupts: the same orderly stop as Ctrl-C."""

    terminated = True


class RunInterrupted(Interrupted):
    """``train`` stopped by a signal: ``checkpoint`` is the checkpoint kept on disk (None if no epoch had been saved),
    ``epoch`` the number of epochs it holds."""

    def __init__(self, checkpoint: Path | None, epoch: int, terminated: bool):
        super().__init__()
        self.checkpoint = checkpoint
        self.epoch = epoch
        self.terminated = terminated


class GridInterrupted(Interrupted):
    """``grid`` stopped by a signal: ``in_flight`` runs were stopped (each keeps its last checkpoint), ``finished``
    runs are done."""

    def __init__(self, in_flight: int, finished: int, terminated: bool):
        super().__init__()
        self.in_flight = in_flight
        self.finished = finished
        self.terminated = terminated


def by_sigterm(e: KeyboardInterrupt) -> bool:
    """Whether ``e`` stops a command on SIGTERM (rather than Ctrl-C)."""
    return isinstance(e, Interrupted) and e.terminated

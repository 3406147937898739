"""The one error a user can cause by handing the analysis a bad run record."""

from __future__ import annotations

from pathlib import Path


class RecordError(ValueError):
    """A run record that cannot enter the analysis: bad JSON, wrong schema, a missing or
    ill-typed field, or a duplicate run.

    ``str(err)`` is always a single line ``<file>: field '<field>': <problem>`` so the command
    line can print it as is.
    """

    def __init__(self, path: str | Path, field: str | None, message: str):
        self.path = str(path)
        self.field = field
        # One line, whatever the underlying message (json's messages are single-line, but a
        # user-supplied string value quoted in `message` might not be).
        self.message = " ".join(str(message).split())
        where = f"field '{field}': " if field else ""
        super().__init__(f"{self.path}: {where}{self.message}")

"""The files of a run under ``--out``: where its record and checkpoint go, the record written whole or not at all
and read back (docs/RECORD_SCHEMA.md, ``fggp_repro/spec/record.py``), and the lock that keeps two processes from
training one run into one folder."""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
import math
import os
import platform
from pathlib import Path

import numpy as np

from .spec.config import UserError
from .spec.files import atomic_write_bytes, file_mode


def record_path(out: str | Path, dataset: str, arch: str, method: str, run_id: str) -> Path:
    """``<out>/raw/<dataset>/<arch>/<method>/<run_id>.json``."""
    return Path(out) / "raw" / dataset / arch / method / f"{run_id}.json"


def checkpoint_path(out: str | Path, run_id: str) -> Path:
    """``<out>/checkpoints/<run_id>.pt``."""
    return Path(out) / "checkpoints" / f"{run_id}.pt"


class RunBusy(UserError, RuntimeError):
    """Another process holds the run's lock; the CLI prints the message as one line and exits 2."""


@contextlib.contextmanager
def run_lock(path: Path, what: str):
    """Hold an exclusive lock on ``path`` (a ``.lock`` file, removed on release) for the life of the block, or raise
    :class:`RunBusy` at once when another process holds it. ``what`` names the run in the message. Folders made
    for the lock file are removed again when they are left empty."""
    made, p = [], Path(os.path.abspath(path.parent))
    while not p.exists():
        made.append(p)
        p = p.parent
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, file_mode())
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise RunBusy(f"{what} is already being trained into this folder ({holder}); wait for it to finish (its "
                          "record is then kept and this command skips it) or choose another --out") from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino  # not a lock file its last holder just removed
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {platform.node()}, since {now()}".encode())
        yield
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)
        for d in made:  # deepest first; a folder that holds anything stays
            try:
                d.rmdir()
            except OSError:
                break


def _jsonable(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None  # JSON has no NaN; a non-finite metric is recorded as null
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, np.integer)):
        return _jsonable(x.item())
    return x


def write_record(path: str | Path, record: dict) -> None:
    text = json.dumps(_jsonable(record), indent=1, sort_keys=False, allow_nan=False) + "\n"
    atomic_write_bytes(path, text.encode())


def read_record(path: str | Path) -> dict:
    with open(path) as fh:
        return json.load(fh)


def now() -> str:
    """The time as records state it: UTC, ISO 8601, to the second."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")

"""Files written whole or not at all, with the mode a plain ``open`` gives; output folders checked before a run.

Both packages write through these (run records, checkpoints, model files, figures, tables).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .config import UserError


class OutputError(UserError, RuntimeError):
    """An output folder or file that cannot be written; the CLI prints the message as one line and exits 2."""


def _umask() -> int:
    """The process's umask (read by setting it and putting it back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode a new file gets from ``open()``: ``0o666`` less the umask (0644 under the usual umask 022)."""
    return 0o666 & ~_umask()


def _nearest_existing(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def unwritable(folder: str | Path) -> str | None:
    """Why no file can be created in ``folder`` (or in the folders that would be made to hold it), or None.
    Creates nothing that stays: a probe file is made and removed in the deepest folder that exists."""
    base = _nearest_existing(Path(folder))
    if not base.is_dir():
        return f"{base} is a file, not a folder"
    try:
        with tempfile.TemporaryFile(dir=base, prefix=".fggp-write-probe-"):
            pass
    except OSError as e:
        return e.strerror or str(e)
    return None


def check_writable(folder: str | Path, what: str = "output folder", fix: str = "choose another --out") -> None:
    """Raise :class:`OutputError` unless files can be created in ``folder`` (see :func:`unwritable`)."""
    why = unwritable(folder)
    if why is None:
        return
    if why.endswith("is a file, not a folder"):
        raise OutputError(f"cannot write the {what} {folder}: {why}; {fix}")
    raise OutputError(f"cannot write the {what} {folder} ({why}); {fix}")


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temp file in the same folder and ``os.replace``, so that readers never see
    half a file; returns ``path``.

    The file gets the mode a plain ``open`` would give it (:func:`file_mode`), not the 0600 of the temp file.
    Raises :class:`OutputError` (one line naming the fix) when the folder or the file cannot be written."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise OutputError(f"cannot write {path} ({e.strerror or e}); choose another --out") from None
    try:
        os.fchmod(fd, file_mode())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"cannot write {path} ({e.strerror or e}); free space or choose another --out") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path

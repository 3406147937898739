"""Run records (docs/RECORD_SCHEMA.md): one JSON file per run, written whole or not at all."""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import hashlib
import json
import math
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from .config import UserError

SCHEMA = "fggp-repro/run-record/v1"
REPO_ROOT = Path(__file__).resolve().parent.parent


def record_path(out: str | Path, dataset: str, arch: str, method: str, run_id: str) -> Path:
    """``<out>/raw/<dataset>/<arch>/<method>/<run_id>.json``."""
    return Path(out) / "raw" / dataset / arch / method / f"{run_id}.json"


def checkpoint_path(out: str | Path, run_id: str) -> Path:
    """``<out>/checkpoints/<run_id>.pt``."""
    return Path(out) / "checkpoints" / f"{run_id}.pt"


class OutputError(UserError, RuntimeError):
    """An output folder that cannot be written; the CLI prints the message as one line and exits 2."""


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _nearest_existing(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_writable(folder: str | Path, what: str = "output folder", fix: str = "choose another --out") -> None:
    """Raise :class:`OutputError` unless files can be created in ``folder`` (or in the folders that would be
    made to hold it). Creates nothing that stays: a probe file is made and removed in the deepest existing folder."""
    folder = Path(folder)
    base = _nearest_existing(folder)
    if not base.is_dir():
        raise OutputError(f"cannot write the {what} {folder}: {base} is a file, not a folder; {fix}")
    try:
        with tempfile.TemporaryFile(dir=base, prefix=".fggp-write-probe-"):
            pass
    except OSError as e:
        raise OutputError(f"cannot write the {what} {folder} ({e.strerror or e}); {fix}") from None


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write via a temp file in the same folder and rename, so readers never see half a file.

    The file gets the mode a plain ``open`` would give it (0666 less the umask: 0644 by default), not
    the 0600 of the temp file."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise OutputError(f"cannot write {path} ({e.strerror or e}); choose another --out") from None
    try:
        os.fchmod(fd, 0o666 & ~_umask())
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
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666 & ~_umask())
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


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


# What a run executes: edits elsewhere (analysis, docs, tests, new records) cannot change its numbers
RUN_SOURCES = ("fggp_repro", "pyproject.toml", "constraints.txt")


def git_state() -> tuple[str, bool | None]:
    """(commit, dirty) of the checkout the package runs from; ("unknown", None) outside git.

    ``dirty`` is whether the code a run executes (:data:`RUN_SOURCES`) differs from the commit,
    untracked files included; call it when the run starts, as a run imports its code then.
    ``$FGGP_SOURCE_COMMIT``, when set, is taken as the commit (dirty unknown): the device scripts set it.
    """
    declared = os.environ.get("FGGP_SOURCE_COMMIT")
    if declared:
        # a copy made for another machine (the device runner): its .git, if any, need not match the
        # files it carries, so the caller declares the commit; dirty is unknown, and source_sha256 in
        # the provenance lets anyone check the code against that commit
        return declared, None
    commit = _git("rev-parse", "HEAD")
    if not commit:
        return "unknown", None
    status = _git("status", "--porcelain", "--", *RUN_SOURCES)
    return commit, bool(status)


def source_sha256() -> str:
    """SHA-256 over the code a run executes (:data:`RUN_SOURCES`: every .py and .toml under fggp_repro/,
    pyproject.toml, constraints.txt), by relative path, in sorted order: comparable across checkouts."""
    h = hashlib.sha256()
    files = []
    for src in RUN_SOURCES:
        p = REPO_ROOT / src
        files += sorted(p.rglob("*")) if p.is_dir() else [p]
    for f in files:
        if f.is_file() and f.suffix in (".py", ".toml", ".txt") and "__pycache__" not in f.parts:
            h.update(f"{f.relative_to(REPO_ROOT).as_posix()}|".encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_model(device: torch.device) -> str:
    """The device's model without the thread count: the GPU's name, or ``cpu (<CPU model name>)``."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({cpu_model()})"


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({cpu_model()}, {torch.get_num_threads()} threads)"


#: The fields that define a platform: two strict runs of one config agree bit for bit when these agree.
PLATFORM_FIELDS = ("torch", "device", "cpu_isa", "onednn_isa", "threads", "precision", "strict")


def platform_of(record: dict) -> dict:
    """The platform a record was made on, as :data:`PLATFORM_FIELDS` (records of every version).

    ``device`` is the device model without the thread count (older records hold it only inside
    ``provenance.device``, as ``cpu (<model>, <n> threads)``); ``threads`` is the torch thread count
    the run used; ``precision`` comes from the config (fp32 for records older than the field)."""
    prov = record.get("provenance") or {}
    config = record.get("config") or {}
    device = prov.get("device_model")
    if device is None:
        device = str(prov.get("device"))
        if device.startswith("cpu (") and device.endswith(" threads)") and ", " in device:
            device = device[: device.rindex(", ")] + ")"
    threads = prov.get("torch_threads")
    if threads is None:
        threads = (config.get("run") or {}).get("threads") or None
    return {"torch": prov.get("torch"), "device": _CLOCK.sub("", device) if isinstance(device, str) else device,
            "cpu_isa": prov.get("cpu_capability"), "onednn_isa": prov.get("onednn_isa"),
            "threads": threads, "precision": (config.get("run") or {}).get("precision", "fp32"),
            "strict": prov.get("deterministic")}


# "Intel(R) Xeon(R) Processor @ 2.50GHz": the clock in a CPU's model name says nothing about its kernels
_CLOCK = re.compile(r"\s*@\s*[0-9.]+\s*[GM]Hz")


def platform_key(record: dict) -> tuple:
    """What must agree for two runs of one config to be bit-identical (:data:`PLATFORM_FIELDS`)."""
    p = platform_of(record)
    return tuple(p[k] for k in PLATFORM_FIELDS)


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def provenance(device: torch.device, deterministic: bool, command: list[str] | None = None) -> dict:
    import torchvision

    commit, dirty = git_state()
    return {
        "git_commit": commit,
        "git_dirty": dirty,
        "source_sha256": source_sha256(),
        "command": shlex.join(command if command is not None else ["fggp-repro", *sys.argv[1:]]),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": np.__version__,
        "device": device_name(device),
        "device_model": device_model(device),
        "torch_threads": torch.get_num_threads(),
        "deterministic": deterministic,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        # TF32 on CUDA: PyTorch's defaults allow it for cuDNN convolutions, not for matrix products
        "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
        "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
        "hostname": platform.node(),
    }

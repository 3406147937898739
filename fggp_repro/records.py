"""Run records (docs/RECORD_SCHEMA.md): one JSON file per run, written whole or not at all."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

SCHEMA = "fggp-repro/run-record/v1"
REPO_ROOT = Path(__file__).resolve().parent.parent


def record_path(out: str | Path, dataset: str, arch: str, method: str, run_id: str) -> Path:
    """``<out>/raw/<dataset>/<arch>/<method>/<run_id>.json``."""
    return Path(out) / "raw" / dataset / arch / method / f"{run_id}.json"


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write via a temp file in the same folder and rename, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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


def weights_sha256(model: torch.nn.Module) -> str:
    """SHA-256 over every parameter and buffer (name, dtype, shape, bytes), in sorted name order."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


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


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({cpu_model()}, {torch.get_num_threads()} threads)"


def platform_key(prov: dict) -> tuple:
    """What must agree for two runs of one config to be bit-identical: software, device, kernels' ISA."""
    return tuple(prov.get(k) for k in ("torch", "device", "cpu_capability", "deterministic"))


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
        "deterministic": deterministic,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        # TF32 on CUDA: PyTorch's defaults allow it for cuDNN convolutions, not for matrix products
        "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
        "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
        "hostname": platform.node(),
    }

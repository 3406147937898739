"""A record's ``provenance``: the code (commit, hash of the sources), the software and the machine a run used.

The code is found where this package was imported from. In a source tree (this project's ``pyproject.toml`` one
folder above the package: a git checkout, or a copy of one such as the device runner's) ``source_sha256`` hashes
the code a run executes and git names its commit. An installed package (site-packages) has no source tree
beside it: the record then says ``source: installed`` with ``source_sha256`` null and ``git_commit`` unknown,
rather than hash a partial tree or ask git about whatever repository happens to enclose site-packages.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
import torchvision

PACKAGE_DIR = Path(__file__).resolve().parent
# What a run executes: edits elsewhere (analysis, docs, tests, new records) cannot change its numbers
RUN_SOURCES = ("fggp_repro", "pyproject.toml", "constraints.txt")


def source_tree() -> Path | None:
    """The source tree the package runs from: the folder above it when that holds this project's
    ``pyproject.toml``; None for an installed package."""
    root = PACKAGE_DIR.parent
    try:
        pyproject = (root / "pyproject.toml").read_text()
    except OSError:
        return None
    return root if 'name = "fggp-repro"' in pyproject else None


def _git(root: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _checkout(root: Path | None) -> Path | None:
    """``root`` when it is the top of a git work tree (not a folder inside another repository), else None."""
    if root is None:
        return None
    top = _git(root, "rev-parse", "--show-toplevel")
    return root if top and Path(top).resolve() == root.resolve() else None


def source_kind() -> str:
    """Where the code runs from: ``checkout`` (a git work tree), ``copy`` (a source tree outside git, such as a
    copy made for another machine) or ``installed`` (no source tree: site-packages)."""
    root = source_tree()
    if root is None:
        return "installed"
    return "checkout" if _checkout(root) else "copy"


def git_state() -> tuple[str, bool | None]:
    """(commit, dirty) of the checkout the package runs from; ("unknown", None) outside a git checkout.

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
    root = _checkout(source_tree())
    commit = _git(root, "rev-parse", "HEAD") if root else None
    if not commit:
        return "unknown", None
    status = _git(root, "status", "--porcelain", "--", *RUN_SOURCES)
    return commit, bool(status)


def source_sha256() -> str | None:
    """SHA-256 over the code a run executes (:data:`RUN_SOURCES`: every .py, .toml and .txt under fggp_repro/,
    pyproject.toml, constraints.txt), by relative path, in sorted order: comparable across checkouts.
    None for an installed package, which has no source tree to hash."""
    root = source_tree()
    if root is None:
        return None
    h = hashlib.sha256()
    files = []
    for src in RUN_SOURCES:
        p = root / src
        files += sorted(p.rglob("*")) if p.is_dir() else [p]
    for f in files:
        if f.is_file() and f.suffix in (".py", ".toml", ".txt") and "__pycache__" not in f.parts:
            h.update(f"{f.relative_to(root).as_posix()}|".encode())
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


def provenance(device: torch.device, deterministic: bool, command: list[str] | None = None) -> dict:
    """The provenance of a run starting now, on ``device`` (the run adds its data, instruction set and times)."""
    commit, dirty = git_state()
    return {
        "git_commit": commit,
        "git_dirty": dirty,
        "source": source_kind(),
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

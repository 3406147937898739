"""Shared fixtures: tiny synthetic configs, and the real JPEG copy of CIFAR-10 when it is available."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TARBALL = REPO.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Decoded-array caches go to a per-session temp folder unless CI points FGGP_CACHE elsewhere."""
    if "FGGP_CACHE" not in os.environ:
        monkeypatch.setenv("FGGP_CACHE", str(tmp_path_factory.getbasetemp() / "fggp-cache"))


def tiny_overrides(**groups) -> dict:
    """A run of a few seconds: 256 synthetic images, VGG-19 at width 1/16, 3 epochs of 4 iterations."""
    base = {
        "data": {"dataset": "synthetic", "synthetic_train": 256, "synthetic_test": 128},
        "model": {"arch": "vgg19", "width": 0.0625},
        "pruning": {"update_interval": 2, "sparsity": 0.9},
        "training": {"epochs": 5, "batch_size": 64, "lr": 0.02, "milestones": [3], "eval_batch_size": 128},
        "run": {"threads": 1},
    }
    for g, vals in groups.items():
        base.setdefault(g, {}).update(vals)
    return base


@pytest.fixture(scope="session")
def jpeg_root(tmp_path_factory) -> Path:
    """The unpacked cifar10-jpeg tree: $FGGP_JPEG_ROOT (CI unpacks it), else unpacked from ../shared/data."""
    env = os.environ.get("FGGP_JPEG_ROOT")
    if env and Path(env, "train").is_dir():
        return Path(env)
    if not TARBALL.is_file():
        pytest.skip(f"real-data test: {TARBALL} is missing (set FGGP_JPEG_ROOT to an unpacked cifar10-jpeg tree)")
    dest = tmp_path_factory.mktemp("jpeg")
    with tarfile.open(TARBALL) as tf:
        tf.extractall(dest, filter="data")
    return dest / "cifar10-jpeg"

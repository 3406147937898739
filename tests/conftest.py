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


@pytest.fixture(scope="session")
def jpeg_root(tmp_path_factory) -> Path:
    """The unpacked cifar10-jpeg tree: $FGGP_JPEG_ROOT (CI unpacks it), else the one `fggp-repro data` set up in
    the data root, else unpacked from ../shared/data."""
    from fggp_repro.data import default_root

    env = os.environ.get("FGGP_JPEG_ROOT")
    if env and Path(env, "train").is_dir():
        return Path(env)
    if Path(default_root(), "cifar10-jpeg", "train").is_dir():
        return Path(default_root(), "cifar10-jpeg")
    if not TARBALL.is_file():
        pytest.skip(f"real-data test: {TARBALL} is missing (run `fggp-repro data --from PATH`, or set FGGP_JPEG_ROOT "
                    "to an unpacked cifar10-jpeg tree)")
    dest = tmp_path_factory.mktemp("jpeg")
    with tarfile.open(TARBALL) as tf:
        tf.extractall(dest, filter="data")
    return dest / "cifar10-jpeg"

"""Fixtures: fake run records written as JSON files in tmp folders (see fake_records.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# The record generator lives next to the tests; make it importable under any pytest import mode.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fake_records import write_grid  # noqa: E402


@pytest.fixture(scope="session")
def grid_dir(tmp_path_factory) -> Path:
    """A small complete grid: 2 archs x 3 targets x 2 starts x 4 methods x 3 seeds + dense (150 runs),
    one diverged fggp run."""
    root = tmp_path_factory.mktemp("grid")
    write_grid(root, diverged={("vgg19", "fggp", 0.98, 0.5, 2)})
    return root


"""ruff (configured in pyproject.toml: pyflakes, pycodestyle, import order, lines of 120) finds nothing in any of the
repository's Python: both packages, the tests (the analysis's among them), the benchmarks and the scripts."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CHECKED = ("analysis", "fggp_repro", "tests", "benchmarks", "scripts")


def test_ruff_finds_nothing():
    res = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", *CHECKED],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.strip() == "All checks passed!"


def test_every_python_file_of_the_repository_is_checked():
    tracked = subprocess.run(["git", "ls-files", "*.py"], cwd=REPO, capture_output=True, text=True, timeout=60)
    if tracked.returncode != 0:
        pytest.skip("not a git checkout (a copy of the source tree): no list of tracked files to compare with")
    tops = {Path(p).parts[0] for p in tracked.stdout.split()}
    assert tops <= set(CHECKED), f"Python outside the folders ruff checks: {sorted(tops - set(CHECKED))}"

"""ruff (configured in pyproject.toml: pyflakes, pycodestyle, import order, lines of 120) finds nothing."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHECKED = ("fggp_repro", "tests", "benchmarks", "scripts")


def test_ruff_finds_nothing():
    res = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", *CHECKED,
                          "--extend-exclude", "tests/analysis_tests"],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.strip() == "All checks passed!"

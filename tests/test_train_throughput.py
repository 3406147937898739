"""benchmarks/train_throughput.py end to end on the CPU at tiny sizes: the table's rows and columns, every ratio a
number or "n/a (reason)", a spent budget, a bad argument. What the numbers are is measured there, not here."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "benchmarks" / "train_throughput.py"
TINY = ["--device", "cpu", "--width", "0.0625", "--steps", "2", "--warmup", "1", "--archs", "vgg19", "--threads", "1"]
COLUMNS = ["arch", "loop", "precision", "compile", "processes", "threads each", "img/s", "ratio to authors", "util."]
NUMBER = re.compile(r"^\d+\.\d\d$")
NA = re.compile(r"^n/a \([^()|]+\)$")


def _run(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO))  # this checkout's fggp_repro, here and in the measuring processes
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)


def _table(text: str) -> tuple[list[str], list[dict]]:
    lines = [line for line in text.splitlines() if line.startswith("|")]
    split = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    assert set(lines[1]) == {"|", "-"}
    return split[0], [dict(zip(split[0], cells, strict=True)) for cells in split[2:]]


def _key(row):
    return row["arch"], row["loop"], row["precision"], row["compile"], row["processes"]


@pytest.mark.slow
def test_tiny_cpu_table_has_every_cell_a_number_or_a_reason(tmp_path):
    r = _run(*TINY, "--concurrency", "1,2", "--compile-limit", "8", "--out", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "out" / "train_throughput.md").read_text()
    assert r.stdout == text  # printed and written: the same table
    assert text.startswith("# Training throughput: cpu (")
    columns, rows = _table(text)
    assert columns == COLUMNS
    assert [_key(row) for row in rows] == [
        ("vgg19", "authors", "fp32", "none", "1"),
        ("vgg19", "project", "fp32", "none", "1"),
        ("vgg19", "project", "bf16", "none", "1"),
        ("vgg19", "project", "fp32", "none", "2"),
        ("vgg19", "project", "bf16", "none", "2"),
        ("vgg19", "project", "fp32", "default", "1"),
        ("vgg19", "project", "fp32", "reduce-overhead", "1"),
    ]
    assert all(NUMBER.match(row["ratio to authors"]) or NA.match(row["ratio to authors"]) for row in rows)
    authors = float(rows[0]["img/s"])
    assert rows[0]["ratio to authors"] == "1.00" and authors > 0
    for row in rows[1:5]:  # the uncompiled cells are always measured
        assert row["threads each"] == "1" and row["util."].endswith("%")
        assert float(row["ratio to authors"]) == pytest.approx(float(row["img/s"]) / authors, abs=0.006)
    for row in rows[5:]:  # compiled, or not within the 8 s given (no compiler, a slow machine): never a crash
        if NA.match(row["ratio to authors"]):
            assert (row["img/s"], row["threads each"], row["util."]) == ("n/a", "-", "n/a")
        else:
            assert float(row["ratio to authors"]) == pytest.approx(float(row["img/s"]) / authors, abs=0.006)
    assert text.rstrip().splitlines()[-1].startswith("command took ")


@pytest.mark.slow
def test_cells_reached_after_the_budget_read_na(tmp_path):
    r = _run(*TINY, "--budget", "0.001", "--compile", "reduce-overhead", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    _, rows = _table((tmp_path / "train_throughput.md").read_text())
    assert [(row["processes"], row["compile"]) for row in rows] == [
        ("1", "none"), ("1", "none"), ("1", "none"), ("6", "none"), ("6", "none"), ("12", "none"),
        ("12", "none"), ("1", "reduce-overhead")]
    assert {(row["img/s"], row["ratio to authors"]) for row in rows} == {("n/a", "n/a (budget of 0.001 s spent)")}


@pytest.mark.parametrize("args, message", [
    (["--concurrency", "1,x"], "--concurrency: expected comma-separated process counts, got '1,x'"),
    pytest.param(["--archs", "vgg19,vgg16"], "unknown architecture 'vgg16' (choose from: vgg19, resnet50, "
                 "resnet50-6n2)", marks=pytest.mark.slow),
], ids=["concurrency", "arch"])
def test_a_bad_argument_is_one_line_and_exit_2(tmp_path, args, message):
    r = _run("--device", "cpu", *args, "--out", str(tmp_path / "out"))
    assert (r.returncode, r.stdout, r.stderr) == (2, "", f"train_throughput.py: error: {message} (see --help)\n")
    assert not (tmp_path / "out").exists()

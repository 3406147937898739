"""Figures, tables and the two command lines: registry, byte-stable outputs, skips, exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from analysis.cli import audit_main, figures_main, main
from analysis.registry import all_outputs
from fake_records import make_record, write_grid, write_record

REPO = Path(__file__).resolve().parents[2]
TABLES = ["main_results", "optimistic_results", "ranks", "comparisons", "claims_audit"]
FIGURES = ["accuracy_vs_sparsity", "cd_diagram", "rank_chart", "forest_fggp", "training_curves", "layer_sparsity"]


def test_registry_lists_every_output():
    outs = all_outputs()
    assert set(outs) == set(TABLES) | set(FIGURES)
    assert {outs[n].kind for n in TABLES} == {"table"} and {outs[n].kind for n in FIGURES} == {"figure"}
    assert all(o.description for o in outs.values())


@pytest.fixture(scope="module")
def two_mixed_protocols(tmp_path_factory):
    root = tmp_path_factory.mktemp("mixed")
    write_grid(root, diverged={("vgg19", "fggp", 0.98, 0.5, 2)}, methods=("fggp", "annealed", "gmp"))
    # protocol "mini": records without history or per-layer sparsity -> those figures are skipped
    for s in range(3):
        for m, acc in (("fggp", 90.0), ("gmp", 89.5), ("random", 85.0)):
            rec = make_record(method=m, seed=s, protocol="mini", test_acc=acc + 0.1 * s)
            rec["history"], rec["per_layer_sparsity"] = [], {}
            write_record(root, rec)
    return root


def test_figures_twice_byte_identical(two_mixed_protocols, tmp_path, capsys):
    out1, out2 = tmp_path / "a", tmp_path / "b"
    assert figures_main(["--results", str(two_mixed_protocols), "--out", str(out1)]) == 0
    log = capsys.readouterr().out
    assert figures_main(["--results", str(two_mixed_protocols), "--out", str(out2)]) == 0
    files1 = sorted(p.relative_to(out1) for p in out1.rglob("*") if p.is_file())
    files2 = sorted(p.relative_to(out2) for p in out2.rglob("*") if p.is_file())
    assert files1 == files2
    for name in TABLES:
        for ext in ("md", "tex", "csv"):
            assert Path("paper") / f"{name}.{ext}" in files1
    for rel in files1:  # tables and PNGs alike
        assert (out1 / rel).read_bytes() == (out2 / rel).read_bytes(), rel
    assert not [p for p in files1 if p.name.endswith(".tmp")]
    # one protocol at a time into <out>/<protocol>/, skips are one-line notes
    assert {p.parts[0] for p in files1} == {"mini", "paper"}
    assert (out1 / "paper" / "training_curves.png").exists()
    assert not (out1 / "mini" / "training_curves.png").exists()
    assert "skip training_curves: no training histories in these records" in log
    assert "skip layer_sparsity: no per-layer sparsity in these records" in log
    assert (out1 / "mini" / "accuracy_vs_sparsity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_table_contents(two_mixed_protocols, tmp_path):
    out = tmp_path / "o"
    assert figures_main(["--results", str(two_mixed_protocols), "--out", str(out), "--protocol", "paper",
                         "--only", "main_results", "--only", "comparisons", "--only", "ranks"]) == 0
    md = (out / "paper" / "main_results.md").read_text()
    lines = md.splitlines()
    assert lines[0].startswith("| dataset | arch | start | target sparsity | fggp | annealed | gmp | dense (reference) |")
    assert md.count("**") == 2 * 12  # one best per setting (no exact ties in the fake data)
    assert "(n=2, 1 div.)" in md
    assert "Diverged runs (excluded from every statistic, counted here): 1 — fggp 1." in md
    csv = pd.read_csv(out / "paper" / "main_results.csv")
    assert {"n", "mean", "std", "sem", "ci_low", "ci_high", "diverged", "best"} <= set(csv.columns)
    assert csv["best"].sum() == 12
    tex = (out / "paper" / "main_results.tex").read_text()
    assert tex.startswith("\\begin{tabular}") and "\\textbf{" in tex and "$\\pm$" in tex
    comp = pd.read_csv(out / "paper" / "comparisons.csv")
    assert set(comp["baseline"]) == {"annealed", "gmp", "dense"}
    assert {"p_ttest", "p_wilcoxon", "p_welch", "effect_size", "p_holm", "n_pairs"} <= set(comp.columns)
    ranks = (out / "paper" / "ranks.md").read_text()
    assert "Friedman χ²" in ranks and "Nemenyi CD" in ranks
    assert not (out / "paper" / "cd_diagram.png").exists()  # --only


def test_nothing_to_draw_yet(tmp_path, capsys):
    assert figures_main(["--results", str(tmp_path), "--out", str(tmp_path / "out")]) == 0
    assert "nothing to draw yet" in capsys.readouterr().out
    assert not (tmp_path / "out").exists()
    assert figures_main(["--results", str(tmp_path / "missing"), "--out", str(tmp_path / "out")]) == 0
    assert "nothing to draw yet" in capsys.readouterr().out
    assert audit_main([str(tmp_path)]) == 0
    assert "nothing to audit yet" in capsys.readouterr().out


def _bad_results(tmp_path) -> Path:
    write_grid(tmp_path, archs=("vgg19",), targets=(0.9,), seeds=(0,))
    rec = make_record(seed=7)
    rec["metrics"]["test_acc"] = "93.1%"
    return write_record(tmp_path, rec)


def test_bad_record_exit_2_one_line(tmp_path, capsys):
    bad = _bad_results(tmp_path)
    assert figures_main(["--results", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(bad) in err and "metrics.test_acc" in err
    assert audit_main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(bad) in err and "metrics.test_acc" in err


def test_audit_cli_prints_table(grid_dir, capsys):
    assert audit_main([str(grid_dir)]) == 0
    out = capsys.readouterr().out
    assert "protocol paper:" in out and "Diverged runs (excluded from every statistic, counted here): 1" in out
    for cid in ("outperforms-alternatives", "surpasses-dense", "highest-ranking"):
        assert cid in out
    assert "numbers:" in out and "verdict" in out
    assert audit_main([str(grid_dir), "--protocol", "nope"]) == 2
    assert "nope" in capsys.readouterr().err
    assert audit_main(["--bogus"]) == 2


def test_main_dispatch(grid_dir, capsys):
    assert main(["audit", str(grid_dir), "--protocol", "paper"]) == 0
    assert main([]) == 2
    assert main(["figures", "--list"]) == 0
    assert "cd_diagram" in capsys.readouterr().out


def test_python_dash_m_and_no_torch(tmp_path):
    bad = _bad_results(tmp_path)
    r = subprocess.run([sys.executable, "-m", "analysis", "audit", str(tmp_path)], cwd=REPO,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and str(bad) in r.stderr
    code = ("import sys, analysis, analysis.cli, analysis.registry; analysis.registry.all_outputs(); "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'fggp_repro', 'torchvision')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    for src in (REPO / "analysis").glob("*.py"):
        text = src.read_text()
        assert "import torch" not in text and "fggp_repro" not in text, src

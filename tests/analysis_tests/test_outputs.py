"""Figures, tables and the two command lines: registry, byte-stable outputs, skips, exit codes."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import load_claims, load_runs
from analysis.cli import audit_main, figures_main, main
from analysis.registry import all_outputs
from fake_records import make_record, write_grid, write_record

REPO = Path(__file__).resolve().parents[2]
TABLES = ["main_results", "optimistic_results", "reporting_bias", "ranks", "comparisons", "pooled_effects",
          "claims_audit", "sensitivity", "collapses", "platforms", "diagnostics"]
FIGURES = ["accuracy_vs_sparsity", "cd_diagram", "rank_chart", "forest_fggp", "training_curves", "layer_sparsity"]


def test_registry_lists_every_output():
    outs = all_outputs()
    assert set(outs) == set(TABLES) | set(FIGURES) | {"report"}
    assert {outs[n].kind for n in TABLES} == {"table"} and {outs[n].kind for n in FIGURES} == {"figure"}
    assert outs["report"].kind == "report" and list(outs)[-1] == "report"  # last: it shows what the others made
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
    # protocol "paper": two runs with diagnostics (the others predate them)
    for s in (7, 8):
        rec = make_record(method="annealed", target_sparsity=0.98, seed=s, test_acc=80.0 + s)
        rec["diagnostics"] = {"dead_units": {"total": s, "per_layer": {"conv.weight": s}},
                              "bn_recalibrated_test_acc": 81.0 + s, "bn_recalibration_batches": 50}
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
    # one protocol at a time into <out>/<protocol>/, each with its report; the glance table of all of them beside
    assert {p.parts[0] for p in files1} == {"mini", "paper", "README.md"}
    assert (out1 / "paper" / "REPORT.md").is_file() and (out1 / "mini" / "REPORT.md").is_file()
    assert (out1 / "paper" / "training_curves.png").exists()
    assert not (out1 / "mini" / "training_curves.png").exists()
    assert "skip training_curves: no training histories in these records" in log
    assert "skip layer_sparsity: no per-layer sparsity in these records" in log
    assert (out1 / "mini" / "accuracy_vs_sparsity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for name in FIGURES:  # every figure also as PDF
        assert (out1 / "paper" / f"{name}.pdf").read_bytes()[:5] == b"%PDF-"
    # the audit names its look: 3 complete seeds per start (fggp's diverged run is a finished one) of the 5 planned
    audit_md = (out1 / "paper" / "claims_audit.md").read_text()
    assert "Look: interim. Complete seeds: dense-start 3 of 5 planned, 50%-sparse-start 3 of 5 planned" in audit_md
    assert pd.read_csv(out1 / "paper" / "claims_audit.csv")["look"].tolist() == ["interim"] * 5


def test_table_contents(two_mixed_protocols, tmp_path):
    out = tmp_path / "o"
    assert figures_main(["--results", str(two_mixed_protocols), "--out", str(out), "--protocol", "paper",
                         "--only", "main_results", "--only", "comparisons", "--only", "ranks"]) == 0
    md = (out / "paper" / "main_results.md").read_text()
    lines = md.splitlines()
    assert lines[0].startswith("| dataset | arch | start | target sparsity | fggp | annealed | gmp "
                               "| dense (reference) |")
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
    assert {"p_ttest", "p_wilcoxon", "p_welch", "effect_size", "p_test_holm", "n_pairs"} <= set(comp.columns)
    assert "p_holm" not in comp.columns  # a two-sided Holm p beside a one-sided decision: gone
    ranks = (out / "paper" / "ranks.md").read_text()
    assert "Friedman χ²" in ranks and "Nemenyi CD" in ranks and "P(best rank)" in ranks
    assert "resamples of seeds" in ranks
    assert not (out / "paper" / "cd_diagram.png").exists()  # --only
    # the Holm interval lies above 0 exactly when a lead is significant, below 0 exactly when a deficit is
    two = comp[comp["test"] == "two-sided"]
    excl = (two["ci_holm_low"] > 0) | (two["ci_holm_high"] < 0)
    assert (excl == (two["p_test_holm"] < 0.05)).all() and excl.any()
    one = comp[comp["test"] == "greater"]
    assert set(one["baseline"]) == {"dense"}
    assert ((one["ci_holm_low"] > 0) == (one["p_test_holm"] < 0.05)).all()
    assert ((one["ci_holm_high"] < 0) == (one["p_reverse_holm"] < 0.05)).all() and (one["ci_holm_high"] < 0).any()
    assert set(comp["class"].dropna()) <= {"ahead", "ahead <d", "equivalent", "behind", "unresolved", "few seeds"}


def test_nothing_to_draw_yet(tmp_path, capsys):
    assert figures_main(["--results", str(tmp_path), "--out", str(tmp_path / "out")]) == 0
    assert "nothing to draw yet" in capsys.readouterr().out
    assert not (tmp_path / "out").exists()
    assert audit_main([str(tmp_path)]) == 0
    assert capsys.readouterr().out == f"No run records under {tmp_path}: nothing to audit yet.\n"
    # a results folder that does not exist is an error now (test_results_folder.py), not "nothing yet"


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
    assert "numbers:" in out and "verdict" in out and "why:" in out
    assert audit_main([str(grid_dir), "--protocol", "nope"]) == 2
    assert "nope" in capsys.readouterr().err
    assert audit_main(["--bogus"]) == 2


def test_audit_json(grid_dir, capsys):
    import json

    assert audit_main([str(grid_dir), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)  # strict JSON: NaN would not parse back as a number
    assert [d["claim"] for d in data] == ["outperforms-alternatives", "surpasses-dense", "highest-ranking",
                                          "order-gradient-first", "rate-fixed-beats-annealed"]
    for d in data:
        assert d["protocol"] == "paper" and d["verdict"] in ("supported", "refuted", "inconclusive")
        assert d["reason"] and isinstance(d["numbers"], dict) and d["diverged"] == 1
    n1 = data[0]["numbers"]
    assert n1["settings"] == 12 and n1["alternatives"] == ["annealed", "gmp", "random"]
    assert {"won", "lost", "unresolved", "per_method", "delta", "alpha", "collapses"} <= set(n1)
    assert data[0]["covers"] == "protocol paper: cifar10 resnet50 at 90/95/98% from dense-start and 50%-sparse-start; "\
        "cifar10 vgg19 at 90/95/98% from dense-start and 50%-sparse-start (12 settings)"
    assert "p_best" in data[2]["numbers"] and "rank_ci" in data[2]["numbers"]
    # the same verdicts as the table
    assert audit_main([str(grid_dir)]) == 0
    text = capsys.readouterr().out
    for d in data:
        assert any(ln.startswith(f"  {d['claim']} ") and f" {d['verdict_text']} " in ln for ln in text.splitlines())


def test_bad_claims_file_cli(grid_dir, tmp_path, capsys):
    from analysis.cli import plan_main

    bad = tmp_path / "claims.toml"
    bad.write_text('schema = "fggp-repro/claims/v3"\n[defaults]\nalpha = 0.05\n')
    assert audit_main([str(grid_dir), "--claims", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "lacks 'method'" in err
    gone = tmp_path / "nope.toml"
    for command in (audit_main, plan_main):  # a claims file that is not there: one line, not an OSError's repr
        assert command([str(grid_dir), "--claims", str(gone)]) == 2
        assert capsys.readouterr() == ("", f"error: cannot read the claims file {gone} (No such file or directory); "
                                           f"give --claims a TOML file shaped like analysis/claims.toml\n")


def test_plan_cli(grid_dir, capsys):
    from analysis.cli import plan_main

    assert plan_main([str(grid_dir), "--effect", "0.5"]) == 0  # one protocol: no --protocol needed
    out = capsys.readouterr().out
    assert "protocol paper: seeds needed to detect a difference of 0.50 accuracy points" in out
    assert "fggp - annealed" in out and "fggp - dense" in out and "-> this setting needs" in out
    assert "every setting:" in out
    assert plan_main([str(grid_dir), "--protocol", "nope"]) == 2
    assert "nope" in capsys.readouterr().err
    for bad, shown in (("0", "0"), ("inf", "inf"), ("nan", "nan")):  # an infinite effect has no sample size
        assert plan_main([str(grid_dir), "--effect", bad]) == 2
        assert capsys.readouterr().err == f"error: --effect must be a finite number > 0, got {shown}\n"
    assert plan_main([str(grid_dir), "--power", "1.5"]) == 2
    capsys.readouterr()
    assert plan_main([str(grid_dir), "--at-seeds", "1"]) == 2
    assert capsys.readouterr().err == ("error: --at-seeds must be at least 2 (a paired t-test needs 2 seeds), "
                                       "got 1\n")
    assert plan_main([str(grid_dir), "--at-seeds", "12"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "'at 12': the smallest difference 12 seeds would detect with that power" in lines[0]
    comparisons = [ln for ln in lines if " pairs " in ln]
    assert comparisons and all(re.search(r"  at 12 +[0-9.]+ \[ *[0-9.]+\] pp$", ln) for ln in comparisons)
    summaries = [ln for ln in lines if "-> this setting needs" in ln]
    assert summaries and all(re.search(r"; 12 seeds detect [0-9.]+ \[[0-9.]+\] pp in every comparison$", ln)
                             for ln in summaries)
    assert plan_main(["--bogus"]) == 2


def test_plan_numbers(tmp_path):
    """Seeds needed for a hand-made spread: differences with sd 1 over 3 settings -> level 0.05/3."""
    from analysis.plan import plan
    from analysis.power import seeds_needed

    rows = []
    d = [0.0, 1.0, 2.0, 1.5, 0.5]  # sd of the paired differences: sqrt(0.625) = 0.7906
    for t in (0.9, 0.95, 0.98):
        for s in range(5):
            for m, acc in (("fggp", 90.0 + d[s]), ("gmp", 90.0)):
                rows.append(dict(dataset="c", arch="v", method=m, target_sparsity=t, initial_density=1.0, seed=s,
                                 protocol="p", status="completed", run_id=f"{t}{m}{s}", test_acc=acc + 0.3 * s,
                                 best_test_acc_after_pruning=float("nan"), sparsity=t, path="x", collapsed=False))
    claim = load_claims()["claims"][0]
    p = plan(pd.DataFrame(rows), claim, effect=0.5)
    assert len(p) == 3 and (p["m"] == 3).all() and (p["n_pairs"] == 5).all()
    assert p["sd"].iloc[0] == pytest.approx(0.625 ** 0.5)
    assert (p["seeds_needed"] == seeds_needed(0.5, 0.625 ** 0.5, 0.05 / 3)).all()
    # its 80 % upper bound: 0.7906 * sqrt(4 / chi2_{0.20, 4} = 1.6488) = 0.7906 * 1.5576 = 1.2314
    assert p["sd_upper"].iloc[0] == pytest.approx(1.2314, abs=2e-4)
    assert (p["seeds_needed_upper"] == seeds_needed(0.5, 1.2314, 0.05 / 3)).all()
    assert (p["seeds_needed_upper"] > p["seeds_needed"]).all()
    assert p["mdd_at"].isna().all() and p["mdd_at_upper"].isna().all()  # no budget asked for
    # what 12 seeds would detect: the difference at which the two-sided paired t-test at 0.05/3 has power 0.8,
    # checked against scipy's noncentral t directly (power = P(|T| > t_crit), T ~ nct(11, d sqrt(12) / sd))
    from scipy import stats as st

    b = plan(pd.DataFrame(rows), claim, effect=0.5, at_seeds=12)
    tc = st.t.ppf(1 - 0.05 / 3 / 2, 11)

    def power(d, sd):
        nc = d * 12 ** 0.5 / sd
        return st.nct.sf(tc, 11, nc) + st.nct.cdf(-tc, 11, nc)

    for col, sd in (("mdd_at", 0.625 ** 0.5), ("mdd_at_upper", b["sd_upper"].iloc[0])):
        d = b[col].iloc[0]
        assert power(d, sd) == pytest.approx(0.8, abs=1e-6) and power(0.99 * d, sd) < 0.8
    # the normal approximation, (z_{1-alpha/2} + z_0.8) sd / sqrt(12) = (2.394 + 0.8416) 0.7906 / 3.4641 = 0.738,
    # understates what 12 seeds need under t(11): the exact figure lies above it, below 1 point
    assert 0.738 < b["mdd_at"].iloc[0] < 1.0
    assert b["mdd_at_upper"].iloc[0] > b["mdd_at"].iloc[0]


def test_plan_sets_runs_at_chance_level_aside_as_the_audit_does_and_can_keep_them(tmp_path, capsys):
    """One gmp run at chance level (10 %) at 98 %: by default its pair leaves the comparison (the plan is not
    driven by a collapse); with --collapsed keep it dominates that comparison's sd and is flagged. Differences
    worked by hand."""
    from analysis.cli import plan_main

    gmp = {0.9: [79.0, 79.5, 78.5, 79.0], 0.98: [79.0, 79.5, 78.5, 10.0]}
    for t in (0.9, 0.98):
        for s in range(4):
            write_record(tmp_path, make_record(method="fggp", target_sparsity=t, seed=s, test_acc=80.0))
            write_record(tmp_path, make_record(method="gmp", target_sparsity=t, seed=s, test_acc=gmp[t][s]))
    assert plan_main(["--results", str(tmp_path), "--effect", "0.5", "--collapsed", "keep"]) == 0
    kept = capsys.readouterr().out.splitlines()
    # differences at 98 %: 1, 0.5, 1.5, 70; mean 18.25, squared deviations 297.5625 + 315.0625 + 280.5625 +
    # 2678.0625 = 3571.25, sd = sqrt(3571.25 / 3) = 34.50
    line98 = [ln for ln in kept if "fggp - gmp" in ln][1]
    assert "pairs  4  sd  34.50 " in line98 and line98.endswith("  1 at chance level†")
    assert not [ln for ln in kept if "fggp - gmp" in ln][0].endswith("†")  # 90 %: differences 1, .5, 1.5, 1
    assert kept[-1].startswith("† runs at chance level (final accuracy <= 11 %) among the comparison's pairs, kept")
    assert plan_main(["--results", str(tmp_path), "--effect", "0.5"]) == 0
    left_out = capsys.readouterr().out.splitlines()
    # without seed 3's pair: differences 1, 0.5, 1.5, sd = sqrt((0 + 0.25 + 0.25) / 2) = 0.50
    line98 = [ln for ln in left_out if "fggp - gmp" in ln][1]
    assert "pairs  3  sd   0.50 " in line98 and "†" not in line98
    assert left_out[-1].startswith("a run at chance level (final accuracy <= 11 %) leaves its comparisons")
    # a plan from the seeds the audit's accuracy tests use: what 'every setting' asks for is not one collapse's
    assert "every setting:" in " ".join(left_out)
    assert plan_main(["--results", str(tmp_path), "--collapsed", "drop"]) == 2
    err = capsys.readouterr().err  # one line (argparse words the list of choices by Python version)
    assert err.startswith("fggp-repro plan: error: argument --collapsed: invalid choice: 'drop'")
    assert err.endswith("(see --help)\n") and err.count("\n") == 1


def test_calibrate_cli(grid_dir, capsys):
    assert main(["calibrate", "--replicates", "20", "--resamples", "30"]) == 0
    out = capsys.readouterr().out
    for name in ("null:", "lf-claim1:", "effect:", "within:"):
        assert name in out
    assert "supported" in out and "refuted" in out and "20 replicates per scenario" in out
    assert main(["calibrate", "--replicates", "0"]) == 2
    capsys.readouterr()
    assert main(["calibrate", "--seed", "-1"]) == 2  # numpy refuses a negative seed: one line, not its traceback
    assert capsys.readouterr() == ("", "error: --seed must be a whole number >= 0 (numpy's seeds are non-negative), "
                                       "got -1\n")
    assert main(["calibrate", "--replicates", "5", "--resamples", "10", "--fit", "paper",
                 "--results", str(grid_dir)]) == 0
    assert "variance components of protocol paper" in capsys.readouterr().out
    assert main(["calibrate", "--results", str(grid_dir)]) == 2  # read by --fit only: not ignored in silence
    assert capsys.readouterr() == ("", "error: --results is read only by --fit P (the calibration itself simulates "
                                       "its records): add --fit P or drop --results\n")


def test_an_unknown_analysis_command_is_one_line(capsys):
    assert main(["nosuch"]) == 2
    assert capsys.readouterr() == ("", "python -m analysis: error: unknown command 'nosuch'; choose from figures, "
                                       "audit, plan, calibrate (see python -m analysis --help)\n")
    assert main([]) == 2
    assert capsys.readouterr().err == ("python -m analysis: error: no command given; choose from figures, audit, "
                                       "plan, calibrate (see python -m analysis --help)\n")


def test_stale_outputs_are_removed(two_mixed_protocols, tmp_path, capsys):
    out = tmp_path / "o"
    (out / "paper").mkdir(parents=True)
    (out / "paper" / "old_figure.png").write_bytes(b"stale")
    (out / "paper" / "old_table.md").write_text("stale")
    (out / "paper" / "README.txt").write_text("not ours")
    (out / "mini" ).mkdir()
    (out / "mini" / "training_curves.png").write_bytes(b"stale")  # no histories in mini: no longer produced
    assert figures_main(["--results", str(two_mixed_protocols), "--out", str(out)]) == 0
    log = capsys.readouterr().out
    assert not (out / "paper" / "old_figure.png").exists() and not (out / "paper" / "old_table.md").exists()
    assert (out / "paper" / "README.txt").exists()
    assert not (out / "mini" / "training_curves.png").exists()
    assert "removed (no longer produced): old_figure.png, old_table.md" in log
    # --only touches only the selected outputs' files
    (out / "paper" / "old_figure.png").write_bytes(b"stale")
    assert figures_main(["--results", str(two_mixed_protocols), "--out", str(out), "--only", "ranks"]) == 0
    assert (out / "paper" / "old_figure.png").exists() and (out / "paper" / "cd_diagram.png").exists()


def test_collapsed_runs_are_marked(tmp_path):
    write_grid(tmp_path, archs=("vgg19",), targets=(0.9,), starts=(1.0,), methods=("fggp", "gmp", "random"))
    write_record(tmp_path, make_record(method="random", seed=7, test_acc=10.0))
    out = tmp_path / "o"
    assert figures_main(["--results", str(tmp_path), "--out", str(out), "--only", "main_results"]) == 0
    md = (out / "paper" / "main_results.md").read_text()
    assert "(n=4, 1 collapsed†)" in md
    assert ("Collapsed runs (final accuracy ≤ 11 %, chance level; marked †, in the means of the results tables and "
            "last at their seed in the ranks, set aside from the paired accuracy tests and compared on their own in "
            "the collapses table): 1 — random 1.") in md
    csv = pd.read_csv(out / "paper" / "main_results.csv").set_index("method")
    assert csv.loc["random", "collapsed"] == 1 and csv.loc["fggp", "collapsed"] == 0
    assert figures_main(["--results", str(tmp_path), "--out", str(out), "--only", "sensitivity"]) == 0
    sens = pd.read_csv(out / "paper" / "sensitivity.csv").set_index("choice")
    assert sens.loc["collapsed runs", "note"] == "1 run(s) at chance level kept"


def test_sensitivity_table(grid_dir, tmp_path):
    out = tmp_path / "o"
    assert figures_main(["--results", str(grid_dir), "--out", str(out), "--only", "sensitivity",
                         "--only", "reporting_bias", "--only", "pooled_effects"]) == 0
    t = pd.read_csv(out / "paper" / "sensitivity.csv")
    assert list(t.columns) == ["choice", "variant", "outperforms-alternatives", "surpasses-dense", "highest-ranking",
                               "order-gradient-first", "rate-fixed-beats-annealed", "note"]
    assert list(t["choice"]) == ["defaults", "test", "test", "alternatives", "alternatives", "annealed rate",
                                 "annealed rate", "collapsed runs", "rank aggregation", "delta", "delta"]
    # 3 seeds: the exact Wilcoxon test cannot go below p = 0.25, so no claim can be supported with it
    wil = t[t["variant"].str.startswith("Wilcoxon")].iloc[0]
    assert not str(wil["outperforms-alternatives"]).startswith("supported")
    flagged = t.iloc[1:][[c for c in t.columns if c not in ("choice", "variant", "note")]]
    base = t.iloc[0]
    for _, row in flagged.iterrows():
        for c, v in row.items():
            assert str(v).endswith("*") == (str(v).rstrip("*") != base[c])
    assert "no run of the annealed rate it keeps" in " ".join(t["note"].fillna(""))
    assert t.set_index("choice").loc["collapsed runs", "note"] == "no run at chance level here"
    pooled = pd.read_csv(out / "paper" / "pooled_effects.csv").set_index("baseline")
    assert set(pooled.index) == {"annealed", "gmp", "random", "dense"}
    assert (pooled["n_seeds"] <= 3).all() and (pooled["n_settings"] == 12).all()


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
    # of the training core, the analysis uses its torch-free specification layer alone (fggp_repro/spec/)
    code = ("import sys, analysis, analysis.cli, analysis.registry; analysis.registry.all_outputs(); "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision') or "
            "(m.startswith('fggp_repro.') and not m.startswith('fggp_repro.spec'))]; "
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    for src in (REPO / "analysis").rglob("*.py"):
        imports = [line.split()[1] for line in src.read_text().splitlines()
                   if line.lstrip().startswith(("import ", "from "))]
        assert not [m for m in imports if m.split(".")[0] in ("torch", "torchvision")], src
        assert all(m == "fggp_repro.spec" or m.startswith("fggp_repro.spec.") for m in imports
                   if m.split(".")[0] == "fggp_repro"), src


def test_collapsed_note_gives_the_bn_recalibrated_accuracy_where_recorded(tmp_path):
    write_grid(tmp_path, archs=("vgg19",), targets=(0.98,), starts=(1.0,), methods=("fggp", "annealed"))
    rec = make_record(method="annealed", target_sparsity=0.98, seed=7, test_acc=10.0)
    rec["diagnostics"] = {"dead_units": {"total": 37, "per_layer": {"conv.weight": 37}},
                          "bn_recalibrated_test_acc": 75.76, "bn_recalibration_batches": 50}
    write_record(tmp_path, rec)
    write_record(tmp_path, make_record(method="fggp", target_sparsity=0.98, seed=8, test_acc=9.5))  # no diagnostics
    out = tmp_path / "o"
    assert figures_main(["--results", str(tmp_path), "--out", str(out), "--only", "main_results"]) == 0
    md = (out / "paper" / "main_results.md").read_text()
    assert ("Their test accuracy after BatchNorm recalibration (the record's diagnostics, never the metric; "
            "1 without): annealed, cifar10 vgg19 98% dense-start, seed 7: 75.76 %.") in md
    runs = load_runs(tmp_path).set_index(["method", "seed"])
    assert runs.loc[("annealed", 7), "bn_recal_test_acc"] == 75.76 and runs.loc[("annealed", 7), "dead_units"] == 37
    assert np.isnan(runs.loc[("fggp", 8), "bn_recal_test_acc"]) and np.isnan(runs.loc[("fggp", 8), "dead_units"])


def test_diagnostics_table_summarises_the_records_that_carry_them(tmp_path):
    write_grid(tmp_path, archs=("vgg19",), targets=(0.98,), starts=(1.0,), methods=("fggp", "annealed"), dense=False)
    out = tmp_path / "o"
    assert figures_main(["--results", str(tmp_path), "--out", str(out), "--only", "diagnostics"]) == 0
    assert not (out / "paper" / "diagnostics.csv").exists()  # no record has diagnostics: no table
    for seed, acc, recal, dead in ((7, 10.0, 75.76, 37), (8, 74.0, 74.5, 5)):
        rec = make_record(method="annealed", target_sparsity=0.98, seed=seed, test_acc=acc)
        rec["diagnostics"] = {"dead_units": {"total": dead, "per_layer": {"conv.weight": dead}},
                              "bn_recalibrated_test_acc": recal, "bn_recalibration_batches": 50}
        write_record(tmp_path, rec)
    assert figures_main(["--results", str(tmp_path), "--out", str(out), "--only", "diagnostics"]) == 0
    t = pd.read_csv(out / "paper" / "diagnostics.csv")
    assert len(t) == 1 and t.loc[0, "method"] == "annealed" and t.loc[0, "n"] == 2
    # dead units 37 and 5: mean 21; test 10.0 and 74.0: mean 42.0; recalibrated 75.76 and 74.5: mean 75.13;
    # gains 65.76 and 0.5: largest 65.76
    assert (t.loc[0, "dead_units_mean"], t.loc[0, "dead_units_min"], t.loc[0, "dead_units_max"]) == (21.0, 5.0, 37.0)
    assert t.loc[0, "test_acc_mean"] == pytest.approx(42.0)
    assert t.loc[0, "bn_recal_test_acc_mean"] == pytest.approx(75.13)
    assert t.loc[0, "largest_gain"] == pytest.approx(65.76)
    md = (out / "paper" / "diagnostics.md").read_text()
    assert "| vgg19 98% dense-start | annealed | 2 | 21.0 (5–37) | 42.00 | 75.13 | +65.76 |" in md
    assert "From the diagnostics of 2 of the 8 completed runs" in md


def test_rank_chart_draws_the_ranks_its_intervals_are_about(tmp_path):
    # 90 %: three seeds per method, fggp > gmp > random every seed; 95 %: one seed, the order reversed.
    # Over both settings every method would average rank 2; the ranking (claim 3's, every rank output's) ranks
    # only the setting with min_seeds (3) complete seeds, where the order never changes under resampling: ranks
    # 1, 2, 3, intervals [r, r]; the ranks table shows the same numbers.
    from analysis.figures import rank_chart_data
    from analysis.registry import Context

    for m, acc in (("fggp", 90.0), ("gmp", 89.0), ("random", 85.0)):
        for s in range(3):
            write_record(tmp_path, make_record(method=m, seed=s, test_acc=acc + 0.1 * s))
        write_record(tmp_path, make_record(method=m, seed=0, target_sparsity=0.95, test_acc=175.0 - acc))
    runs = load_runs(tmp_path)
    ctx = Context(protocol="paper", runs=runs, histories=pd.DataFrame(), layer_sparsity=pd.DataFrame(),
                  n_resamples=200)
    rows, n, what = rank_chart_data(ctx)
    assert n == 1
    assert rows["method"].tolist() == ["fggp", "gmp", "random"]
    assert rows["rank"].tolist() == [1.0, 2.0, 3.0]
    assert rows["low"].tolist() == [1.0, 2.0, 3.0] and rows["high"].tolist() == [1.0, 2.0, 3.0]
    assert rows["p_best"].tolist() == [1.0, 0.0, 0.0]
    assert what.startswith("The audit's ranking (claim 3) of fggp, gmp, random (not in rank order): mean over "
                           "each setting's seeds of the per-seed ranks (1 = best, ties share the average rank), "
                           "averaged over 1 settings, each on all its complete seeds (3); 1 setting(s) with fewer "
                           "than 3 complete seeds left out.")
    out = tmp_path / "figs"
    assert figures_main(["--results", str(tmp_path), "--out", str(out), "--only", "rank_chart", "--only", "ranks"]) == 0
    assert (out / "paper" / "rank_chart.png").exists()
    table = pd.read_csv(out / "paper" / "ranks.csv")
    assert table["method"].tolist() == ["fggp", "gmp", "random"] and table["average_rank"].tolist() == [1.0, 2.0, 3.0]
    assert table["p_best"].tolist() == [1.0, 0.0, 0.0] and (table["n_settings"] == 1).all()


def test_calibrate_at_a_protocols_own_design(grid_dir, capsys):
    assert main(["calibrate", "--fit", "paper", "--results", str(grid_dir), "--design", "--seeds", "6",
                 "--replicates", "20", "--resamples", "30"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("variance components of protocol paper (")
    # the grid fixture: fggp's 12 settings (2 archs x 3 targets x 2 starts), annealed, gmp and random, dense
    assert out[1].startswith("simulated at the design of protocol paper: 12 settings, fggp + 3 other methods "
                             "(annealed, gmp, random) + dense, 6 seeds; standard deviations seed ")
    assert out[1].count(" at cifar10 ") == 12 and out[1].endswith(
        "20 replicates per scenario, 30 resamples of seeds for claim 3; every replicate judged by "
        "analysis.claims.decide, the audit's own")
    assert "run noise Student-t with 5 degrees of freedom (heavy tails); runs at chance level drawn at the fitted " \
           "rate 0.0000 per sparse run" in out[1]
    heads = [ln for ln in out if ln and not ln.startswith(" ")][2:]
    assert [h.split(":")[0] for h in heads] == ["null", "effect-1", "effect-2", "sub-delta", "collapses", "fggp-only",
                                                "behind-1"]
    assert heads[0] == "null: no difference anywhere (6 seeds)"
    assert main(["calibrate", "--fit", "paper", "--results", str(grid_dir), "--design", "--replicates", "5",
                 "--resamples", "10"]) == 0
    assert "+ dense, 3 seeds;" in capsys.readouterr().out  # default: the most seeds any cell has
    for argv, msg in ((["--design"], "error: --design and --seeds simulate a protocol's own design: name it with "
                                     "--fit P\n"),
                      (["--fit", "paper", "--results", str(grid_dir), "--seeds", "6"],
                       "error: --seeds sets the seeds of --design; add --design\n"),
                      (["--fit", "paper", "--results", str(grid_dir), "--design", "--seeds", "1"],
                       "error: --seeds must be at least 2 (a paired t-test needs 2 seeds), got 1\n"),
                      (["--fit", "paper", "--results", str(grid_dir), "--looks", "3-5"],
                       "error: --looks judges a protocol's own design at growing seed counts: add --design --fit P\n"),
                      (["--fit", "paper", "--results", str(grid_dir), "--design", "--looks", "3-5", "--seeds", "5"],
                       "error: --looks sets the seeds (its largest count); drop --seeds\n"),
                      (["--fit", "paper", "--results", str(grid_dir), "--design", "--looks", "5"],
                       "error: --looks 5: give at least two seed counts, each at least 2 (a paired t-test needs 2 "
                       "seeds)\n"),
                      (["--fit", "paper", "--results", str(grid_dir), "--design", "--looks", "a-b"],
                       "error: --looks a-b: give a range A-B or a list of seed counts such as 5,8,12\n")):
        assert main(["calibrate"] + argv) == 2
        assert capsys.readouterr().err == msg


def test_calibrate_looks_cli(grid_dir, capsys):
    assert main(["calibrate", "--fit", "paper", "--results", str(grid_dir), "--design", "--looks", "3-5",
                 "--replicates", "20", "--resamples", "30"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "+ dense, 5 seeds;" in out[1]
    assert out[2] == ("looks: the audit read after each of 3 seed counts (3-5) of the same simulated grid; 'some "
                      "look' counts a grid once if any of its looks says so")
    rows = [ln for ln in out if ln.startswith("  surpasses-dense")]
    assert len(rows) == 7 and all(" at 5 seeds: supported " in r and "some look: supported " in r for r in rows)


def _analysis(*args, **kw):
    import os
    import signal

    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "analysis", *args], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL), **kw)


def test_python_m_analysis_stops_quietly_when_its_reader_goes_away_or_on_ctrl_c():
    import signal

    p = _analysis("calibrate", "--replicates", "20", "--resamples", "10")
    p.stdout.close()  # the reader is gone before the first line: `python -m analysis calibrate | head -0`
    assert p.wait(timeout=120) == 141 and p.stderr.read() == ""
    p = _analysis("calibrate", "--replicates", "100000", "--resamples", "10")
    assert p.stdout.readline().startswith("simulated with seed")  # printed before the long simulation starts
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130
    assert err == "python -m analysis: interrupted; every file written so far is whole (each is replaced atomically)\n"


def test_calibrate_the_planned_design(grid_dir, capsys, monkeypatch):
    assert main(["calibrate", "--fit", "paper", "--results", str(grid_dir), "--design", "--plan",
                 "--replicates", "10", "--resamples", "20"]) == 0
    out = capsys.readouterr().out.splitlines()
    # analysis/claims.toml plans 5 seeds at both starts of protocol paper; the fixture's cells have 3
    assert out[1].startswith("simulated at the design of protocol paper: 12 settings, fggp + 3 other methods "
                             "(annealed, gmp, random) + dense, seeds by start: 5 at the dense-start, 5 at the "
                             "50%-sparse-start; standard deviations seed ")
    assert "null: no difference anywhere (5 seeds)" in out
    # a plan given on the command line: the design it would make; the fixture has no 80%-sparse start, which
    # the simulation then has, at the fixture's sparsities, with the pooled noise
    assert main(["calibrate", "--fit", "paper", "--results", str(grid_dir), "--design", "--plan",
                 "dense-start=6,80%-sparse-start=3", "--replicates", "10", "--resamples", "20"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "+ dense, seeds by start: 6 at the dense-start, 3 at the 80%-sparse-start; " in out[1]
    assert " at cifar10 resnet50 90% 80%-sparse-start" in out[1] and "take the pooled noise" in out[1]
    assert "null: no difference anywhere (6/6/6/6/6/6/3/3/3/3/3/3 seeds by setting)" in out
    for plan, msg in (("dense-start=1", "dense-start must be a whole number of seeds >= 2, got 1"),
                      ("dense=12", "'dense' is not a start label; use \"dense-start\" or e.g. \"50%-sparse-start\""),
                      ("12", "give START=N pairs, such as dense-start=12,50%-sparse-start=5")):
        assert main(["calibrate", "--fit", "paper", "--results", str(grid_dir), "--design", "--plan", plan]) == 2
        assert capsys.readouterr().err == f"error: --plan {plan}: {msg}\n"
    for argv, msg in ((["--plan"], "error: --plan simulates the planned design's final look: use it with --design "
                                   "--fit P, without --seeds or --looks\n"),
                      (["--design", "--plan", "--seeds", "6"], None), (["--design", "--plan", "--looks", "3-5"], None)):
        assert main(["calibrate", "--fit", "paper", "--results", str(grid_dir)] + argv) == 2
        assert capsys.readouterr().err == (msg or "error: --plan simulates the planned design's final look: use it "
                                                  "with --design --fit P, without --seeds or --looks\n")
    import analysis.claims as claims

    real = claims.load_claims()
    monkeypatch.setattr(claims, "load_claims", lambda *a, **k: {**real, "plans": {}})
    assert main(["calibrate", "--fit", "paper", "--results", str(grid_dir), "--design", "--plan"]) == 2
    assert capsys.readouterr().err == ("error: protocol paper has no planned seeds; add [plans.paper] to "
                                       "analysis/claims.toml or drop --plan\n")


def _holm(p):
    """Holm's adjusted p-values, written out for the test: sorted ascending, p_(i) -> max_{j<=i} min(1, (m-j) p_(j))."""
    p = np.asarray(p, float)
    out = np.full(p.shape, np.nan)
    idx = [i for i in np.argsort(p, kind="stable") if np.isfinite(p[i])]
    run = 0.0
    for j, i in enumerate(idx):
        run = max(run, min(1.0, (len(idx) - j) * p[i]))
        out[i] = run
    return out


def _signed_rank_two_sided(d):
    """Exact two-sided signed-rank p by enumerating every sign pattern (average ranks for ties, zeros dropped)."""
    from itertools import product

    from scipy import stats as st

    d = np.asarray(d, float)
    d = d[d != 0]
    r = st.rankdata(np.abs(d))
    obs, mu = r[d > 0].sum(), r.sum() / 2
    null = np.array([sum(ri for ri, s in zip(r, signs) if s) for signs in product((0, 1), repeat=d.size)])
    return float(np.mean(np.abs(null - mu) >= abs(obs - mu) - 1e-9))


def test_every_p_value_column_means_what_its_header_says(tmp_path):
    """The comparisons table of a fake grid (5 seeds, fggp, annealed, gmp, dense), every p-value column recomputed
    here from the records with scipy: the two-sided descriptive tests, the decision test of each row (two-sided
    against a sparse method, one-sided fggp > dense against dense) and its Holm-adjusted p within the baseline's
    family, the reverse one-sided test of the dense rows, TOST; the Markdown shows the same numbers under the
    headers that name them, and every class agrees with its p-values."""
    from scipy import stats as st

    from analysis.formatting import fmt_p

    write_grid(tmp_path, methods=("fggp", "annealed", "gmp"), archs=("vgg19",), seeds=range(5), noise=0.1,
               effects={"fggp": 0.6, "annealed": 0.3, "gmp": 0.0, "dense": 2.5})
    out = tmp_path / "o"
    assert figures_main(["--results", str(tmp_path), "--out", str(out), "--only", "comparisons"]) == 0
    c = pd.read_csv(out / "paper" / "comparisons.csv")
    runs = load_runs(tmp_path)
    done = runs[runs["status"] == "completed"]

    def values(method, t, d):
        if method == "dense":
            sel = done[done["method"] == "dense"]
        else:
            sel = done[(done["method"] == method) & (done["target_sparsity"] == t) & (done["initial_density"] == d)]
        return sel.set_index("seed")["test_acc"]

    want = {k: [] for k in ("p_ttest", "p_wilcoxon", "p_welch", "p_test", "p_reverse", "p_tost")}
    for r in c.itertuples(index=False):
        a, b = values("fggp", r.target_sparsity, r.initial_density), values(r.baseline, r.target_sparsity,
                                                                            r.initial_density)
        seeds = sorted(set(a.index) & set(b.index))
        x, y = a[seeds].to_numpy(), b[seeds].to_numpy()
        d = x - y
        want["p_ttest"].append(st.ttest_rel(x, y).pvalue)
        want["p_wilcoxon"].append(_signed_rank_two_sided(d))
        want["p_welch"].append(st.ttest_ind(a.to_numpy(), b.to_numpy(), equal_var=False).pvalue)
        one = r.baseline == "dense"
        assert r.test == ("greater" if one else "two-sided")
        want["p_test"].append(st.ttest_rel(x, y, alternative="greater" if one else "two-sided").pvalue)
        want["p_reverse"].append(st.ttest_rel(x, y, alternative="less").pvalue if one else np.nan)
        want["p_tost"].append(max(st.ttest_1samp(d, -0.5, alternative="greater").pvalue,
                                  st.ttest_1samp(d, 0.5, alternative="less").pvalue))
    for col, vals in want.items():
        np.testing.assert_allclose(c[col].to_numpy(float), vals, rtol=1e-5, atol=1e-7, err_msg=col)
    for b, g in c.groupby("baseline"):  # Holm within each baseline's family of settings
        for col, src in (("p_test_holm", "p_test"), ("p_reverse_holm", "p_reverse"), ("p_tost_holm", "p_tost")):
            np.testing.assert_allclose(g[col].to_numpy(float), _holm(g[src].to_numpy(float)), rtol=1e-5, atol=1e-7,
                                       err_msg=f"{b} {col}")
    # the classes follow from those p-values and the signs
    sig = c["p_test_holm"] < 0.05
    ahead = c["class"].isin(["ahead", "ahead <d"])
    behind = c["class"] == "behind"
    two = c["test"] == "two-sided"
    assert (ahead == (sig & (c["mean_diff"] > 0))).all()
    assert (behind[two] == (sig & (c["mean_diff"] < 0))[two]).all()
    assert (behind[~two] == (c["p_reverse_holm"] < 0.05)[~two]).all()
    assert ((c["class"] == "equivalent") == (~ahead & ~behind & (c["p_tost_holm"] < 0.05))).all()
    assert ahead.any() and behind.any()
    # the Markdown: each header shows its column
    md = [ln for ln in (out / "paper" / "comparisons.md").read_text().splitlines() if ln.startswith("| ")]
    head = [h.strip() for h in md[0].strip("|").split("|")]
    rows = [[x.strip() for x in ln.strip("|").split("|")] for ln in md[1:]]
    for header, col in (("p (t, two-sided)", "p_ttest"), ("p (Wilcoxon, two-sided)", "p_wilcoxon"),
                        ("p (Welch, two-sided)", "p_welch"), ("p (test, Holm)", "p_test_holm"),
                        ("p (TOST, Holm)", "p_tost_holm")):
        j = head.index(header)
        assert [row[j] for row in rows] == [fmt_p(p) for p in c[col]], header
    j = head.index("p (fggp < baseline, Holm)")
    assert [row[j] for row in rows] == [fmt_p(p) if t == "greater" else "—" for p, t in zip(c["p_reverse_holm"],
                                                                                          c["test"])]


def test_a_study_is_audited_and_drawn_once_all_its_protocols_have_records(tmp_path, capsys):
    """The packaged study cpu-both joins cpu and cpu-resnet. With records of cpu alone: one line says the study
    waits for cpu-resnet, and neither audit nor figures judge it. With both: the audit has a block for the study
    covering both protocols' settings, and figures writes its outputs into <out>/cpu-both/."""
    write_grid(tmp_path, protocol="cpu", archs=("vgg19",), starts=(1.0,), seeds=range(3),
               methods=("fggp", "annealed", "gmp", "random"))
    assert audit_main(["--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.endswith("\nstudy cpu-both (cpu + cpu-resnet): not judged yet, no records of cpu-resnet (its verdicts "
                        "would be those of cpu alone)\n")
    assert audit_main(["--results", str(tmp_path), "--protocol", "cpu-both"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cpu-resnet has no records yet" in err
    write_grid(tmp_path, protocol="cpu-resnet", archs=("resnet50",), starts=(1.0,), seeds=range(3),
               methods=("fggp", "annealed", "gmp", "random"))
    assert audit_main(["--results", str(tmp_path), "--protocol", "cpu-both"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("study (cpu + cpu-resnet) cpu-both: ")
    assert ("covers: protocol cpu: cifar10 vgg19 at 90/95/98% from dense-start (3 settings); protocol cpu-resnet: "
            "cifar10 resnet50 at 90/95/98% from dense-start (3 settings)") in " ".join(out.split())  # wrapped lines
    o = tmp_path / "o"
    assert figures_main(["--results", str(tmp_path), "--out", str(o), "--only", "claims_audit", "--only",
                         "sensitivity", "--only", "report"]) == 0
    assert {p.name for p in o.iterdir()} == {"cpu", "cpu-resnet", "cpu-both"}
    t = pd.read_csv(o / "cpu-both" / "claims_audit.csv")
    assert set(t["scope"]) == {"study"} and (t["n_settings"].iloc[:2] == 6).all()
    assert (o / "cpu-both" / "sensitivity.csv").exists()
    # the study's report: both protocols, each with its settings and a link to its own report
    report = (o / "cpu-both" / "REPORT.md").read_text()
    assert report.startswith("# Study `cpu-both`: protocols `cpu`, `cpu-resnet` judged together\n")
    assert "Each protocol's own report: [cpu](../cpu/REPORT.md), [cpu-resnet](../cpu-resnet/REPORT.md)." in report
    assert "| settings | cifar10 vgg19 at 90/95/98% from dense-start (3 settings) |" in report
    assert "| settings | cifar10 resnet50 at 90/95/98% from dense-start (3 settings) |" in report
    assert "| preset | not named by the runs' commands (39 runs) |" in report  # 4 methods x 3 x 3 seeds + 3 dense

"""The grid runner and re-verification."""

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from fggp_repro import config as C
from fggp_repro import grid
from fggp_repro.verify import compare, verify


def test_parse_seeds():
    assert grid.parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert grid.parse_seeds("0,2,5") == [0, 2, 5]
    assert grid.parse_seeds("5,1-2") == [1, 2, 5]
    for bad in ("a-b", "", "-1"):
        with pytest.raises(C.ConfigError, match="--seeds"):
            grid.parse_seeds(bad)


def test_expand_counts_dense_once_per_seed():
    runs = grid.expand(["dense", "fggp", "gmp"], [0.9, 0.95], ["dense", "sparse50"], [0, 1, 2])
    assert len(runs) == 3 + 2 * 2 * 2 * 3  # the grid: 6 methods x 3 x 2 x 5 + 5 dense = 185 likewise
    assert [r.label() for r in runs[:4]] == ["dense seed 0", "fggp 0.9 dense seed 0", "gmp 0.9 dense seed 0",
                                             "fggp 0.9 sparse50 seed 0"]
    assert runs[9].label() == "dense seed 1"  # seed by seed: 1 dense + 8 pruned runs per seed
    assert len(grid.expand(["dense"] + ["fggp", "annealed", "gf-annealed", "mf-fixed", "gmp", "random"],
                           [0.9, 0.95, 0.98], ["dense", "sparse50"], list(range(5)))) == 185


def test_grid_runs_missing_runs_only(tmp_path):
    args = [sys.executable, "-m", "fggp_repro", "grid", "--preset", "smoke", "--methods", "dense,gmp",
            "--sparsities", "0.9", "--inits", "dense", "--seeds", "0", "--jobs", "2", "--out", str(tmp_path)]
    first = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "grid: 2 runs, 0 already recorded, 2 to run with 2 job(s)" in first.stdout
    records = sorted(tmp_path.glob("raw/synthetic/vgg19/*/*.json"))
    assert [p.parent.name for p in records] == ["dense", "gmp"]
    rec = json.loads(records[1].read_text())
    # the record carries the exact command that reproduces it
    assert "--preset smoke --method gmp --seed 0 --sparsity 0.9 --init dense" in rec["provenance"]["command"]
    second = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert "2 already recorded, 0 to run" in second.stdout


def _record(test_acc=50.0, sha="a" * 64, device="cpu (x, 2 threads)", events=((10, 5),), zero=100):
    return {
        "status": "completed", "weights_sha256": sha,
        "metrics": {"test_acc": test_acc, "best_test_acc_after_pruning": test_acc, "final_train_loss": 1.0,
                    "sparsity": zero / 1000, "prunable_sparsity": zero / 900},
        "weight_counts": {"denominator": 1000, "zero": zero, "prunable": 900, "prunable_zero": zero},
        "pruning_events": [{"iteration": i, "n_pruned": n} for i, n in events],
        "history": [{"test_acc": test_acc}],
        "provenance": {"torch": "2", "device": device, "cpu_capability": "AVX2", "deterministic": True},
    }


def test_compare_exact_on_the_same_platform():
    old = _record()
    assert all(c.ok for c in compare(old, copy.deepcopy(old), same_platform=True, tolerance=1.0))
    new = _record(test_acc=50.01)
    failed = {c.field for c in compare(old, new, same_platform=True, tolerance=1.0) if not c.ok}
    assert failed == {"metrics.test_acc", "metrics.best_test_acc_after_pruning", "history.test_acc (worst epoch)"}


def test_compare_tolerances_across_platforms():
    old = _record()
    near = _record(test_acc=50.9, sha="b" * 64, zero=101)  # 0.9 points and one weight away
    checks = compare(old, near, same_platform=False, tolerance=1.0)
    assert all(c.ok for c in checks) and "weights_sha256" not in {c.field for c in checks}
    far = _record(test_acc=51.5, events=((10, 6),), zero=102)
    failed = {c.field for c in compare(old, far, same_platform=False, tolerance=1.0) if not c.ok}
    assert failed == {"metrics.test_acc", "metrics.best_test_acc_after_pruning", "weight_counts.zero",
                      "weight_counts.prunable_zero", "metrics.sparsity", "metrics.prunable_sparsity",
                      "pruning_events (iteration, n_pruned)"}


def test_verify_reruns_a_record_exactly_and_catches_edits(tmp_path):
    from runcfg import tiny_overrides
    from fggp_repro.trainer import train

    cfg = C.load(overrides=tiny_overrides(pruning={"method": "fggp"}, run={"seed": 2}))
    res = train(cfg, tmp_path, quiet=True)
    report = verify(res.path)
    assert report.same_platform and report.ok
    rec = json.loads(res.path.read_text())
    rec["metrics"]["test_acc"] += 0.5
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(rec))
    bad = verify(edited)
    assert not bad.ok and [c.field for c in bad.checks if not c.ok] == ["metrics.test_acc"]
    rec["config"]["training"]["lr"] = 0.5
    edited.write_text(json.dumps(rec))
    with pytest.raises(C.ConfigError, match="hashes to"):
        verify(edited)


# One committed record of the `mini` grid (fggp, 95 %, dense start, seed 0), rerun on every CI run.
COMMITTED = "results/raw/cifar10-jpeg/vgg19/fggp/vgg19-fggp-e4c7a3df0ee66bb2.json"


@pytest.mark.realdata
@pytest.mark.slow
def test_a_committed_mini_record_reverifies(jpeg_root):
    repo = Path(__file__).resolve().parent.parent
    # on the platform that made it: exact, weights_sha256 included; elsewhere: accuracies within 3 points
    report = verify(repo / COMMITTED, data_root=str(jpeg_root), tolerance=3.0)
    print("\n".join(report.lines()))
    assert report.ok, "\n".join(report.lines())

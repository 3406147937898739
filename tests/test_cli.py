"""The command line: generated flags, one-line errors with exit 2, help texts, and dispatch."""

import subprocess
import sys

import pytest

from fggp_repro import cli


def _run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "fggp_repro", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


@pytest.mark.parametrize("args, fragment", [
    (["--sparsity", "1.5"], "sparsity must be a fraction in (0, 1)"),
    (["--epochs", "-3"], "epochs must be a positive integer"),
    (["--method", "nope"], "unknown method 'nope'"),
    (["--arch", "vgg16"], "unknown architecture 'vgg16'"),
    (["--preset", "nope"], "unknown preset 'nope'"),
    (["--epochs", "abc"], "invalid int value: 'abc'"),
])
def test_bad_input_is_one_line_and_exit_2(args, fragment, capsys):
    with pytest.raises(SystemExit) as e:
        code = cli.main(["train", *args, "--print-config"])
        raise SystemExit(code)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert fragment in err and len(err.strip().splitlines()) == 1


def test_flags_override_preset(capsys):
    assert cli.main(["train", "--preset", "smoke", "--method", "fggp", "--sparsity", "0.95", "--no-augment",
                     "--milestones", "2,4", "--print-config"]) == 0
    out = capsys.readouterr().out
    assert 'method = "fggp"' in out and "sparsity = 0.95" in out and "augment = false" in out
    assert "milestones = [2, 4]" in out and 'dataset = "synthetic"' in out and 'protocol = "smoke"' in out


def test_every_subcommand_has_help():
    for sub in ([], ["train"], ["presets"]):
        res = _run(*sub, "--help")
        assert res.returncode == 0 and "usage: fggp-repro" in res.stdout
    train_help = _run("train", "--help").stdout
    for flag in ("--method", "--sparsity", "--init", "--rate", "--seed", "--data-root", "--download", "--width"):
        assert flag in train_help


def test_smoke_train_end_to_end(tmp_path):
    res = _run("train", "--preset", "smoke", "--seed", "3", "--method", "fggp", "--out", str(tmp_path), "--quiet")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("completed: ") and "sparsity=0.9000" in res.stdout
    again = _run("train", "--preset", "smoke", "--seed", "3", "--method", "fggp", "--out", str(tmp_path), "--quiet")
    assert again.stdout.startswith("skipped: ")


def test_missing_data_is_one_line(tmp_path):
    res = _run("train", "--dataset", "cifar10", "--data-root", str(tmp_path), "--quiet", "--out", str(tmp_path))
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1 and "--download" in res.stderr


def test_training_core_does_not_import_analysis_or_pandas():
    code = ("import sys, fggp_repro.cli, fggp_repro.trainer, fggp_repro.pruning.pruner; "
            "bad = [m for m in ('pandas', 'seaborn', 'analysis') if m in sys.modules]; print(bad)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.stdout.strip() == "[]"

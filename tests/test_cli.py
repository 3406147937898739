"""The command line: generated flags, one-line errors with exit 2, help texts, and dispatch."""

import errno
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from fggp_repro import cli


def _run(*args, cwd=None, env=None):
    return subprocess.run([sys.executable, "-m", "fggp_repro", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600, env=None if env is None else {**os.environ, **env})


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


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


def test_every_subcommand_has_help(capsys):
    for sub in ([], ["train"], ["grid"], ["verify"], ["data"], ["presets"]):
        with pytest.raises(SystemExit) as e:
            cli.main([*sub, "--help"])
        out = capsys.readouterr().out
        assert e.value.code == 0 and "usage: fggp-repro" in out
        assert "%%" not in out  # argparse leaves a literal %% in descriptions
        if sub == ["train"]:
            for flag in ("--method", "--sparsity", "--init", "--rate", "--seed", "--data-root", "--download",
                         "--width", "--threads", "--precision"):
                assert flag in out
        if sub == ["grid"]:
            assert "--print-commands" in out and "--dry-run" in out and "--threads" in out


def test_version():
    res = _run("--version")
    assert res.returncode == 0 and res.stdout.strip() == "fggp-repro 0.1.0"


def test_presets_are_one_line_each_with_what_and_cost(capsys):
    assert cli.main(["presets"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [ln.split()[0] for ln in lines] == ["cpu", "cpu-resnet", "mini", "paper", "paper-short", "smoke"]
    for ln in lines:
        assert "; " in ln and ("CPU cores" in ln or "GPU" in ln), ln
    assert "about 1 minute a run" in lines[2] and "815-906 s of wall time" in lines[4]


def test_dense_runs_ignore_sparsity_and_start_and_say_so(capsys):
    assert cli.main(["train", "--preset", "mini", "--method", "dense", "--sparsity", "0.98", "--init", "sparse50",
                     "--seed", "0", "--print-config"]) == 0
    out, err = capsys.readouterr()
    assert _one_line(err) == ("note: a dense run ignores --sparsity, --init (one dense run per seed: its run id "
                              "leaves them out)")
    assert "sparsity = 0.9\n" in out and 'init = "dense"' in out


def test_smoke_train_end_to_end(tmp_path):
    res = _run("train", "--preset", "smoke", "--seed", "3", "--method", "fggp", "--out", str(tmp_path), "--quiet",
               "--threads", "1")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("completed: ") and "sparsity=0.9000" in res.stdout
    # the README's first command shows pruning at work: far above chance (10 %) at 90 % sparsity
    assert float(res.stdout.split("test_acc=")[1].split()[0]) > 50
    again = _run("train", "--preset", "smoke", "--seed", "3", "--method", "fggp", "--out", str(tmp_path), "--quiet",
                 "--threads", "1")
    assert again.stdout.startswith("skipped: ")


def test_missing_data_is_one_line_naming_the_set_up_command(tmp_path):
    res = _run("train", "--dataset", "cifar10", "--data-root", str(tmp_path), "--quiet", "--out", str(tmp_path))
    assert res.returncode == 2
    line = _one_line(res.stderr)
    assert line.startswith(f"fggp-repro train: error: CIFAR-10 (cifar-10-batches-py) not found under {tmp_path}: "
                           "run `fggp-repro data --from PATH`")
    assert not (tmp_path / "raw").exists() and not (tmp_path / "checkpoints").exists()


def test_download_without_network_is_one_line_and_leaves_nothing(tmp_path):
    # port 9 (discard) on the loopback refuses the connection at once, as a machine without network would
    env = {"FGGP_CIFAR10_URL": "http://127.0.0.1:9/cifar-10-python.tar.gz"}
    root = tmp_path / "new" / "root"
    res = _run("train", "--dataset", "cifar10", "--download", "--data-root", str(root), "--quiet",
               "--out", str(tmp_path / "out"), env=env)
    assert res.returncode == 2
    assert _one_line(res.stderr).startswith("fggp-repro train: error: cannot download CIFAR-10 from "
                                            "http://127.0.0.1:9/cifar-10-python.tar.gz (")
    assert "run `fggp-repro data --from FILE`" in res.stderr
    assert not (tmp_path / "new").exists() and not (tmp_path / "out" / "raw").exists()
    # a file that is not CIFAR-10's archive: refused on its MD5, nothing kept
    fake = tmp_path / "fake.tar.gz"
    fake.write_bytes(b"not the archive")
    res = _run("data", "--download", "--data-root", str(root), env={"FGGP_CIFAR10_URL": fake.as_uri()})
    assert res.returncode == 2 and "is not CIFAR-10's cifar-10-python.tar.gz (MD5 " in res.stderr.splitlines()[-1]
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("args, message", [
    (["data"], "fggp-repro data: error: pass --from PATH"),
    (["data", "--from", "/no/such/file.tar.gz"], "fggp-repro data: error: /no/such/file.tar.gz not found: pass"),
    (["verify", "/no/such/record.json"], "fggp-repro verify: error: cannot read the record /no/such/record.json"),
    (["grid", "--preset", "smoke", "--jobs", "0"], "fggp-repro grid: error: --jobs must be >= 1, got 0"),
    # was accepted, and stopped after the first epoch as if it said 1
    (["train", "--preset", "smoke", "--stop-after-epochs", "0"],
     "fggp-repro train: error: --stop-after-epochs must be >= 1 (the epochs this call trains), got 0"),
])
def test_bad_arguments_of_other_commands(args, message, capsys):
    assert cli.main(args) == 2
    assert _one_line(capsys.readouterr().err).startswith(message)


def test_verify_refuses_a_bad_tolerance_and_malformed_records_at_once(tmp_path, capsys, monkeypatch):
    from fggp_repro import verify as V

    # no training before the record is checked: a rerun would call the trainer, which here fails the test
    monkeypatch.setattr(V, "train", lambda *a, **k: pytest.fail("trained before the record was checked"))
    rec = tmp_path / "r.json"
    rec.write_text(json.dumps({"schema": "fggp-repro/run-record/v1", "run_id": "x", "status": "completed"}))
    assert cli.main(["verify", str(rec), "--tolerance", "-1"]) == 2
    assert _one_line(capsys.readouterr().err) == ("fggp-repro verify: error: --tolerance must be a positive number "
                                                  "of percentage points, got -1.0")
    assert cli.main(["verify", str(rec)]) == 2
    assert _one_line(capsys.readouterr().err) == (
        f"fggp-repro verify: error: {rec} is not a complete run record (config missing); verify "
        "needs a record written by `fggp-repro train` (docs/RECORD_SCHEMA.md)")
    rec.write_text("[1, 2")
    assert cli.main(["verify", str(rec)]) == 2
    assert _one_line(capsys.readouterr().err).startswith(f"fggp-repro verify: error: {rec} is not JSON (")


def test_unwritable_out_fails_before_training(tmp_path, capsys, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert cli.main(["train", "--preset", "smoke", "--out", str(blocker / "runs"), "--quiet"]) == 2
    assert _one_line(capsys.readouterr().err) == (
        f"fggp-repro train: error: cannot write the record folder {blocker}/runs/raw/synthetic/vgg19/dense: "
        f"{blocker} is a file, not a folder; choose another --out")
    # a read-only file system (simulated: creating any file there fails with EROFS)
    def read_only(*a, **k):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    assert cli.main(["train", "--preset", "smoke", "--out", str(tmp_path / "ro"), "--quiet"]) == 2
    assert _one_line(capsys.readouterr().err) == (
        f"fggp-repro train: error: cannot write the record folder {tmp_path}/ro/raw/synthetic/vgg19/dense "
        "(Read-only file system); choose another --out")
    assert not (tmp_path / "ro").exists()


def _wait_for(predicate, proc, timeout=300):
    t0 = time.time()
    while not predicate():
        assert proc.poll() is None, proc.communicate()
        assert time.time() - t0 < timeout
        time.sleep(0.05)


@pytest.mark.slow
def test_ctrl_c_in_train_and_grid_keeps_the_checkpoint_and_says_so(tmp_path):
    def start(*args, sigint=signal.SIG_DFL):
        # SIGINT back to its default in the child: a shell runs background jobs (`.ci/run &`, nohup) with SIGINT
        # ignored, Python keeps an ignored SIGINT ignored, and Ctrl-C would then never reach the code under test
        return subprocess.Popen([sys.executable, "-m", "fggp_repro", *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, sigint))

    # train: 40 smoke epochs; Ctrl-C (SIGINT to the process group, as a terminal sends it) after the first checkpoint
    out = tmp_path / "train"
    proc = start("train", "--preset", "smoke", "--epochs", "40", "--milestones", "30", "--out", str(out),
                 "--threads", "1", "--quiet")
    _wait_for(lambda: any((out / "checkpoints").glob("*.pt")), proc)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    line = _one_line(err)
    ckpt = next((out / "checkpoints").glob("*.pt"))
    assert line.startswith("fggp-repro train: interrupted: the checkpoint after epoch ")
    assert line.endswith(f"is kept ({ckpt}); run the same command again to resume from it")
    assert not (out / "raw").exists() or not any((out / "raw").rglob("*.json"))
    # grid: two runs in flight, interrupted once both have a checkpoint
    out = tmp_path / "grid"
    proc = start("grid", "--preset", "smoke", "--methods", "dense,fggp", "--sparsities", "0.9", "--inits", "dense",
                 "--seeds", "0", "--jobs", "2", "--threads", "1", "--out", str(out))
    _wait_for(lambda: len(list((out / "checkpoints").glob("*.pt"))) == 2, proc)
    runs = _freeze_runs(out)  # a 5-epoch smoke run could otherwise finish (and drop its checkpoint) meanwhile
    os.killpg(proc.pid, signal.SIGINT)  # pending in the frozen runs until they go on
    time.sleep(0.5)
    _thaw(runs)
    stdout, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, stdout + err
    assert _one_line(err) == ("fggp-repro grid: interrupted: 2 run(s) in flight stopped, each keeping the checkpoint "
                              "of its last finished epoch, and every finished record is kept; run the same command "
                              "again to resume")
    assert len(list((out / "checkpoints").glob("*.pt"))) == 2
    # grid started as a shell's background job (SIGINT ignored, inherited by its runs), stopped by SIGTERM to the
    # grid alone (kill, a scheduler's time limit): its runs stop too, keeping their checkpoints, none is orphaned
    out = tmp_path / "grid-term"
    proc = start("grid", "--preset", "smoke", "--methods", "dense,fggp", "--sparsities", "0.9", "--inits", "dense",
                 "--seeds", "1", "--jobs", "2", "--threads", "1", "--out", str(out), sigint=signal.SIG_IGN)
    _wait_for(lambda: len(list((out / "checkpoints").glob("*.pt"))) == 2, proc)
    runs = _freeze_runs(out)
    proc.terminate()  # the grid alone; the SIGTERM it sends its runs waits in them until they go on
    time.sleep(0.5)
    _thaw(runs)
    stdout, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, stdout + err
    assert _one_line(err) == ("fggp-repro grid: terminated (SIGTERM): 2 run(s) in flight stopped, each keeping the "
                              "checkpoint of its last finished epoch, and every finished record is kept; run the same "
                              "command again to resume")
    assert len(list((out / "checkpoints").glob("*.pt"))) == 2
    orphans = [p for p in Path("/proc").glob("[0-9]*") if str(out) in _cmdline(p)]
    assert orphans == []


def _freeze_runs(out: Path) -> list[int]:
    """SIGSTOP the grid's two training processes (their command lines name ``out``), so that no epoch ends
    between the moment a test sees their checkpoints and the moment its signal reaches them."""
    pids = [int(p.name) for p in Path("/proc").glob("[0-9]*")
            if "fggp_repro train " in _cmdline(p) and str(out) in _cmdline(p)]
    assert len(pids) == 2, pids
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    return pids


def _thaw(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass


def _cmdline(proc_dir: Path) -> str:
    try:
        return (proc_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_training_core_does_not_import_analysis_or_pandas():
    code = ("import sys, fggp_repro.cli, fggp_repro.trainer, fggp_repro.pruning.pruner; "
            "bad = [m for m in ('pandas', 'seaborn', 'analysis') if m in sys.modules]; print(bad)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.stdout.strip() == "[]"


def test_a_closed_output_pipe_ends_quietly_with_141(monkeypatch, capsys):
    # `fggp-repro audit | head`: the reader goes away and the next write raises BrokenPipeError
    from fggp_repro import cli

    def closed(argv):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(cli, "_run_external", lambda name, argv: closed(argv))
    monkeypatch.setattr(cli, "_stdout_closed", lambda: 141)  # keep pytest's own stdout open
    assert cli.main(["audit"]) == 141
    assert capsys.readouterr().err == ""


def test_main_puts_the_callers_sigterm_handler_back():
    before = signal.getsignal(signal.SIGTERM)
    assert cli.main(["presets"]) == 0
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_run_stopped_as_asked_exits_75_and_the_same_command_finishes_it(tmp_path):
    args = [sys.executable, "-m", "fggp_repro", "train", "--preset", "smoke", "--method", "gmp", "--seed", "4",
            "--threads", "1", "--quiet", "--out", str(tmp_path)]
    first = subprocess.run([*args, "--stop-after-epochs", "2"], capture_output=True, text=True)
    # not finished: the grid tells a paused run from a finished one by this code, never by the words
    assert first.returncode == cli.EXIT_STOPPED == 75 and first.stdout.startswith("stopped as asked; checkpoint ")
    second = subprocess.run(args, capture_output=True, text=True)
    assert second.returncode == 0 and second.stdout.startswith("completed: ")

"""Run records: the platform a record names, file modes, output folders checked before a run, the run lock."""

import json
import os
from pathlib import Path

import pytest

from fggp_repro import records as R
from fggp_repro.spec import files as F
from fggp_repro.spec import platform as P

REPO = Path(__file__).resolve().parent.parent
# a committed `mini` record, made before provenance had device_model: an Intel Xeon, 1 thread, fp32 by default
MINI = REPO / "results/raw/cifar10-jpeg/vgg19/fggp/vgg19-fggp-e4c7a3df0ee66bb2.json"


def test_platform_of_an_old_record_reads_model_and_threads_from_the_device_string():
    rec = json.loads(MINI.read_text())
    assert "precision" not in rec["config"]["run"] and "device_model" not in rec["provenance"]
    # the clock ("@ 2.50GHz") is not part of the model: it says nothing about the kernels a CPU runs
    assert P.platform_of(rec) == {"torch": "2.15.0+cu132", "device": "cpu (Intel(R) Xeon(R) Processor)",
                                  "cpu_isa": "AVX512", "onednn_isa": None, "threads": 1, "precision": "fp32",
                                  "strict": True, "channels_last": True}


def test_platform_of_a_new_record_and_what_makes_two_platforms_differ():
    rec = {"config": {"run": {"threads": 0, "precision": "bf16"}},
           "provenance": {"torch": "2.15.0", "device": "NVIDIA H100 80GB HBM3", "device_model": "NVIDIA H100 80GB HBM3",
                          "torch_threads": 2, "cpu_capability": "AVX512", "deterministic": True}}
    rec["provenance"]["onednn_isa"] = "AVX512_CORE_BF16"
    assert P.platform_of(rec) == {"torch": "2.15.0", "device": "NVIDIA H100 80GB HBM3", "cpu_isa": "AVX512",
                                  "onednn_isa": "AVX512_CORE_BF16", "threads": 2, "precision": "bf16", "strict": True,
                                  "channels_last": None}
    for key, value in (("torch_threads", 1), ("cpu_capability", "AVX2"), ("deterministic", False),
                       ("device_model", "NVIDIA H200"), ("onednn_isa", "AVX10_1_512_AMX")):
        other = json.loads(json.dumps(rec))
        other["provenance"][key] = value
        assert P.platform_key(other) != P.platform_key(rec), key
    for key, value in (("precision", "fp32"), ("channels_last", False)):
        other = json.loads(json.dumps(rec))
        other["config"]["run"][key] = value
        assert P.platform_key(other) != P.platform_key(rec), key


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_files_are_written_with_the_users_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        R.write_record(tmp_path / "r.json", {"a": 1})
        F.atomic_write_bytes(tmp_path / "sub" / "c.pt", b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "r.json").stat().st_mode & 0o777 == mode
    assert (tmp_path / "sub" / "c.pt").stat().st_mode & 0o777 == mode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json", "sub"]  # no temp file left


def test_check_writable_creates_nothing(tmp_path):
    F.check_writable(tmp_path / "a" / "b")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "f").write_text("")
    with pytest.raises(F.OutputError, match=r"cannot write the output folder .*/f/x: .*/f is a file, not a folder"):
        F.check_writable(tmp_path / "f" / "x")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_check_writable_refuses_a_read_only_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(F.OutputError, match="Permission denied"):
            F.check_writable(ro / "runs")
    finally:
        ro.chmod(0o755)


def test_a_second_train_of_the_same_run_into_the_same_folder_stops_in_one_line(tmp_path):
    import subprocess
    import sys

    from fggp_repro.spec import config as C

    args = ["train", "--preset", "smoke", "--method", "gmp", "--seed", "5", "--epochs", "1", "--milestones", "",
            "--threads", "1", "--quiet", "--out", str(tmp_path)]
    rid = C.run_id(C.load(preset="smoke", overrides={"pruning": {"method": "gmp"}, "run": {"seed": 5},
                                                     "training": {"epochs": 1, "milestones": []}}))
    lock = tmp_path / "checkpoints" / f"{rid}.lock"
    with R.run_lock(lock, f"run {rid}"):  # a first train of this run, still going
        res = subprocess.run([sys.executable, "-m", "fggp_repro", *args], capture_output=True, text=True)
        assert res.returncode == 2 and res.stdout == ""
        assert res.stderr == (f"fggp-repro train: error: run {rid} is already being trained into this folder (pid "
                              f"{os.getpid()} on {os.uname().nodename}, since {lock.read_text().split('since ')[1]}); "
                              "wait for it to finish (its record is then kept and this command skips it) or choose "
                              "another --out\n")
        assert not (tmp_path / "raw").exists()
    assert not lock.exists()  # released: the lock file goes with it
    res = subprocess.run([sys.executable, "-m", "fggp_repro", *args], capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.startswith("completed: ") and not lock.exists()

"""scripts/device-grid.sh end to end on the CPU: a deadline stops the grid, the next job resumes it, and the
archive holds every finished record, identical to an uninterrupted grid's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "device-grid.sh"
GRID = ["--methods", "dense,fggp", "--sparsities", "0.9", "--inits", "dense", "--seeds", "0", "--jobs", "2"]


def _job(tmp_path, name, minutes, runs, *flags, **env_extra):
    out = tmp_path / name
    env = dict(os.environ, OUT=str(out), RUNS=str(runs), DATA_TARBALL="none", FGGP_SOURCE_COMMIT="c0ffee", **env_extra)
    # the script runs `python`: the interpreter of these tests, whether or not its environment is activated
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    r = subprocess.run(["bash", str(SCRIPT), "smoke", str(minutes), *GRID, *flags], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    return out, r.stdout


def _archive(out: Path) -> dict:
    with tarfile.open(out / "records.tar.gz") as tf:
        return {Path(m.name).name: json.load(tf.extractfile(m)) for m in tf.getmembers() if m.name.endswith(".json")}


@pytest.mark.slow
def test_device_grid_stops_at_the_deadline_resumes_and_archives_every_record(tmp_path):
    runs = tmp_path / "runs"
    # 0.42 job-minutes leave a grid deadline of 0.42 - 1/3 = 0.087 min (5 s): each run stops after its first epoch
    out1, log1 = _job(tmp_path, "job1", 0.42, runs)
    assert "in flight (checkpointed) 2" in log1 and "done 0 of 2" in log1
    assert len(list((runs / "checkpoints").glob("*.pt"))) == 2
    assert not (out1 / "records.tar.gz").exists() or _archive(out1) == {}
    # the next job, resume-only, finishes both from their checkpoints
    out2, log2 = _job(tmp_path, "job2", 3, runs, "--resume-only")
    assert "(resume only)" in log2 and "done 2 of 2" in log2 and "left 0" in log2
    got = _archive(out2)
    assert len(got) == 2 and {r["setting"]["method"] for r in got.values()} == {"dense", "fggp"}
    assert all(r["status"] == "completed" and r["provenance"]["git_commit"] == "c0ffee" for r in got.values())
    assert not list((runs / "checkpoints").glob("*.pt"))
    # the same grid without interruption gives the same weights
    _, log3 = _job(tmp_path, "whole", 3, tmp_path / "runs-whole")
    whole = _archive(tmp_path / "whole")
    assert {k: r["weights_sha256"] for k, r in got.items()} == {k: r["weights_sha256"] for k, r in whole.items()}
    # CPU_VERIFY: a job reruns a record on the CPU beside the grid (nothing left to run here) and returns the report
    rec = next((runs / "raw").rglob("vgg19-fggp-*.json"))
    out4, log4 = _job(tmp_path, "job4", 3, runs, CPU_VERIFY=str(rec))
    assert "0 to run" in log4
    report = (out4 / f"verify-{rec.stem}.txt").read_text().splitlines()
    assert report[-2:] == ["MATCH (exact: bit-identical weights, same platform)", "verify exit status: 0"]

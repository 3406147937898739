"""benchmarks/step_profile.py: operators fall into the groups the table names, and the command runs end to end on
the smoke preset (a check that it works; what the shares are is measured there, not here)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "benchmarks" / "step_profile.py"


def _module():
    spec = importlib.util.spec_from_file_location("step_profile", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _run(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)


def test_operators_are_summed_into_their_groups():
    mod = _module()
    rows = [SimpleNamespace(key=k, self_cpu_time_total=t) for k, t in [
        ("aten::convolution_backward", 300.0), ("aten::mkldnn_convolution", 120.0), ("aten::native_batch_norm", 100.0),
        ("aten::native_batch_norm_backward", 80.0), ("aten::clamp_min", 20.0), ("aten::threshold_backward", 10.0),
        ("aten::add_", 30.0), ("aten::mul_", 20.0), ("aten::empty", 7.0), ("Optimizer.step#SGD.step", 3.0)]]
    assert mod.group_times(rows) == {
        "convolution, backward": 300.0, "convolution, forward": 120.0, "batch norm, forward": 100.0,
        "batch norm, backward": 80.0, "ReLU, forward and backward": 30.0,
        "elementwise (optimizer, masks, residual adds, casts)": 50.0, mod.OTHER: 10.0}


def test_the_profile_of_the_smoke_preset():
    r = _run("--preset", "smoke", "--steps", "2", "--warmup", "1", "--top", "3")
    assert r.returncode == 0, r.stdout + r.stderr
    lines = [x for x in r.stdout.splitlines() if x.startswith("| ")]
    groups = {c[0]: c for c in ([p.strip() for p in x.strip("|").split("|")] for x in lines)}
    mod = _module()
    names = list(mod.GROUPS) + [mod.OTHER]
    assert [n for n in groups if n in names] == names  # every group, in the table's order
    shares = [float(groups[n][2].rstrip(" %")) for n in names]
    assert abs(sum(shares) - 100.0) <= 0.5  # eight shares, each rounded to 0.1
    assert float(groups["convolution, backward"][2].rstrip(" %")) > 0  # a VGG step convolves
    top = [c for c in ([p.strip() for p in x.strip("|").split("|")] for x in lines) if len(c) == 5]
    assert len(top) == 1 + 3  # its header and three operators
    assert [c[1] in names for c in top[1:]] == [True] * 3
    assert "preset smoke: vgg19 width 0.125, batch 64" in r.stdout


def test_a_bad_preset_is_one_line():
    r = _run("--preset", "nope")
    assert r.returncode == 2
    assert r.stdout.strip().splitlines() == [
        "step_profile: error: unknown preset 'nope' (choose from: cpu, cpu-resnet, mini, paper, paper-short, smoke)"]
    assert "Traceback" not in r.stderr

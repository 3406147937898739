"""selftest: the committed probes, the verdict line of a probe, and one probe rerun on this machine."""

import json
from pathlib import Path

import pytest

from fggp_repro import isa
from fggp_repro import selftest as S
from fggp_repro.spec import config as C
from fggp_repro.spec.platform import PLATFORM_FIELDS, platform_of


def _probe(name):
    return json.loads((S.probe_dir() / f"{name}.json").read_text())


def test_every_probe_is_committed_and_is_the_config_it_names():
    assert sorted(p.stem for p in S.probe_dir().glob("*.json")) == sorted(p.name for p in S.PROBES)
    for p in S.PROBES:
        rec = _probe(p.name)
        # the record's config, read as today's config (fields added since at their defaults), is the probe's
        assert rec["run_id"] == C.run_id(p.config()) and C.from_dict(rec["config"]) == p.config()
        plat = platform_of(rec)
        assert plat["threads"] == p.threads and plat["strict"] is True
        assert plat["precision"] == ("fp32" if "fp32" in p.name else "bf16")
        assert rec["provenance"]["cpu_isa_requested"] == p.name.rsplit("-", 1)[1]
        batch = C.load(preset=p.preset).training.batch_size
        assert rec["config"]["data"]["train_subset"] == 20 * batch and rec["config"]["training"]["epochs"] == 1
        assert len(rec["pruning_events"]) == 8  # every 2 of the 20 iterations up to int(0.8 x 20) = 16


def _rec(sha, acc=10.0, **prov):
    base = {"torch": "2.15.0", "device_model": "cpu (AMD EPYC)", "cpu_capability": "AVX512",
            "onednn_isa": "AVX512_CORE_BF16", "torch_threads": 1, "deterministic": True}
    return {"weights_sha256": sha, "metrics": {"test_acc": acc}, "config": {"run": {"precision": "bf16"}},
            "provenance": dict(base, **prov)}


def test_the_verdict_line_names_what_differs():
    same, line = S.verdict("p", _rec("a" * 64), _rec("a" * 64, device_model="cpu (Intel Xeon)"), 12.4)
    assert same and line == "p" + " " * 33 + " bit-identical to the committed record (weights aaaaaaaaaaaaaaaa; 12 s)"
    same, line = S.verdict("p", _rec("a" * 64), _rec("b" * 64, 10.5, device_model="cpu (Intel Xeon)",
                                                      onednn_isa="AVX10_1_512_AMX"), 3.0)
    assert not same and line.endswith(
        "drifts (this platform differs in device cpu (Intel Xeon) (probe: cpu (AMD EPYC)); onednn_isa AVX10_1_512_AMX "
        "(probe: AVX512_CORE_BF16); weights bbbbbbbbbbbbbbbb, committed aaaaaaaaaaaaaaaa; test accuracy 10.5 vs 10.0)")
    _, line = S.verdict("p", _rec("a" * 64), _rec("b" * 64), 3.0)
    assert "on the same platform: a defect, please report it" in line


@pytest.mark.realdata
def test_a_probe_reruns_here(jpeg_root, capsys):
    # the `cpu` protocol's own probe; on a CPU without bf16 kernels (where bf16 takes minutes) its fp32 twin
    slow_bf16 = isa.slow_bf16_note("bf16", "portable") is not None
    name = "cpu-fp32-1thread-portable" if slow_bf16 else "cpu-bf16-1thread-portable"
    lines = []
    drifted, defects = S.selftest(data_root=str(jpeg_root.parent), only=[name], log=lines.append)
    assert defects == 0 and len(lines) == 3
    assert lines[0].startswith("selftest: 1 probes") and lines[-1].startswith(f"selftest: {1 - drifted} of 1 probes")
    old, line = _probe(name), lines[1]
    if not drifted:
        assert f"bit-identical to the committed record (weights {old['weights_sha256'][:16]}" in line
    else:  # only where this machine differs from the probe's platform in some field
        assert "drifts (this platform differs in " in line, line
        assert any(f in line for f in PLATFORM_FIELDS) and "a defect" not in line


def test_exit_status_is_1_only_when_a_probe_drifts_on_its_own_platform(monkeypatch, capsys):
    from fggp_repro.cli import main

    name = "cpu-bf16-1thread-portable"
    old = _probe(name)

    def rerun(weights, **prov):
        new = json.loads(json.dumps(old))
        new["weights_sha256"] = weights
        new["provenance"].update(prov)
        return lambda cfg, out, data_root: new

    monkeypatch.setattr(S, "_run", rerun(old["weights_sha256"]))
    assert main(["selftest", "--probe", name]) == 0  # bit-identical
    monkeypatch.setattr(S, "_run", rerun("f" * 64, device_model="cpu (Intel Xeon)"))
    assert main(["selftest", "--probe", name]) == 0  # drifts where the platform differs: a new seed, no defect
    assert "drifts (this platform differs in device cpu (Intel Xeon)" in capsys.readouterr().out
    monkeypatch.setattr(S, "_run", rerun("f" * 64))
    assert main(["selftest", "--probe", name]) == 1  # drifts on the probe's own platform: a defect
    assert "on the same platform: a defect, please report it" in capsys.readouterr().out


def test_an_unknown_probe_is_one_line(tmp_path):
    with pytest.raises(C.ConfigError, match="no probe named 'x' \\(probes: cpu-bf16-1thread-portable, "):
        S.selftest(only=["x"])
    assert Path(S.probe_dir()).is_dir()


def test_an_unwritable_save_folder_is_one_line_before_any_probe_runs(tmp_path, capsys):
    from fggp_repro.cli import main

    (tmp_path / "afile").write_text("x")
    dest = tmp_path / "afile" / "probes"
    assert main(["selftest", "--save", str(dest), "--probe", "cpu-fp32-1thread-portable",
                 "--data-root", str(tmp_path / "no-data")]) == 2
    err = capsys.readouterr().err
    assert err == (f"fggp-repro selftest: error: cannot write the --save folder {dest}: {tmp_path / 'afile'} is a "
                   "file, not a folder; choose another --save DIR\n")


def test_on_a_cpu_without_bf16_kernels_the_note_comes_once_before_the_probes(monkeypatch):
    monkeypatch.delenv(isa.VARIABLE, raising=False)
    monkeypatch.setattr(isa, "native_level", lambda flags=None: "AVX2")
    monkeypatch.setattr(S, "_run", lambda cfg, out, data_root: _probe(cfg_name[cfg.run.precision]))
    cfg_name = {"bf16": "cpu-bf16-1thread-portable", "fp32": "cpu-fp32-1thread-portable"}
    lines = []
    S.selftest(only=list(cfg_name.values()), log=lines.append)
    assert len(lines) == 5 and lines[0].startswith("selftest: 2 probes") and lines[4].startswith("selftest: 2 of 2")
    assert lines[1].startswith("note: this CPU has no bf16 kernels (oneDNN runs at AVX2 here;")
    assert "so the bf16 probes fall back to generic code" in lines[1]
    lines.clear()
    S.selftest(only=["cpu-fp32-1thread-portable"], log=lines.append)  # fp32 only: no note
    assert len(lines) == 3 and not any(ln.startswith("note:") for ln in lines)

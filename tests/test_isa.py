"""The oneDNN instruction-set option: validation, the level a CPU reaches, and what a record states."""

import json
import subprocess
import sys

import pytest

from fggp_repro import isa
from fggp_repro.spec import config as C

# /proc/cpuinfo flags, abridged to what decides the level
ZEN4 = {"avx", "avx2", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni", "avx512_bf16", "sse4_1"}
SAPPHIRE_RAPIDS = ZEN4 | {"amx_bf16", "amx_tile", "amx_int8", "avx512_fp16"}
ICE_LAKE = {"avx", "avx2", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni", "sse4_1"}
HASWELL = {"avx", "avx2", "sse4_1"}


def test_a_bad_mode_is_one_line_and_exit_2():
    res = subprocess.run([sys.executable, "-m", "fggp_repro", "train", "--preset", "smoke", "--cpu-isa", "fast",
                          "--print-config"], capture_output=True, text=True)
    assert res.returncode == 2
    assert res.stderr == "fggp-repro train: error: unknown cpu_isa 'fast' (choose from: native, portable)\n"
    with pytest.raises(C.ConfigError, match="unknown cpu_isa 'AVX2'"):
        C.load(overrides={"run": {"cpu_isa": "AVX2"}})


def test_the_option_is_not_part_of_the_run_id():
    native = C.load(preset="cpu", overrides={"run": {"cpu_isa": "native"}})
    portable = C.load(preset="cpu")
    assert portable.run.cpu_isa == "portable" and C.run_id(native) == C.run_id(portable)


@pytest.mark.parametrize("flags, level", [(ZEN4, "AVX512_CORE_BF16"), (SAPPHIRE_RAPIDS, "AVX10_1_512_AMX"),
                                          (ICE_LAKE, "AVX512_CORE_VNNI"), (HASWELL, "AVX2"), (set(), None)])
def test_native_level_from_cpu_flags(flags, level):
    assert isa.native_level(flags) == level


@pytest.mark.parametrize("cap, native, expected", [
    ("AVX512_CORE_BF16", "AVX10_1_512_AMX", "AVX512_CORE_BF16"),  # Intel with AMX: capped
    ("AVX512_CORE_BF16", "AVX512_CORE_BF16", "AVX512_CORE_BF16"),  # AMD Zen 4: the cap is its own level
    ("AVX512_CORE_BF16", "AVX512_CORE_VNNI", "AVX512_CORE_VNNI"),  # an older CPU stays below the cap
    (None, "AVX10_1_512_AMX", "AVX10_1_512_AMX"),
    ("avx2", "AVX512_CORE_BF16", "AVX2"),  # oneDNN reads the variable case-insensitively
])
def test_expected_level_is_the_lower_of_cap_and_cpu(cap, native, expected):
    assert isa.expected_level(cap, native) == expected


def _probe(code: str, env_cap: str | None = None) -> subprocess.CompletedProcess:
    import os

    env = {k: v for k, v in os.environ.items() if k != isa.VARIABLE}
    if env_cap:
        env[isa.VARIABLE] = env_cap
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)


@pytest.mark.skipif(isa.native_level() in (None, "SSE41"),
                    reason="no /proc/cpuinfo flags to tell the CPU level, or no level below this CPU's to cap at")
def test_the_level_in_effect_follows_the_cap_and_a_late_cap_is_refused():
    # the cap must lie below the CPU's own level to show: SSE4.1 is below every x86-64 CPU with AVX (an AVX2 cap
    # would not show on an AVX2 machine, where oneDNN runs at AVX2 anyway and a late cap changes nothing)
    res = _probe("from fggp_repro import isa; print(isa.effective())", env_cap="SSE41")
    assert res.returncode == 0 and res.stdout.strip() == "SSE41", res.stderr
    late = ("import os, torch\n"
            "x = torch.zeros(2, 8, 8, 8).contiguous(memory_format=torch.channels_last)\n"
            "torch.nn.functional.conv2d(x, torch.zeros(8, 8, 3, 3).contiguous(memory_format=torch.channels_last))\n"
            "os.environ['ONEDNN_MAX_CPU_ISA'] = 'SSE41'\n"
            "from fggp_repro import isa\n"
            "try:\n    isa.effective()\nexcept Exception as e:\n    print(type(e).__name__, e)\n")
    res = _probe(late)
    assert res.stdout.startswith("ConfigError ONEDNN_MAX_CPU_ISA=SSE41 did not take effect"), res.stdout + res.stderr
    assert "start a new process" in res.stdout


def test_a_record_states_the_mode_the_variable_and_the_level(tmp_path):
    res = subprocess.run([sys.executable, "-m", "fggp_repro", "train", "--preset", "smoke", "--method", "dense",
                          "--seed", "1", "--epochs", "1", "--milestones", "", "--threads", "1", "--quiet",
                          "--out", str(tmp_path)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    rec = json.loads(next(tmp_path.glob("raw/*/*/*/*.json")).read_text())
    prov = rec["provenance"]
    assert rec["config"]["run"]["cpu_isa"] == "portable"
    assert prov["cpu_isa_requested"] == "portable" and prov["onednn_max_cpu_isa"] == "AVX512_CORE_BF16"
    assert prov["onednn_isa"] == isa.expected_level("AVX512_CORE_BF16", isa.native_level())


@pytest.mark.parametrize("level, fast", [("AVX2", False), ("AVX2_VNNI", False), ("AVX2_VNNI_2", True),
                                         ("AVX512_CORE", True), ("AVX512_CORE_BF16", True),
                                         ("AVX10_1_512_AMX", True), ("SSE41", False), ("unknown", None), (None, None)])
def test_bf16_kernels_from_avx512_core_up_and_at_avx2_vnni_2(level, fast):
    assert isa.bf16_kernels(level) is fast


def test_an_avx2_cpu_with_vnni_int8_and_ne_convert_is_avx2_vnni_2():
    assert isa.native_level(HASWELL | {"avx_vnni"}) == "AVX2_VNNI"
    assert isa.native_level(HASWELL | {"avx_vnni", "avx_vnni_int8", "avx_ne_convert"}) == "AVX2_VNNI_2"


def test_the_slow_bf16_note_only_for_bf16_on_a_cpu_without_bf16_kernels(monkeypatch):
    monkeypatch.delenv(isa.VARIABLE, raising=False)
    note = isa.slow_bf16_note("bf16", "portable", "cpu", native="AVX2")
    assert note.startswith("note: this CPU has no bf16 kernels (oneDNN runs at AVX2 here;")
    assert isa.slow_bf16_note("fp32", "portable", "cpu", native="AVX2") is None
    assert isa.slow_bf16_note("bf16", "portable", "cuda", native="AVX2") is None
    assert isa.slow_bf16_note("bf16", "portable", "cpu", native="AVX512_CORE_BF16") is None
    assert isa.slow_bf16_note("bf16", "portable", "cpu", native="AVX10_1_512_AMX") is None  # capped, still bf16
    # native mode under a cap the user set below AVX-512: the level in effect decides
    monkeypatch.setenv(isa.VARIABLE, "AVX2")
    assert "oneDNN runs at AVX2 here" in isa.slow_bf16_note("bf16", "native", "cpu", native="AVX512_CORE_BF16")


@pytest.mark.parametrize("native, noted", [("AVX2", True), ("AVX512_CORE_BF16", False)])
def test_a_bf16_grid_dry_run_warns_on_a_cpu_without_bf16_kernels(tmp_path, capsys, monkeypatch, native, noted):
    from fggp_repro import cli

    monkeypatch.setattr(isa, "native_level", lambda flags=None: native)
    assert cli.main(["grid", "--preset", "cpu", "--methods", "fggp", "--sparsities", "0.9", "--inits", "dense",
                     "--seeds", "0", "--device", "cpu", "--out", str(tmp_path / "res"),
                     "--data-root", str(tmp_path / "nowhere"), "--dry-run"]) == 0
    notes = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("note:")]
    assert len(notes) == noted
    if noted:
        assert notes[0].startswith("note: this CPU has no bf16 kernels (oneDNN runs at AVX2 here;")
        assert notes[0].endswith("; the estimate below comes from records, which may have been made on another CPU")

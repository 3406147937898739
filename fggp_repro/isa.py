"""The CPU instruction set oneDNN may use: ``portable`` caps it at the level today's x86 server CPUs share.

oneDNN (PyTorch's CPU convolution and bf16 matrix library) picks its kernels by the instruction set of the
CPU it runs on. Different kernels round differently, so a strict run made on an AMD EPYC (AVX-512 with
bfloat16, oneDNN's ``avx512_core_bf16``) and the same run on an Intel Xeon with AMX (``avx512_core_amx``)
drift apart from the first epoch. Capping oneDNN at ``AVX512_CORE_BF16`` through the environment variable
``ONEDNN_MAX_CPU_ISA`` makes both use the same kernels. oneDNN reads the variable once, when it first runs in a
process; so :func:`apply` must come before the first convolution, and the level is then fixed for the life
of the process.

``native`` leaves the environment as it is (no cap unless the user set one). Every record states the mode
asked for, the variable as the run saw it, and the level oneDNN reports (:func:`effective`).
"""

from __future__ import annotations

import os
import sys
import tempfile

import torch

from .spec.config import CPU_ISAS, ConfigError

VARIABLE = "ONEDNN_MAX_CPU_ISA"
#: the level both CPU vendors of today's servers reach (AMD Zen 4 and later, Intel Cooper Lake and later)
PORTABLE_LEVEL = "AVX512_CORE_BF16"
MODES = CPU_ISAS

# oneDNN's levels, lowest first (the names ONEDNN_MAX_CPU_ISA takes), with the words its verbose mode prints
LEVELS = (
    ("SSE41", "Intel SSE4.1"),
    ("AVX", "Intel AVX"),
    ("AVX2", "Intel AVX2"),
    ("AVX2_VNNI", "Intel AVX2 with Intel DL Boost"),
    ("AVX2_VNNI_2", "Intel AVX2 with Intel DL Boost, float16 and bfloat16 support"),
    ("AVX512_CORE", "Intel AVX-512 with AVX512BW, AVX512VL, and AVX512DQ extensions"),
    ("AVX512_CORE_VNNI", "Intel AVX-512 with Intel DL Boost"),
    ("AVX512_CORE_BF16", "Intel AVX-512 with Intel DL Boost and bfloat16 support"),
    ("AVX10_1_512", "Intel AVX10.1"),
    ("AVX10_1_512_AMX", "Intel AVX10.1 and Intel AMX with bfloat16 and 8-bit integer support"),
    ("AVX10_1_512_AMX_FP16", "Intel AVX10.1 and Intel AMX with bfloat16, float16 and 8-bit integer support"),
    ("AVX10_2_512", "Intel AVX10.2"),
    ("AVX10_2_512_AMX_2", "Intel AVX10.2 and Intel AMX with float8, float16, bfloat16 and 8-bit integer support"),
)
_BY_TEXT = {text: name for name, text in LEVELS}
_RANK = {name: i for i, (name, _) in enumerate(LEVELS)}

_effective: str | None = None  # the level oneDNN reported in this process (it cannot change once oneDNN ran)
_cap_when_probed: str | None = None  # ONEDNN_MAX_CPU_ISA at that moment


def check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ConfigError(f"unknown cpu_isa '{mode}' (choose from: {', '.join(MODES)}; portable caps oneDNN at "
                          f"{PORTABLE_LEVEL} so that x86 CPUs of both vendors run the same kernels)")


def cap_for(mode: str) -> str | None:
    """The ``ONEDNN_MAX_CPU_ISA`` value a mode sets (None: leave the environment alone)."""
    check_mode(mode)
    return PORTABLE_LEVEL if mode == "portable" else None


def native_level(flags: set[str] | None = None) -> str | None:
    """The highest oneDNN level this CPU supports, from its /proc/cpuinfo flags (None when unknown)."""
    if flags is None:
        flags = cpu_flags()
    if not flags:
        return None
    if {"amx_bf16", "amx_tile", "amx_int8"} <= flags:
        return "AVX10_1_512_AMX_FP16" if "amx_fp16" in flags else "AVX10_1_512_AMX"
    avx512 = {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= flags
    if avx512 and "avx512_fp16" in flags:
        return "AVX10_1_512"
    if avx512 and "avx512_bf16" in flags:
        return "AVX512_CORE_BF16"
    if avx512 and "avx512_vnni" in flags:
        return "AVX512_CORE_VNNI"
    if avx512:
        return "AVX512_CORE"
    if "avx2" in flags:
        if {"avx_vnni", "avx_vnni_int8", "avx_ne_convert"} <= flags:
            return "AVX2_VNNI_2"
        return "AVX2_VNNI" if "avx_vnni" in flags else "AVX2"
    if "avx" in flags:
        return "AVX"
    return "SSE41" if "sse4_1" in flags else None


def cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def expected_level(cap: str | None, native: str | None) -> str | None:
    """The level oneDNN should report under ``cap`` on a CPU whose own level is ``native``."""
    if native is None or native not in _RANK:
        return None
    if cap is None or cap.upper() not in _RANK:
        return native
    return min(native, cap.upper(), key=_RANK.__getitem__)


def bf16_kernels(level: str | None) -> bool | None:
    """Whether PyTorch computes bf16 convolutions and matrix products with oneDNN's kernels at this oneDNN level:
    it does from AVX512_CORE up and at AVX2_VNNI_2 (ideep's bf16 test); below, bf16 runs on PyTorch's generic
    fallback code. None when the level is unknown."""
    if level is None or level not in _RANK:
        return None
    return _RANK[level] >= _RANK["AVX512_CORE"] or level == "AVX2_VNNI_2"


def slow_bf16_note(precision: str, mode: str, device: str = "cpu", native: str | None = None) -> str | None:
    """One line for a bf16 run on a CPU without bf16 kernels (None otherwise, and on a GPU): it runs there on
    generic fallback code, far slower than fp32, and on kernels no committed bf16 record was made with.
    ``native``: the CPU's own oneDNN level (default: read from this machine)."""
    if precision != "bf16" or device == "cuda" or (device == "auto" and torch.cuda.is_available()):
        return None
    level = expected_level(cap_for(mode) or os.environ.get(VARIABLE), native or native_level())
    if bf16_kernels(level) is not False:
        return None
    return (f"note: this CPU has no bf16 kernels (oneDNN runs at {level} here; PyTorch's bf16 kernels need AVX-512 "
            "or AVX2 with VNNI-2), so a bf16 run falls back to generic code: many times slower than fp32 here "
            "(`python benchmarks/train_throughput.py --concurrency 1` measures both), and not bit-comparable with "
            "records made on a CPU that has them")


def apply(mode: str) -> None:
    """Set the environment for ``mode`` before oneDNN first runs in this process.

    ``portable`` sets ``ONEDNN_MAX_CPU_ISA``; ``native`` leaves the environment alone. Raises ConfigError when
    oneDNN has already run here under another cap (its level is fixed for the life of a process)."""
    cap = cap_for(mode)
    if cap is None:
        return
    if _effective is not None and _cap_when_probed != cap:
        raise ConfigError(f"cpu_isa '{mode}' comes too late: oneDNN already runs at {_effective} in this process "
                          "and cannot change it; start a new process (one `fggp-repro train` per instruction set)")
    os.environ[VARIABLE] = cap


def _verbose_header() -> str:
    """What oneDNN prints when its verbose mode is first switched on (its ``info`` lines), captured from fd 1."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with tempfile.TemporaryFile() as tmp:
            os.dup2(tmp.fileno(), 1)
            try:
                x = torch.zeros(2, 8, 8, 8).contiguous(memory_format=torch.channels_last)
                w = torch.zeros(8, 8, 3, 3).contiguous(memory_format=torch.channels_last)
                with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON), torch.no_grad():
                    torch.nn.functional.conv2d(x, w, padding=1)
            finally:
                os.dup2(saved, 1)
            tmp.seek(0)
            return tmp.read().decode(errors="replace")
    finally:
        os.close(saved)


def effective() -> str:
    """The instruction-set level oneDNN runs at in this process (``AVX512_CORE_BF16``, ...; the words it prints
    when they are new to this module; ``unknown`` when it prints none). Probed once: a tiny convolution with
    oneDNN's verbose mode on. Raises ConfigError when the level is not what the cap in force should give, which
    means oneDNN ran before the cap was set."""
    global _effective, _cap_when_probed
    if _effective is not None:
        return _effective
    if not torch.backends.mkldnn.is_available():
        _effective = "none (no oneDNN in this torch)"
        return _effective
    level = "unknown"
    for line in _verbose_header().splitlines():
        if ",info,cpu,isa:" in line:
            text = line.split(",info,cpu,isa:", 1)[1].strip()
            level = _BY_TEXT.get(text, text)
            break
    cap = os.environ.get(VARIABLE)
    want = expected_level(cap, native_level())
    if cap and want and level in _RANK and level != want:
        raise ConfigError(f"{VARIABLE}={cap} did not take effect (oneDNN runs at {level}, expected {want}): oneDNN "
                          "had already run in this process; set the instruction set before the first convolution "
                          "(the CLI does), or start a new process")
    _effective, _cap_when_probed = level, cap
    return level


def provenance(mode: str) -> dict:
    """What a record states about the instruction set: the mode asked for, the variable, the level in effect."""
    return {"cpu_isa_requested": mode, "onednn_max_cpu_isa": os.environ.get(VARIABLE), "onednn_isa": effective()}

"""``fggp-repro selftest``: short reference runs ("probes") rerun on this machine and compared bit for bit.

Each probe is a run of a shipped preset cut to one epoch of 20 iterations (a class-balanced subset of 20 batches),
pruned by FGGP to 90 % in 8 events and tested on 1,000 test images, with one combination of precision, thread count
and oneDNN instruction set.
Its committed record (``fggp_repro/probes/<name>.json``) was made on the platform it names. A rerun here gives
the same ``weights_sha256`` when this platform computes the same kernels in the same order; then the committed
records of that combination rerun exactly here too. Otherwise the probe drifts, and the line says in which
platform fields this machine differs (``spec.platform.PLATFORM_FIELDS``).

Every probe runs in a process of its own (oneDNN's instruction set is fixed per process), in a scratch folder.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .records import write_record
from .spec import config as C
from .spec.files import check_writable
from .spec.platform import PLATFORM_FIELDS, platform_of

# What every probe changes in its preset: one epoch of 20 iterations at the preset's batch size (a class-balanced
# subset of 20 batches), an event every 2 iterations, 1,000 test images.
ITERATIONS = 20
PROBE_OVERRIDES = {
    "data": {"test_subset": 1000},
    "pruning": {"method": "fggp", "sparsity": 0.9, "update_interval": 2},
    "training": {"epochs": 1, "milestones": []},
    "run": {"seed": 0},
}


@dataclass(frozen=True)
class Probe:
    name: str
    preset: str
    threads: int
    run: tuple = ()  # ((run field, value), ...) on top of the preset

    def config(self) -> C.Config:
        over = json.loads(json.dumps(PROBE_OVERRIDES))
        over["run"].update(dict(self.run), threads=self.threads)
        over["data"]["train_subset"] = ITERATIONS * C.load(preset=self.preset).training.batch_size
        return C.load(preset=self.preset, overrides=over)


#: the probes, in the order they run: the `cpu` protocol's own combination first
PROBES = (
    Probe("cpu-bf16-1thread-portable", "cpu", 1),
    Probe("cpu-bf16-2threads-portable", "cpu", 2),
    Probe("cpu-fp32-1thread-portable", "cpu", 1, (("precision", "fp32"),)),
    Probe("cpu-fp32-2threads-portable", "cpu", 2, (("precision", "fp32"),)),
    Probe("cpu-bf16-1thread-native", "cpu", 1, (("cpu_isa", "native"),)),
    Probe("cpu-resnet-bf16-1thread-portable", "cpu-resnet", 1),
)


def probe_dir() -> Path:
    return Path(str(resources.files("fggp_repro").joinpath("probes")))


def _run(cfg: C.Config, out: Path, data_root: str | None) -> dict:
    """Train ``cfg`` in a process of its own into ``out``; its record."""
    toml = out / "probe.toml"
    toml.write_text(C.as_toml(cfg))
    cmd = [sys.executable, "-m", "fggp_repro", "train", "--config", str(toml), "--out", str(out), "--quiet"]
    if data_root:
        cmd += ["--data-root", data_root]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        err = (res.stderr.strip().splitlines() or [f"exit {res.returncode}"])[-1]
        if err.startswith("fggp-repro train: error: "):  # a user error (no data, ...): the run's own line
            raise C.UserError(err[len("fggp-repro train: error: "):])
        raise C.UserError(f"the probe run failed: {err}")
    return json.loads(next(out.glob("raw/*/*/*/*.json")).read_text())


def differing(old: dict, new: dict) -> list[str]:
    """The platform fields in which ``new`` was made differently from ``old`` (fields ``old`` predates skipped)."""
    a, b = platform_of(old), platform_of(new)
    return [f"{k} {b[k]} (probe: {a[k]})" for k in PLATFORM_FIELDS if a[k] is not None and a[k] != b[k]]


def verdict(name: str, old: dict, new: dict, seconds: float) -> tuple[bool, str]:
    """(bit-identical?, the probe's line)."""
    same = old["weights_sha256"] == new["weights_sha256"]
    head = f"{name:<34} "
    if same:
        return True, head + (f"bit-identical to the committed record (weights {new['weights_sha256'][:16]}; "
                             f"{seconds:.0f} s)")
    why = differing(old, new)
    where = f"this platform differs in {'; '.join(why)}" if why else "on the same platform: a defect, please report it"
    return False, head + (f"drifts ({where}; weights {new['weights_sha256'][:16]}, committed "
                          f"{old['weights_sha256'][:16]}; test accuracy {new['metrics']['test_acc']} vs "
                          f"{old['metrics']['test_acc']})")


def selftest(data_root: str | None = None, only: list[str] | None = None, log=print) -> tuple[int, int]:
    """Rerun the committed probes (those named in ``only``, else all); prints one line per probe; returns how
    many drifted, and how many of those drifted on the very platform of their committed record (a defect: there
    a strict rerun is bit-identical)."""
    files = sorted(probe_dir().glob("*.json"))
    order = {p.name: i for i, p in enumerate(PROBES)}
    files.sort(key=lambda f: order.get(f.stem, len(order)))
    if only:
        unknown = sorted(set(only) - {f.stem for f in files})
        if unknown:
            raise C.ConfigError(f"no probe named '{unknown[0]}' (probes: {', '.join(f.stem for f in files)})")
        files = [f for f in files if f.stem in only]
    if not files:
        raise C.ConfigError(f"no committed probes in {probe_dir()}: make them with `fggp-repro selftest --save DIR`")
    drifted = defects = 0
    committed = {f: json.loads(f.read_text()) for f in files}
    made_on = {platform_of(rec)["device"] for rec in committed.values()}
    log(f"selftest: {len(files)} probes, each 20 training iterations in a process of its own; committed records "
        f"made on {', '.join(sorted(map(str, made_on)))}")
    from .isa import slow_bf16_note  # imports torch

    configs = {f: C.from_dict(rec["config"]) for f, rec in committed.items()}
    note = next(filter(None, (slow_bf16_note(c.run.precision, c.run.cpu_isa, c.run.device) for c in configs.values())),
                None)
    if note:
        log(note.replace("a bf16 run falls", "the bf16 probes fall"))
    for f in files:
        old, cfg = committed[f], configs[f]
        with tempfile.TemporaryDirectory(prefix="fggp-selftest-") as tmp:
            t0 = time.time()
            new = _run(cfg, Path(tmp), data_root)
        same, line = verdict(f.stem, old, new, time.time() - t0)
        drifted += not same
        defects += not same and not differing(old, new)
        log(line)
    log(f"selftest: {len(files) - drifted} of {len(files)} probes bit-identical"
        + ("" if not drifted else "; a drifting probe's combination reruns here as a new seed, not bit for bit "
           "(`fggp-repro verify` then checks statistically)"))
    return drifted, defects


def save(dest: str | Path, data_root: str | None = None, only: list[str] | None = None, log=print) -> None:
    """Run every probe (those named in ``only``) here and write its record to ``dest/<name>.json`` (the committed
    reference probes)."""
    dest = Path(dest)
    names = {p.name for p in PROBES}
    if only and set(only) - names:
        raise C.ConfigError(f"no probe named '{sorted(set(only) - names)[0]}' (probes: {', '.join(sorted(names))})")
    check_writable(dest, "--save folder", "choose another --save DIR")  # before the probes run, not after
    for p in PROBES:
        if only and p.name not in only:
            continue
        with tempfile.TemporaryDirectory(prefix="fggp-probe-") as tmp:
            rec = _run(p.config(), Path(tmp), data_root)
        write_record(dest / f"{p.name}.json", rec)
        log(f"{p.name:<34} weights {rec['weights_sha256'][:16]}  test_acc {rec['metrics']['test_acc']}  "
            f"{rec['provenance']['wall_seconds']:.0f} s")

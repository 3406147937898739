"""Re-verification: rerun a record's config and seed and compare the new record with it, field by field.

On the same platform (torch version, device, CPU instruction set, strict mode: ``records.platform_key``)
a strict run is bit-reproducible, so everything must match exactly, ``weights_sha256`` included. On
another platform floating-point kernels differ, training drifts, and only tolerances can be checked:
accuracies within ``tolerance`` percentage points, losses within 10 % relative, while mask bookkeeping
(sparsities, pruned counts per event) must still match to within one weight.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from . import config as C
from .records import SCHEMA, platform_key, read_record


@dataclass
class Check:
    field: str
    recorded: object
    rerun: object
    ok: bool
    rule: str


@dataclass
class Report:
    record: Path
    same_platform: bool
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def lines(self) -> list[str]:
        mode = ("same platform: exact comparison" if self.same_platform
                else "different platform: tolerances (weights_sha256 not comparable)")
        out = [f"verify {self.record} ({mode})"]
        w = max(len(c.field) for c in self.checks)
        for c in self.checks:
            mark = "ok  " if c.ok else "FAIL"
            out.append(f"  {mark} {c.field:<{w}}  recorded={_show(c.recorded)}  rerun={_show(c.rerun)}  [{c.rule}]")
        out.append("MATCH" if self.ok else "MISMATCH")
        return out


def _show(v) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, str) and len(v) > 20:
        return v[:16] + "…"
    return str(v)


def load_config(record: dict, path: Path, data_root: str | None) -> C.Config:
    if record.get("schema") != SCHEMA:
        raise C.ConfigError(f"{path} is not a run record (schema {record.get('schema')!r}, expected {SCHEMA!r})")
    cfg = C.from_dict(record["config"])
    if data_root is not None:
        cfg = cfg.replace(data={"data_root": data_root})
    if C.run_id(cfg) != record["run_id"]:
        raise C.ConfigError(f"{path}: the recorded config hashes to {C.run_id(cfg)}, not its run_id "
                            f"{record['run_id']}: the record was edited or written by an incompatible version")
    return cfg


def compare(old: dict, new: dict, *, same_platform: bool, tolerance: float) -> list[Check]:
    checks: list[Check] = []

    def add(name, a, b, exact_ok, tol_ok, tol_rule):
        if same_platform:
            checks.append(Check(name, a, b, exact_ok, "exact"))
        else:
            checks.append(Check(name, a, b, tol_ok, tol_rule))

    def near(a, b, tol):
        return a is not None and b is not None and abs(a - b) <= tol

    checks.append(Check("status", old["status"], new["status"], old["status"] == new["status"], "exact"))
    if same_platform:
        checks.append(Check("weights_sha256", old["weights_sha256"], new["weights_sha256"],
                            old["weights_sha256"] == new["weights_sha256"], "exact"))
    om, nm = old["metrics"], new["metrics"]
    for k in ("test_acc", "best_test_acc_after_pruning"):
        add(f"metrics.{k}", om[k], nm[k], om[k] == nm[k], near(om[k], nm[k], tolerance), f"±{tolerance} points")
    a, b = om["final_train_loss"], nm["final_train_loss"]
    add("metrics.final_train_loss", a, b, a == b,
        a is not None and b is not None and math.isclose(a, b, rel_tol=0.1), "±10 % relative")
    # mask bookkeeping does not depend on floating point: zero counts agree within one weight everywhere
    oc, nc = old["weight_counts"], new["weight_counts"]
    for k in ("zero", "prunable_zero"):
        checks.append(Check(f"weight_counts.{k}", oc[k], nc[k], abs(oc[k] - nc[k]) <= (0 if same_platform else 1),
                            "exact" if same_platform else "within one weight"))
    for k, n in (("sparsity", oc["denominator"]), ("prunable_sparsity", oc["prunable"])):
        # one weight is 1/n of the fraction; the half-weight margin absorbs float rounding
        add(f"metrics.{k}", om[k], nm[k], om[k] == nm[k], near(om[k], nm[k], 1.5 / n), "within one weight")
    ev_old = [(e["iteration"], e["n_pruned"]) for e in old["pruning_events"]]
    ev_new = [(e["iteration"], e["n_pruned"]) for e in new["pruning_events"]]
    checks.append(Check("pruning_events (iteration, n_pruned)", f"{len(ev_old)} events", f"{len(ev_new)} events",
                        ev_old == ev_new, "exact (schedule arithmetic)"))
    h_old = [h["test_acc"] for h in old["history"]]
    h_new = [h["test_acc"] for h in new["history"]]
    worst = max((abs(x - y) for x, y in zip(h_old, h_new)), default=0.0)
    add("history.test_acc (worst epoch)", f"{len(h_old)} epochs", f"{len(h_new)} epochs, max diff {worst:.3g}",
        h_old == h_new, len(h_old) == len(h_new) and worst <= 2 * tolerance, f"±{2 * tolerance} points per epoch")
    return checks


def verify(record_file: str | Path, *, data_root: str | None = None, tolerance: float = 1.0,
           workdir: str | Path | None = None, quiet: bool = True) -> Report:
    """Rerun ``record_file``'s config in a scratch folder and compare (see the module docstring)."""
    from .trainer import train

    path = Path(record_file)
    try:
        old = read_record(path)
    except (OSError, ValueError) as e:
        raise C.ConfigError(f"cannot read record {path}: {e}") from None
    cfg = load_config(old, path, data_root)
    with tempfile.TemporaryDirectory(dir=workdir, prefix="fggp-verify-") as tmp:
        res = train(cfg, tmp, force=True, quiet=quiet, command=["fggp-repro", "verify", str(path)])
        new = res.record
    try:
        same = platform_key(old["provenance"]) == platform_key(new["provenance"])
        return Report(path, same, compare(old, new, same_platform=same, tolerance=tolerance))
    except KeyError as e:
        raise C.ConfigError(f"{path} lacks the field {e} of schema {SCHEMA}: not a complete run record") from None

"""Re-verification: rerun a record's config and seed and compare the new record with it, field by field.

The record is validated first (schema, fields, run id, the data it was made from), so a malformed record or
the wrong data fails in one line before any training.

**Bit-identical weights** (``weights_sha256``): the rerun is the record, whatever the platform; every field
must then match exactly, and the verdict is "exact".

**Same platform** (``spec.platform.PLATFORM_FIELDS``: torch version, device model, CPU instruction set, oneDNN's
level, torch threads, precision, strict mode, memory format): a strict run is bit-reproducible, so every field must
match exactly, ``weights_sha256`` included. The rerun uses the record's thread count, its oneDNN instruction-set mode
and, for a config that says ``auto``, the kind of device that made it (a CPU record stays on the CPU of a machine
with a GPU), so on the machine that made it the platform is the same.

**Another platform**, weights not identical: floating-point kernels differ, training drifts, and one seed's
rerun is a new draw from the spread of seeds. So the verdict is statistical: the rerun's final test accuracy
must fall inside the prediction interval for one new seed at ``level`` (default 0.99),
``mean ± t((1 + level) / 2, k-1) · s · sqrt(1 + 1/k)``, of the k records of the same cell (the same config but
for the seed, the same protocol: the record's own folder, plus ``--results`` folders), with the two-sided
p-value of the rerun under that predictive distribution. A correct rerun falls outside the interval with
probability ``1 - level``, and the verdict says so. With fewer than 2 such records it falls back to
``|rerun - record| <= tolerance`` and says so. Mask bookkeeping (zero counts, sparsities, weights pruned per
event) must agree within one weight; everything else is printed for information.
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
from scipy.stats import t as student_t

from . import data as D
from . import isa
from .spec import config as C
from .spec.platform import PLATFORM_FIELDS, platform_of
from .spec.record import RecordInvalid, validate
from .trainer import train

LEVEL = 0.99  # a correct rerun on another platform is flagged 1 time in 100


@dataclass
class Check:
    field: str
    recorded: object
    rerun: object
    verdict: str  # "ok" | "FAIL" | "info"
    reason: str
    p_value: float | None = None  # the statistical check's two-sided p-value

    @property
    def ok(self) -> bool:
        return self.verdict != "FAIL"


@dataclass
class Report:
    record: Path
    run_id: str
    recorded_platform: dict
    rerun_platform: dict
    checks: list[Check] = field(default_factory=list)
    level: float = LEVEL
    notes: list[str] = field(default_factory=list)  # how the rerun differs from the record's run, on purpose

    @property
    def differs(self) -> list[str]:
        """The platform fields that differ (a field a record predates is not compared)."""
        return [k for k in PLATFORM_FIELDS if self.recorded_platform[k] is not None
                and self.recorded_platform[k] != self.rerun_platform[k]]

    @property
    def same_platform(self) -> bool:
        return not self.differs

    @property
    def identical(self) -> bool:
        return bool(self.checks) and any(c.field == "weights_sha256" and c.recorded == c.rerun for c in self.checks)

    @property
    def exact(self) -> bool:
        """Whether the checks are the exact ones (same platform, or bit-identical weights)."""
        return is_exact(self.same_platform, self.identical)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def lines(self) -> list[str]:
        out = [f"verify {self.record} (run {self.run_id})",
               f"  platform of the record: {show_platform(self.recorded_platform)}",
               f"  platform of the rerun:  {show_platform(self.rerun_platform)}"]
        out += [f"  note: {n}" for n in self.notes]
        if self.same_platform:
            out.append("  same platform: a strict rerun is bit-identical, so every field must match exactly")
        elif self.identical:
            out.append(f"  another platform (differs in: {', '.join(self.differs)}), yet the weights are "
                       "bit-identical: every field must match exactly")
        else:
            out.append(f"  different platform (differs in: {', '.join(self.differs)}): floating-point "
                       "results drift, so the check is statistical: the final accuracy must be a plausible seed of "
                       "this cell, mask bookkeeping within one weight")
        for c in self.checks:
            out.append(f"  {c.verdict:<4}  {c.field}: recorded {_show(c.recorded)}, rerun {_show(c.rerun)}: {c.reason}")
        failed = [c.field for c in self.checks if not c.ok]
        if self.exact:
            where = "same platform" if self.same_platform else "another platform"
            out.append(f"MISMATCH: {', '.join(failed)} (exact check, {where})" if failed
                       else f"MATCH (exact: bit-identical weights, {where})")
            return out
        acc = next((c for c in self.checks if c.field == "metrics.test_acc"), None)
        p = getattr(acc, "p_value", None)
        odds = round(1 / (1 - self.level))
        why = (f"p = {p:.3g}; a correct rerun falls outside the {100 * self.level:g}% interval 1 time in {odds}"
               if p is not None else "too few records of this cell for an interval: compared within --tolerance")
        out.append(f"MISMATCH: {', '.join(failed)} (statistical, another platform: {why})" if failed
                   else f"MATCH (statistical, another platform: {why})")
        return out


def is_exact(same_platform: bool, identical: bool) -> bool:
    """The exact checks apply on the same platform, and wherever the weights came out bit-identical."""
    return same_platform or identical


def _on_off(v) -> str:
    return "on" if v else "off" if v is not None else "?"


def show_platform(p: dict) -> str:
    return (f"torch {p['torch']}; device {p['device']}; CPU ISA {p['cpu_isa']}; oneDNN {p['onednn_isa'] or '?'}; "
            f"{p['threads']} threads; {p['precision']}; strict {_on_off(p['strict'])}; "
            f"channels-last {_on_off(p['channels_last'])}")


def _show(v) -> str:
    return repr(v) if isinstance(v, float) else str(v)


# ---- the record ----------------------------------------------------------------------------------

def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def check_record(rec, path: Path) -> None:
    """Raise ConfigError naming the first thing that makes ``rec`` unusable as a run record (the schema's
    :func:`~fggp_repro.spec.record.validate`)."""
    try:
        validate(rec)
    except RecordInvalid as e:
        raise C.ConfigError(f"{path} is not a complete run record ({e}); verify needs a record written by "
                            "`fggp-repro train` (docs/RECORD_SCHEMA.md)") from None


def read(path: Path) -> dict:
    """Read and validate a record (one ConfigError line on any problem)."""
    try:
        text = path.read_text()
    except OSError as e:
        raise C.ConfigError(f"cannot read the record {path} ({e.strerror or e})") from None
    try:
        rec = json.loads(text)
    except ValueError as e:
        raise C.ConfigError(f"{path} is not JSON ({e}): not a run record") from None
    check_record(rec, path)
    return rec


def load_config(record: dict, path: Path, data_root: str | None) -> C.Config:
    """The record's config (``data_root`` replaced when given), checked against its run id."""
    try:
        cfg = C.from_dict(record["config"])
    except C.ConfigError as e:
        raise C.ConfigError(f"{path}: its config is not valid here ({e})") from None
    if data_root is not None:
        cfg = cfg.replace(data={"data_root": data_root})
    if C.run_id(cfg) != record["run_id"]:
        raise C.ConfigError(f"{path}: the recorded config hashes to {C.run_id(cfg)}, not its run_id "
                            f"{record['run_id']}: the record was edited or written by an incompatible version")
    return cfg


# ---- the cell: records of the same config but the seed -------------------------------------------

def cell_key(record: dict) -> str:
    """Records of one cell share this key: the run-id fields but the seed, and the protocol label."""
    idf = C.id_fields(C.from_dict(record["config"]))
    idf.get("run", {}).pop("seed", None)
    idf = {g: v for g, v in idf.items() if v}
    return json.dumps([record["setting"]["protocol"], record["setting"].get("dataset"),
                       record["setting"].get("arch"), record["setting"].get("method"), idf], sort_keys=True)


def cell_records(path: Path, record: dict, results: list | tuple = ()) -> list[tuple[int, float, Path]]:
    """(seed, final test accuracy, file) of every completed record of ``record``'s cell: in the record's own
    folder and under each ``results`` folder (``**/raw/<dataset>/<arch>/<method>/``), one per run id."""
    s = record["setting"]
    files = sorted(path.parent.glob("*.json"))
    for r in results:
        files += sorted(Path(r).glob(f"**/raw/{s['dataset']}/{s['arch']}/{s['method']}/*.json"))
    key = cell_key(record)
    found: dict[str, tuple[int, float, Path]] = {}
    if record["status"] == "completed":
        found[record["run_id"]] = (record["config"].get("run", {}).get("seed", 0), record["metrics"]["test_acc"], path)
    for f in files:
        try:
            rec = json.loads(f.read_text())
            check_record(rec, f)
            if rec["status"] != "completed" or rec["run_id"] in found or cell_key(rec) != key:
                continue
        except (OSError, ValueError, KeyError, TypeError, C.ConfigError):
            continue  # not a run record of this version: not part of the cell
        found[rec["run_id"]] = (rec["config"].get("run", {}).get("seed", 0), rec["metrics"]["test_acc"], f)
    return sorted(found.values(), key=lambda t: (t[0], str(t[2])))


@dataclass(frozen=True)
class PredictionInterval:
    """``mean ± t · s · sqrt(1 + 1/k)``: where one new draw falls with probability ``level``."""

    k: int
    mean: float
    s: float  # sample standard deviation (ddof = 1)
    t: float  # t quantile (1 + level) / 2 with k - 1 degrees of freedom
    low: float
    high: float
    level: float = LEVEL

    def __contains__(self, x: float) -> bool:
        return self.low <= x <= self.high

    def p_value(self, x: float) -> float:
        """Two-sided p-value of ``x`` as one new draw: ``2 P(T_{k-1} > |x - mean| / (s sqrt(1 + 1/k)))``."""
        scale = self.s * math.sqrt(1 + 1 / self.k)
        if scale == 0:
            return 1.0 if x == self.mean else 0.0
        return float(2 * student_t.sf(abs(x - self.mean) / scale, self.k - 1))


def prediction_interval(values, level: float = LEVEL) -> PredictionInterval:
    """The prediction interval for one new value from ``values`` (at least 2), assumed normal."""
    k = len(values)
    if k < 2:
        raise ValueError("a prediction interval needs at least 2 values")
    mean = math.fsum(values) / k
    s = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (k - 1))
    t = float(student_t.ppf((1 + level) / 2, k - 1))
    half = t * s * math.sqrt(1 + 1 / k)
    return PredictionInterval(k, mean, s, t, mean - half, mean + half, level)


# ---- the comparison --------------------------------------------------------------------------------

def _diagnostics(old: dict, new: dict, same_platform: bool, exact, info) -> None:
    """The diagnostics (fggp_repro/diagnostics.py): exact on the same platform when the record has them;
    otherwise shown for information (across platforms, or a record older than diagnostics)."""
    dg_old, dg_new = old.get("diagnostics") or {}, new.get("diagnostics") or {}
    if not dg_new:
        return
    for k in ("bn_recalibrated_test_acc", "dead_units"):
        a, b = dg_old.get(k), dg_new.get(k)
        if same_platform and dg_old:
            exact(f"diagnostics.{k}", a, b)
        else:
            why = ("drifts across platforms; not a verdict" if dg_old
                   else "the rerun's own (the record predates diagnostics)")
            info(f"diagnostics.{k}", *(v.get("total") if isinstance(v, dict) else v for v in (a, b)), why)


def compare(old: dict, new: dict, *, same_platform: bool, tolerance: float,
            cell: list[float] | None = None, level: float = LEVEL) -> list[Check]:
    """The checks of ``new`` (the rerun) against ``old`` (the record): exact on the same platform and wherever the
    weights are bit-identical, statistical otherwise; ``cell``: the final accuracies of the record's cell (the
    record's own included), for the statistical check at ``level``."""
    checks: list[Check] = []
    exact_checks = is_exact(same_platform, old["weights_sha256"] == new["weights_sha256"])

    def exact(name, a, b, what="exact"):
        checks.append(Check(name, a, b, "ok" if a == b else "FAIL", what if a == b else f"differs ({what})"))

    def info(name, a, b, reason):
        checks.append(Check(name, a, b, "info", reason))

    om, nm = old["metrics"], new["metrics"]
    oc, nc = old["weight_counts"], new["weight_counts"]
    exact("status", old["status"], new["status"])
    od, nd = old["provenance"].get("data_sha256"), new["provenance"].get("data_sha256")
    if od and nd:
        exact("provenance.data_sha256", od, nd, "the same data")
    else:
        info("provenance.data_sha256", od, nd, "not comparable: the record predates data fingerprints")
    if exact_checks:
        exact("weights_sha256", old["weights_sha256"], new["weights_sha256"])
        for k in ("test_acc", "best_test_acc_after_pruning", "final_train_loss", "sparsity", "prunable_sparsity"):
            exact(f"metrics.{k}", om[k], nm[k])
        for k in ("zero", "prunable_zero"):
            exact(f"weight_counts.{k}", oc[k], nc[k])
        ev_old = [(e["iteration"], e["n_pruned"]) for e in old["pruning_events"]]
        ev_new = [(e["iteration"], e["n_pruned"]) for e in new["pruning_events"]]
        checks.append(Check("pruning_events (iteration, n_pruned)", f"{len(ev_old)} events", f"{len(ev_new)} events",
                            "ok" if ev_old == ev_new else "FAIL",
                            "exact, every event" if ev_old == ev_new else "differ (exact)"))
        h_old = [h["test_acc"] for h in old["history"]]
        h_new = [h["test_acc"] for h in new["history"]]
        checks.append(Check("history.test_acc", h_old, h_new, "ok" if h_old == h_new else "FAIL",
                            "exact, every epoch" if h_old == h_new else "differ (exact)"))
        _diagnostics(old, new, True, exact, info)
        return checks

    # another platform
    a, b = om["test_acc"], nm["test_acc"]
    if a is None or b is None:
        exact("metrics.test_acc", a, b, "both diverged")
    elif cell is not None and len(cell) >= 2:
        pi = prediction_interval(cell, level)
        inside = b in pi
        p = pi.p_value(b)
        checks.append(Check("metrics.test_acc", a, b, "ok" if inside else "FAIL",
                            f"{'inside' if inside else 'OUTSIDE'} the {100 * pi.level:g}% prediction interval "
                            f"[{pi.low:.4f}, {pi.high:.4f}] for one new seed, from the {pi.k} records of this cell "
                            f"(accuracies {', '.join(map(_show, cell))}; mean {pi.mean:.4f}, s {pi.s:.4f}, "
                            f"t({(1 + pi.level) / 2:g}, {pi.k - 1}) {pi.t:.4f}, half-width t*s*sqrt(1+1/k) "
                            f"{pi.high - pi.mean:.4f}; p = {p:.3g})", p_value=p))
    else:
        n = 0 if cell is None else len(cell)
        d = abs(a - b)
        checks.append(Check("metrics.test_acc", a, b, "ok" if d <= tolerance else "FAIL",
                            f"{n} record(s) of this cell, too few for a prediction interval: fell back to "
                            f"|rerun - record| = {d:.4f} {'<=' if d <= tolerance else '>'} --tolerance {tolerance}"))
    for k in ("zero", "prunable_zero"):
        d = abs(oc[k] - nc[k])
        checks.append(Check(f"weight_counts.{k}", oc[k], nc[k], "ok" if d <= 1 else "FAIL",
                            f"{d} weight(s) apart ({'within' if d <= 1 else 'more than'} one weight)"))
    for k, n in (("sparsity", oc["denominator"]), ("prunable_sparsity", oc["prunable"])):
        d = abs(om[k] - nm[k]) * n  # in weights; the half-weight margin absorbs float rounding
        checks.append(Check(f"metrics.{k}", om[k], nm[k], "ok" if d <= 1.5 else "FAIL",
                            f"{d:.2f} of {n} weights apart ({'within' if d <= 1.5 else 'more than'} one weight)"))
    ev_old, ev_new = old["pruning_events"], new["pruning_events"]
    same_its = [e["iteration"] for e in ev_old] == [e["iteration"] for e in ev_new]
    worst = max((abs(x["n_pruned"] - y["n_pruned"]) for x, y in zip(ev_old, ev_new)), default=0)
    ok = same_its and worst <= 1
    checks.append(Check("pruning_events (iteration, n_pruned)", f"{len(ev_old)} events", f"{len(ev_new)} events",
                        "ok" if ok else "FAIL",
                        ("the same iterations" if same_its else "DIFFERENT iterations")
                        + f"; n_pruned at most {worst} weight(s) apart per event"
                        + ("" if ok else " (must be within one weight)")))
    same = old["weights_sha256"] == new["weights_sha256"]
    info("weights_sha256", old["weights_sha256"], new["weights_sha256"],
         "not comparable across platforms" + (" (equal all the same)" if same else ""))
    for k in ("best_test_acc_after_pruning", "final_train_loss"):
        a, b = om[k], nm[k]
        info(f"metrics.{k}", a, b, "difference " + (f"{b - a:+.4f}" if a is not None and b is not None else "n/a")
             + " (drifts across platforms; not a verdict)")
    h_old = [h["test_acc"] for h in old["history"]]
    h_new = [h["test_acc"] for h in new["history"]]
    diffs = [abs(x - y) for x, y in zip(h_old, h_new)]
    if diffs:
        i = max(range(len(diffs)), key=diffs.__getitem__)
        why = f"largest difference {diffs[i]:.4f} points at epoch {i + 1} (drifts across platforms; not a verdict)"
    else:
        why = "no epochs"
    info("history.test_acc", h_old, h_new, why)
    _diagnostics(old, new, False, exact, info)
    return checks


# ---- the whole verification ------------------------------------------------------------------------

def _pick_data_root(cfg: C.Config, data_root: str | None) -> C.Config:
    """--data-root when given; else the record's own data_root when it holds the data; else the default root."""
    if data_root is not None or not cfg.data.data_root or D.present(cfg.data):
        return cfg
    return cfg.replace(data={"data_root": ""})


def _rerun_device(cfg: C.Config, recorded_device) -> C.Config:
    """The kind of device the record was made on, for a config that says ``auto``: a CPU record stays on the
    CPU on a machine with a GPU (the run id leaves the device out, so ``auto`` would move it to CUDA)."""
    if cfg.run.device != "auto" or not recorded_device or recorded_device == "None":
        return cfg
    if str(recorded_device).startswith("cpu"):
        return cfg.replace(run={"device": "cpu"})
    if not torch.cuda.is_available():
        raise C.ConfigError(f"the record was made on a CUDA device ({recorded_device}) and torch sees none here: "
                            "verify it on a machine with a GPU")
    return cfg.replace(run={"device": "cuda"})


def recorded_cpu_isa(record: dict) -> str:
    """The oneDNN instruction-set mode a record's run used: its config's, or for a record that predates the option,
    what its protocol's preset uses now (the records of such a preset were made where its mode is the native level:
    every `cpu` record on an AMD EPYC, whose own level is the portable one), else native."""
    mode = (record.get("config", {}).get("run") or {}).get("cpu_isa")
    if mode:
        return mode
    protocol = (record.get("setting") or {}).get("protocol")
    if protocol in C.preset_names():
        return C.preset_dict(protocol).get("run", {}).get("cpu_isa", "native")
    return "native"


def verify(record_file: str | Path, *, data_root: str | None = None, tolerance: float = 1.0,
           level: float = LEVEL, results: list | tuple = (), workdir: str | Path | None = None,
           quiet: bool = True, threads: int | None = None, cpu_isa: str | None = None) -> Report:
    """Validate ``record_file``, rerun its config (with its thread count and instruction-set mode, on its kind of
    device) in a scratch folder and compare (see the module docstring). ``results``: more folders to look in for
    the record's cell; ``level``: the coverage of the prediction interval (0.99: a rerun that is as good as a new
    seed fails 1 time in 100); ``threads``, ``cpu_isa``: rerun with these instead of the record's (another
    platform: the check is statistical unless the weights come out identical)."""
    if not (_number(tolerance) and math.isfinite(tolerance) and tolerance > 0):
        raise C.ConfigError(f"--tolerance must be a positive number of percentage points, got {tolerance}")
    if not (_number(level) and 0 < level < 1):
        raise C.ConfigError(f"--level must be a fraction in (0, 1), e.g. 0.99, got {level}")
    if threads is not None and not (isinstance(threads, int) and threads >= 1):
        raise C.ConfigError(f"--threads must be a positive integer, got {threads}")
    if cpu_isa is not None:
        isa.check_mode(cpu_isa)
    path = Path(record_file)
    old = read(path)
    cfg = load_config(old, path, data_root)
    recorded = platform_of(old)
    notes = []
    if threads is not None and threads != recorded["threads"]:
        notes.append(f"the rerun uses {threads} thread(s), the record {recorded['threads']}: another platform, so "
                     "the check is statistical unless the weights come out identical")
        cfg = cfg.replace(run={"threads": threads})
    elif recorded["threads"] and cfg.run.threads != recorded["threads"]:
        cfg = cfg.replace(run={"threads": recorded["threads"]})  # threads change results; not the run id
    mode = recorded_cpu_isa(old)
    if cpu_isa is not None and cpu_isa != mode:
        notes.append(f"the rerun's oneDNN instruction set is {cpu_isa}, the record's {mode}")
        mode = cpu_isa
    cfg = cfg.replace(run={"cpu_isa": mode})
    cfg = _rerun_device(cfg, recorded["device"])
    cfg = _pick_data_root(cfg, data_root)
    for r in results:
        if not Path(r).is_dir():
            raise C.ConfigError(f"--results {r} is not a folder")
    cell = cell_records(path, old, results)

    ds = D.load(cfg.data)  # missing or different data: one line now, not after the rerun
    want = old["provenance"].get("data_sha256")
    if want and want != ds.fingerprint:
        raise D.DataError(f"the {cfg.data.dataset} data under {D.data_root(cfg.data)} has fingerprint "
                          f"{ds.fingerprint[:16]}…, but the record was made from {want[:16]}…: point --data-root "
                          "at the copy the record was made from")
    del ds
    if not quiet:
        print(f"verify: rerunning {old['run_id']} ({cfg.training.epochs} epochs, {cfg.run.threads or 'default'} "
              f"thread(s)) in a scratch folder; {len(cell)} record(s) of its cell found", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(dir=workdir, prefix="fggp-verify-") as tmp:
        res = train(cfg, tmp, force=True, quiet=quiet, command=["fggp-repro", "verify", str(path)])
        new = res.record
    report = Report(path, old["run_id"], recorded, platform_of(new), level=level, notes=notes)
    report.checks = compare(old, new, same_platform=report.same_platform, tolerance=tolerance,
                            cell=[acc for _, acc, _ in cell], level=level)
    return report

"""Reading run records (docs/RECORD_SCHEMA.md) into tidy pandas frames.

Every record is validated field by field; anything the statistics would silently mis-handle
(bad JSON, wrong schema, a missing field, a non-numeric accuracy of a completed run, two records
of the same run) raises :class:`analysis.RecordError` naming the file and the field.

Which files are run records (:func:`classify`): a ``*.json`` file is a run record exactly when it is
a JSON object whose ``"schema"`` is a string starting with ``fggp-repro/run-record/``, or when it is
not valid JSON but its bytes contain ``fggp-repro/run-record/`` (a damaged record). Every other JSON
file under a results folder (a ``notes.json``, another tool's output, a JSON list, an object without
``"schema"`` or with another schema) is not a run record: it is skipped and listed in
:attr:`Records.skipped`, never an error. A run record with another version than
``fggp-repro/run-record/v1``, or with a defect in any field, is an error.

Units are those of the records: accuracies in percent (0-100), sparsities and densities as
fractions (0-1).
"""

from __future__ import annotations

import json
import math
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import RecordError

SCHEMA = "fggp-repro/run-record/v1"
#: A JSON file is a run record exactly when its ``schema`` starts with this (see :func:`classify`).
SCHEMA_PREFIX = "fggp-repro/run-record/"
STATUSES = ("completed", "diverged")

#: A setting: the grid cell a run belongs to, independent of method and seed.
SETTING_KEYS: tuple[str, ...] = ("dataset", "arch", "target_sparsity", "initial_density", "protocol")
#: What identifies one run for statistics.
RUN_KEYS: tuple[str, ...] = SETTING_KEYS + ("method", "seed")
#: The per-(dataset, arch, protocol) reference a dense run belongs to.
REFERENCE_KEYS: tuple[str, ...] = ("dataset", "arch", "protocol")
#: Row order of every frame: keys only, so the order of files on disk never matters.
SORT_KEYS: tuple[str, ...] = ("protocol", "dataset", "arch", "initial_density", "target_sparsity", "method", "seed")

#: The platform a run was made on (docs/RECORD_SCHEMA.md, "The platform of a record"): the torch version,
#: the device model, the CPU instruction set, the oneDNN instruction-set level in effect, the torch thread count,
#: the precision and strict mode. Two strict runs of one config agree bit for bit only on one platform; across
#: platforms they drift like a new seed. Strings in the runs frame, ``unknown`` where a record does not say (see
#: :func:`platform_of`).
PLATFORM_COLUMNS: tuple[str, ...] = ("torch", "device", "cpu_isa", "onednn_isa", "threads", "precision", "strict")
#: What a platform column holds when the record does not say.
UNKNOWN = "unknown"

#: Columns of :func:`load_runs`, in order.
RUN_COLUMNS: tuple[str, ...] = (
    "dataset", "arch", "method", "target_sparsity", "initial_density", "seed", "protocol",
    "status", "run_id", "test_acc", "best_test_acc_after_pruning", "sparsity", "path",
    "collapsed", "best_test_acc_window", "epochs", "width", "train_images", "iterations", "t_end",
    "bn_recal_test_acc", "dead_units", "preset", "options",
) + PLATFORM_COLUMNS
HISTORY_FIELDS: tuple[str, ...] = ("iteration", "lr", "train_loss", "train_acc", "test_acc", "sparsity")

#: A completed run whose final test accuracy (percent) is at or below this is at chance level on
#: CIFAR-10's 10 classes: flagged ``collapsed`` in tables and counted in the audit's evidence. It is an outcome
#: of the method, not a defect of the record: it stays in the results tables and the ranks, and the accuracy
#: comparisons set its seed pairs aside and compare collapse rates on their own (analysis/claims.toml).
COLLAPSED_AT = 11.0

DENSE = "dense"
#: Display order of methods (others follow alphabetically, dense last).
METHOD_ORDER: tuple[str, ...] = ("fggp", "annealed", "annealed:r0=0.01", "gf-annealed", "gf-annealed:r0=0.01",
                                  "mf-fixed", "gmp", "gmp-mt", "granet", "random")

#: The pruning hyperparameters that make a method a distinct alternative, with the protocol's values
#: (the training config's defaults: GraNet's r0 = 0.5, r_min = 0.005; FGGP's rho = 0.5). A run whose value
#: differs is labelled ``method:field=value``, e.g. ``annealed:r0=0.01`` (the FGGP authors' script
#: default), and is never pooled with the protocol's method -- the same syntax as ``grid --methods``.
METHOD_VARIANT_FIELDS: dict[str, tuple[tuple[str, float], ...]] = {
    "annealed": (("r0", 0.5), ("r_min", 0.005)),
    "gf-annealed": (("r0", 0.5), ("r_min", 0.005)),
    "granet": (("r0", 0.5), ("r_min", 0.005)),
    "fggp": (("rate", 0.5),),
    "mf-fixed": (("rate", 0.5),),
}


def method_label(method: str, pruning: dict | None) -> str:
    """``method`` plus ``:field=value`` for each of its :data:`METHOD_VARIANT_FIELDS` that ``pruning``
    (a record's ``config.pruning``) sets to another value than the protocol's; ``method`` itself when
    the record has no config (older tools) or keeps every protocol value."""
    if not pruning:
        return method
    label = method
    for field, default in METHOD_VARIANT_FIELDS.get(method, ()):
        v = pruning.get(field, default)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and float(v) != default:
            label += f":{field}={float(v):g}"
    return label


def method_order(methods) -> list[str]:
    """Sort method names for display: the known order first (an unknown variant ``m:field=v`` right
    after its method), unknown ones alphabetically, dense last."""
    known = {m: i for i, m in enumerate(METHOD_ORDER)}

    def key(m):
        base = m.split(":")[0]
        return (m == DENSE, known.get(m, known.get(base, len(known)) + 0.5), m)

    return sorted(set(methods), key=key)


@dataclass(frozen=True)
class Records:
    """Everything :func:`load_records` reads: one tidy frame per granularity."""

    runs: pd.DataFrame  #: one row per run, columns :data:`RUN_COLUMNS`
    histories: pd.DataFrame  #: one row per (run, epoch)
    layer_sparsity: pd.DataFrame  #: one row per (run, prunable tensor)
    #: the JSON files that are not run records, as (path, reason), sorted by path (:func:`classify`)
    skipped: tuple[tuple[str, str], ...] = ()


# --------------------------------------------------------------------------------------------
# field access with named errors


def _field(path, obj, key: str, dotted: str):
    if not isinstance(obj, dict) or key not in obj:
        raise RecordError(path, dotted, "missing")
    return obj[key]


def _dict(path, obj, key: str) -> dict:
    v = _field(path, obj, key, key)
    if not isinstance(v, dict):
        raise RecordError(path, key, f"expected an object, got {type(v).__name__}")
    return v


def _str(path, v, dotted: str) -> str:
    if not isinstance(v, str) or not v:
        raise RecordError(path, dotted, f"expected a non-empty string, got {_show(v)}")
    return v


def _show(v) -> str:
    s = repr(v)
    return s if len(s) <= 40 else s[:37] + "..."


def _number(path, v, dotted: str, *, null_ok: bool, lo: float | None = None, hi: float | None = None) -> float:
    """A finite float in [lo, hi]; None (JSON null) or non-finite gives NaN when ``null_ok``."""
    if v is None:
        if null_ok:
            return math.nan
        raise RecordError(path, dotted, "is null; expected a number")
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise RecordError(path, dotted, f"expected a number, got {type(v).__name__} {_show(v)}")
    x = float(v)
    if not math.isfinite(x):
        if null_ok:
            return math.nan
        raise RecordError(path, dotted, f"is {x}; expected a finite number")
    if (lo is not None and x < lo) or (hi is not None and x > hi):
        raise RecordError(path, dotted, f"= {x} is outside [{lo}, {hi}]")
    return x


# --------------------------------------------------------------------------------------------
# one record


class NotARecord(Exception):
    """A JSON file that is not a run record (:func:`classify`); ``str(err)`` is the one-line reason."""


def classify(path: str | Path) -> dict:
    """Read ``path`` and tell whether it is a run record: returns the parsed record when it is, raises
    :class:`NotARecord` (with the reason) when it is not, :class:`RecordError` when it is a damaged one.

    The rule: a run record is a JSON object whose ``"schema"`` is a string starting with
    ``fggp-repro/run-record/`` (:data:`SCHEMA_PREFIX`). A file that is not valid JSON (or not UTF-8) is a
    damaged run record when its bytes contain ``fggp-repro/run-record/``, and not a run record otherwise.
    A file that cannot be read at all is an error (it may be a record). The version is checked later: a
    run record whose schema is not exactly ``fggp-repro/run-record/v1`` is an error, not skipped."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as e:
        raise RecordError(path, None, f"cannot be read ({e.strerror})") from None
    try:
        rec = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        if SCHEMA_PREFIX.encode() in raw:
            what = "valid JSON" if isinstance(e, json.JSONDecodeError) else "valid UTF-8 JSON"
            raise RecordError(path, None, f"not {what} ({e}), yet it names the run-record schema "
                                          f"{SCHEMA_PREFIX}...: a damaged run record") from None
        raise NotARecord(f"not valid JSON, and it does not name the run-record schema {SCHEMA_PREFIX}...") from None
    if not isinstance(rec, dict):
        raise NotARecord(f"a JSON {_json_type(rec)}, not an object with \"schema\": \"{SCHEMA}\"")
    if "schema" not in rec:
        raise NotARecord(f"a JSON object without \"schema\" (a run record has \"schema\": \"{SCHEMA}\")")
    schema = rec["schema"]
    if not isinstance(schema, str) or not schema.startswith(SCHEMA_PREFIX):
        raise NotARecord(f"its \"schema\" is {_show(schema)}, not {SCHEMA_PREFIX}...")
    return rec


def _json_type(v) -> str:
    return {list: "list", str: "string", bool: "boolean", int: "number", float: "number",
            type(None): "null"}.get(type(v), type(v).__name__)


def _parse(path: Path, rec: dict, *, history: bool, layers: bool):
    schema = rec["schema"]
    if schema != SCHEMA:
        raise RecordError(path, "schema", f"is {_show(schema)}; expected {SCHEMA!r} (another version of the "
                                          f"run-record schema than this analysis reads)")
    run_id = _str(path, _field(path, rec, "run_id", "run_id"), "run_id")
    status = _field(path, rec, "status", "status")
    if status not in STATUSES:
        raise RecordError(path, "status", f"is {_show(status)}; expected one of {', '.join(STATUSES)}")

    setting = _dict(path, rec, "setting")
    row: dict = {}
    for key in ("dataset", "arch", "method", "protocol"):
        row[key] = _str(path, _field(path, setting, key, f"setting.{key}"), f"setting.{key}")
    for key in ("target_sparsity", "initial_density"):
        # Rounded so that 0.9 written as 0.9000000001 by another tool lands in the same setting.
        row[key] = round(_number(path, _field(path, setting, key, f"setting.{key}"), f"setting.{key}",
                                 null_ok=False, lo=0.0, hi=1.0), 9)
    seed = _field(path, setting, "seed", "setting.seed")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise RecordError(path, "setting.seed", f"expected an integer, got {_show(seed)}")
    row["seed"] = seed
    config = rec.get("config")
    pruning = config.get("pruning") if isinstance(config, dict) else None
    row["method"] = method_label(row["method"], pruning if isinstance(pruning, dict) else None)
    if row["method"] == DENSE and (row["target_sparsity"] != 0.0 or row["initial_density"] != 1.0):
        raise RecordError(path, "setting.target_sparsity",
                          "a dense run must have target_sparsity 0.0 and initial_density 1.0")

    metrics = _dict(path, rec, "metrics")
    done = status == "completed"
    # A completed run must carry its accuracy; a diverged one has null metrics by the schema.
    row["test_acc"] = _number(path, _field(path, metrics, "test_acc", "metrics.test_acc"),
                              "metrics.test_acc", null_ok=not done, lo=0.0, hi=100.0)
    row["best_test_acc_after_pruning"] = _number(
        path, _field(path, metrics, "best_test_acc_after_pruning", "metrics.best_test_acc_after_pruning"),
        "metrics.best_test_acc_after_pruning", null_ok=True, lo=0.0, hi=100.0)
    row["sparsity"] = _number(path, _field(path, metrics, "sparsity", "metrics.sparsity"),
                              "metrics.sparsity", null_ok=not done, lo=0.0, hi=1.0)
    row["status"] = status
    row["run_id"] = run_id
    row["path"] = str(path)
    row["collapsed"] = bool(done and row["test_acc"] <= COLLAPSED_AT)
    row["_config"] = _run_config(config if isinstance(config, dict) else {}, row["method"] == DENSE)
    row.update(platform_of(rec))
    _scale(row, config if isinstance(config, dict) else {})
    row["best_test_acc_window"] = _best_in_window(path, rec.get("history"), row, done)
    row["bn_recal_test_acc"], row["dead_units"] = _diagnostics(path, rec.get("diagnostics"))
    row["preset"], row["options"] = preset_of(rec), options_of(rec)

    hist = None
    if history:
        hist = _parse_history(path, rec.get("history"))
    lay = None
    if layers:
        lay = _parse_layers(path, rec.get("per_layer_sparsity"))
    return row, hist, lay


#: Options of ``fggp-repro train`` that name the run within its protocol (setting, method and its variant fields,
#: seeds), where it is written, or how it is run: left out of :func:`options_of`.
PER_RUN_OPTIONS = frozenset({
    "--preset", "--protocol", "--config", "--method", "--seed", "--init-seed", "--order-seed", "--sparsity", "--init",
    "--dataset", "--arch", "--r0", "--r-min", "--rate", "--out", "--data-root", "--threads", "--device", "--quiet",
    "--force", "--save-model", "--stop-after-epochs", "--deadline-at", "--print-config", "--no-check-copy"})


def _command_tokens(record: dict) -> list[str]:
    prov = record.get("provenance")
    command = prov.get("command") if isinstance(prov, dict) else None
    if not isinstance(command, str):
        return []
    try:
        return shlex.split(command)
    except ValueError:
        return command.split()


def _options(tokens: list[str]) -> list[tuple[str, str]]:
    """(option, value) pairs of a command line (``--name=value`` and ``--name value``; value "" for a flag)."""
    out, i = [], 0
    while i < len(tokens):
        t = tokens[i]
        if t.startswith("--"):
            name, eq, value = t.partition("=")
            if not eq and i + 1 < len(tokens) and not tokens[i + 1].startswith("--"):
                value = tokens[i + 1]
                i += 1
            out.append((name, value))
        i += 1
    return out


def preset_of(record: dict) -> str:
    """The preset a record was trained from: the ``--preset NAME`` of its ``provenance.command`` (``unknown``
    when the command names none). A protocol is usually its preset's name; a run such as ``--preset cpu
    --protocol cpu-fp32 --precision fp32`` is a protocol of its own made from the preset ``cpu``. Never raises:
    the preset is reported, it does not enter a statistic."""
    for name, value in _options(_command_tokens(record)):
        if name == "--preset" and value:
            return value
    return UNKNOWN


def options_of(record: dict) -> str:
    """The options of the record's ``provenance.command`` that change its preset's config, as written there
    (``--precision fp32``), leaving out those of :data:`PER_RUN_OPTIONS`; "" when there are none."""
    return " ".join(f"{n} {v}".strip() for n, v in _options(_command_tokens(record)) if n not in PER_RUN_OPTIONS)


def _text(v) -> str:
    if v is None or (isinstance(v, str) and not v.strip()):
        return UNKNOWN
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return " ".join(str(v).split())


def platform_of(record: dict) -> dict:
    """The platform a record was made on, :data:`PLATFORM_COLUMNS` as strings (``unknown`` where the record
    does not say): the same definition as the training core's ``records.platform_of`` (this package may not
    import it). ``device`` is ``provenance.device_model``, or for older records ``provenance.device`` without
    its thread count (``cpu (<model>, <n> threads)`` -> ``cpu (<model>)``), in either case without a CPU model's
    clock (``Intel(R) Xeon(R) Processor @ 2.50GHz`` -> ``Intel(R) Xeon(R) Processor``: the clock says nothing about
    the kernels); ``cpu_isa`` is ``provenance.cpu_capability``; ``onednn_isa`` is ``provenance.onednn_isa``, the
    oneDNN instruction-set level in effect (e.g. ``AVX512_CORE_BF16``; older records lack it); ``threads`` is ``provenance.torch_threads`` (else ``config.run.threads``);
    ``precision`` is ``config.run.precision`` (``fp32`` when the record has no such field, as records made
    before it existed); ``strict`` is ``provenance.deterministic`` (``true``/``false``). Never raises: the
    platform is reported, it does not enter a statistic."""
    prov = record.get("provenance")
    prov = prov if isinstance(prov, dict) else {}
    config = record.get("config")
    run = config.get("run") if isinstance(config, dict) else None
    run = run if isinstance(run, dict) else {}
    device = prov.get("device_model")
    if device is None:
        device = prov.get("device")
        if isinstance(device, str) and device.startswith("cpu (") and device.endswith(" threads)") and ", " in device:
            device = device[: device.rindex(", ")] + ")"
    threads = prov.get("torch_threads")
    if threads is None:
        threads = run.get("threads") or None
    precision = run.get("precision", "fp32")
    if isinstance(device, str):
        device = _CLOCK.sub("", device)
    return {"torch": _text(prov.get("torch")), "device": _text(device), "cpu_isa": _text(prov.get("cpu_capability")),
            "onednn_isa": _text(prov.get("onednn_isa")), "threads": _text(threads), "precision": _text(precision),
            "strict": _text(prov.get("deterministic"))}


#: A CPU model's clock suffix, e.g. " @ 2.50GHz" (the training core drops it from the device model too).
_CLOCK = re.compile(r"\s*@\s*[0-9.]+\s*[GM]Hz")


#: Config fields that legitimately differ between the runs of one protocol (they are the setting, the
#: method, the seed, or do not change the result), ignored when telling protocol variants apart.
_PER_RUN_FIELDS = {"run.seed", "run.protocol", "run.device", "run.threads", "run.strict", "run.channels_last",
                   "data.data_root", "data.download", "data.dataset", "model.arch", "pruning.method",
                   "pruning.sparsity", "pruning.init", "training.eval_batch_size", "training.checkpoint_every"}


def _run_config(config: dict, dense: bool) -> dict:
    """The record's config flattened to dotted keys, without the per-run fields (and, for a dense run,
    without the pruning group, which it does not use; variant fields are part of the method label)."""
    out = {}
    for group, fields in config.items():
        if not isinstance(fields, dict) or (dense and group == "pruning"):
            continue
        for k, v in fields.items():
            key = f"{group}.{k}"
            if key in _PER_RUN_FIELDS or (group == "pruning" and k in ("r0", "r_min", "rate")):
                continue
            out[key] = tuple(v) if isinstance(v, list) else v
    return out


def _show_value(v) -> str:
    if isinstance(v, tuple):
        return "/".join(_show_value(x) for x in v)
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _split_protocol_variants(rows: list[dict], configs: list[dict]) -> None:
    """Relabel the protocol of every run of a protocol in which two records share (setting, method,
    seed) but not their config: ``protocol[field=value,...]`` with the fields that differ between such
    records. Two records of the same run and config are a duplicate: RecordError."""
    by_key: dict[tuple, list[int]] = {}
    for i, r in enumerate(rows):
        by_key.setdefault(tuple(r[k] for k in RUN_KEYS), []).append(i)
    fields_by_protocol: dict[str, set] = {}
    for key, idx in by_key.items():
        if len(idx) < 2:
            continue
        for a in range(len(idx)):
            for b in range(a):
                ca, cb = configs[idx[a]], configs[idx[b]]
                diff = {k for k in set(ca) | set(cb) if ca.get(k) != cb.get(k)}
                if not diff:
                    raise RecordError(rows[idx[a]]["path"], "setting",
                                      f"duplicate run: same (setting, method, seed) and config as {rows[idx[b]]['path']}")
                fields_by_protocol.setdefault(rows[idx[a]]["protocol"], set()).update(diff)
    for protocol, fields in fields_by_protocol.items():
        names = sorted(fields)
        short = {f: f.split(".")[-1] for f in names}
        if len(set(short.values())) < len(names):
            short = {f: f for f in names}
        for r, c in zip(rows, configs):
            if r["protocol"] == protocol:
                label = ",".join(f"{short[f]}={_show_value(c.get(f, 'none'))}" for f in names)
                r["protocol"] = f"{protocol}[{label}]"
    if fields_by_protocol:  # the new labels must leave no two runs with one key
        seen: dict[tuple, str] = {}
        for r in rows:
            key = tuple(r[k] for k in RUN_KEYS)
            if key in seen:
                raise RecordError(r["path"], "setting", f"duplicate run: same (setting, method, seed) as {seen[key]}")
            seen[key] = r["path"]


def _config_number(config: dict, group: str, key: str) -> float:
    g = config.get(group)
    v = g.get(key) if isinstance(g, dict) else None
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else math.nan


def _diagnostics(path, diag) -> tuple[float, float]:
    """``(bn_recal_test_acc, dead_units)`` from a record's ``diagnostics`` (docs/RECORD_SCHEMA.md): the test
    accuracy after BatchNorm recalibration [%] and the number of dead output units; NaN where the record has
    no diagnostics (older records, diverged runs). Diagnostics only: no statistic of the audit uses them."""
    if diag is None:
        return math.nan, math.nan
    if not isinstance(diag, dict):
        raise RecordError(path, "diagnostics", f"expected an object or null, got {_show(diag)}")
    acc = _number(path, diag.get("bn_recalibrated_test_acc"), "diagnostics.bn_recalibrated_test_acc",
                  null_ok=True, lo=0.0, hi=100.0)
    dead = diag.get("dead_units")
    total = dead.get("total") if isinstance(dead, dict) else None
    if total is not None and (isinstance(total, bool) or not isinstance(total, int) or total < 0):
        raise RecordError(path, "diagnostics.dead_units.total", f"expected a count, got {_show(total)}")
    return acc, (math.nan if total is None else float(total))


def _scale(row: dict, config: dict) -> None:
    """The protocol's scale, from the record's config (NaN when an older tool left it out): epochs,
    network width, training images (NaN = the whole training set)."""
    row["epochs"] = _config_number(config, "training", "epochs")
    row["width"] = _config_number(config, "model", "width")
    sub = _config_number(config, "data", "train_subset")
    row["train_images"] = sub if sub > 0 else math.nan
    row["end_fraction"] = _config_number(config, "pruning", "end_fraction")


def _best_in_window(path, hist, row: dict, done: bool) -> float:
    """OPTIMISTIC best test accuracy [%] over the epochs that end at or after T_end =
    floor(end_fraction * total iterations) -- the same window for every method, dense included
    (the record's own ``best_test_acc_after_pruning`` uses every epoch for dense runs, which never
    prune). Also sets ``row["iterations"]`` and ``row["t_end"]``.

    Needs a history whose entries carry ``iteration``; without one, a pruned run falls back to the
    record's ``best_test_acc_after_pruning`` (the same window) and a dense run gets NaN."""
    row["iterations"] = row["t_end"] = math.nan
    fallback = row["best_test_acc_after_pruning"] if row["method"] != DENSE else math.nan
    end_fraction = row.pop("end_fraction")
    if not done or not isinstance(hist, list) or not hist:
        return fallback if done else math.nan
    its, accs = [], []
    for i, e in enumerate(hist):
        it = e.get("iteration") if isinstance(e, dict) else None
        acc = e.get("test_acc") if isinstance(e, dict) else None
        if isinstance(it, bool) or not isinstance(it, int) or isinstance(acc, bool) or not isinstance(acc, (int, float)):
            return fallback
        its.append(it)
        accs.append(float(acc))
    total = max(its)
    frac = end_fraction if math.isfinite(end_fraction) else 0.8
    t_end = int(frac * total)
    row["iterations"], row["t_end"] = float(total), float(t_end)
    window = [a for it, a in zip(its, accs) if it >= t_end and math.isfinite(a)]
    return max(window) if window else math.nan


def _parse_history(path, hist):
    """Columns (epoch, lr, train_loss, train_acc, test_acc, sparsity) as arrays; a missing or null
    history is an empty one (figures skip it), a malformed one is an error."""
    if hist is None:
        hist = []
    if not isinstance(hist, list):
        raise RecordError(path, "history", f"expected a list, got {type(hist).__name__}")
    epochs = np.empty(len(hist), dtype=np.int64)
    cols = {f: np.empty(len(hist)) for f in HISTORY_FIELDS}
    for i, entry in enumerate(hist):
        if not isinstance(entry, dict):
            raise RecordError(path, f"history[{i}]", f"expected an object, got {type(entry).__name__}")
        ep = entry.get("epoch")
        if isinstance(ep, bool) or not isinstance(ep, int) or ep < 0:
            raise RecordError(path, f"history[{i}].epoch", f"expected a non-negative integer, got {_show(ep)}")
        epochs[i] = ep
        for f in HISTORY_FIELDS:
            cols[f][i] = _number(path, entry.get(f), f"history[{i}].{f}", null_ok=True)
    return epochs, cols


def _parse_layers(path, layers):
    if layers is None:
        layers = {}
    if not isinstance(layers, dict):
        raise RecordError(path, "per_layer_sparsity", f"expected an object, got {type(layers).__name__}")
    names = list(layers)
    vals = np.array([_number(path, layers[n], f"per_layer_sparsity.{n}", null_ok=True, lo=0.0, hi=1.0)
                     for n in names], dtype=float)
    return names, vals


# --------------------------------------------------------------------------------------------
# a folder of records


def record_files(path: str | Path) -> list[Path]:
    """Every ``*.json`` under ``path`` (recursively), sorted; ``[path]`` for a single file. Whether each
    is a run record is for :func:`classify` to say.

    Raises ``FileNotFoundError`` when ``path`` does not exist.
    """
    p = Path(path)
    if p.is_file():
        return [p]
    if not p.exists():
        raise FileNotFoundError(f"no such file or folder: {p}")
    return sorted(f for f in p.rglob("*.json") if f.is_file())


def _empty_runs() -> pd.DataFrame:
    df = pd.DataFrame({c: pd.Series(dtype=object) for c in RUN_COLUMNS})
    return _typed(df)


def _typed(df: pd.DataFrame) -> pd.DataFrame:
    for c in ("target_sparsity", "initial_density", "test_acc", "best_test_acc_after_pruning", "sparsity",
              "best_test_acc_window", "epochs", "width", "train_images", "iterations", "t_end",
              "bn_recal_test_acc", "dead_units"):
        df[c] = df[c].astype(float)
    df["collapsed"] = df["collapsed"].astype(bool)
    df["seed"] = df["seed"].astype(np.int64)
    for c in ("dataset", "arch", "method", "protocol", "status", "run_id", "path", "preset",
              "options") + PLATFORM_COLUMNS:
        df[c] = df[c].astype(str)
    return df


def load_records(path: str | Path, *, histories: bool = True, layers: bool = True) -> Records:
    """Read and validate every run record under ``path``.

    Returns a :class:`Records` with three tidy frames, each sorted by run keys (never by file
    order): ``runs`` (see :func:`load_runs`), ``histories`` (one row per run and epoch:
    run keys, status, run_id, epoch, lr, train_loss, train_acc [%], test_acc [%], sparsity [fraction])
    and ``layer_sparsity`` (run keys, status, run_id, layer, layer_index — the position of the tensor
    in the record — and sparsity [fraction]). ``histories=False`` / ``layers=False`` skip reading those
    parts (the frames come back empty).

    Files that are not run records (:func:`classify`: a JSON object whose ``"schema"`` starts with
    ``fggp-repro/run-record/``) are skipped and listed in :attr:`Records.skipped` with the reason.

    A protocol is one preset: when two records of one protocol share (setting, method, seed) but were
    made with different configs (e.g. a sweep over epochs), the protocol is split by the config
    fields that tell them apart, e.g. ``cpu-frontier[epochs=8]`` and ``cpu-frontier[epochs=12]``, so
    that they are never pooled (:func:`_split_protocol_variants`).

    Raises :class:`RecordError` for a malformed record or two records of the same
    (setting, method, seed) and config, ``FileNotFoundError`` when ``path`` does not exist.
    """
    rows: list[dict] = []
    hists: list = []
    lays: list = []
    configs: list[dict] = []
    skipped: list[tuple[str, str]] = []
    for f in record_files(path):
        try:
            rec = classify(f)
        except NotARecord as e:
            skipped.append((str(f), str(e)))
            continue
        row, hist, lay = _parse(f, rec, history=histories, layers=layers)
        configs.append(row.pop("_config"))
        rows.append(row)
        hists.append(hist)
        lays.append(lay)
    _split_protocol_variants(rows, configs)

    if not rows:
        runs = _empty_runs()
    else:
        runs = _typed(pd.DataFrame(rows, columns=list(RUN_COLUMNS)))
    order = runs.sort_values(list(SORT_KEYS), kind="mergesort").index.to_numpy() if len(runs) else np.array([], int)
    runs_sorted = runs.loc[order].reset_index(drop=True)

    id_cols = list(RUN_KEYS) + ["status", "run_id"]
    hist_df = _stack(runs, order, hists if histories else [None] * len(rows), id_cols, kind="history")
    lay_df = _stack(runs, order, lays if layers else [None] * len(rows), id_cols, kind="layers")
    return Records(runs=runs_sorted, histories=hist_df, layer_sparsity=lay_df, skipped=tuple(skipped))


def _stack(runs: pd.DataFrame, order, parts, id_cols, *, kind: str) -> pd.DataFrame:
    """Long frame of per-run arrays, in sorted run order, with the run's identity repeated."""
    if kind == "history":
        value_cols = ["epoch", *HISTORY_FIELDS]
    else:
        value_cols = ["layer", "layer_index", "sparsity"]
    lengths = np.array([0 if p is None else len(p[0]) for p in parts], dtype=np.int64)
    if len(order):
        lengths = lengths[order]
    total = int(lengths.sum())
    out: dict = {}
    for c in id_cols:
        src = runs[c].to_numpy()[order] if len(order) else runs[c].to_numpy()
        out[c] = np.repeat(src, lengths) if total else src[:0]
    if kind == "history":
        sel = [parts[i] for i in order if parts[i] is not None and len(parts[i][0])]
        out["epoch"] = np.concatenate([p[0] for p in sel]) if sel else np.array([], dtype=np.int64)
        for f in HISTORY_FIELDS:
            out[f] = np.concatenate([p[1][f] for p in sel]) if sel else np.array([], dtype=float)
    else:
        sel = [parts[i] for i in order if parts[i] is not None and len(parts[i][0])]
        out["layer"] = np.array([n for p in sel for n in p[0]], dtype=object)
        out["layer_index"] = (np.concatenate([np.arange(len(p[0])) for p in sel]) if sel
                              else np.array([], dtype=np.int64))
        out["sparsity"] = np.concatenate([p[1] for p in sel]) if sel else np.array([], dtype=float)
    df = pd.DataFrame(out, columns=id_cols + value_cols)
    for c in ("dataset", "arch", "method", "protocol", "status", "run_id") + (("layer",) if kind != "history" else ()):
        df[c] = df[c].astype(str)
    df["seed"] = df["seed"].astype(np.int64)
    for c in ("target_sparsity", "initial_density"):
        df[c] = df[c].astype(float)
    if kind == "history":
        df["epoch"] = df["epoch"].astype(np.int64)
        df = df.sort_values(list(SORT_KEYS) + ["epoch"], kind="mergesort")
    else:
        df["layer_index"] = df["layer_index"].astype(np.int64)
    return df.reset_index(drop=True)


def load_runs(path: str | Path) -> pd.DataFrame:
    """One row per run record under ``path`` (``**/*.json``), sorted by run keys.

    Columns: dataset, arch, method, target_sparsity [fraction], initial_density [fraction], seed,
    protocol, status ("completed" | "diverged"), run_id, test_acc [%, final epoch; NaN when
    diverged], best_test_acc_after_pruning [%, OPTIMISTIC: selected on the test set; NaN when
    absent], sparsity [fraction of all Conv/Linear weights and biases], path, collapsed (completed at
    chance level), the protocol's scale, and the record's diagnostics: bn_recal_test_acc [%, after
    BatchNorm recalibration; NaN when the record has none] and dead_units [count; NaN likewise], the
    preset the run was trained from (:func:`preset_of`) and the options its command changed it with
    (:func:`options_of`).

    Diverged runs stay in the frame (statistics use only completed ones and count the others). Then the
    platform of each run (:data:`PLATFORM_COLUMNS`, :func:`platform_of`). JSON files that are not run
    records are skipped silently here (:func:`load_records` lists them).
    Raises :class:`RecordError` (file and field named) for a malformed or duplicate record.
    """
    return load_records(path, histories=False, layers=False).runs


def load_histories(path: str | Path) -> pd.DataFrame:
    """Per-epoch training curves of every run under ``path``: run keys, status, run_id, epoch,
    lr, train_loss, train_acc [%], test_acc [%], sparsity [fraction]; sorted by run keys and epoch."""
    return load_records(path, histories=True, layers=False).histories


def load_layer_sparsity(path: str | Path) -> pd.DataFrame:
    """Per-layer sparsity of every run under ``path``: run keys, status, run_id, layer, layer_index,
    sparsity [fraction]."""
    return load_records(path, histories=False, layers=True).layer_sparsity


def completed(df: pd.DataFrame) -> pd.DataFrame:
    """The rows of completed runs: the only ones that enter statistics."""
    return df[df["status"] == "completed"]


def diverged_runs(df: pd.DataFrame) -> pd.DataFrame:
    """The rows of diverged runs (reported, never used in statistics), sorted by run keys."""
    cols = [c for c in RUN_KEYS if c in df.columns] + [c for c in ("run_id",) if c in df.columns]
    return df.loc[df["status"] == "diverged", cols].sort_values(list(SORT_KEYS), kind="mergesort").reset_index(drop=True)


def setting_label(dataset: str, arch: str, target_sparsity: float, initial_density: float,
                  protocol: str | None = None, *, with_dataset: bool = True) -> str:
    """Human-readable name of a setting, e.g. ``cifar10 vgg19 90% dense-start``."""
    parts = [dataset] if with_dataset else []
    parts.append(arch)
    if target_sparsity == 0.0 and initial_density == 1.0:
        parts.append("dense")
    else:
        parts.append(f"{_pct(target_sparsity)}%")
        parts.append(start_label(initial_density))
    if protocol is not None:
        parts.append(f"[{protocol}]")
    return " ".join(parts)


def start_label(initial_density: float) -> str:
    """``dense-start`` for initial density 1.0, else e.g. ``50%-sparse-start``."""
    if initial_density >= 1.0:
        return "dense-start"
    return f"{_pct(1.0 - initial_density)}%-sparse-start"


def start_density(label: str) -> float:
    """The initial density of a start label, the inverse of :func:`start_label` (``dense-start`` 1.0,
    ``50%-sparse-start`` 0.5)."""
    return 1.0 if label == "dense-start" else 1.0 - float(label.split("%", 1)[0]) / 100.0


def _pct(fraction: float) -> str:
    return f"{round(100.0 * fraction, 6):g}"

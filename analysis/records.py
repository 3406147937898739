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

The schema itself is not defined here: the fields of a record, its version, its statuses, what identifies a setting
and a run, the platform of a record and the labels of method variants are those of the training core's
specification layer (:mod:`fggp_repro.spec`, standard library only: the analysis still never imports torch), the one
definition the trainer writes to, ``fggp-repro verify`` checks, and docs/RECORD_SCHEMA.md is generated from. Every
record is checked with :func:`fggp_repro.spec.validate` (records made before a field existed may lack it); this
module adds what the statistics need on top (a dense run's setting, distinct runs).
"""

from __future__ import annotations

import json
import math
import shlex
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fggp_repro.spec import (
    PER_RUN_FIELDS,
    PLATFORM_FIELDS,
    RUN_KEY,
    SCHEMA,
    SCHEMA_PREFIX,
    SETTING_KEY,
    VARIANT_FIELDS,
    RecordInvalid,
    method_label,
    platform_of,
    validate,
)
from fggp_repro.spec.methods import DENSE

from .errors import RecordError

#: A setting: the grid cell a run belongs to, independent of method and seed (the spec's ``SETTING_KEY``).
SETTING_KEYS: tuple[str, ...] = SETTING_KEY
#: What identifies one run for statistics (the spec's ``RUN_KEY``).
RUN_KEYS: tuple[str, ...] = RUN_KEY
#: The per-(dataset, arch, protocol) reference a dense run belongs to.
REFERENCE_KEYS: tuple[str, ...] = ("dataset", "arch", "protocol")
#: Row order of every frame: keys only, so the order of files on disk never matters.
SORT_KEYS: tuple[str, ...] = ("protocol", "dataset", "arch", "initial_density", "target_sparsity", "method", "seed")

#: The platform a run was made on (docs/RECORD_SCHEMA.md, "The platform of a record"; the spec's
#: ``PLATFORM_FIELDS``): the torch version, the device model, the CPU instruction set, the oneDNN instruction-set
#: level in effect, the torch thread count, the precision, strict mode and the memory format (channels_last). Two
#: strict runs of one config agree bit for bit only on one platform; across platforms they drift like a new seed.
#: Strings in the runs frame, ``unknown`` where a record does not say (see :func:`platform_columns`).
PLATFORM_COLUMNS: tuple[str, ...] = PLATFORM_FIELDS
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

#: Display order of methods (others follow alphabetically, dense last). A method whose variant fields differ from
#: the protocol's values is labelled ``method:field=value`` (:func:`fggp_repro.spec.method_label`, e.g.
#: ``annealed:r0=0.01``) and never pooled with the protocol's method.
METHOD_ORDER: tuple[str, ...] = ("fggp", "annealed", "annealed:r0=0.01", "gf-annealed", "gf-annealed:r0=0.01",
                                  "mf-fixed", "gmp", "gmp-mt", "granet", "random")


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
    #: protocols whose records cross init seeds with order seeds (``grid --init-seeds ... --order-seeds``): left out
    #: of the frames (their runs share seeds, so nothing here may pair or pool them); ``analysis.variance`` reads them
    crossed: tuple[str, ...] = ()
    #: the runs of those protocols, columns :data:`RUN_COLUMNS` (for describing a design, never for comparisons)
    crossed_runs: pd.DataFrame | None = None


# --------------------------------------------------------------------------------------------
# checks on top of the schema


def _show(v) -> str:
    s = repr(v)
    return s if len(s) <= 40 else s[:37] + "..."


#: What to do about a record the analysis cannot read: the end of each such error.
FIX = "remake the run, or move the file out of the results folder"


def _check(path, rec: dict) -> None:
    """Raise :class:`RecordError` (file and field named) unless ``rec`` meets the run-record schema of the spec
    (:func:`fggp_repro.spec.validate`; a field a record predates may be absent) and what the statistics need
    besides: the setting's names non-empty (they name output folders and rows), a dense run's setting dense."""
    schema = rec["schema"]
    if schema != SCHEMA:
        raise RecordError(path, "schema", f"is {_show(schema)}; expected {SCHEMA!r} (another version of the "
                                          f"run-record schema than this analysis reads): move the file out of the "
                                          f"results folder")
    try:
        validate(rec)
    except RecordInvalid as e:
        raise RecordError(path, e.field, f"{e.problem} (docs/RECORD_SCHEMA.md): {FIX}") from None
    setting = rec["setting"]
    for key in ("dataset", "arch", "method", "protocol"):
        if not setting[key].strip():
            raise RecordError(path, f"setting.{key}", f"is an empty string: {FIX}")
    if setting["method"] == DENSE and (setting["target_sparsity"] != 0.0 or setting["initial_density"] != 1.0):
        raise RecordError(path, "setting.target_sparsity",
                          f"a dense run must have target_sparsity 0.0 and initial_density 1.0: {FIX}")


def _nan_if_null(v) -> float:
    return math.nan if v is None else float(v)


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
                                          f"{SCHEMA_PREFIX}...: a damaged run record; {FIX}") from None
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


def read_record(path: str | Path) -> dict:
    """The run record in ``path``, checked: :func:`classify` says whether it is one (:class:`NotARecord` when
    not), then the spec's schema and the analysis's own checks (:class:`RecordError`, file and field named, for a
    record that fails them). Every command of the analysis reads records through it."""
    rec = classify(path)
    _check(path, rec)
    return rec


def _parse(path: Path, rec: dict, *, history: bool, layers: bool):
    """One row of the runs frame (and the history and layer columns) from a record :func:`read_record` checked."""
    setting, metrics, status = rec["setting"], rec["metrics"], rec["status"]
    row: dict = {key: setting[key] for key in ("dataset", "arch", "protocol", "seed")}
    for key in ("target_sparsity", "initial_density"):
        # Rounded so that 0.9 written as 0.9000000001 by another tool lands in the same setting.
        row[key] = round(float(setting[key]), 9)
    config = rec["config"]
    pruning = config.get("pruning")
    row["method"] = method_label(setting["method"], pruning if isinstance(pruning, dict) else None)
    done = status == "completed"
    # A completed run carries its accuracy (the schema says so); a diverged one may hold null.
    row["test_acc"] = _nan_if_null(metrics["test_acc"])
    row["best_test_acc_after_pruning"] = _nan_if_null(metrics["best_test_acc_after_pruning"])
    row["sparsity"] = float(metrics["sparsity"])
    row["status"] = status
    row["run_id"] = rec["run_id"]
    row["path"] = str(path)
    row["collapsed"] = bool(done and row["test_acc"] <= COLLAPSED_AT)
    row["_config"] = _run_config(config, row["method"] == DENSE)
    row.update(platform_columns(rec))
    _scale(row, config)
    row["best_test_acc_window"] = _best_in_window(rec["history"], row, done)
    row["bn_recal_test_acc"], row["dead_units"] = _diagnostics(rec.get("diagnostics"))
    row["preset"], row["options"] = preset_of(rec), options_of(rec)
    hist = _parse_history(rec["history"]) if history else None
    lay = _parse_layers(rec["per_layer_sparsity"]) if layers else None
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


def platform_columns(record: dict) -> dict[str, str]:
    """The platform a record was made on (:func:`fggp_repro.spec.platform_of`, the training core's own
    definition), each of :data:`PLATFORM_COLUMNS` as a string: ``unknown`` where the record does not say (a field
    it predates), ``true``/``false`` for strict mode and channels_last, a whole number without its ``.0``. Never
    raises: the platform is reported, it does not enter a statistic."""
    return {k: _text(v) for k, v in platform_of(record).items()}


#: Config fields in which the runs of one protocol differ from each other (the spec's ``PER_RUN_FIELDS``: where a
#: run sits in the grid and how it executed) are ignored when telling protocol variants apart -- all but the seeds
#: of a crossed design: the analysis tells runs apart by their run seed (:data:`RUN_KEYS`), so two runs of one seed
#: with other init or order seeds are kept apart as variants of their protocol rather than taken for duplicates.
_PER_RUN_FIELDS = frozenset(PER_RUN_FIELDS) - {"run.init_seed", "run.order_seed"}


def _run_config(config: dict, dense: bool) -> dict:
    """The record's config flattened to dotted keys, without the per-run fields (and, for a dense run,
    without the pruning group, which it does not use; variant fields are part of the method label)."""
    out = {}
    for group, fields in config.items():
        if not isinstance(fields, dict) or (dense and group == "pruning"):
            continue
        for k, v in fields.items():
            key = f"{group}.{k}"
            if key in _PER_RUN_FIELDS or (group == "pruning" and k in VARIANT_FIELDS):
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
                    raise RecordError(rows[idx[a]]["path"], "setting", f"duplicate run: same (setting, method, "
                                      f"seed) and config as {rows[idx[b]]['path']}; keep one of the two")
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
                raise RecordError(r["path"], "setting", f"duplicate run: same (setting, method, seed) as "
                                                        f"{seen[key]}; keep one of the two")
            seen[key] = r["path"]


def _config_number(config: dict, group: str, key: str) -> float:
    g = config.get(group)
    v = g.get(key) if isinstance(g, dict) else None
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else math.nan


def _diagnostics(diag) -> tuple[float, float]:
    """``(bn_recal_test_acc, dead_units)`` from a record's ``diagnostics`` (docs/RECORD_SCHEMA.md): the test
    accuracy after BatchNorm recalibration [%] and the number of dead output units; NaN where the record has
    no diagnostics (older records, diverged runs). Diagnostics only: no statistic of the audit uses them."""
    if diag is None:
        return math.nan, math.nan
    return _nan_if_null(diag["bn_recalibrated_test_acc"]), float(diag["dead_units"]["total"])


def _scale(row: dict, config: dict) -> None:
    """The protocol's scale, from the record's config (NaN when an older tool left it out): epochs,
    network width, training images (NaN = the whole training set)."""
    row["epochs"] = _config_number(config, "training", "epochs")
    row["width"] = _config_number(config, "model", "width")
    sub = _config_number(config, "data", "train_subset")
    row["train_images"] = sub if sub > 0 else math.nan
    row["end_fraction"] = _config_number(config, "pruning", "end_fraction")


def _best_in_window(hist: list, row: dict, done: bool) -> float:
    """OPTIMISTIC best test accuracy [%] over the epochs that end at or after T_end =
    floor(end_fraction * total iterations) -- the same window for every method, dense included
    (the record's own ``best_test_acc_after_pruning`` uses every epoch for dense runs, which never
    prune). Also sets ``row["iterations"]`` and ``row["t_end"]``.

    Without a history (an empty one), a pruned run falls back to the record's ``best_test_acc_after_pruning``
    (the same window) and a dense run gets NaN."""
    row["iterations"] = row["t_end"] = math.nan
    end_fraction = row.pop("end_fraction")
    if not done:
        return math.nan
    if not hist:
        return row["best_test_acc_after_pruning"] if row["method"] != DENSE else math.nan
    total = max(e["iteration"] for e in hist)
    frac = end_fraction if math.isfinite(end_fraction) else 0.8
    t_end = int(frac * total)
    row["iterations"], row["t_end"] = float(total), float(t_end)
    window = [float(e["test_acc"]) for e in hist if e["iteration"] >= t_end]
    return max(window) if window else math.nan


def _parse_history(hist: list):
    """Columns (epoch, lr, train_loss, train_acc, test_acc, sparsity, iteration) as arrays, from a history the
    schema has checked (an empty one for a record without epochs: figures skip it)."""
    epochs = np.array([e["epoch"] for e in hist], dtype=np.int64)
    cols = {f: np.array([e[f] for e in hist], dtype=float) for f in HISTORY_FIELDS}
    return epochs, cols


def _parse_layers(layers: dict):
    names = list(layers)
    return names, np.array([layers[n] for n in names], dtype=float)


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
    crossed: set[str] = set()
    for f in record_files(path):
        try:
            rec = read_record(f)
        except NotARecord as e:
            skipped.append((str(f), str(e)))
            continue
        row, hist, lay = _parse(f, rec, history=histories, layers=layers)
        s = rec["setting"]
        if s.get("init_seed", row["seed"]) != row["seed"] or s.get("order_seed", row["seed"]) != row["seed"]:
            crossed.add(row["protocol"])
        configs.append(row.pop("_config"))
        rows.append(row)
        hists.append(hist)
        lays.append(lay)
    crossed_rows = [r for r in rows if r["protocol"] in crossed]
    if crossed:
        keep = [i for i, r in enumerate(rows) if r["protocol"] not in crossed]
        rows, configs = [rows[i] for i in keep], [configs[i] for i in keep]
        hists, lays = [hists[i] for i in keep], [lays[i] for i in keep]
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
    crossed_df = _typed(pd.DataFrame(crossed_rows, columns=list(RUN_COLUMNS))) if crossed_rows else _empty_runs()
    return Records(runs=runs_sorted, histories=hist_df, layer_sparsity=lay_df, skipped=tuple(skipped),
                   crossed=tuple(sorted(crossed)), crossed_runs=crossed_df)


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
    platform of each run (:data:`PLATFORM_COLUMNS`, :func:`platform_columns`). JSON files that are not run
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
    out = df.loc[df["status"] == "diverged", cols].sort_values(list(SORT_KEYS), kind="mergesort")
    return out.reset_index(drop=True)


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

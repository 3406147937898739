"""The run record: one JSON object per run, and :data:`FIELDS`, the one definition of what it holds.

The trainer assembles records in the order of :data:`FIELDS` (:func:`assemble`), ``fggp-repro verify`` checks them
with :func:`validate`, and the field table of docs/RECORD_SCHEMA.md is generated from it (``fggp_repro/spec/doc.py``).
Fields marked ``older`` are absent from records made before they existed: :func:`validate` accepts their absence,
and a record made today has every field (``complete=True``). Units: accuracies in percent (0-100), sparsities and
densities as fractions (0-1), times in seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SCHEMA = "fggp-repro/run-record/v1"
#: A JSON file is a run record (of some version) exactly when its ``schema`` starts with this.
SCHEMA_PREFIX = "fggp-repro/run-record/"
STATUSES = ("completed", "diverged")

#: A setting: the grid cell a run belongs to, independent of method and seed (keys of ``setting``).
SETTING_KEY: tuple[str, ...] = ("dataset", "arch", "target_sparsity", "initial_density", "protocol")
#: What identifies one run for statistics (keys of ``setting``); ``run_id`` identifies its computation.
RUN_KEY: tuple[str, ...] = SETTING_KEY + ("method", "seed")

_KINDS = {"string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,), "object": (dict,),
          "list": (list,)}
_UNITS = {"percent": (0.0, 100.0), "fraction": (0.0, 1.0), "count": (0, None), "seconds": (0.0, None)}


@dataclass(frozen=True)
class Field:
    """One field of a record. ``path``: dotted, ``name[]`` for the entries of a list, ``*`` for every value of
    an object keyed by name."""

    path: str
    kind: str  # a key of _KINDS
    doc: str
    unit: str = ""  # a key of _UNITS: the range a number must lie in
    null: tuple[str, ...] = ()  # the statuses of the runs whose record may hold null here
    null_only: bool = False  # and of these runs it must be null
    older: bool = False  # absent from records made before the field existed
    choices: tuple = ()

    @property
    def parent(self) -> str:
        return self.path.rpartition(".")[0]

    @property
    def name(self) -> str:
        return self.path.rpartition(".")[2]


_ANY = STATUSES
_DIVERGED = ("diverged",)

#: Every field of a record of :data:`SCHEMA`, parents before their fields, in the order the trainer writes them.
FIELDS: tuple[Field, ...] = (
    Field("schema", "string", "the schema and its version", choices=(SCHEMA,)),
    Field("run_id", "string", "`<arch>-<method>-<16 hex>`: a hash of the config's result-defining fields that "
                              "differ from their defaults (the seed included), unique per computation; the file is "
                              "`<run_id>.json`"),
    Field("status", "string", "how the run ended", choices=STATUSES),
    Field("config", "object", "the full config, every field, nested by group (data, model, pruning, training, run; "
                              "`fggp_repro/spec/config.py`); a dense run's is canonical: the pruning fields it "
                              "ignores at their defaults"),
    Field("setting", "object", "where the run sits in a grid, from its config"),
    Field("setting.dataset", "string", "cifar10, cifar10-jpeg or synthetic"),
    Field("setting.arch", "string", "vgg19, resnet50 or resnet50-6n2"),
    Field("setting.method", "string", "dense, fggp, annealed, gf-annealed, mf-fixed, gmp, gmp-mt, random or granet"),
    Field("setting.target_sparsity", "number", "the target sparsity; 0.0 for dense", unit="fraction"),
    Field("setting.initial_density", "number", "1.0 (a dense start, and dense) or 0.5 (the 50 %-sparse ERK start)",
          unit="fraction"),
    Field("setting.seed", "integer", "the run seed"),
    Field("setting.init_seed", "integer", "the seed of the initial network: weights, ERK mask, random pruning",
          older=True),
    Field("setting.order_seed", "integer", "the seed of the data: order, augmentation, BatchNorm recalibration",
          older=True),
    Field("setting.protocol", "string", "the preset the run came from (paper, paper-short, cpu, mini, smoke, ...), "
                                        "else custom"),
    Field("metrics", "object", "the results"),
    Field("metrics.test_acc", "number", "test accuracy after the last epoch: the metric", unit="percent",
          null=_DIVERGED),
    Field("metrics.best_test_acc_after_pruning", "number", "OPTIMISTIC (selected on the test set): the best test "
          "accuracy of the epochs that end at or after pruning ends; null when there is none", unit="percent",
          null=_ANY),
    Field("metrics.final_train_loss", "number", "mean training loss of the last epoch", null=_DIVERGED),
    Field("metrics.sparsity", "number", "zero fraction of every Conv2d/Linear weight and bias (the authors' "
                                        "denominator)", unit="fraction"),
    Field("metrics.prunable_sparsity", "number", "zero fraction of the prunable weights", unit="fraction"),
    Field("per_layer_sparsity", "object", "per prunable weight tensor, by parameter name"),
    Field("per_layer_sparsity.*", "number", "the tensor's zero fraction", unit="fraction"),
    Field("weight_counts", "object", "the counts behind the sparsities"),
    Field("weight_counts.denominator", "integer", "every Conv2d/Linear weight and bias", unit="count"),
    Field("weight_counts.zero", "integer", "those that are zero", unit="count"),
    Field("weight_counts.prunable", "integer", "the prunable weights", unit="count"),
    Field("weight_counts.prunable_zero", "integer", "those that are zero", unit="count"),
    Field("weights_sha256", "string", "SHA-256 over every parameter and buffer at the end of the run (name, dtype, "
                                      "shape, bytes; sorted by name)"),
    Field("history", "list", "one entry per finished epoch"),
    Field("history[].epoch", "integer", "1-based", unit="count"),
    Field("history[].lr", "number", "the epoch's learning rate"),
    Field("history[].train_loss", "number", "mean training loss"),
    Field("history[].train_acc", "number", "training accuracy (augmented batches, during the epoch)",
          unit="percent"),
    Field("history[].test_acc", "number", "test accuracy after the epoch", unit="percent"),
    Field("history[].sparsity", "number", "as metrics.sparsity, after the epoch", unit="fraction"),
    Field("history[].iteration", "integer", "iterations done by the end of the epoch", unit="count"),
    Field("pruning_events", "list", "one entry per pruning event; a sparse start's ERK mask is the event at "
                                    "iteration 0"),
    Field("pruning_events[].iteration", "integer", "the iteration of the event", unit="count"),
    Field("pruning_events[].target_density", "number", "the schedule's density d(t)", unit="fraction"),
    Field("pruning_events[].n_pruned", "integer", "weights removed", unit="count"),
    Field("pruning_events[].n_regrown", "integer", "weights regrown (granet)", unit="count"),
    Field("pruning_events[].density", "number", "the density after the event, over the denominator",
          unit="fraction"),
    Field("divergence", "object", "why the run diverged; null when it completed", null=("completed",),
          null_only=True),
    Field("divergence.epoch", "integer", "the epoch it diverged in (1-based)", unit="count"),
    Field("divergence.iteration", "integer", "the iteration", unit="count"),
    Field("divergence.reason", "string", "e.g. non-finite training loss (nan)"),
    Field("diagnostics", "object", "end-of-run diagnostics (`fggp_repro/diagnostics.py`), never the metric; null "
                                   "when the run diverged", null=_DIVERGED, null_only=True, older=True),
    Field("diagnostics.dead_units", "object", "output units (conv filters, linear rows) whose weights are all zero"),
    Field("diagnostics.dead_units.total", "integer", "over the prunable layers", unit="count"),
    Field("diagnostics.dead_units.per_layer", "object", "by weight tensor, only those that have any"),
    Field("diagnostics.dead_units.per_layer.*", "integer", "the tensor's dead units", unit="count"),
    Field("diagnostics.bn_recalibrated_test_acc", "number", "DIAGNOSIS ONLY: the test accuracy of a copy of the "
          "network whose BatchNorm statistics were recomputed on training batches; null without BatchNorm",
          unit="percent", null=_ANY),
    Field("diagnostics.bn_recalibration_batches", "integer", "the training batches it recomputed them on",
          unit="count"),
    Field("provenance", "object", "how and where the run was made"),
    Field("provenance.git_commit", "string", "the commit of the checkout the code ran from, when the run started "
          "(`$FGGP_SOURCE_COMMIT` when set); `unknown` outside a git checkout"),
    Field("provenance.git_dirty", "boolean", "whether the code a run executes (fggp_repro/, pyproject.toml, "
          "constraints.txt) differed from that commit; null when unknown", null=_ANY),
    Field("provenance.source", "string", "where the code ran from: a git checkout, a copy of the source tree, or an "
          "installed package (no source tree: git_commit and source_sha256 unknown)",
          choices=("checkout", "copy", "installed"), older=True),
    Field("provenance.source_sha256", "string", "SHA-256 of that code by relative path, comparable across "
          "checkouts; null for an installed package", null=_ANY, older=True),
    Field("provenance.command", "string", "the command that made it"),
    Field("provenance.python", "string", "the Python version"),
    Field("provenance.torch", "string", "the torch version"),
    Field("provenance.torchvision", "string", "the torchvision version"),
    Field("provenance.numpy", "string", "the numpy version"),
    Field("provenance.device", "string", "`cpu (<model>, <n> threads)` or the GPU's name"),
    Field("provenance.device_model", "string", "the device without the thread count", older=True),
    Field("provenance.torch_threads", "integer", "torch's thread count", unit="count"),
    Field("provenance.deterministic", "boolean", "strict mode (deterministic algorithms)"),
    Field("provenance.cpu_capability", "string", "the CPU instruction set torch dispatches to"),
    Field("provenance.cudnn_allow_tf32", "boolean", "TF32 in cuDNN convolutions (PyTorch's default: on)",
          older=True),
    Field("provenance.matmul_allow_tf32", "boolean", "TF32 in CUDA matrix products (PyTorch's default: off)",
          older=True),
    Field("provenance.hostname", "string", "the machine"),
    Field("provenance.cpu_isa_requested", "string", "config.run.cpu_isa: native or portable", older=True),
    Field("provenance.onednn_max_cpu_isa", "string", "`ONEDNN_MAX_CPU_ISA` as the run saw it", null=_ANY,
          older=True),
    Field("provenance.onednn_isa", "string", "the instruction set oneDNN ran at", older=True),
    Field("provenance.data_sha256", "string", "fingerprint of the decoded dataset (before any subset), as "
                                              "`fggp-repro data` prints it", older=True),
    Field("provenance.started", "string", "UTC, ISO 8601: when the run started (its first call, if resumed)"),
    Field("provenance.finished", "string", "UTC, ISO 8601"),
    Field("provenance.wall_seconds", "number", "wall time, every call of a resumed run together", unit="seconds"),
    Field("provenance.cpu_seconds", "number", "CPU time of the process, all threads (the cost on a shared machine)",
          unit="seconds", older=True),
)

_BY_PATH = {f.path: f for f in FIELDS}
_CHILDREN: dict[str, list[Field]] = {}
for _f in FIELDS:
    _CHILDREN.setdefault(_f.parent, []).append(_f)
#: The top-level fields, in order.
TOP_LEVEL: tuple[str, ...] = tuple(f.path for f in _CHILDREN[""])


class RecordInvalid(ValueError):
    """A record that does not meet the schema: ``field`` (``history[3].test_acc``) and the ``problem``."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field} {problem}")
        self.field = field
        self.problem = problem


def _json_type(v) -> str:
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, (int, float)):
        return "a number"
    return {str: "a string", dict: "an object", list: "a list"}.get(type(v), f"a {type(v).__name__}")


def _show(v) -> str:
    s = repr(v)
    return s if len(s) <= 40 else s[:37] + "..."


def _check_value(f: Field, v, where: str, status, complete: bool) -> None:
    if v is None:
        if status in f.null:
            return
        if f.null:
            raise RecordInvalid(where, f"is null, which only the record of a {' or '.join(f.null)} run may hold")
        raise RecordInvalid(where, f"is null, expected {'an' if f.kind[0] in 'aeiou' else 'a'} {f.kind}")
    if f.null_only and status in f.null:
        others = " or ".join(s for s in STATUSES if s not in f.null)
        raise RecordInvalid(where, f"is not null, which only the record of a {others} run may hold")
    if not isinstance(v, _KINDS[f.kind]) or (isinstance(v, bool) and f.kind != "boolean"):
        raise RecordInvalid(where, f"is {_json_type(v)} ({_show(v)}), expected "
                                   f"{'an' if f.kind[0] in 'aeiou' else 'a'} {f.kind}")
    if f.choices and v not in f.choices:
        raise RecordInvalid(where, f"is {_show(v)}, expected {' or '.join(map(repr, f.choices))}")
    if f.kind in ("number", "integer"):
        if not math.isfinite(v):
            raise RecordInvalid(where, f"is {v}, expected a finite number")
        lo, hi = _UNITS.get(f.unit, (None, None))
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise RecordInvalid(where, f"= {v} is outside [{lo}, {'' if hi is None else hi}] ({f.unit})")
    if f.kind == "object" and f.path in _CHILDREN:
        _check_object(f.path, v, where, status, complete)
    elif f.kind == "list" and f"{f.path}[]" in _CHILDREN:
        for i, item in enumerate(v):
            if not isinstance(item, dict):
                raise RecordInvalid(f"{where}[{i}]", f"is {_json_type(item)}, expected an object")
            _check_object(f"{f.path}[]", item, f"{where}[{i}]", status, complete)


def _check_object(path: str, obj: dict, where: str, status, complete: bool) -> None:
    fields = _CHILDREN[path]
    prefix = f"{where}." if where else ""
    for f in fields:
        if f.name == "*":
            for key, v in obj.items():
                _check_value(f, v, f"{prefix}{key}", status, complete)
        elif f.name in obj:
            _check_value(f, obj[f.name], f"{prefix}{f.name}", status, complete)
        elif complete or not f.older:
            raise RecordInvalid(f"{prefix}{f.name}", "missing")
    if complete and not any(f.name == "*" for f in fields):
        extra = sorted(set(obj) - {f.name for f in fields})
        if extra:
            raise RecordInvalid(f"{prefix}{extra[0]}", "is not a field of the schema")


def validate(record, *, complete: bool = False) -> None:
    """Raise :class:`RecordInvalid` naming the first field of ``record`` that does not meet :data:`FIELDS`: a
    missing field, a value of the wrong type, null where the run's status allows none, a number outside its unit's
    range. ``complete``: also every field a record made today has (``older`` ones included), and no other. The
    config's own values are not checked here (``config.from_dict`` does that)."""
    if not isinstance(record, dict):
        raise RecordInvalid("the record", f"is {_json_type(record)}, expected an object")
    _check_object("", record, "", record.get("status"), complete)


def setting(cfg) -> dict:
    """The ``setting`` of a run of ``cfg`` (a :class:`fggp_repro.spec.config.Config`)."""
    return {"dataset": cfg.data.dataset, "arch": cfg.model.arch, "method": cfg.pruning.method,
            "target_sparsity": cfg.target_sparsity, "initial_density": cfg.initial_density, "seed": cfg.run.seed,
            "init_seed": cfg.init_seed, "order_seed": cfg.order_seed, "protocol": cfg.run.protocol}


def assemble(**parts) -> dict:
    """A record from its top-level fields (every one of :data:`TOP_LEVEL` but ``schema``), in the schema's order."""
    want = set(TOP_LEVEL) - {"schema"}
    if set(parts) != want:
        raise TypeError(f"a record needs exactly the fields {sorted(want)}: missing {sorted(want - set(parts))}, "
                        f"unknown {sorted(set(parts) - want)}")
    return {"schema": SCHEMA, **{k: parts[k] for k in TOP_LEVEL if k != "schema"}}

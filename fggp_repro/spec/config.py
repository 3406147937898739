"""Frozen, validated run configuration: five groups (data, model, pruning, training, run).

The defaults ARE the paper protocol (docs/protocol.md); presets in ``fggp_repro/presets/*.toml`` override
groups of fields. Every field carries help text in its metadata; the command line is generated from
these dataclasses (see ``fggp_repro/cli.py``), so a new field is one line here.

Fields whose metadata says ``id=False`` describe *how* a run executes (paths, device, checkpoint
cadence), not *what* it computes, and are left out of the run id. Fields at their default value are
left out too, so adding a field with a default keeps every old run id.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import tomllib
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any, get_type_hints


class UserError(Exception):
    """A problem the user can fix (bad config, missing data, unwritable output, malformed record): the CLI
    prints its message, which names the fix, as one line and exits 2."""


class ConfigError(UserError, ValueError):
    """A user-fixable configuration problem; the CLI prints its message as one line and exits 2."""


# Registries of names the config accepts. The pruning package and the model registry check they
# agree with these (tests/test_config.py), so that validation here needs no torch import.
ARCHS = ("vgg19", "resnet50", "resnet50-6n2")
DATASETS = ("cifar10", "cifar10-jpeg", "synthetic")
METHODS = ("dense", "fggp", "annealed", "gf-annealed", "mf-fixed", "gmp", "gmp-mt", "random", "granet")
INITS = {"dense": 1.0, "sparse50": 0.5}
DEVICES = ("auto", "cpu", "cuda")
WEIGHT_INITS = ("torch", "authors")
COUNTS = ("exact", "authors")
PRECISIONS = ("fp32", "bf16")
CPU_ISAS = ("native", "portable")  # fggp_repro/isa.py


def _f(default: Any, help: str, *, id: bool = True, choices: tuple | None = None):
    """A dataclass field with help text; ``id=False`` keeps it out of the run id; ``choices`` is shown in --help."""
    meta = {"help": help, "id": id, "choices": choices}
    return field(default=tuple(default) if isinstance(default, list) else default, metadata=meta)


@dataclass(frozen=True)
class DataConfig:
    dataset: str = _f("cifar10", "dataset name: cifar10 (genuine, torchvision's cifar-10-batches-py), "
                      "cifar10-jpeg (image-folder copy, lossy), synthetic (seeded random tensors, for tests)",
                      choices=DATASETS)
    data_root: str = _f("", "folder holding the dataset (cifar10: the parent of cifar-10-batches-py; cifar10-jpeg: "
                        "the folder with train/ and test/ or its parent). Empty: $FGGP_DATA or ~/.cache/fggp-data",
                        id=False)
    download: bool = _f(False, "cifar10 only: download genuine CIFAR-10 into --data-root when missing", id=False)
    check_copy: bool = _f(True, "cifar10 and cifar10-jpeg: refuse a copy whose images per class or fingerprint differ "
                          "from the complete dataset's (off: train on any copy, under a run id of its own)")
    train_subset: int = _f(0, "use a fixed, class-balanced subset of this many training images (0 = all)")
    test_subset: int = _f(0, "evaluate on a fixed, class-balanced subset of this many test images (0 = all; short "
                          "reference runs only: the paper's metric is on the whole test set)")
    subset_seed: int = _f(0, "seed of the class-balanced training and test subsets (fixed across run seeds)")
    augment: bool = _f(True, "random crop 32 with 4-pixel zero padding and horizontal flip")
    synthetic_train: int = _f(1024, "synthetic only: number of training images")
    synthetic_test: int = _f(512, "synthetic only: number of test images")


@dataclass(frozen=True)
class ModelConfig:
    arch: str = _f("vgg19", "architecture: vgg19 (VGG-19-BN, CIFAR), resnet50 (bottleneck [3,4,6,3], CIFAR) or "
                   "resnet50-6n2 (GraNet's resnet(depth=50): 6n+2 BasicBlocks, widths 32/64/128, what the "
                   "authors' current script calls)",
                   choices=ARCHS)
    width: float = _f(1.0, "channel width multiplier (1.0 = the paper's networks)")
    weight_init: str = _f("torch", "weight initialisation: torch (PyTorch's layer defaults) or authors (vgg19: the "
                          "FGGP authors' archs/cifar10/vgg.py: He-normal fan-in convolutions, zero biases, BatchNorm "
                          "1/0, Linear N(0, 0.01) with zero bias; resnet50-6n2: GraNet's weights_init; resnet50: "
                          "PyTorch's defaults either way)", choices=WEIGHT_INITS)


@dataclass(frozen=True)
class PruningConfig:
    method: str = _f("dense", "pruning method (fggp = gradient-first, fixed rate; annealed = GraNet's magnitude-first, "
                     "cosine-annealed rule; gf-annealed, mf-fixed = the other ablation cells; gmp = global magnitude; "
                     "gmp-mt = with a per-layer minimum; granet = faithful GraNet with regrowth)", choices=METHODS)
    sparsity: float = _f(0.9, "target sparsity, a fraction in (0, 1) of all Conv2d/Linear weights and biases")
    init: str = _f("dense", "starting network: dense, or sparse50 (random ERK mask at 50 % density)",
                   choices=tuple(INITS))
    update_interval: int = _f(2000, "iterations between pruning events")
    end_fraction: float = _f(0.8, "pruning ends at this fraction of all training iterations (T_end / T_total)")
    rate: float = _f(0.5, "fixed candidate rate rho of the fixed-rate methods (fggp, mf-fixed)")
    r0: float = _f(0.5, "initial rate of the cosine-annealed methods (annealed, gf-annealed, granet); "
                   "the FGGP authors' script default was 0.01")
    r_min: float = _f(0.005, "final rate of the cosine annealing")
    mt_fraction: float = _f(0.0005, "gmp-mt: minimum weights each layer keeps, as a fraction of all prunable weights")
    counts: str = _f("exact", "counting convention of an event: exact (n = round((1-d) x denominator) - masked; "
                     "candidates from the active prunable count) or authors (the FGGP authors' script: n by floor, "
                     "candidates int(rho x remain) and int((remain - n) x r), remain = every nonzero "
                     "conv/linear weight and bias, the first convolution included)", choices=COUNTS)


@dataclass(frozen=True)
class TrainingConfig:
    epochs: int = _f(160, "training epochs")
    batch_size: int = _f(64, "minibatch size")
    lr: float = _f(0.1, "initial learning rate")
    momentum: float = _f(0.9, "SGD momentum")
    nesterov: bool = _f(True, "Nesterov momentum")
    weight_decay: float = _f(5e-4, "L2 weight decay (SGD's weight_decay)")
    milestones: tuple = _f((80, 120), "epochs after which the learning rate is multiplied by --gamma")
    gamma: float = _f(0.1, "learning-rate decay factor at each milestone")
    label_smoothing: float = _f(0.0, "cross-entropy label smoothing (the paper does not say; the authors' 2023 "
                                "CIFAR script used 0, their HEAD 06dbe30 uses 0.1)")
    eval_batch_size: int = _f(1000, "test-set batch size (does not change results)", id=False)
    checkpoint_every: int = _f(1, "write a resumable checkpoint every this many epochs (0 = never)", id=False)


@dataclass(frozen=True)
class RunConfig:
    seed: int = _f(0, "the run's one seed: weight init, ERK mask, data order, augmentation, random pruning")
    init_seed: int = _f(-1, "seed of the initial network alone: weight initialisation, the ERK mask of a sparse start "
                        "and random pruning's draws (-1: --seed)")
    order_seed: int = _f(-1, "seed of the data alone: order and augmentation of every epoch, and the batches that "
                         "recalibrate BatchNorm in the diagnostics (-1: --seed)")
    protocol: str = _f("custom", "protocol label stored with the results (set by --preset)", id=False)
    strict: bool = _f(True, "deterministic algorithms on (recorded); off allows faster nondeterministic kernels")
    device: str = _f("auto", "cpu, cuda or auto (cuda when available)", id=False, choices=DEVICES)
    threads: int = _f(0, "CPU threads for torch (0 = torch's default)", id=False)
    precision: str = _f("fp32", "fp32, or bf16 (autocast of forward and loss to bfloat16; weights, optimizer "
                        "state, masks and pruning scores stay fp32)", choices=PRECISIONS)
    cpu_isa: str = _f("native", "instruction set of oneDNN's CPU kernels: native (the CPU's own) or portable (capped "
                      "at AVX512_CORE_BF16, the level AMD and Intel server CPUs share, so that a strict run gives the "
                      "same weights on both; slower on CPUs with AMX). Results on one CPU do not depend on it when the "
                      "CPU's own level is the cap", id=False, choices=CPU_ISAS)
    channels_last: bool = _f(True, "channels-last memory format for the model and batches (faster convolutions; "
                             "bitwise results differ from channels-first)", id=False)


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    pruning: PruningConfig = field(default_factory=PruningConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    run: RunConfig = field(default_factory=RunConfig)

    # ---- derived views -------------------------------------------------------------------------
    @property
    def initial_density(self) -> float:
        """Density of the starting network over the sparsity denominator (1.0 for a dense start)."""
        return 1.0 if self.pruning.method == "dense" else INITS[self.pruning.init]

    @property
    def init_seed(self) -> int:
        """The seed of the initial network (weights, ERK mask, random pruning): ``run.init_seed``, else ``run.seed``."""
        return self.run.init_seed if self.run.init_seed >= 0 else self.run.seed

    @property
    def order_seed(self) -> int:
        """The seed of the data order and augmentation: ``run.order_seed``, else ``run.seed``."""
        return self.run.order_seed if self.run.order_seed >= 0 else self.run.seed

    @property
    def target_sparsity(self) -> float:
        """Target sparsity as a fraction; 0.0 for the dense reference."""
        return 0.0 if self.pruning.method == "dense" else self.pruning.sparsity

    def to_dict(self) -> dict:
        return {g.name: _group_to_dict(getattr(self, g.name)) for g in fields(self)}

    def replace(self, **groups: dict) -> "Config":
        """A copy with ``group={field: value}`` overrides applied and validated."""
        return from_dict(_merge(self.to_dict(), groups))


_GROUP_CLASSES = {"data": DataConfig, "model": ModelConfig, "pruning": PruningConfig,
                  "training": TrainingConfig, "run": RunConfig}


def _group_to_dict(group) -> dict:
    return {f.name: (list(v) if isinstance(v := getattr(group, f.name), tuple) else v) for f in fields(group)}


def _merge(base: dict, over: dict) -> dict:
    out = {k: dict(v) for k, v in base.items()}
    for g, vals in over.items():
        if g not in _GROUP_CLASSES:
            raise ConfigError(f"unknown config group '{g}' (known: {', '.join(_GROUP_CLASSES)})")
        if not isinstance(vals, dict):
            raise ConfigError(f"config group '{g}' must be a table of fields, got {type(vals).__name__}")
        out.setdefault(g, {}).update(vals)
    return out


def field_types(cls) -> dict[str, type]:
    """The declared type of every field of a config group (tuples for list-valued fields)."""
    hints = get_type_hints(cls)
    return {f.name: hints[f.name] for f in fields(cls)}


def _coerce(group: str, name: str, value: Any, typ: type) -> Any:
    where = f"{group}.{name}"
    if typ is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where} must be true or false, got {value!r}")
    if typ is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        return value
    if typ is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        value = float(value)
        if not math.isfinite(value):
            raise ConfigError(f"{where} must be finite, got {value!r}")
        return value
    if typ is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return value
    if typ is tuple:
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, int) and not isinstance(v, bool)
                                                            for v in value):
            raise ConfigError(f"{where} must be a list of integers, got {value!r}")
        return tuple(value)
    raise AssertionError(f"unsupported field type {typ} for {where}")  # a programming error, not a user one


def from_dict(d: dict) -> Config:
    """Build and validate a Config from nested ``{group: {field: value}}``; unknown keys are errors."""
    if not isinstance(d, dict):
        raise ConfigError("a config must be a table of groups (data, model, pruning, training, run)")
    groups = {}
    for gname, cls in _GROUP_CLASSES.items():
        vals = d.get(gname, {})
        if not isinstance(vals, dict):
            raise ConfigError(f"config group '{gname}' must be a table of fields")
        types = field_types(cls)
        unknown = sorted(set(vals) - set(types))
        if unknown:
            raise ConfigError(f"unknown key '{gname}.{unknown[0]}' (known keys in [{gname}]: {', '.join(types)})")
        groups[gname] = cls(**{k: _coerce(gname, k, v, types[k]) for k, v in vals.items()})
    extra = sorted(set(d) - set(_GROUP_CLASSES))
    if extra:
        raise ConfigError(f"unknown config group '{extra[0]}' (known: {', '.join(_GROUP_CLASSES)})")
    cfg = Config(**groups)
    validate(cfg)  # before canonical(): a dense run's ignored values must still be valid values
    return canonical(cfg)


# The pruning fields a dense run never reads. They are reset to their defaults, so that every dense
# config of one seed and protocol has one run id, whatever --sparsity, --init or method variant it was
# given. update_interval, end_fraction and counts are not reset: presets set them, and the dense run ids
# of every existing record include them.
DENSE_IGNORED = ("sparsity", "init", "rate", "r0", "r_min", "mt_fraction")


def canonical(cfg: Config) -> Config:
    """``cfg`` in the one form its computation has, so that one computation has one run id: the pruning fields a
    dense run ignores (:data:`DENSE_IGNORED`) at their defaults, and the seeds of init and order written only where
    they differ from the run seed (a run whose init and order seeds agree is the run of that seed)."""
    r = cfg.run
    init, order = cfg.init_seed, cfg.order_seed
    seed = init if init == order else r.seed
    run = dataclasses.replace(r, seed=seed, init_seed=-1 if init == seed else init,
                              order_seed=-1 if order == seed else order)
    cfg = dataclasses.replace(cfg, run=run)
    if cfg.pruning.method != "dense":
        return cfg
    default = PruningConfig()
    pruning = dataclasses.replace(cfg.pruning, **{k: getattr(default, k) for k in DENSE_IGNORED})
    return dataclasses.replace(cfg, pruning=pruning)


def validate(cfg: Config) -> None:
    """Raise ConfigError naming the first out-of-range or unknown value."""
    d, m, p, t, r = cfg.data, cfg.model, cfg.pruning, cfg.training, cfg.run

    def need(ok: bool, msg: str):
        if not ok:
            raise ConfigError(msg)

    need(d.dataset in DATASETS, f"unknown dataset '{d.dataset}' (choose from: {', '.join(DATASETS)})")
    need(d.train_subset >= 0, f"data.train_subset must be >= 0, got {d.train_subset}")
    need(d.train_subset % 10 == 0, f"data.train_subset must be a multiple of 10 (class-balanced), got {d.train_subset}")
    need(d.test_subset >= 0 and d.test_subset % 10 == 0,
         f"data.test_subset must be a multiple of 10 (class-balanced) and >= 0, got {d.test_subset}")
    need(d.synthetic_train >= 10 and d.synthetic_test >= 10, "data.synthetic_train and synthetic_test must be >= 10")
    need(m.arch in ARCHS, f"unknown architecture '{m.arch}' (choose from: {', '.join(ARCHS)})")
    need(0 < m.width <= 8, f"model.width must be in (0, 8], got {m.width}")
    need(m.weight_init in WEIGHT_INITS,
         f"unknown weight_init '{m.weight_init}' (choose from: {', '.join(WEIGHT_INITS)})")
    need(p.method in METHODS, f"unknown method '{p.method}' (choose from: {', '.join(METHODS)})")
    need(0 < p.sparsity < 1, f"sparsity must be a fraction in (0, 1), got {p.sparsity} (e.g. 0.9 for 90 %)")
    need(p.init in INITS, f"unknown init '{p.init}' (choose from: {', '.join(INITS)})")
    if p.method != "dense":
        need(1 - p.sparsity < INITS[p.init],
             f"sparsity {p.sparsity} is not above the starting sparsity of init '{p.init}' ({1 - INITS[p.init]})")
    need(p.update_interval >= 1, f"pruning.update_interval must be >= 1, got {p.update_interval}")
    need(0 < p.end_fraction <= 1, f"pruning.end_fraction must be in (0, 1], got {p.end_fraction}")
    need(0 < p.rate <= 1, f"pruning.rate must be in (0, 1], got {p.rate}")
    need(0 <= p.r_min <= p.r0 <= 1, f"need 0 <= r_min <= r0 <= 1, got r0={p.r0}, r_min={p.r_min}")
    need(0 <= p.mt_fraction < 1, f"pruning.mt_fraction must be in [0, 1), got {p.mt_fraction}")
    need(p.counts in COUNTS, f"unknown counts '{p.counts}' (choose from: {', '.join(COUNTS)})")
    need(t.epochs >= 1, f"epochs must be a positive integer, got {t.epochs}")
    need(t.batch_size >= 1, f"batch_size must be >= 1, got {t.batch_size}")
    need(t.lr > 0, f"lr must be > 0, got {t.lr}")
    need(0 <= t.momentum < 1, f"momentum must be in [0, 1), got {t.momentum}")
    need(not t.nesterov or t.momentum > 0, "nesterov needs momentum > 0")
    need(t.weight_decay >= 0, f"weight_decay must be >= 0, got {t.weight_decay}")
    need(list(t.milestones) == sorted(set(t.milestones)) and all(0 < e < t.epochs for e in t.milestones),
         f"milestones must be increasing epochs inside (0, {t.epochs}), got {list(t.milestones)}")
    need(0 < t.gamma <= 1, f"gamma must be in (0, 1], got {t.gamma}")
    need(0 <= t.label_smoothing < 1, f"label_smoothing must be in [0, 1), got {t.label_smoothing}")
    need(t.eval_batch_size >= 1, "eval_batch_size must be >= 1")
    need(t.checkpoint_every >= 0, f"checkpoint_every must be >= 0, got {t.checkpoint_every}")
    need(r.seed >= 0, f"seed must be >= 0, got {r.seed}")
    need(r.init_seed >= -1, f"init_seed must be >= 0 (or -1: the run seed), got {r.init_seed}")
    need(r.order_seed >= -1, f"order_seed must be >= 0 (or -1: the run seed), got {r.order_seed}")
    need(r.device in DEVICES, f"unknown device '{r.device}' (choose from: {', '.join(DEVICES)})")
    need(r.threads >= 0, f"threads must be >= 0, got {r.threads}")
    need(r.precision in PRECISIONS, f"unknown precision '{r.precision}' (choose from: {', '.join(PRECISIONS)})")
    need(r.cpu_isa in CPU_ISAS, f"unknown cpu_isa '{r.cpu_isa}' (choose from: {', '.join(CPU_ISAS)})")


# ---- presets and files ---------------------------------------------------------------------------

@dataclass(frozen=True)
class PresetInfo:
    what: str  # one line: what the preset is
    cost: str  # one line: what a run costs, and on what
    seconds: float | None = None  # nominal wall seconds a run (grid --dry-run's fallback estimate)


# Costs are measured: mini, paper-short and cpu from the wall_seconds of committed records (cpu: its complete
# grid of 369 records, made two at a time on a 2-core machine; `python benchmarks/run_cost.py cpu`), smoke from
# runs on two busy CPU cores; paper is 4 x paper-short.
PRESET_INFO = {
    "paper": PresetInfo("the paper protocol: full networks and CIFAR-10, 160 epochs, batch 64, 50 pruning events",
                        "GPU: about 4 x paper-short's wall time a VGG-19 run (none made yet)",
                        4 * 900.0),
    "paper-short": PresetInfo("the paper protocol scaled to 40 epochs (50 pruning events still)",
                              "GPU: 815-906 s of wall time a VGG-19 run, six runs sharing one H100",
                              900.0),
    "cpu": PresetInfo("VGG-19 at width 1/4, all 50,000 images, 8 epochs, bf16: pruning a trained network on CPUs",
                      "2 CPU cores: about 9 minutes a run (436-1047 s, median 517 s over the 369 grid records), "
                      "2 runs at a time with 1 thread each", 517.0),
    "cpu-resnet": PresetInfo("ResNet-50 (GraNet's 6n+2 network) at width 1/4, all 50,000 images, batch 64, 8 epochs, "
                             "bf16: pruning a trained ResNet on CPUs",
                             "2 CPU cores: about 20 CPU-minutes a run (the dense seed-0 frontier run: 19.5, 1697 s of "
                             "wall time on a machine shared with other work), 2 runs at a time with 1 thread each",
                             1697.0),
    "mini": PresetInfo("VGG-19 at width 1/8, a 10,000-image subset, 4 epochs: a pipeline check on real images",
                       "2 CPU cores: about 1 minute a run (54-103 s, median 60 s), 2 at a time with 1 thread each",
                       60.0),
    "smoke": PresetInfo("a tiny synthetic-data run through every code path, pruning to 90 % in 80 iterations",
                        "2 CPU cores: 10-20 seconds a run", 15.0),
}


def preset_summary(name: str) -> str:
    """``name: what it is; cost a run`` for ``fggp-repro presets`` (a new preset: its file's first comment)."""
    info = PRESET_INFO.get(name)
    if info:
        return f"{name:<12} {info.what}; {info.cost}"
    text = resources.files("fggp_repro.presets").joinpath(f"{name}.toml").read_text()
    first = next((ln.lstrip("# ").strip() for ln in text.splitlines() if ln.startswith("#")), "")
    return f"{name:<12} {first or '(no description)'}"


def preset_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("fggp_repro.presets").iterdir() if p.name.endswith(".toml"))


def _read_toml(text: str, where: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{where} is not valid TOML: {e}") from None


def preset_dict(name: str) -> dict:
    """The overrides of a shipped preset, with ``run.protocol`` set to its name."""
    if name not in preset_names():
        raise ConfigError(f"unknown preset '{name}' (choose from: {', '.join(preset_names())})")
    text = resources.files("fggp_repro.presets").joinpath(f"{name}.toml").read_text()
    d = _read_toml(text, f"preset '{name}'")
    d.setdefault("run", {})["protocol"] = name
    return d


def load(preset: str | None = None, file: str | Path | None = None, overrides: dict | None = None) -> Config:
    """Defaults, then a preset, then a TOML file, then ``overrides`` ({group: {field: value}})."""
    d = Config().to_dict()
    if preset:
        d = _merge(d, preset_dict(preset))
    if file:
        path = Path(file)
        if not path.is_file():
            raise ConfigError(f"config file {path} not found")
        d = _merge(d, _read_toml(path.read_text(), f"config file {path}"))
    if overrides:
        d = _merge(d, overrides)
    return from_dict(d)


# ---- identity ------------------------------------------------------------------------------------

def id_fields(cfg: Config) -> dict:
    """The fields that define what a run computes and differ from their defaults, nested by group."""
    out: dict[str, dict] = {}
    default = Config()
    for g in fields(Config):
        grp, dgrp = getattr(cfg, g.name), getattr(default, g.name)
        for f in fields(grp):
            if not f.metadata.get("id", True):
                continue
            v, dv = getattr(grp, f.name), getattr(dgrp, f.name)
            if v != dv:
                out.setdefault(g.name, {})[f.name] = list(v) if isinstance(v, tuple) else v
    return out


def run_id(cfg: Config) -> str:
    """``<arch>-<method>-<16 hex>``: a hash of the canonical non-default, result-defining fields."""
    canon = json.dumps(id_fields(cfg), sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(canon.encode()).hexdigest()[:16]
    return f"{cfg.model.arch}-{cfg.pruning.method}-{digest}"


def as_toml(cfg: Config) -> str:
    """The full config as TOML text (for ``fggp-repro train --print-config``)."""
    lines = []
    for g, vals in cfg.to_dict().items():
        lines.append(f"[{g}]")
        for k, v in vals.items():
            lines.append(f"{k} = {json.dumps(v)}")
        lines.append("")
    return "\n".join(lines)


def group_fields() -> list[tuple[str, dataclasses.Field, type]]:
    """(group name, field, type) for every leaf field, in declaration order (drives the CLI)."""
    return [(g, f, field_types(cls)[f.name]) for g, cls in _GROUP_CLASSES.items() for f in fields(cls)]


def execution_fields() -> tuple[str, ...]:
    """The dotted names (``run.threads``) of the fields whose metadata says ``id=False``: how a run executes."""
    return tuple(f"{g}.{f.name}" for g, f, _ in group_fields() if not f.metadata.get("id", True))


#: The fields that place a run in a grid: its cell (dataset, architecture, method, sparsity, start) and its seeds.
GRID_FIELDS = ("data.dataset", "model.arch", "pruning.method", "pruning.sparsity", "pruning.init", "run.seed",
               "run.init_seed", "run.order_seed")
#: The fields in which the runs of one protocol differ from each other: where they sit in the grid, and how they
#: executed. Two runs of one protocol whose configs differ elsewhere are of two variants of the protocol.
PER_RUN_FIELDS: tuple[str, ...] = GRID_FIELDS + execution_fields()

"""One run: set up, train epoch by epoch (SGD/Nesterov with step milestones, the pruner's hooks in every step,
evaluation after each epoch, checkpoints), then write its record. Resumes from its checkpoint, skips a run whose
record exists. The step itself is ``engine.train_step``; losses and accuracies accumulate on the device and are read
once per epoch, so nothing in an epoch waits for the device but pruning events.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn as nn
from tqdm import tqdm

from . import data as D
from . import isa, model_file
from .checkpoint import Checkpoint, Clock, RunState
from .diagnostics import run_diagnostics
from .engine import build_model, evaluate, lr_at, make_optimizer, measure_sparsity, resolve_device, train_step
from .interrupts import RunInterrupted, by_sigterm
from .provenance import provenance
from .pruning.base import Divergence
from .pruning.pruner import make_pruner
from .records import checkpoint_path, now, read_record, record_path, run_lock, write_record
from .run_record import build as build_record
from .seeding import set_strict_determinism
from .spec import config as C
from .spec.files import check_writable

__all__ = ["RunResult", "train", "model_path"]


@dataclass
class RunResult:
    status: Literal["completed", "diverged", "skipped", "interrupted"]
    path: Path  # the record; for "interrupted", the checkpoint to resume from
    record: dict | None


def model_path(record: Path) -> Path:
    """Where ``--save-model`` puts a run's network: beside its record, ``<run_id>.pt``."""
    return Path(record).with_suffix(".pt")


def train(cfg: C.Config, out: str | Path, *, force: bool = False, quiet: bool = False,
          stop_after_epochs: int | None = None, command: list[str] | None = None,
          deadline: float | None = None, save_model: bool = False) -> RunResult:
    """Run (or resume, or skip) one configured run and write its record under ``out``; ``save_model``: the final
    network too, beside the record (``<run_id>.pt``, fggp_repro/model_file.py).

    ``stop_after_epochs``: checkpoint and stop after that many epochs of this call. ``deadline`` (a
    ``time.time()`` value): checkpoint and stop after the last epoch that ends before it, judged by the
    slowest epoch of this call; either way the result is "interrupted" and the same call resumes.
    A signal (Ctrl-C, SIGTERM) raises :class:`~.interrupts.RunInterrupted`, naming the checkpoint kept.
    """
    rid = C.run_id(cfg)
    rpath = record_path(out, cfg.data.dataset, cfg.model.arch, cfg.pruning.method, rid)
    ckpt = Checkpoint(checkpoint_path(out, rid), rid)
    if rpath.is_file() and not force:
        return RunResult("skipped", rpath, read_record(rpath))

    # outputs first: a folder that cannot be written must fail now, not after the first epoch
    check_writable(rpath.parent, "record folder")
    check_writable(ckpt.path.parent, "checkpoint folder")
    # one process per run and folder: a second one stops at once instead of writing the record twice
    with run_lock(ckpt.path.with_suffix(".lock"), f"run {rid}"):
        if rpath.is_file() and not force:  # finished while this one waited to start
            return RunResult("skipped", rpath, read_record(rpath))
        if force:
            ckpt.discard()
        clock = Clock.start()
        try:
            return _run(cfg, rid, rpath, ckpt, clock, _Progress(quiet), _StopRule(stop_after_epochs, deadline),
                        command, save_model)
        except KeyboardInterrupt as e:
            raise RunInterrupted(ckpt.kept, ckpt.epoch or 0, terminated=by_sigterm(e)) from None


def _run(cfg: C.Config, rid: str, rpath: Path, ckpt: Checkpoint, clock: Clock, progress: _Progress,
         stop: _StopRule, command: list[str] | None, save_model: bool) -> RunResult:
    tc = cfg.training
    device, prov = _start(cfg, command)
    ds = D.load(cfg.data)
    prov["data_sha256"] = ds.fingerprint
    train_loader = D.DeviceLoader(ds.train_x, ds.train_y, device, cfg.run.channels_last)
    test_loader = D.DeviceLoader(ds.test_x, ds.test_y, device, cfg.run.channels_last)

    model = build_model(cfg, device)
    optimizer = make_optimizer(model, tc)
    pruner = make_pruner(cfg)
    criterion = nn.CrossEntropyLoss(label_smoothing=tc.label_smoothing)
    # set-up is deterministic, so a resumed run repeats it and then overwrites its state from the checkpoint
    pruner.setup(model, optimizer, train_loader.n_batches(tc.batch_size) * tc.epochs, cfg.init_seed)
    state = ckpt.resume(model, optimizer, pruner, device)
    if state is None:
        state = RunState(started=now())
    else:
        progress.line(f"resuming {rid} from epoch {state.epoch} ({ckpt.path})")

    first_epoch, divergence = state.epoch, None
    for epoch in range(first_epoch, tc.epochs):
        t_epoch = time.time()
        trained = _train_epoch(cfg, epoch, state, model, train_loader, criterion, optimizer, pruner, progress)
        if trained.divergence:
            divergence = trained.divergence
            progress.line(f"epoch {epoch + 1}, iteration {state.iteration}: {divergence['reason']}; the run diverged")
            break
        test_acc = evaluate(model, test_loader, tc.eval_batch_size, cfg.run.precision)
        sparsity = measure_sparsity(model)["sparsity"]
        state.history.append({"epoch": epoch + 1, "lr": trained.lr, "train_loss": trained.loss,
                              "train_acc": trained.acc, "test_acc": test_acc, "sparsity": sparsity,
                              "iteration": state.iteration})
        state.epoch = epoch + 1
        progress.line(f"{rid} epoch {epoch + 1}/{tc.epochs} lr {trained.lr:.4g} loss {trained.loss:.4f} "
                      f"train {trained.acc:.2f}% test {test_acc:.2f}% sparsity {sparsity:.4f}")
        if tc.checkpoint_every and state.epoch % tc.checkpoint_every == 0 and state.epoch < tc.epochs:
            ckpt.save(state, model, optimizer, pruner, clock.spent(state))
        if stop.due(time.time() - t_epoch, state.epoch - first_epoch) and state.epoch < tc.epochs:
            if ckpt.epoch != state.epoch:
                ckpt.save(state, model, optimizer, pruner, clock.spent(state))
            return RunResult("interrupted", ckpt.path, None)

    diagnostics = None if divergence else run_diagnostics(model, train_loader, test_loader, cfg)
    record = build_record(cfg, rid, model, pruner, state, divergence, diagnostics, prov, clock.spent(state))
    if save_model and not divergence:
        model_file.save(model_path(rpath), model, pruner.masks_by_name(), cfg, rid)
    write_record(rpath, record)
    ckpt.discard()
    return RunResult(record["status"], rpath, record)


def _start(cfg: C.Config, command: list[str] | None) -> tuple[torch.device, dict]:
    """Set this process up for the run (threads, oneDNN's instruction set, device, determinism); the device and the
    provenance of the run."""
    if cfg.run.threads:
        torch.set_num_threads(cfg.run.threads)
    isa.apply(cfg.run.cpu_isa)  # before oneDNN first runs in this process
    device = resolve_device(cfg.run.device)
    # provenance describes the code as this process imported it, at the start of the run
    prov = provenance(device, cfg.run.strict, command) | isa.provenance(cfg.run.cpu_isa)
    set_strict_determinism(cfg.run.strict)
    return device, prov


@dataclass(frozen=True)
class _Trained:
    """One epoch's training pass: its learning rate and mean loss and accuracy, or why the run diverged."""

    lr: float
    loss: float = math.nan
    acc: float = math.nan  # percent, on the augmented batches
    divergence: dict | None = None  # epoch, iteration, reason


def _train_epoch(cfg: C.Config, epoch: int, state: RunState, model: nn.Module, loader: D.DeviceLoader, criterion,
                 optimizer, pruner, progress: _Progress) -> _Trained:
    """Train 0-based ``epoch``, advancing ``state.iteration``."""
    tc = cfg.training
    lr = lr_at(tc, epoch)
    for group in optimizer.param_groups:
        group["lr"] = lr
    model.train()
    loss_sum = torch.zeros((), dtype=torch.float64, device=loader.device)
    correct = torch.zeros((), dtype=torch.int64, device=loader.device)
    bar = progress.bar(loader.n_batches(tc.batch_size), epoch + 1, tc.epochs)
    try:
        for x, y in loader.train_epoch(cfg.order_seed, epoch, tc.batch_size, cfg.data.augment):
            state.iteration += 1
            loss, logits = train_step(model, x, y, criterion, optimizer, pruner, state.iteration, cfg.run.precision)
            loss_sum += loss * len(y)
            correct += (logits.argmax(1) == y).sum()
            if bar is not None:
                bar.update(1)
        train_loss = float(loss_sum) / len(loader)
        if not math.isfinite(train_loss):
            raise Divergence(f"non-finite training loss ({train_loss})")
    except Divergence as e:
        return _Trained(lr, divergence={"epoch": epoch + 1, "iteration": state.iteration, "reason": str(e)})
    finally:
        if bar is not None:
            bar.close()
    return _Trained(lr, train_loss, 100.0 * int(correct) / len(loader))


@dataclass
class _StopRule:
    """When a call stops early, with a checkpoint: after ``after_epochs`` epochs of this call, or when the next
    epoch would not end before ``deadline`` (a ``time.time()`` value), judged by the slowest epoch of this call."""

    after_epochs: int | None
    deadline: float | None
    slowest: float = 0.0

    def due(self, epoch_seconds: float, epochs_done: int) -> bool:
        self.slowest = max(self.slowest, epoch_seconds)
        out_of_time = self.deadline is not None and time.time() + 1.1 * self.slowest + 5.0 > self.deadline
        asked = self.after_epochs is not None and epochs_done >= self.after_epochs
        return asked or out_of_time


class _Progress:
    """A tqdm bar per epoch on a terminal; one summary line per epoch otherwise; nothing when quiet."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.tty = sys.stderr.isatty()

    def bar(self, n: int, epoch: int, epochs: int):
        if self.quiet or not self.tty:
            return None
        return tqdm(total=n, desc=f"epoch {epoch}/{epochs}", leave=False, file=sys.stderr)

    def line(self, text: str):
        if not self.quiet:
            print(text, file=sys.stderr, flush=True)

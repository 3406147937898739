"""The training loop: SGD/Nesterov with step milestones, a pruner hook, per-epoch evaluation, checkpoints.

Per iteration: forward, loss, backward, ``pruner.on_backward(t)`` (a pruning event sees this
minibatch's raw loss gradients and the weights before the step), ``optimizer.step()``,
``pruner.apply_masks()``, ``pruner.after_step(t)`` (GraNet's prune-and-regrow, after the step as in
GraNet's code). Nothing in the loop synchronises with the device except pruning events:
loss and accuracy accumulate on the device and are read once per epoch.
"""

from __future__ import annotations

import io
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from . import config as C
from . import data as D
from . import isa, models
from .diagnostics import run_diagnostics
from .pruning.base import Divergence, Pruner  # noqa: F401  (Divergence, Pruner: re-exported)
from .pruning.pruner import make_pruner
from .records import (
    SCHEMA,
    atomic_write_bytes,
    check_writable,
    now,
    provenance,
    read_record,
    record_path,
    run_lock,
    weights_sha256,
    write_record,
)
from .seeding import derive_seed, set_strict_determinism


class CheckpointError(C.UserError, RuntimeError):
    """An unreadable or mismatched checkpoint; the CLI prints the message as one line and exits 2."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run: ``checkpoint`` is the checkpoint kept on disk (None if no epoch had been saved),
    ``epoch`` the number of epochs it holds. The CLI says so in one line and exits 130."""

    def __init__(self, checkpoint: Path | None, epoch: int):
        super().__init__()
        self.checkpoint = checkpoint
        self.epoch = epoch


def measure_sparsity(model: nn.Module) -> dict:
    """Zero fractions of the actual weights: over the authors' denominator, over prunable weights, per layer."""
    total = zeros = 0
    for _, m in models.conv_linear_weights(model):
        for p in (m.weight, m.bias):
            if p is not None:
                total += p.numel()
                zeros += int((p == 0).sum())
    per_layer, pz, pn = {}, 0, 0
    for name, m in models.prunable_layers(model):
        z = int((m.weight == 0).sum())
        per_layer[f"{name}.weight"] = z / m.weight.numel()
        pz += z
        pn += m.weight.numel()
    return {"sparsity": zeros / total, "prunable_sparsity": pz / pn, "per_layer_sparsity": per_layer,
            "counts": {"denominator": total, "zero": zeros, "prunable": pn, "prunable_zero": pz}}


def lr_at(tc: C.TrainingConfig, epoch: int) -> float:
    """Learning rate of 0-based ``epoch``: lr x gamma^(milestones passed), as MultiStepLR stepped per epoch."""
    return tc.lr * tc.gamma ** sum(1 for m in tc.milestones if epoch >= m)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise C.ConfigError("device 'cuda' asked for but torch sees no CUDA device: use --device cpu")
    return torch.device(name)


def build_model(cfg: C.Config, device: torch.device) -> nn.Module:
    """The network, initialised from the run's own 'init' stream (independent of device and global RNG)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(cfg.init_seed, "init"))
        model = models.build(cfg.model.arch, cfg.model.width, weight_init=cfg.model.weight_init)
    return model.to(device, memory_format=torch.channels_last if cfg.run.channels_last else torch.contiguous_format)


def make_optimizer(model: nn.Module, tc: C.TrainingConfig) -> torch.optim.SGD:
    return torch.optim.SGD(model.parameters(), lr=tc.lr, momentum=tc.momentum, nesterov=tc.nesterov,
                           weight_decay=tc.weight_decay)


def autocast(precision: str, device: torch.device):
    """The forward pass's autocast context: bf16 autocast for ``precision="bf16"``, a no-op for fp32.

    Only the forward pass and the loss run under it; parameters, their gradients, optimizer state, masks
    and pruning scores stay fp32 (autocast casts copies of the weights, the gradients land in fp32).
    """
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def train_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, criterion, optimizer, pruner: "Pruner",
               iteration: int, precision: str = "fp32") -> tuple[torch.Tensor, torch.Tensor]:
    """One training iteration (forward, loss, backward, pruning hook, step, masks); returns (loss, logits),
    detached and still on the device, so nothing here waits for the device."""
    with autocast(precision, x.device):
        logits = model(x)
        loss = criterion(logits, y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    pruner.on_backward(iteration)
    optimizer.step()
    pruner.apply_masks()
    pruner.after_step(iteration)
    return loss.detach(), logits.detach()


@torch.no_grad()
def evaluate(model: nn.Module, loader: D.DeviceLoader, batch_size: int, precision: str = "fp32") -> float:
    """Test accuracy in percent (the forward pass in the run's precision)."""
    model.eval()
    correct = torch.zeros((), dtype=torch.int64, device=loader.device)
    for x, y in loader.eval_batches(batch_size):
        with autocast(precision, x.device):
            logits = model(x)
        correct += (logits.argmax(1) == y).sum()
    model.train()
    return 100.0 * int(correct) / len(loader)


@dataclass
class RunResult:
    status: str  # "completed" | "diverged" | "skipped" | "interrupted"
    path: Path
    record: dict | None


class _Progress:
    """A tqdm bar per epoch on a terminal; one summary line per epoch otherwise; nothing when quiet."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.tty = sys.stderr.isatty()

    def bar(self, n: int, epoch: int, epochs: int):
        if self.quiet or not self.tty:
            return None
        from tqdm import tqdm

        return tqdm(total=n, desc=f"epoch {epoch}/{epochs}", leave=False, file=sys.stderr)

    def line(self, text: str):
        if not self.quiet:
            print(text, file=sys.stderr, flush=True)


def checkpoint_path(out: str | Path, rid: str) -> Path:
    return Path(out) / "checkpoints" / f"{rid}.pt"


def train(cfg: C.Config, out: str | Path, *, force: bool = False, quiet: bool = False,
          stop_after_epochs: int | None = None, command: list[str] | None = None,
          deadline: float | None = None, save_model: bool = False) -> RunResult:
    """Run (or resume, or skip) one configured run and write its record under ``out``; ``save_model``: the final
    network too, beside the record (``<run_id>.pt``, fggp_repro/model_file.py).

    ``stop_after_epochs``: checkpoint and stop after that many epochs of this call. ``deadline`` (a
    ``time.time()`` value): checkpoint and stop after the last epoch that ends before it, judged by the
    slowest epoch of this call; either way the result is "interrupted" and the same call resumes.
    """
    rid = C.run_id(cfg)
    rpath = record_path(out, cfg.data.dataset, cfg.model.arch, cfg.pruning.method, rid)
    ckpt = checkpoint_path(out, rid)
    if rpath.is_file() and not force:
        return RunResult("skipped", rpath, read_record(rpath))

    # outputs first: a folder that cannot be written must fail now, not after the first epoch
    check_writable(rpath.parent, "record folder")
    check_writable(ckpt.parent, "checkpoint folder")
    # one process per run and folder: a second one stops at once instead of writing the record twice
    with run_lock(ckpt.with_suffix(".lock"), f"run {rid}"):
        if rpath.is_file() and not force:  # finished while this one waited to start
            return RunResult("skipped", rpath, read_record(rpath))
        if force:
            ckpt.unlink(missing_ok=True)
        return _train_locked(cfg, rid, rpath, ckpt, quiet, stop_after_epochs, command, deadline, save_model)


def _train_locked(cfg: C.Config, rid: str, rpath: Path, ckpt: Path, quiet: bool, stop_after_epochs: int | None,
                  command: list[str] | None, deadline: float | None, save_model: bool) -> RunResult:
    progress = _Progress(quiet)
    t_start = time.time()
    c_start = time.process_time()  # CPU time of this process, all threads: a run's cost on a shared machine
    saved = {"epoch": None}  # the epoch of the checkpoint on disk, kept up to date by _run
    try:
        return _run(cfg, rid, rpath, ckpt, progress, (t_start, c_start), stop_after_epochs, command, deadline,
                    saved, save_model)
    except KeyboardInterrupt as e:
        kept = saved["epoch"] is not None and ckpt.is_file()
        stop = RunInterrupted(ckpt if kept else None, saved["epoch"] or 0)
        stop.terminated = getattr(e, "terminated", False)  # SIGTERM rather than Ctrl-C
        raise stop from None


def _run(cfg: C.Config, rid: str, rpath: Path, ckpt: Path, progress: "_Progress", starts: tuple[float, float],
         stop_after_epochs: int | None, command: list[str] | None, deadline: float | None, saved: dict,
         save_model: bool = False) -> RunResult:
    t_start, c_start = starts
    if cfg.run.threads:
        torch.set_num_threads(cfg.run.threads)
    isa.apply(cfg.run.cpu_isa)  # before oneDNN first runs in this process
    device = resolve_device(cfg.run.device)
    # provenance describes the code as this process imported it, at the start of the run
    prov = provenance(device, cfg.run.strict, command)
    prov.update(isa.provenance(cfg.run.cpu_isa))
    set_strict_determinism(cfg.run.strict)
    tc = cfg.training

    ds = D.load(cfg.data)
    prov["data_sha256"] = ds.fingerprint
    train_loader = D.DeviceLoader(ds.train_x, ds.train_y, device, cfg.run.channels_last)
    test_loader = D.DeviceLoader(ds.test_x, ds.test_y, device, cfg.run.channels_last)
    n_batches = train_loader.n_batches(tc.batch_size)
    total_iters = n_batches * tc.epochs

    model = build_model(cfg, device)
    optimizer = make_optimizer(model, tc)
    pruner = make_pruner(cfg)
    criterion = nn.CrossEntropyLoss(label_smoothing=tc.label_smoothing)

    # set-up is deterministic, so a resumed run repeats it and then overwrites its state from the checkpoint
    pruner.setup(model, optimizer, total_iters, cfg.init_seed)
    state = {"epoch": 0, "iteration": 0, "history": [], "wall_before": 0.0, "cpu_before": 0.0, "started": now()}
    if ckpt.is_file():
        state = _load_checkpoint(ckpt, rid, model, optimizer, pruner, device)
        saved["epoch"] = state["epoch"]
        progress.line(f"resuming {rid} from epoch {state['epoch']} ({ckpt})")

    history: list[dict] = state["history"]
    iteration = state["iteration"]
    divergence = None
    slowest_epoch = 0.0
    for epoch in range(state["epoch"], tc.epochs):
        t_epoch = time.time()
        lr = lr_at(tc, epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        model.train()
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        correct = torch.zeros((), dtype=torch.int64, device=device)
        bar = progress.bar(n_batches, epoch + 1, tc.epochs)
        try:
            for x, y in train_loader.train_epoch(cfg.order_seed, epoch, tc.batch_size, cfg.data.augment):
                iteration += 1
                loss, logits = train_step(model, x, y, criterion, optimizer, pruner, iteration, cfg.run.precision)
                loss_sum += loss * len(y)
                correct += (logits.argmax(1) == y).sum()
                if bar is not None:
                    bar.update(1)
            train_loss = float(loss_sum) / len(train_loader)
            if not math.isfinite(train_loss):
                raise Divergence(f"non-finite training loss ({train_loss})")
        except Divergence as e:
            divergence = {"epoch": epoch + 1, "iteration": iteration, "reason": str(e)}
            progress.line(f"epoch {epoch + 1}, iteration {iteration}: {e}; the run diverged")
            break
        finally:
            if bar is not None:
                bar.close()
        test_acc = evaluate(model, test_loader, tc.eval_batch_size, cfg.run.precision)
        sp = measure_sparsity(model)
        history.append({"epoch": epoch + 1, "lr": lr, "train_loss": train_loss,
                        "train_acc": 100.0 * int(correct) / len(train_loader), "test_acc": test_acc,
                        "sparsity": sp["sparsity"], "iteration": iteration})
        progress.line(f"{rid} epoch {epoch + 1}/{tc.epochs} lr {lr:.4g} loss {train_loss:.4f} "
                      f"train {history[-1]['train_acc']:.2f}% test {test_acc:.2f}% sparsity {sp['sparsity']:.4f}")
        done = epoch + 1
        if tc.checkpoint_every and done % tc.checkpoint_every == 0 and done < tc.epochs:
            _save_checkpoint(ckpt, rid, model, optimizer, pruner, done, iteration, history,
                             _spent(state, t_start, c_start), state["started"])
            saved["epoch"] = done
        slowest_epoch = max(slowest_epoch, time.time() - t_epoch)
        out_of_time = deadline is not None and time.time() + 1.1 * slowest_epoch + 5.0 > deadline
        asked = stop_after_epochs is not None and done - state["epoch"] >= stop_after_epochs
        if (asked or out_of_time) and done < tc.epochs:
            if not (tc.checkpoint_every and done % tc.checkpoint_every == 0):
                _save_checkpoint(ckpt, rid, model, optimizer, pruner, done, iteration, history,
                                 _spent(state, t_start, c_start), state["started"])
            return RunResult("interrupted", ckpt, None)

    sp = measure_sparsity(model)
    after = [h["test_acc"] for h in history if h["iteration"] >= pruner.prune_end]
    status = "diverged" if divergence else "completed"
    diagnostics = None if divergence else run_diagnostics(model, train_loader, test_loader, cfg)
    wall, cpu = _spent(state, t_start, c_start)
    prov.update({"started": state["started"], "finished": now(), "torch_threads": torch.get_num_threads(),
                 "wall_seconds": round(wall, 3), "cpu_seconds": round(cpu, 3)})
    record = {
        "schema": SCHEMA,
        "run_id": rid,
        "status": status,
        "config": cfg.to_dict(),
        "setting": {"dataset": cfg.data.dataset, "arch": cfg.model.arch, "method": cfg.pruning.method,
                    "target_sparsity": cfg.target_sparsity, "initial_density": cfg.initial_density,
                    "seed": cfg.run.seed, "init_seed": cfg.init_seed, "order_seed": cfg.order_seed,
                    "protocol": cfg.run.protocol},
        "metrics": {
            "test_acc": None if divergence else history[-1]["test_acc"],
            "best_test_acc_after_pruning": None if divergence or not after else max(after),
            "final_train_loss": None if divergence else history[-1]["train_loss"],
            "sparsity": sp["sparsity"],
            "prunable_sparsity": sp["prunable_sparsity"],
        },
        "per_layer_sparsity": sp["per_layer_sparsity"],
        "weight_counts": sp["counts"],
        "weights_sha256": weights_sha256(model),
        "history": history,
        "pruning_events": pruner.events,
        "divergence": divergence,
        "diagnostics": diagnostics,
        "provenance": prov,
    }
    if save_model and not divergence:
        from . import model_file

        model_file.save(model_path(rpath), model, pruner.masks_by_name(), cfg, rid)
    write_record(rpath, record)
    ckpt.unlink(missing_ok=True)
    return RunResult(status, rpath, record)


def model_path(record: Path) -> Path:
    """Where ``--save-model`` puts a run's network: beside its record, ``<run_id>.pt``."""
    return Path(record).with_suffix(".pt")


# ---- checkpoints ---------------------------------------------------------------------------------

def _spent(state: dict, t_start: float, c_start: float) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of the run so far, earlier calls of a resumed run included."""
    return (state["wall_before"] + time.time() - t_start,
            state.get("cpu_before", 0.0) + time.process_time() - c_start)


def _save_checkpoint(path: Path, rid: str, model, optimizer, pruner, epoch: int, iteration: int,
                     history: list, spent: tuple[float, float], started: str) -> None:
    state = {"run_id": rid, "epoch": epoch, "iteration": iteration, "history": history,
             "wall_before": spent[0], "cpu_before": spent[1], "started": started,
             "model": model.state_dict(), "optimizer": optimizer.state_dict(), "pruner": pruner.state_dict(),
             "torch_rng": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def _load_checkpoint(path: Path, rid: str, model, optimizer, pruner, device) -> dict:
    try:
        state = torch.load(path, map_location=device, weights_only=True)
        if state.get("run_id") != rid:
            raise CheckpointError(f"checkpoint {path} belongs to run {state.get('run_id')}, not {rid}; "
                                  "delete it or pass --force")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        pruner.load_state_dict(state["pruner"])
        torch.set_rng_state(state["torch_rng"].cpu())
        if "cuda_rng" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda_rng"]])
    except CheckpointError:
        raise
    except Exception as e:
        first = str(e).splitlines()[0] if str(e) else ""
        raise CheckpointError(f"checkpoint {path} is unreadable ({type(e).__name__}: {first}); "
                              "delete it or pass --force to restart the run") from None
    return state

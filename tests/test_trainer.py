"""End-to-end behaviour of the trainer on tiny synthetic runs (a few seconds each)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fggp_repro import engine as E
from fggp_repro import trainer as T
from fggp_repro.checkpoint import CheckpointError
from fggp_repro.pruning.pruner import make_pruner
from fggp_repro.records import checkpoint_path, read_record, record_path
from fggp_repro.spec import config as C
from fggp_repro.spec.platform import PLATFORM_FIELDS, platform_of
from fggp_repro.spec.record import SCHEMA, TOP_LEVEL, validate
from runcfg import tiny_overrides


def _cfg(**groups):
    return C.load(overrides=tiny_overrides(**groups))


def _strip(record):
    record = dict(record)
    record.pop("provenance")
    return record


def test_same_seed_gives_identical_records(tmp_path):
    cfg = _cfg(pruning={"method": "fggp"}, run={"seed": 3})
    a = T.train(cfg, tmp_path / "a", quiet=True)
    b = T.train(cfg, tmp_path / "b", quiet=True)
    assert a.status == b.status == "completed"
    assert _strip(a.record) == _strip(b.record)
    c = T.train(_cfg(pruning={"method": "fggp"}, run={"seed": 4}), tmp_path / "a", quiet=True)
    assert c.record["weights_sha256"] != a.record["weights_sha256"]


def test_bf16_strict_runs_are_bit_identical_and_differ_from_fp32(tmp_path):
    cfg = _cfg(pruning={"method": "fggp"}, run={"seed": 3, "precision": "bf16"})
    a = T.train(cfg, tmp_path / "a", quiet=True)
    b = T.train(cfg, tmp_path / "b", quiet=True)
    assert a.status == b.status == "completed"
    assert a.record["weights_sha256"] == b.record["weights_sha256"]
    assert _strip(a.record) == _strip(b.record)
    assert a.record["config"]["run"]["precision"] == "bf16"
    fp32 = T.train(_cfg(pruning={"method": "fggp"}, run={"seed": 3}), tmp_path / "c", quiet=True)
    assert fp32.record["weights_sha256"] != a.record["weights_sha256"]
    assert C.run_id(cfg) != fp32.record["run_id"]  # precision is part of what a run computes


def test_bf16_keeps_weights_gradients_and_optimizer_state_in_fp32():
    cfg = _cfg(pruning={"method": "fggp"}, run={"precision": "bf16"})
    model = E.build_model(cfg, torch.device("cpu"))
    opt = E.make_optimizer(model, cfg.training)
    pruner = make_pruner(cfg)
    pruner.setup(model, opt, 100, 0)
    x = torch.randn(8, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (8,))
    loss, logits = E.train_step(model, x, y, torch.nn.CrossEntropyLoss(), opt, pruner, 1, "bf16")
    assert logits.dtype == torch.bfloat16 and loss.dtype == torch.float32
    assert all(p.dtype == torch.float32 and p.grad.dtype == torch.float32 for p in model.parameters())
    assert all(s["momentum_buffer"].dtype == torch.float32 for s in opt.state.values())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_strict_cuda_runs_are_bit_identical(tmp_path):
    import os

    for precision in ("fp32", "bf16"):
        cfg = _cfg(pruning={"method": "fggp"}, run={"seed": 3, "device": "cuda", "precision": precision})
        a = T.train(cfg, tmp_path / f"a-{precision}", quiet=True)
        b = T.train(cfg, tmp_path / f"b-{precision}", quiet=True)
        assert a.record["weights_sha256"] == b.record["weights_sha256"]
        assert a.record["provenance"]["deterministic"] is True
    assert torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.deterministic
    assert not torch.backends.cudnn.benchmark and os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"


def test_killed_and_resumed_run_matches_uninterrupted(tmp_path):
    cfg = _cfg(pruning={"method": "random"}, run={"seed": 1})
    full = T.train(cfg, tmp_path / "full", quiet=True)
    part = T.train(cfg, tmp_path / "resumed", quiet=True, stop_after_epochs=2)
    assert part.status == "interrupted" and part.path.is_file()
    assert not record_path(tmp_path / "resumed", "synthetic", "vgg19", "random", C.run_id(cfg)).exists()
    done = T.train(cfg, tmp_path / "resumed", quiet=True)
    assert done.record["weights_sha256"] == full.record["weights_sha256"]
    assert done.record["metrics"] == full.record["metrics"]
    assert done.record["pruning_events"] == full.record["pruning_events"]
    assert [h["test_acc"] for h in done.record["history"]] == [h["test_acc"] for h in full.record["history"]]
    assert not part.path.exists()  # the checkpoint is removed once the record is written


def test_record_has_the_schema_fields(tmp_path):
    cfg = _cfg(pruning={"method": "gmp"}, run={"seed": 0})
    res = T.train(cfg, tmp_path, quiet=True, command=["fggp-repro", "train", "--x"])
    rec = read_record(res.path)
    assert res.path == tmp_path / "raw" / "synthetic" / "vgg19" / "gmp" / f"{rec['run_id']}.json"
    assert rec["schema"] == SCHEMA and rec["status"] == "completed" and rec["run_id"] == C.run_id(cfg)
    assert rec["setting"] == {"dataset": "synthetic", "arch": "vgg19", "method": "gmp", "target_sparsity": 0.9,
                              "initial_density": 1.0, "seed": 0, "init_seed": 0, "order_seed": 0,
                              "protocol": "custom"}
    assert set(rec["metrics"]) == {"test_acc", "best_test_acc_after_pruning", "final_train_loss", "sparsity",
                                   "prunable_sparsity"}
    assert [h["epoch"] for h in rec["history"]] == [1, 2, 3, 4, 5]
    assert [h["lr"] for h in rec["history"]] == pytest.approx([0.02, 0.02, 0.02, 0.002, 0.002])
    assert set(rec["history"][0]) >= {"epoch", "lr", "train_loss", "train_acc", "test_acc", "sparsity"}
    # 4 iterations an epoch; pruning ends at iteration 16, inside epoch 4: best-after-pruning is over epochs 4-5
    assert rec["metrics"]["best_test_acc_after_pruning"] == max(h["test_acc"] for h in rec["history"][3:])
    assert rec["metrics"]["test_acc"] == rec["history"][-1]["test_acc"]
    prov = rec["provenance"]
    for key in ("git_commit", "git_dirty", "command", "python", "torch", "torchvision", "device", "deterministic",
                "started", "finished", "wall_seconds"):
        assert key in prov
    assert prov["command"] == "fggp-repro train --x" and prov["deterministic"] is True
    assert len(rec["weights_sha256"]) == 64 and rec["divergence"] is None
    diag = rec["diagnostics"]
    assert diag["bn_recalibration_batches"] == 50 and 0.0 <= diag["bn_recalibrated_test_acc"] <= 100.0
    assert diag["dead_units"]["total"] == sum(diag["dead_units"]["per_layer"].values())
    assert set(diag["dead_units"]["per_layer"]) <= set(rec["per_layer_sparsity"])
    json.dumps(rec, allow_nan=False)  # strict JSON
    validate(rec, complete=True)  # every field of the schema, in its order, and no other
    assert list(rec) == list(TOP_LEVEL) and prov["source"] in ("checkout", "copy")


def test_a_diverged_run_meets_the_schema_too(tmp_path, monkeypatch):
    real_build = T.build_model

    def poisoned(cfg, device):
        model = real_build(cfg, device)
        model.register_forward_hook(lambda module, inputs, output: output * float("nan") if module.training else output)
        return model

    monkeypatch.setattr(T, "build_model", poisoned)
    rec = T.train(_cfg(pruning={"method": "gmp"}), tmp_path, quiet=True).record
    assert rec["status"] == "diverged" and rec["divergence"] == {
        "epoch": 1, "iteration": 2, "reason": "non-finite weights or gradients at pruning event t=2"}
    validate(rec, complete=True)


def test_finished_run_is_skipped_unless_forced(tmp_path):
    cfg = _cfg(run={"seed": 0}, training={"epochs": 2, "milestones": [1]})
    first = T.train(cfg, tmp_path, quiet=True)
    again = T.train(cfg, tmp_path, quiet=True)
    assert again.status == "skipped" and again.record == first.record
    forced = T.train(cfg, tmp_path, quiet=True, force=True)
    assert forced.status == "completed"
    assert forced.record["provenance"]["started"] >= first.record["provenance"]["started"]


def test_nan_loss_writes_a_diverged_record(tmp_path, monkeypatch):
    real_build = T.build_model

    def poisoned(cfg, device):
        model = real_build(cfg, device)
        calls = {"n": 0}

        def hook(module, inputs, output):
            calls["n"] += 1
            return output * float("nan") if module.training and calls["n"] > 6 else output

        model.register_forward_hook(hook)
        return model

    monkeypatch.setattr(T, "build_model", poisoned)
    res = T.train(_cfg(pruning={"method": "fggp"}), tmp_path, quiet=True)
    assert res.status == "diverged"
    rec = read_record(res.path)
    assert rec["status"] == "diverged" and rec["metrics"]["test_acc"] is None
    # forward 7 is iteration 6 (4 batches in epoch 1, then forward 5 is its test pass): the pruning event at
    # iteration 6 meets the NaN gradients before the epoch's loss is read
    assert rec["divergence"]["epoch"] == 2 and rec["divergence"]["iteration"] == 6
    assert len(rec["history"]) == 1
    assert rec["diagnostics"] is None


def test_corrupt_checkpoint_is_one_clear_error(tmp_path):
    cfg = _cfg()
    ckpt = checkpoint_path(tmp_path, C.run_id(cfg))
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"definitely not a checkpoint")
    with pytest.raises(CheckpointError, match="unreadable.*--force"):
        T.train(cfg, tmp_path, quiet=True)


def test_lr_schedule_is_multistep_per_epoch():
    tc = C.TrainingConfig()
    assert [E.lr_at(tc, e) for e in (0, 79, 80, 119, 120, 159)] == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001])


def test_measure_sparsity_counts_zeros():
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 1), torch.nn.Conv2d(2, 2, 1), torch.nn.Linear(2, 2))
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(1.0)
        model[1].weight[0, 0] = 0  # 1 of 4 in the first prunable layer
        model[2].weight.zero_()  # 4 of 4
    sp = E.measure_sparsity(model)
    assert sp["per_layer_sparsity"] == {"1.weight": 0.25, "2.weight": 1.0}
    assert sp["prunable_sparsity"] == 5 / 8
    assert sp["sparsity"] == 5 / (2 + 2 + 4 + 2 + 4 + 2)  # all weights and biases, the first conv included


def test_the_init_seed_draws_the_network_and_the_order_seed_the_data():
    from fggp_repro import data as D

    def cfg(**run):
        return C.load(overrides=tiny_overrides(run=run))

    dev = torch.device("cpu")
    a, b, c = (E.build_model(cfg(**run), dev).state_dict() for run in ({"seed": 5}, {"seed": 0, "init_seed": 5},
                                                                          {"seed": 5, "init_seed": 0}))
    assert all(torch.equal(a[k], b[k]) for k in a) and not all(torch.equal(a[k], c[k]) for k in a)
    ds = D.synthetic(64, 10)
    loader = D.DeviceLoader(ds.train_x, ds.train_y, dev)

    def first_batch(conf):
        return next(loader.train_epoch(conf.order_seed, 0, 16, True))[1]

    assert torch.equal(first_batch(cfg(seed=5, init_seed=0)), first_batch(cfg(seed=5)))
    assert torch.equal(first_batch(cfg(seed=0, order_seed=5)), first_batch(cfg(seed=5)))
    assert not torch.equal(first_batch(cfg(seed=0)), first_batch(cfg(seed=5)))


def test_the_trainer_takes_the_network_and_pruning_from_the_init_seed_and_the_data_from_the_order_seed(tmp_path):
    # (seed 5, init 0) and (seed 0, order 5) are one computation, init 0 and order 5, under two run seeds: if the
    # trainer drew the data order, the network or random pruning from the run seed instead, their weights would
    # differ. (seed 0) keeps init 0 but takes order 0: other weights, so the order seed does reach the batches.
    def run(name, **seeds):
        cfg = _cfg(pruning={"method": "random"}, training={"epochs": 2, "milestones": []}, run=seeds)
        return T.train(cfg, tmp_path / name, quiet=True).record

    a, b, c = run("a", seed=5, init_seed=0), run("b", seed=0, order_seed=5), run("c", seed=0)
    assert (a["setting"]["seed"], a["setting"]["init_seed"], a["setting"]["order_seed"]) == (5, 0, 5)
    assert (b["setting"]["seed"], b["setting"]["init_seed"], b["setting"]["order_seed"]) == (0, 0, 5)
    assert a["run_id"] != b["run_id"]
    assert a["weights_sha256"] == b["weights_sha256"] and a["history"] == b["history"]
    assert a["metrics"] == b["metrics"] and a["pruning_events"] == b["pruning_events"]
    assert c["weights_sha256"] != a["weights_sha256"]


REFERENCE = Path(__file__).parent / "reference" / "smoke-fggp-seed3-1thread.json"


@pytest.mark.slow
def test_a_short_run_gives_the_weights_of_its_committed_record(tmp_path):
    # the record of `fggp-repro train --preset smoke --method fggp --seed 3 --threads 1`, as the code of commit
    # 4d542c2 made it on an AMD EPYC: a strict run on the same platform must give its weights, bit for bit
    ref = json.loads(REFERENCE.read_text())
    assert ref["run_id"] == "vgg19-fggp-f492b86496726096"
    assert ref["weights_sha256"] == "4e45b535131fb6d4e062f02822350cbe796661b2651d02a10b161fbcea23627c"
    res = subprocess.run([sys.executable, "-m", "fggp_repro", "train", "--preset", "smoke", "--method", "fggp",
                          "--seed", "3", "--threads", "1", "--quiet", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    new = read_record(record_path(tmp_path, "synthetic", "vgg19", "fggp", ref["run_id"]))
    differs = [k for k in PLATFORM_FIELDS if platform_of(ref)[k] != platform_of(new)[k]]
    if differs:
        pytest.skip(f"this platform differs from the reference's in {', '.join(differs)}: not bit-comparable")
    assert new["weights_sha256"] == ref["weights_sha256"]
    assert _strip(new) == _strip(ref)  # every field but the provenance

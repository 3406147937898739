"""The model-facing pruner: schedule bookkeeping, exact targets, zeroed weights and momentum, ERK start."""

import math

import pytest
import torch

from fggp_repro import engine as E
from fggp_repro import models
from fggp_repro.pruning import FAMILY
from fggp_repro.pruning.base import Pruner
from fggp_repro.pruning.pruner import MaskPruner, PruneRegrowPruner, RandomPruner, make_pruner
from fggp_repro.spec import config as C
from runcfg import tiny_overrides

SPARSE_METHODS = ["fggp", "annealed", "gf-annealed", "mf-fixed", "gmp", "gmp-mt", "random", "granet"]


def _setup(method, init="dense", seed=0, sparsity=0.9, total_iters=20, interval=2):
    cfg = C.load(overrides=tiny_overrides(pruning={"method": method, "init": init, "sparsity": sparsity,
                                                   "update_interval": interval}, run={"seed": seed}))
    model = E.build_model(cfg, torch.device("cpu"))
    opt = E.make_optimizer(model, cfg.training)
    pruner = make_pruner(cfg)
    pruner.setup(model, opt, total_iters, seed)
    return cfg, model, opt, pruner


def _step(model, opt, pruner, t, gen):
    x = torch.randn(8, 3, 32, 32, generator=gen)
    y = torch.randint(0, 10, (8,), generator=gen)
    opt.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    pruner.on_backward(t)
    opt.step()
    pruner.apply_masks()
    pruner.after_step(t)


def _run_events(method, **kw):
    cfg, model, opt, pruner = _setup(method, **kw)
    gen = torch.Generator().manual_seed(0)
    for t in range(1, 21):
        _step(model, opt, pruner, t, gen)
    return cfg, model, opt, pruner


@pytest.mark.parametrize("method", SPARSE_METHODS)
def test_each_method_ends_at_the_target_with_masked_weights_zero(method):
    cfg, model, opt, pruner = _run_events(method)
    denom = models.denominator(model)
    zeros = sum(int((m.weight == 0).sum()) + (int((m.bias == 0).sum()) if m.bias is not None else 0)
                for _, m in models.conv_linear_weights(model))
    if method == "granet":
        # the masks hold the target; the weights regrown at the last event (t = 20, the last step) are still
        # zero, as in GraNet, where regrown weights first move at the next step
        masked = sum(int((~m).sum()) for m in pruner.masks)
        assert abs(masked - round(0.9 * denom)) <= 1
        assert 0 <= zeros - masked <= pruner.events[-1]["n_regrown"]
    else:
        assert abs(zeros - round(0.9 * denom)) <= 1  # within one weight of 90 % over weights and biases
    for w, m in zip(pruner.weights, pruner.masks):
        assert torch.all(w[~m] == 0)
        buf = opt.state[w]["momentum_buffer"]
        assert buf.shape == w.shape
    # T_total 20, T_end 16, interval 2: events at 2, 4, ..., 16 (granet goes on to 20)
    its = [e["iteration"] for e in pruner.events]
    assert its == ([2, 4, 6, 8, 10, 12, 14, 16, 18, 20] if method == "granet" else [2, 4, 6, 8, 10, 12, 14, 16])
    assert pruner.events[7]["target_density"] == pytest.approx(0.1)
    assert pruner.events[7]["density"] == pytest.approx(0.1, abs=1 / denom)


def test_event_counts_follow_the_cubic_schedule():
    cfg, model, opt, pruner = _run_events("gmp")
    denom = models.denominator(model)
    removed = 0
    for e in pruner.events:
        t = e["iteration"]
        d = 0.1 + 0.9 * (1 - t / 16) ** 3  # the cubic schedule, by hand
        assert e["target_density"] == pytest.approx(d)
        assert e["n_pruned"] == round((1 - d) * denom) - removed
        removed += e["n_pruned"]


def test_momentum_of_pruned_weights_is_zeroed_at_the_event():
    cfg, model, opt, pruner = _setup("fggp")
    gen = torch.Generator().manual_seed(1)
    _step(model, opt, pruner, 1, gen)  # creates momentum buffers, no event
    x = torch.randn(8, 3, 32, 32, generator=gen)
    opt.zero_grad()
    torch.nn.functional.cross_entropy(model(x), torch.zeros(8, dtype=torch.long)).backward()
    pruner.on_backward(2)
    pruned_any = False
    for w, m in zip(pruner.weights, pruner.masks):
        assert torch.all(opt.state[w]["momentum_buffer"][~m] == 0) and torch.all(w[~m] == 0)
        pruned_any |= bool((~m).any())
    assert pruned_any


def test_sparse_start_is_erk_at_half_density():
    cfg, model, opt, pruner = _setup("fggp", init="sparse50")
    denom = models.denominator(model)
    assert pruner.events[0]["iteration"] == 0
    assert pruner.events[0]["density"] == pytest.approx(0.5, abs=len(pruner.weights) / denom)
    dens = [float(m.float().mean()) for m in pruner.masks]
    raw = [sum(w.shape) / w.numel() for w in pruner.weights]  # ERK: (sum of dims) / (product of dims)
    unclamped = [i for i, d in enumerate(dens) if d < 0.99]
    assert len(unclamped) >= 3
    i, j = unclamped[-2], unclamped[-3]
    assert dens[i] / dens[j] == pytest.approx(raw[i] / raw[j], rel=0.02)  # proportional to the ERK score
    for w, m in zip(pruner.weights, pruner.masks):
        assert torch.all(w[~m] == 0)


def _masks(pruner):
    return torch.cat([m.flatten() for m in pruner.masks])


def test_erk_start_same_seed_same_mask_other_seed_other_mask():
    a = _masks(_setup("gmp", init="sparse50", seed=5)[3])
    b = _masks(_setup("gmp", init="sparse50", seed=5)[3])
    c = _masks(_setup("gmp", init="sparse50", seed=6)[3])
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_random_pruning_same_seed_same_masks_other_seed_other_masks():
    a = _masks(_run_events("random", seed=2)[3])
    b = _masks(_run_events("random", seed=2)[3])
    c = _masks(_run_events("random", seed=3)[3])
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_granet_masks_the_first_conv_and_regrows_at_zero():
    cfg, model, opt, pruner = _run_events("granet")
    assert pruner.names[0] == "features.0.weight"
    assert sum(e["n_regrown"] for e in pruner.events) > 0
    assert math.isclose(pruner.events[-1]["density"], 0.1, abs_tol=1e-4)


def test_granet_event_follows_the_step_and_regrown_weights_stay_zero_until_the_next_step():
    cfg, model, opt, pruner = _setup("granet")
    gen = torch.Generator().manual_seed(0)
    for t in range(1, 9):
        _step(model, opt, pruner, t, gen)
    # iteration 10 is an event: step by hand to look between the optimizer step and after_step
    x = torch.randn(8, 3, 32, 32, generator=gen)
    y = torch.randint(0, 10, (8,), generator=gen)
    _step(model, opt, pruner, 9, gen)
    before = [m.clone() for m in pruner.masks]
    opt.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    pruner.on_backward(10)
    assert all(torch.equal(a, b) for a, b in zip(before, pruner.masks))  # granet does nothing before the step
    opt.step()
    pruner.apply_masks()
    w_after_step = [w.detach().clone() for w in pruner.weights]
    pruner.after_step(10)
    assert pruner.events[-1]["iteration"] == 10 and pruner.events[-1]["n_regrown"] > 0
    n_grown = 0
    for w, m_old, m_new, w_step in zip(pruner.weights, before, pruner.masks, w_after_step):
        grown = m_new & ~m_old
        n_grown += int(grown.sum())
        assert torch.all(w[grown] == 0)  # regrown at exactly zero, not at -lr * (1 + momentum) * g
        assert torch.all(opt.state[w]["momentum_buffer"][grown] == 0)
        # a surviving weight keeps its value after the step, or is zero: pruned by the event's global
        # magnitude step and regrown by its per-layer step (GraNet zeroes it in between)
        kept = m_new & m_old
        assert torch.all((w[kept] == w_step[kept]) | (w[kept] == 0))
    assert n_grown > 0


def test_unreachable_sparsity_is_a_config_error():
    cfg = C.load(overrides=tiny_overrides(pruning={"method": "gmp", "sparsity": 0.9999}))
    model = E.build_model(cfg, torch.device("cpu"))
    with pytest.raises(C.ConfigError, match="unreachable"):
        make_pruner(cfg).setup(model, E.make_optimizer(model, cfg.training), 20, 0)


def test_each_method_gets_the_pruner_of_its_family():
    assert set(FAMILY) == set(C.METHODS)
    want = {"dense": Pruner, "fggp": MaskPruner, "annealed": MaskPruner, "gf-annealed": MaskPruner,
            "mf-fixed": MaskPruner, "gmp": MaskPruner, "gmp-mt": MaskPruner, "random": RandomPruner,
            "granet": PruneRegrowPruner}
    for method, cls in want.items():
        assert type(make_pruner(C.load(overrides={"pruning": {"method": method}}))) is cls, method
    with pytest.raises(ValueError, match=r"MaskPruner runs the mask family, not granet \(prune-and-regrow\): use "
                                         r"make_pruner\(cfg\)"):
        MaskPruner(C.load(overrides={"pruning": {"method": "granet"}}))

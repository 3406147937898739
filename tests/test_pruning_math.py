"""Tests of the pure pruning math (fggp_repro.pruning: schedule, criteria, erk, methods).

Expected values are worked out by hand (in the comments) or by brute force with Python's sorted() on
(score, index) tuples -- never recomputed with the code under test.
"""

import math

import pytest
import torch

from fggp_repro.pruning import (
    METHOD_NAMES,
    ORDER_RATE,
    SELECTION_RULES,
    EventContext,
    cosine_rate,
    cubic_density,
    erk_densities,
    erk_masks,
    granet_prune_regrow,
    prune_mask,
    select_two_step,
    smallest_k,
)


def T(values, dtype=torch.float32):
    return torch.tensor(values, dtype=dtype)


def B(values):
    return torch.tensor([bool(v) for v in values], dtype=torch.bool)


def idx(mask):
    """Set of True indices of a 1-D bool mask."""
    assert mask.dtype == torch.bool
    return set(torch.nonzero(mask).flatten().tolist())


ALL8 = B([1] * 8)


# ---------------------------------------------------------------------------------------------- schedule


def test_cubic_density_hand_values():
    # d_i = 1, d_f = 0.1, T_end = 100
    assert cubic_density(0, 100, 1.0, 0.1) == pytest.approx(1.0)
    # (1 - 1/2)^3 = 1/8: 0.1 + 0.9/8 = 0.1 + 0.1125 = 0.2125
    assert cubic_density(50, 100, 1.0, 0.1) == pytest.approx(0.2125)
    # (3/4)^3 = 0.421875: 0.1 + 0.9 * 0.421875 = 0.4796875
    assert cubic_density(25, 100, 1.0, 0.1) == pytest.approx(0.4796875)
    assert cubic_density(100, 100, 1.0, 0.1) == 0.1
    assert cubic_density(150, 100, 1.0, 0.1) == 0.1
    # sparse start: d_i = 0.5, d_f = 0.02: 0.02 + 0.48/8 = 0.08
    assert cubic_density(50, 100, 0.5, 0.02) == pytest.approx(0.08)
    # constant schedule allowed (d_i == d_f)
    assert cubic_density(10, 100, 0.5, 0.5) == pytest.approx(0.5)


@pytest.mark.parametrize(
    "args",
    [
        (-1, 100, 1.0, 0.1),  # t < 0
        (0, 0, 1.0, 0.1),  # t_end <= 0
        (0, -5, 1.0, 0.1),
        (0, 100, 1.5, 0.1),  # d_initial > 1
        (0, 100, 1.0, 0.0),  # d_final not in (0, 1]
        (0, 100, 0.0, 0.0),
        (0, 100, 0.5, 0.6),  # d_final > d_initial
        (float("nan"), 100, 1.0, 0.1),
    ],
)
def test_cubic_density_errors(args):
    with pytest.raises(ValueError):
        cubic_density(*args)


def test_cosine_rate_hand_values():
    assert cosine_rate(0, 1000, 0.5) == pytest.approx(0.5)
    assert cosine_rate(-10, 1000, 0.5) == pytest.approx(0.5)  # clamped
    # (0.5 + 0.005) / 2 = 0.2525
    assert cosine_rate(500, 1000, 0.5) == pytest.approx(0.2525)
    # cos(pi/4) = 0.70710678: 0.005 + 0.495 * (1.70710678 / 2) = 0.005 + 0.42250893 = 0.42750893
    assert cosine_rate(250, 1000, 0.5) == pytest.approx(0.42750893, abs=1e-8)
    assert cosine_rate(1000, 1000, 0.5) == pytest.approx(0.005)
    assert cosine_rate(5000, 1000, 0.5) == pytest.approx(0.005)
    # explicit r_min
    assert cosine_rate(500, 1000, 0.5, r_min=0.1) == pytest.approx(0.3)
    assert cosine_rate(1000, 1000, 0.01, r_min=0.0) == pytest.approx(0.0, abs=1e-15)


def test_cosine_rate_errors():
    with pytest.raises(ValueError):
        cosine_rate(0, 0, 0.5)
    with pytest.raises(ValueError):
        cosine_rate(0, 100, 1.5)
    with pytest.raises(ValueError):
        cosine_rate(0, 100, 0.5, r_min=-0.1)


# ---------------------------------------------------------------------------------------------- brute force


def brute_smallest(score, eligible, k):
    """Reference: the k eligible (score, index) pairs first in sorted order."""
    pairs = sorted((float(score[i]), i) for i in range(len(score)) if eligible[i])
    return {i for _, i in pairs[:k]}


def brute_two_step(first, second, active, n, nc):
    n_active = sum(bool(a) for a in active)
    m = min(max(nc, n), n_active)
    cands = brute_smallest(first, active, m)
    cand_mask = [i in cands for i in range(len(first))]
    return cands, brute_smallest(second, cand_mask, n)


# ---------------------------------------------------------------------------------------------- smallest_k


def test_smallest_k_hand():
    s = T([3.0, 1.0, 2.0, 1.0, 0.0, 1.0])
    el = B([1, 1, 1, 1, 0, 1])  # index 4 (score 0) is not eligible
    assert idx(smallest_k(s, el, 0)) == set()
    assert idx(smallest_k(s, el, 1)) == {1}  # ties at 1.0 -> lowest index first
    assert idx(smallest_k(s, el, 2)) == {1, 3}
    assert idx(smallest_k(s, el, 3)) == {1, 3, 5}
    assert idx(smallest_k(s, el, 4)) == {1, 2, 3, 5}
    assert idx(smallest_k(s, el, 5)) == {0, 1, 2, 3, 5}
    # the input mask is not modified and the output is a new tensor
    out = smallest_k(s, el, 5)
    out[0] = False
    assert bool(el[0])


def test_smallest_k_vs_brute_force_with_ties():
    for seed in range(150):
        g = torch.Generator().manual_seed(seed)
        n = int(torch.randint(1, 120, (1,), generator=g))
        dtype = torch.float64 if seed % 3 == 0 else torch.float32
        score = torch.randint(0, 6, (n,), generator=g).to(dtype)  # integer values: many ties
        if seed % 5 == 0:
            score = -score  # negative scores work too
        eligible = torch.rand(n, generator=g) < 0.6
        count = int(eligible.sum())
        for k in sorted({0, count, count // 2, min(1, count), max(count - 1, 0)}):
            got = smallest_k(score, eligible, k)
            assert got.dtype == torch.bool and got.shape == (n,)
            assert int(got.sum()) == k
            assert idx(got) == brute_smallest(score.tolist(), eligible.tolist(), k), (seed, k)


def test_smallest_k_errors():
    s = T([1.0, 2.0, 3.0])
    el = B([1, 1, 0])
    with pytest.raises(ValueError):
        smallest_k(s, el, 3)  # > eligible count
    with pytest.raises(ValueError):
        smallest_k(s, el, -1)
    with pytest.raises(ValueError):
        smallest_k(T([1.0, float("nan"), 3.0]), el, 1)  # NaN among eligible
    with pytest.raises(ValueError):
        smallest_k(s, torch.tensor([1, 1, 0]), 1)  # not bool
    with pytest.raises(ValueError):
        smallest_k(s, B([1, 1]), 1)  # shape mismatch
    with pytest.raises(ValueError):
        smallest_k(s.view(3, 1), el.view(3, 1), 1)  # not 1-D
    with pytest.raises(ValueError):
        smallest_k(torch.tensor([1, 2, 3]), el, 1)  # integer scores
    with pytest.raises(ValueError):
        smallest_k(s, el, 1.0)  # float k


def test_smallest_k_nan_outside_eligible_is_ignored():
    s = T([float("nan"), 2.0, 1.0])
    assert idx(smallest_k(s, B([0, 1, 1]), 1)) == {2}


# ---------------------------------------------------------------------------------------------- select_two_step


def test_two_step_order_matters():
    w = T([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])
    g = T([0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1])
    # gradient-first: 4 smallest |g| = {7, 6, 5, 4}; of those the 2 smallest |w| = {4, 5}
    assert idx(select_two_step(g, w, ALL8, 2, 4)) == {4, 5}
    # magnitude-first: 4 smallest |w| = {0, 1, 2, 3}; of those the 2 smallest |g| = {3, 2}
    assert idx(select_two_step(w, g, ALL8, 2, 4)) == {2, 3}


def test_two_step_ties_in_first_score():
    first = T([2, 1, 1, 3, 1, 0, 5, 1])
    second = T([0, 9, 8, 0, 7, 6, 0, 5])
    # 3 smallest first: (0,5), (1,1), (1,2) -- 4 and 7 also score 1 but have higher indices
    # second among {5: 6, 1: 9, 2: 8}: {5, 2}
    assert idx(select_two_step(first, second, ALL8, 2, 3)) == {2, 5}


def test_two_step_ties_in_second_score():
    first = T([0, 0, 0, 0, 1, 1, 1, 1])
    second = T([3, 1, 1, 1, 0, 0, 0, 0])
    # candidates {0, 1, 2, 3}; second 3, 1, 1, 1 -> ties at 1 -> lowest indices {1, 2}
    assert idx(select_two_step(first, second, ALL8, 2, 4)) == {1, 2}


def test_two_step_inactive_entries_never_chosen():
    first = T([0, 0, 5, 1, 2, 3, 4, 0.5])
    second = T([0, 0, 1, 3, 2, 1, 0, 9])
    active = B([0, 0, 1, 1, 1, 1, 1, 1])
    # active by first: (0.5, 7), (1, 3), (2, 4) -> candidates {7, 3, 4}; second 9, 3, 2 -> {4, 3}
    assert idx(select_two_step(first, second, active, 2, 3)) == {3, 4}
    # all active selected when n_prune == active count
    assert idx(select_two_step(first, second, active, 6, 0)) == {2, 3, 4, 5, 6, 7}


def test_two_step_candidates_grow_to_n_prune():
    first = T([1, 2, 3, 4, 5, 6])
    second = T([6, 5, 4, 3, 2, 1])
    act = B([1] * 6)
    # n_candidates 1 < n_prune 3: candidates are the 3 smallest first = {0, 1, 2}, all pruned
    assert idx(select_two_step(first, second, act, 3, 1)) == {0, 1, 2}
    assert idx(select_two_step(first, second, act, 3, 0)) == {0, 1, 2}
    # n_candidates above the active count is capped: with 3 active, candidates = all active
    active = B([0, 1, 1, 1, 0, 0])
    assert idx(select_two_step(T([0, 1, 2, 3, 0, 0]), T([0, 5, 4, 3, 9, 9]), active, 1, 100)) == {3}


def test_two_step_n_prune_zero():
    out = select_two_step(T([1, 2, 3]), T([3, 2, 1]), B([1, 1, 1]), 0, 2)
    assert out.dtype == torch.bool and out.shape == (3,) and not out.any()


def test_two_step_errors():
    f, s, a = T([1, 2, 3]), T([3, 2, 1]), B([1, 1, 0])
    with pytest.raises(ValueError):
        select_two_step(f, s, a, 3, 3)  # n_prune > active count (2)
    with pytest.raises(ValueError):
        select_two_step(f, s, a, -1, 3)
    with pytest.raises(ValueError):
        select_two_step(f, s, a, 1, -1)
    with pytest.raises(ValueError):
        select_two_step(f, T([3, 2]), a, 1, 1)  # length mismatch
    with pytest.raises(ValueError):
        select_two_step(f, s, B([1, 1]), 1, 1)
    with pytest.raises(ValueError):
        select_two_step(f, s, torch.tensor([1, 1, 0]), 1, 1)  # active not bool
    with pytest.raises(ValueError):
        select_two_step(f, s.double(), a, 1, 1)  # dtype mismatch
    with pytest.raises(ValueError):
        select_two_step(torch.tensor([1, 2, 3]), torch.tensor([3, 2, 1]), a, 1, 1)  # int scores
    with pytest.raises(ValueError):
        select_two_step(f.view(1, 3), s.view(1, 3), a.view(1, 3), 1, 1)  # not 1-D
    with pytest.raises(ValueError):
        select_two_step(f, s, a, 1.5, 1)
    with pytest.raises(ValueError):
        select_two_step(T([1, float("nan"), 3]), s, a, 1, 1)


def test_two_step_property_vs_brute_force():
    for seed in range(250):
        g = torch.Generator().manual_seed(1000 + seed)
        n = int(torch.randint(1, 150, (1,), generator=g))
        if seed % 2 == 0:  # integer-valued: many ties in both scores
            first = torch.randint(0, 5, (n,), generator=g).float()
            second = torch.randint(0, 5, (n,), generator=g).float()
        else:
            first = torch.rand(n, generator=g)
            second = torch.rand(n, generator=g)
        active = torch.rand(n, generator=g) < float(torch.rand(1, generator=g))
        n_active = int(active.sum())
        n_prune = int(torch.randint(0, n_active + 1, (1,), generator=g))
        nc = int(torch.randint(0, n + 3, (1,), generator=g))
        got = select_two_step(first, second, active, n_prune, nc)
        fl, sl, al = first.tolist(), second.tolist(), active.tolist()
        cands, expected = brute_two_step(fl, sl, al, n_prune, nc)
        chosen = idx(got)
        assert len(chosen) == n_prune
        assert all(al[i] for i in chosen)
        assert chosen <= cands
        assert chosen == expected, (seed, n, n_prune, nc)


# ---------------------------------------------------------------------------------------------- ERK


def test_erk_hand_example_clamps_tiny_layers():
    shapes = [(3, 3, 3, 3), (512, 512, 3, 3), (10, 512)]
    # raw scores: 12/81 = 0.148, 1030/2359296 = 4.4e-4, 522/5120 = 0.102; N = 81 + 2359296 + 5120 = 2364497
    # pass 1: eps = 0.1 * N / (12 + 1030 + 522) = 151.2 -> 151.2 * 12/81 = 22.4 > 1: (3,3,3,3) dense
    # pass 2: eps = (0.1 N - 81) / (1030 + 522) = 152.3 -> 152.3 * 0.102 = 15.5 > 1: (10,512) dense
    # pass 3: eps = (0.1 N - 81 - 5120) / 1030 -> d = (236449.7 - 5201) / 2359296 = 0.0980159
    d = erk_densities(shapes, 0.1)
    assert d[0] == 1.0
    assert d[2] == 1.0
    assert d[1] == pytest.approx((236449.7 - 81 - 5120) / 2359296, rel=1e-12)
    assert d[1] == pytest.approx(0.0980159, abs=1e-7)
    mean = (81 * d[0] + 2359296 * d[1] + 5120 * d[2]) / 2364497
    assert mean == pytest.approx(0.1, rel=1e-12)


def test_erk_unclamped_layers_keep_score_ratio():
    shapes = [(512, 512, 3, 3), (256, 256, 3, 3)]
    # eps = 0.1 * (2359296 + 589824) / (1030 + 518) = 294912 / 1548 = 190.51; 190.51 * 518 / 589824 = 0.167
    d = erk_densities(shapes, 0.1)
    assert d[0] == pytest.approx(294912 / 1548 * 1030 / 2359296, rel=1e-12)
    assert d[1] == pytest.approx(294912 / 1548 * 518 / 589824, rel=1e-12)
    # ratio of raw scores: (518/589824) / (1030/2359296) = 518 * 4 / 1030
    assert d[1] / d[0] == pytest.approx(2072 / 1030, rel=1e-12)
    assert (2359296 * d[0] + 589824 * d[1]) / (2359296 + 589824) == pytest.approx(0.1, rel=1e-12)


def test_erk_weighted_mean_many_densities():
    shapes = [(64, 3, 3, 3), (64, 64, 3, 3), (128, 64, 3, 3), (128, 128, 3, 3), (256, 128, 1, 1), (10, 256)]
    numel = [math.prod(s) for s in shapes]
    for density in (0.02, 0.05, 0.1, 0.5, 0.9, 1.0):
        d = erk_densities(shapes, density)
        assert all(0.0 < x <= 1.0 for x in d)
        assert sum(x * n for x, n in zip(d, numel)) / sum(numel) == pytest.approx(density, rel=1e-12)
    assert erk_densities(shapes, 1.0) == [1.0] * len(shapes)
    assert erk_densities([(4, 4)], 0.25) == [pytest.approx(0.25)]


def test_erk_errors():
    for bad in (0.0, -0.1, 1.5, float("nan")):
        with pytest.raises(ValueError):
            erk_densities([(4, 4)], bad)
    with pytest.raises(ValueError):
        erk_densities([(4, 0)], 0.5)
    with pytest.raises(ValueError):
        erk_masks([(4, 4)], 0.5, None)


def test_erk_masks_counts_and_seeding():
    shapes = [(3, 3, 3, 3), (64, 64, 3, 3), (10, 64)]
    # N = 81 + 36864 + 640 = 37585, density 0.2 -> 7517 kept
    # pass 1: eps = 7517 / (12 + 134 + 74) = 34.2 -> 34.2 * 12/81 = 5.1 > 1: (3,3,3,3) dense
    # pass 2: eps = 7436 / (134 + 74) = 35.75 -> 35.75 * 74/640 = 4.1 > 1: (10,64) dense
    # pass 3: (64,64,3,3) keeps 7517 - 81 - 640 = 6796
    masks = erk_masks(shapes, 0.2, torch.Generator().manual_seed(0))
    assert [tuple(m.shape) for m in masks] == shapes
    assert all(m.dtype == torch.bool for m in masks)
    assert [int(m.sum()) for m in masks] == [81, 6796, 640]
    again = erk_masks(shapes, 0.2, torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip(masks, again))
    other = erk_masks(shapes, 0.2, torch.Generator().manual_seed(1))
    assert [int(m.sum()) for m in other] == [81, 6796, 640]
    assert not torch.equal(masks[1], other[1])


# ---------------------------------------------------------------------------------------------- methods

# Shared 8-entry case (all active, R = 8, n = 3, rho = 0.5, t = 0 -> r = r0 = 0.5):
#   w = 1..8 (rank = index), g = [1, 2, 8, 7, 6, 5, 3, 4]
#   fixed candidates  = floor(0.5 * 8) = 4
#   annealed candidates = 3 + floor((8 - 3) * 0.5) = 3 + 2 = 5
W8 = T([1, 2, 3, 4, 5, 6, 7, 8])
G8 = T([1, 2, 8, 7, 6, 5, 3, 4])
CTX0 = EventContext(t=0, t_total=1000)


def test_method_fggp_hand():
    # 4 smallest |g|: {0 (1), 1 (2), 6 (3), 7 (4)}; 3 smallest |w| of those: {0, 1, 6}
    assert idx(prune_mask("fggp", W8, G8, ALL8, 3, CTX0)) == {0, 1, 6}


def test_method_annealed_hand():
    # 5 smallest |w|: {0..4}, |g| = 1, 2, 8, 7, 6; the 2 largest |g| (2, 3) kept, prune {0, 1, 4}
    assert idx(prune_mask("annealed", W8, G8, ALL8, 3, CTX0)) == {0, 1, 4}


def test_method_gf_annealed_hand():
    # 5 smallest |g|: {0, 1, 6, 7, 5}; 3 smallest |w| of those: {0, 1, 5}
    assert idx(prune_mask("gf-annealed", W8, G8, ALL8, 3, CTX0)) == {0, 1, 5}


def test_method_mf_fixed_hand():
    # 4 smallest |w|: {0, 1, 2, 3}, |g| = 1, 2, 8, 7 -> prune {0, 1, 3}
    assert idx(prune_mask("mf-fixed", W8, G8, ALL8, 3, CTX0)) == {0, 1, 3}


def test_method_gmp_hand():
    assert idx(prune_mask("gmp", W8, G8, ALL8, 3, CTX0)) == {0, 1, 2}
    assert idx(prune_mask("gmp", W8, None, ALL8, 3, CTX0)) == {0, 1, 2}  # no gradient needed


def test_annealed_spec_example_n2():
    g = T([5, 4, 1, 6, 7, 2, 3, 8])
    # t = 0: r = 0.5, R = 8, n = 2 -> a = floor(6 * 0.5) = 3 -> 5 candidates {0..4} with |g| 5, 4, 1, 6, 7
    # keep the 3 largest |g| (indices 0, 3, 4), prune {2, 1}
    assert idx(prune_mask("annealed", W8, g, ALL8, 2, CTX0)) == {1, 2}
    # t = t_total: r = 0.005 -> a = floor(6 * 0.005) = 0 -> candidates = the 2 smallest |w| = gmp
    end = EventContext(t=1000, t_total=1000)
    assert idx(prune_mask("annealed", W8, g, ALL8, 2, end)) == {0, 1}
    # t = t_total / 2: r = 0.2525 -> a = floor(6 * 0.2525) = floor(1.515) = 1 -> candidates {0, 1, 2},
    # |g| 5, 4, 1 -> keep 0, prune {1, 2}
    mid = EventContext(t=500, t_total=1000)
    assert idx(prune_mask("annealed", W8, g, ALL8, 2, mid)) == {1, 2}
    # r0 = 0.01 (the authors' default): a = floor(6 * 0.01) = 0 at t = 0 -> gmp
    small = EventContext(t=0, t_total=1000, r0=0.01)
    assert idx(prune_mask("annealed", W8, g, ALL8, 2, small)) == {0, 1}


def test_methods_with_inactive_entries():
    active = B([0, 1, 1, 1, 1, 1, 1, 0])  # R = 6
    # fggp: floor(0.5 * 6) = 3 candidates, smallest active |g|: 1 (2), 6 (3), 5 (5) -> smallest |w|: {1, 5}
    assert idx(prune_mask("fggp", W8, G8, active, 2, CTX0)) == {1, 5}
    # annealed: 2 + floor(4 * 0.5) = 4 candidates {1, 2, 3, 4}, |g| 2, 8, 7, 6 -> prune {1, 4}
    assert idx(prune_mask("annealed", W8, G8, active, 2, CTX0)) == {1, 4}
    # gmp: the 2 active with the smallest |w|: {1, 2}
    assert idx(prune_mask("gmp", W8, None, active, 2, CTX0)) == {1, 2}
    # rho = 0.25: floor(0.25 * 6) = 1 < n = 2 -> candidates grow to 2: smallest |g| {1, 6}, both pruned
    assert idx(prune_mask("fggp", W8, G8, active, 2, EventContext(t=0, t_total=10, rho=0.25))) == {1, 6}


def test_gmp_mt_protects_per_layer_minimum():
    layer = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2])
    w = T([1, 2, 3, 0.5, 0.6, 9, 0.1, 0.2])
    ctx2 = EventContext(t=0, t_total=10, layer_index=layer, min_per_layer=2)
    # protected (2 largest per layer): {1, 2}, {4, 5}, {6, 7} (layer 2 has only 2) -> prunable {0, 3}
    assert idx(prune_mask("gmp-mt", w, None, ALL8, 2, ctx2)) == {0, 3}
    with pytest.raises(ValueError):
        prune_mask("gmp-mt", w, None, ALL8, 3, ctx2)
    # plain gmp would take {6, 7, 3}
    assert idx(prune_mask("gmp", w, None, ALL8, 3, ctx2)) == {3, 6, 7}
    ctx1 = EventContext(t=0, t_total=10, layer_index=layer, min_per_layer=1)
    # protected {2}, {5}, {7}; prunable 0 (1), 1 (2), 3 (0.5), 4 (0.6), 6 (0.1) -> {6, 3, 4}
    assert idx(prune_mask("gmp-mt", w, None, ALL8, 3, ctx1)) == {3, 4, 6}
    # min_per_layer = 0 is plain gmp
    ctx0 = EventContext(t=0, t_total=10, layer_index=layer, min_per_layer=0)
    assert idx(prune_mask("gmp-mt", w, None, ALL8, 3, ctx0)) == {3, 6, 7}
    # a layer already at the minimum loses nothing: layer 2 has only index 6 active
    active = B([1, 1, 1, 1, 1, 1, 1, 0])
    # protected {2}, {5}, {6}; prunable 0 (1), 1 (2), 3 (0.5), 4 (0.6) -> 2 smallest {3, 4}
    assert idx(prune_mask("gmp-mt", w, None, active, 2, ctx1)) == {3, 4}
    # missing layer_index
    with pytest.raises(ValueError):
        prune_mask("gmp-mt", w, None, ALL8, 1, EventContext(t=0, t_total=10, min_per_layer=1))


def test_gmp_mt_unsorted_layer_ids_and_ties():
    layer = torch.tensor([1, 0, 1, 0, 1, 0, 2, 2])
    w = T([0.5, 1, 0.6, 2, 9, 3, 0.1, 0.2])
    # layer 0 = {1 (1), 3 (2), 5 (3)}, layer 1 = {0 (0.5), 2 (0.6), 4 (9)}, layer 2 = {6 (0.1), 7 (0.2)}
    # min 1: protected {5, 4, 7}; prunable 0 (.5), 1 (1), 2 (.6), 3 (2), 6 (.1) -> 3 smallest {6, 0, 2}
    ctx = EventContext(t=0, t_total=10, layer_index=layer, min_per_layer=1)
    assert idx(prune_mask("gmp-mt", w, None, ALL8, 3, ctx)) == {0, 2, 6}
    # ties: one layer, equal |w|, min 1 -> the highest index is protected, the lower ones pruned first
    ctx_t = EventContext(t=0, t_total=10, layer_index=torch.tensor([0, 0, 0]), min_per_layer=1)
    assert idx(prune_mask("gmp-mt", T([1, 1, 1]), None, B([1, 1, 1]), 2, ctx_t)) == {0, 1}


def test_random_method_seeding():
    n = 200
    w = torch.rand(n, generator=torch.Generator().manual_seed(5))
    active = torch.rand(n, generator=torch.Generator().manual_seed(6)) < 0.5
    n_active = int(active.sum())

    def run(seed):
        ctx = EventContext(t=0, t_total=10, generator=torch.Generator().manual_seed(seed))
        return prune_mask("random", w, None, active, 30, ctx)

    a, b, c = run(0), run(0), run(1)
    assert n_active >= 30
    assert int(a.sum()) == 30 and not (a & ~active).any()
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    with pytest.raises(ValueError):
        prune_mask("random", w, None, active, 3, EventContext(t=0, t_total=10))


def test_dense_method():
    out = prune_mask("dense", W8, None, ALL8, 0, CTX0)
    assert out.dtype == torch.bool and not out.any()
    with pytest.raises(ValueError):
        prune_mask("dense", W8, None, ALL8, 1, CTX0)


def test_granet_global_step_is_gmp():
    assert idx(prune_mask("granet", W8, G8, ALL8, 3, CTX0)) == {0, 1, 2}


def test_prune_mask_errors_and_registry():
    with pytest.raises(ValueError):
        prune_mask("nope", W8, G8, ALL8, 1, CTX0)
    with pytest.raises(ValueError):
        prune_mask("fggp", W8, None, ALL8, 1, CTX0)  # gradient needed
    with pytest.raises(ValueError):
        prune_mask("fggp", W8, G8, ALL8, 9, CTX0)  # more than active
    with pytest.raises(ValueError):
        prune_mask("fggp", W8, G8, ALL8, -1, CTX0)
    with pytest.raises(ValueError):
        prune_mask("fggp", W8, G8[:4], ALL8, 1, CTX0)
    with pytest.raises(ValueError):
        prune_mask("fggp", W8, G8, ALL8, 1, {"t": 0})
    with pytest.raises(ValueError):
        EventContext(t=-1, t_total=10)
    with pytest.raises(ValueError):
        EventContext(t=0, t_total=0)
    with pytest.raises(ValueError):
        EventContext(t=0, t_total=10, rho=1.5)
    assert set(SELECTION_RULES) <= set(METHOD_NAMES)
    assert set(METHOD_NAMES) >= {
        "fggp", "annealed", "gf-annealed", "mf-fixed", "gmp", "gmp-mt", "random", "dense", "granet",
    }
    assert ORDER_RATE == {
        "fggp": ("gradient-first", "fixed"),
        "annealed": ("magnitude-first", "annealed"),
        "gf-annealed": ("gradient-first", "annealed"),
        "mf-fixed": ("magnitude-first", "fixed"),
    }
    # every method returns exactly n, all active, on a random case
    gen = torch.Generator().manual_seed(3)
    w, g = torch.rand(50, generator=gen), torch.rand(50, generator=gen)
    active = torch.rand(50, generator=gen) < 0.7
    ctx = EventContext(
        t=3, t_total=10, generator=torch.Generator().manual_seed(0),
        layer_index=torch.arange(50) // 10, min_per_layer=1,
    )
    for m in METHOD_NAMES:
        k = 0 if m == "dense" else 5
        out = prune_mask(m, w, g, active, k, ctx)
        assert int(out.sum()) == k and not (out & ~active).any(), m


def test_event_context_is_frozen():
    with pytest.raises(Exception):
        CTX0.t = 5  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------- granet step


def test_granet_prune_regrow_hand():
    w = T([0.5, 0.1, 0.0, 0.3, 0.2, 0.0, 0.4, 0.9])
    g = T([0.1, 0.9, 0.3, 0.2, 0.05, 0.3, 0.0, 0.1])
    active = B([1, 1, 0, 1, 1, 0, 1, 1])  # 6 active
    # n_d = ceil(0.3 * 6) = ceil(1.8) = 2; death = 2 smallest active |w|: {1 (0.1), 4 (0.2)}
    # zero after death: {1, 2, 4, 5}, |g| 0.9, 0.3, 0.05, 0.3 -> largest 2: 1, then tie 2/5 -> 2
    death, regrow = granet_prune_regrow(w, g, active, 0.3)
    assert idx(death) == {1, 4}
    assert idx(regrow) == {1, 2}  # 1 is killed and regrown
    new = (active & ~death) | regrow
    assert idx(new) == {0, 1, 2, 3, 6, 7}
    # rate 0: nothing; rate 1: all 6 active die, regrow the 6 largest |g| among all 8:
    # 1 (0.9), 2 (0.3), 5 (0.3), 3 (0.2), 0 (0.1), 7 (0.1)
    d0, r0 = granet_prune_regrow(w, g, active, 0.0)
    assert not d0.any() and not r0.any()
    d1, r1 = granet_prune_regrow(w, g, active, 1.0)
    assert idx(d1) == {0, 1, 3, 4, 6, 7}
    assert idx(r1) == {0, 1, 2, 3, 5, 7}
    # rate 0.1: ceil(0.6) = 1 -> death {1}; regrow among {1, 2, 4, 5}: {1}
    d, r = granet_prune_regrow(w, g, active, 0.1)
    assert idx(d) == {1} and idx(r) == {1}
    with pytest.raises(ValueError):
        granet_prune_regrow(w, g, active, 1.5)


# ---------------------------------------------------------------------------------------------- CUDA (optional)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_brute_force_and_cpu():
    for seed in range(40):
        g = torch.Generator().manual_seed(5000 + seed)
        n = int(torch.randint(1, 300, (1,), generator=g))
        first = torch.randint(0, 5, (n,), generator=g).float()
        second = torch.rand(n, generator=g) if seed % 2 else torch.randint(0, 3, (n,), generator=g).float()
        active = torch.rand(n, generator=g) < 0.6
        n_prune = int(torch.randint(0, int(active.sum()) + 1, (1,), generator=g))
        nc = int(torch.randint(0, n + 1, (1,), generator=g))
        got = select_two_step(first.cuda(), second.cuda(), active.cuda(), n_prune, nc)
        assert got.is_cuda
        _, expected = brute_two_step(first.tolist(), second.tolist(), active.tolist(), n_prune, nc)
        assert idx(got.cpu()) == expected, seed
    w, gr = W8.cuda(), G8.cuda()
    ctx = EventContext(t=0, t_total=1000, layer_index=torch.tensor([0, 0, 0, 1, 1, 1, 2, 2]), min_per_layer=1)
    for m in ("fggp", "annealed", "gf-annealed", "mf-fixed", "gmp", "gmp-mt", "granet"):
        assert torch.equal(prune_mask(m, w, gr, ALL8.cuda(), 3, ctx).cpu(), prune_mask(m, W8, G8, ALL8, 3, ctx)), m
    cuda_gen = torch.Generator(device="cuda").manual_seed(0)
    out = prune_mask("random", w, None, ALL8.cuda(), 3, EventContext(t=0, t_total=10, generator=cuda_gen))
    assert out.is_cuda and int(out.sum()) == 3


# ---- the two counting conventions (docs/protocol.md, the counting of an event), worked by hand ----------------

def test_prune_count_rounds_exactly_and_floors_as_the_authors_do():
    from fggp_repro.pruning.schedule import prune_count

    # (1 - 0.6453) * 1000 = 354.7 (354.69999... in floating point): exact rounds to 355, minus 100 masked = 255;
    # the authors floor 354.7 - 100 = 254.7 to 254
    assert prune_count(1000, 0.6453, 100, "exact") == 255
    assert prune_count(1000, 0.6453, 100, "authors") == 254
    # 354.3: both give 254
    assert prune_count(1000, 0.6457, 100, "exact") == 254 == prune_count(1000, 0.6457, 100, "authors")
    with pytest.raises(ValueError, match="counts"):
        prune_count(1000, 0.5, 0, "nearest")


def test_candidate_counts_over_remain_change_the_selection():
    # 10 active weights; |g| = index, |w| = 9 - index; n = 2 to prune
    g = torch.arange(10, dtype=torch.float32)
    w = 9 - g
    active = torch.ones(10, dtype=torch.bool)
    exact = EventContext(t=0, t_total=100, rho=0.5, r0=0.5)
    authors = EventContext(t=0, t_total=100, rho=0.5, r0=0.5, remain=13)  # 3 more: biases, first conv
    # fggp, exact: floor(0.5 * 10) = 5 candidates by smallest |g| = {0..4}, |w| = 9..5: prune {3, 4}
    assert torch.nonzero(prune_mask("fggp", w, g, active, 2, exact)).flatten().tolist() == [3, 4]
    # fggp, authors: int(0.5 * 13) = 6 candidates {0..5}, |w| = 9..4: prune {4, 5}
    assert torch.nonzero(prune_mask("fggp", w, g, active, 2, authors)).flatten().tolist() == [4, 5]
    # annealed at t = 0 (r = r0 = 0.5), exact: 2 + floor(8 * 0.5) = 6 candidates by smallest |w| = {4..9};
    # prune the 2 with the smallest |g|: {4, 5}
    assert torch.nonzero(prune_mask("annealed", w, g, active, 2, exact)).flatten().tolist() == [4, 5]
    # authors: 2 + int((13 - 2) * 0.5) = 7 candidates {3..9}: prune {3, 4}
    assert torch.nonzero(prune_mask("annealed", w, g, active, 2, authors)).flatten().tolist() == [3, 4]

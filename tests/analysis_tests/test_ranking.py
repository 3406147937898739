"""The one ranking (analysis.ranking): per-seed ranks, the two aggregations, every seed of each setting, seeds
resampled within groups of settings -- on hand-worked cases."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.ranking import per_seed_ranks, rank_arrays, usable_seeds


def test_per_seed_ranks_hand_case():
    # one setting, 3 methods (rows), 3 seeds (columns); at seed 1 a and b tie behind c; seed 2 lacks c
    Y = np.array([[[3.0, 1.0, 2.0], [2.0, 1.0, 5.0], [1.0, 2.0, np.nan]]])
    r = per_seed_ranks(Y)
    np.testing.assert_allclose(r[0, :, 0], [1, 2, 3])
    np.testing.assert_allclose(r[0, :, 1], [2.5, 2.5, 1])
    assert np.isnan(r[0, :, 2]).all()
    keep, complete = usable_seeds(Y, 2)
    assert complete.tolist() == [[True, True, False]] and keep.tolist() == [True]


def test_the_two_aggregations_can_disagree_and_each_is_what_it_says():
    """a = (1, 1, 1, 10), b = (2, 2, 2, 0): b wins 3 of the 4 seeds (per-seed ranks: a 1.75, b 1.25), a has the
    higher seed-mean (3.25 against 1.5: ranks a 1, b 2). A run of 10 against 0 decides the seed-means."""
    Y = np.array([[[1.0, 1.0, 1.0, 10.0], [2.0, 2.0, 2.0, 0.0]]])
    g = np.zeros(1)
    rk = rank_arrays(Y, g, aggregation="seed-ranks", min_seeds=3, n_resamples=50, methods=["a", "b"])
    np.testing.assert_allclose(rk.observed, [1.75, 1.25])
    rm = rank_arrays(Y, g, aggregation="seed-means", min_seeds=3, n_resamples=50, methods=["a", "b"])
    np.testing.assert_allclose(rm.observed, [1.0, 2.0])
    with pytest.raises(ValueError, match="aggregation must be one of"):
        rank_arrays(Y, g, aggregation="median", n_resamples=5)


def test_every_seed_of_each_setting_is_used_and_groups_are_resampled_apart():
    """Setting 0 has seeds 0-5, setting 1 seeds 0-2 (another start: another group). fggp is first at every seed of
    setting 0, last at every seed of setting 1: average rank (1 + 3) / 2 = 2; m1 is second in setting 0 and first
    in setting 1: 1.5; m2 third, then second: 2.5. No resample changes an order that holds at every seed: the
    distribution is a point."""
    Y = np.full((2, 3, 6), np.nan)
    Y[0] = np.array([[3.0] * 6, [2.0] * 6, [1.0] * 6]) + np.arange(6) * 0.01
    Y[1, :, :3] = np.array([[1.0] * 3, [3.0] * 3, [2.0] * 3])
    rk = rank_arrays(Y, np.array([0, 1]), min_seeds=3, n_resamples=200, rng=np.random.default_rng(1),
                     methods=["fggp", "m1", "m2"])
    np.testing.assert_allclose(rk.observed, [2.0, 1.5, 2.5])
    assert rk.seeds.tolist() == [6, 3] and rk.groups == 2 and rk.dropped_runs == 0
    assert (rk.distribution == rk.observed).all() and rk.p_best.tolist() == [0.0, 1.0, 0.0]
    # a setting with fewer than min_seeds complete seeds is left out, not allowed to shrink the others' seeds
    Y2 = np.concatenate([Y, Y[1:2]], axis=0)
    Y2[2, :, 2] = np.nan
    rk2 = rank_arrays(Y2, np.array([0, 1, 1]), min_seeds=3, n_resamples=20, methods=["fggp", "m1", "m2"])
    assert rk2.dropped_settings == 1 and rk2.seeds.tolist() == [6, 3] and rk2.dropped_runs == 0

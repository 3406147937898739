"""The decision layer on arrays: Holm along an axis and its levels, paired t and TOST, classification,
the verdict rules, the collapse comparison and the whole-seed rank bootstrap -- against scipy and hand-computed
cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as st

from analysis import decisions as D

# ---------------------------------------------------------------------------------------------- Holm


def test_holm_along_hand_cases():
    # one family per row: sorted 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 -> running max 0.06; NaN ignored
    np.testing.assert_allclose(D.holm_along([[0.01, np.nan, 0.04, 0.03]]), [[0.03, np.nan, 0.06, 0.06]])
    # along axis 0: two families (columns)
    p = np.array([[0.5, 0.04], [0.01, 0.03], [0.02, 0.9]])
    np.testing.assert_allclose(D.holm_along(p, axis=0), [[0.5, 0.09], [0.03, 0.09], [0.04, 0.9]])
    assert np.isnan(D.holm_along([np.nan, np.nan])).all()
    assert D.holm_along(np.zeros((2, 0))).shape == (2, 0)


def test_holm_levels_hand_case():
    # alpha 0.05, m = 3, sorted 0.01 < 0.05/3 (rejected), 0.03 >= 0.05/2 (stop): the procedure tests 0.01 at
    # 0.05/3 and stops at 0.025 for 0.03 and for everything after it.
    lev = D.holm_levels([0.01, 0.04, 0.03], 0.05)
    np.testing.assert_allclose(lev, [0.05 / 3, 0.025, 0.025])
    # all rejected: 0.001 at 0.05/3, 0.002 at 0.05/2, 0.003 at 0.05
    np.testing.assert_allclose(D.holm_levels([0.003, 0.001, 0.002], 0.05), [0.05, 0.05 / 3, 0.025])
    lev = D.holm_levels([0.2, np.nan], 0.05)
    assert lev[0] == pytest.approx(0.05) and np.isnan(lev[1])  # m = 1


def test_holm_levels_agree_with_adjusted_p_on_random_families():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 0.08, (400, 6))
    p[rng.uniform(size=p.shape) < 0.1] = np.nan
    adj = D.holm_along(p)
    lev = D.holm_levels(p, 0.05)
    ok = np.isfinite(p)
    assert ((p < lev) == (adj < 0.05))[ok].all()
    # and the adjusted values are those of the 1-D reference implementation
    from analysis import holm
    for row_p, row_a in zip(p[:50], adj[:50]):
        np.testing.assert_allclose(row_a, holm(row_p))


# ---------------------------------------------------------------------------------------------- paired t, TOST


def test_paired_t_arrays_match_scipy():
    rng = np.random.default_rng(1)
    d = rng.normal(0.3, 0.5, (4, 7))
    d[1, 5:] = np.nan  # 5 pairs in row 1
    r = D.paired_t_arrays(d, 0.5)
    for i in range(4):
        x = d[i][np.isfinite(d[i])]
        assert r.n[i] == x.size and r.mean[i] == pytest.approx(x.mean()) and r.sd[i] == pytest.approx(x.std(ddof=1))
        assert r.p_two[i] == pytest.approx(st.ttest_1samp(x, 0).pvalue)
        assert r.p_greater[i] == pytest.approx(st.ttest_1samp(x, 0, alternative="greater").pvalue)
        assert r.p_less[i] == pytest.approx(st.ttest_1samp(x, 0, alternative="less").pvalue)
        tost = max(st.ttest_1samp(x, -0.5, alternative="greater").pvalue,
                   st.ttest_1samp(x, 0.5, alternative="less").pvalue)
        assert r.p_tost[i] == pytest.approx(tost)


def test_tost_is_the_1_minus_2alpha_interval_inside_delta():
    rng = np.random.default_rng(2)
    d = rng.normal(0.1, 0.3, (300, 8))
    r = D.paired_t_arrays(d, 0.4)
    lo, hi = st.t.interval(0.90, 7, loc=d.mean(axis=1), scale=d.std(axis=1, ddof=1) / math.sqrt(8))
    inside = (lo > -0.4) & (hi < 0.4)
    assert ((r.p_tost < 0.05) == inside).all()
    assert 0 < inside.sum() < 300  # both outcomes occur


def test_paired_t_undefined_cases():
    r = D.paired_t_arrays(np.array([[1.0, 1.0, 1.0], [2.0, np.nan, np.nan], [np.nan] * 3]), 0.5)
    assert list(r.n) == [3, 1, 0]
    assert r.mean[0] == 1.0 and r.mean[1] == 2.0 and np.isnan(r.mean[2])
    assert np.isnan(r.p_two).all() and np.isnan(r.p_tost).all()  # no spread / one pair / none


# ---------------------------------------------------------------------------------------------- classes, verdicts


def test_classify_keeps_significance_and_size_apart():
    A, As, E, B, U, F = D.AHEAD, D.AHEAD_SMALL, D.EQUIVALENT, D.BEHIND, D.UNRESOLVED, D.FEW_SEEDS
    mean = np.array([1.0, 0.2, -1.0, 0.1, 0.1, 1.0, 0.3, -0.2])
    sig_a = np.array([True, True, False, False, False, True, False, False])
    sig_b = np.array([False, False, True, False, False, False, False, True])
    equiv = np.array([False, True, False, True, False, True, False, True])
    n = np.array([5, 5, 5, 5, 5, 2, 5, 5])
    codes = D.classify(mean, sig_a, sig_b, equiv, n, delta=0.5, min_seeds=3)
    # a lead of delta or more; a significant lead below delta stays a lead (never an equivalence); a deficit;
    # equivalent; unresolved; too few seeds beats everything; unresolved; a significant deficit inside delta
    assert list(codes) == [A, As, B, E, U, F, U, B]
    # a "significant" flag with the wrong sign is no lead
    assert D.classify(np.array([-0.3]), np.array([True]), np.array([False]), np.array([False]), np.array([5]),
                      delta=0.5, min_seeds=3)[0] == U
    assert D.class_words(As, 0.5) == "ahead by less than 0.5" and D.class_words(A, 0.25) == "ahead by >= 0.25"


def test_most_settings_hand_cases():
    A, As, E, B, U = D.AHEAD, D.AHEAD_SMALL, D.EQUIVALENT, D.BEHIND, D.UNRESOLVED
    # 4 settings x 2 comparisons
    codes = np.array([
        [[A, A], [A, As], [A, A], [A, U]],  # 3 won of 4 (> 2): supported; 2 of them with every lead >= delta
        [[A, A], [A, A], [B, A], [A, E]],  # 2 won, 2 lost: 4 - 2 <= 2 -> refuted
        [[A, A], [A, A], [U, A], [A, E]],  # 2 won, 1 lost, 1 unresolved: inconclusive
        [[As, As], [As, A], [As, As], [U, U]],  # 3 won, none with every lead >= delta: supported, small
    ])
    v, won, lost, large, small = D.most_settings(codes, min_settings=3)
    assert list(v) == [D.SUPPORTED, D.REFUTED, D.INCONCLUSIVE, D.SUPPORTED]
    assert list(won) == [3, 2, 2, 3] and list(lost) == [0, 2, 1, 0] and list(large) == [2, 2, 2, 0]
    assert list(small) == [False, False, False, True]
    v, *_ = D.most_settings(codes[:, :2], min_settings=3)  # 2 settings < 3
    assert list(v) == [D.INCONCLUSIVE] * 4


def test_occasionally_all_of_and_rank_verdict_hand_cases():
    A, As, E, B, U = D.AHEAD, D.AHEAD_SMALL, D.EQUIVALENT, D.BEHIND, D.UNRESOLVED
    v, ahead, against, large, small = D.occasionally(
        np.array([[U, A, B], [B, E, B], [B, U, E], [As, U, E]]), min_settings=3)
    assert list(v) == [D.SUPPORTED, D.REFUTED, D.INCONCLUSIVE, D.SUPPORTED] and list(ahead) == [1, 0, 0, 1]
    assert list(small) == [False, False, False, True]
    v, *_ = D.occasionally(np.array([[B, E]]), min_settings=3)  # too few settings to refute
    assert list(v) == [D.INCONCLUSIVE]
    S, R, N = D.SUPPORTED, D.REFUTED, D.INCONCLUSIVE  # N: neither
    v, small = D.all_of(np.array([[S, S], [S, N], [S, R], [N, N]]),
                        np.array([[True, True], [True, False], [False, False], [False, False]]))
    assert list(v) == [S, N, R, N] and list(small) == [True, False, False, False]
    assert D.all_of(np.zeros((2, 0), dtype=np.int8), np.zeros((2, 0), bool))[0].tolist() == [N, N]
    # 5 methods: refuted when another ranks ahead in >= 1 - 0.05/4 = 0.9875 of resamples
    v = D.rank_verdict([0.96, 0.0, 0.0, 0.3], [0.0, 0.99, 0.98, 0.5], 5, supported_at=0.95, alpha=0.05)
    assert list(v) == [S, R, N, N]


def test_collapse_test_is_the_exact_mcnemar_test():
    a = np.array([1, 1, 1, 0, 0, 1, 0, 1], bool)
    b = np.array([0, 0, 1, 1, 0, 0, 0, 1], bool)
    both = np.array([1, 1, 1, 1, 1, 1, 0, 1], bool)  # the 7th pair has a run missing
    x, y, pa, pb = D.collapse_test(a, b, both)
    # discordant: a only at 0, 1, 5 (3); b only at 3 (1); n = 4
    assert (x, y) == (3, 1)
    assert pa == pytest.approx(st.binomtest(3, 4, 0.5, alternative="greater").pvalue)  # 5/16
    assert pb == pytest.approx(st.binomtest(1, 4, 0.5, alternative="greater").pvalue)  # 15/16
    assert D.collapse_test(np.zeros(3, bool), np.zeros(3, bool), np.ones(3, bool))[2] == 1.0


def test_rate_interval_is_clopper_pearson():
    for k, n in ((0, 51), (1, 51), (3, 357), (51, 51)):
        lo, hi = D.rate_interval(k, n)
        ci = st.binomtest(k, n).proportion_ci(0.95, method="exact")
        assert (float(lo), float(hi)) == (pytest.approx(ci.low, abs=1e-12), pytest.approx(ci.high, abs=1e-12))
    assert np.isnan(D.rate_interval(0, 0)[0])


# ---------------------------------------------------------------------------------------------- seed bootstrap


def test_seed_weights_and_weighted_means():
    rng = np.random.default_rng(3)
    w = D.seed_weights(5, 200, rng)
    assert w.shape == (200, 5) and (w.sum(axis=1) == 5).all() and (w >= 0).all()
    y = rng.normal(size=(3, 5))
    y[1, 2] = np.nan
    m = D.weighted_seed_means(y, w)
    for b in range(3):
        for i in range(3):
            ok = np.isfinite(y[i])
            expect = (w[b] * np.where(ok, y[i], 0)).sum() / (w[b] * ok).sum() if (w[b] * ok).sum() else np.nan
            assert m[i, b] == pytest.approx(expect, nan_ok=True)


def test_average_ranks_of_hand_case():
    means = np.array([[3.0, 2.0, 2.0], [1.0, 2.0, 3.0]])  # setting 1: a first, b/c tie 2.5; setting 2: c, b, a
    np.testing.assert_allclose(D.average_ranks_of(means), [(1 + 3) / 2, (2.5 + 2) / 2, (2.5 + 1) / 2])


def test_rank_bootstrap_dominance_and_ties():
    rng = np.random.default_rng(4)
    K = 5
    base = rng.normal(0, 1, K)
    # 2 settings x 3 methods: method 0 always 1 point above method 1, method 2 identical to method 1
    y = np.stack([np.stack([base + 1, base, base]), np.stack([base + 2, base + 1, base + 1])])
    w = D.seed_weights(K, 500, rng)
    dist, p_best, beaten = D.rank_bootstrap(y, w, target=0)
    assert dist.shape == (500, 3) and p_best == 1.0 and list(beaten) == [0.0, 0.0, 0.0]
    # judged from method 1's side: method 0 always ahead, method 2 always tied
    _, p1, beaten1 = D.rank_bootstrap(y, w, target=1)
    assert p1 == 0.0 and list(beaten1) == [1.0, 0.0, 0.0]
    # two identical methods tie for best in every resample: 1/2 each
    _, p_tie, _ = D.rank_bootstrap(y[:, 1:, :], w, target=0)
    assert p_tie == 0.5


def test_rank_bootstrap_spread_widens_the_resampled_means_worked_by_hand():
    """One setting, fggp (0, 0) and m (1, -3) on seeds 0 and 1; resamples: seed 0 twice, seed 1 twice, each
    once. m's seed-mean is -1 and each resampled mean is spread around it by sqrt(2 / 1) times ``spread``:
    seed 0 twice gives -1 + 1.414 * 2 = 1.83 (ahead of fggp's 0), seed 1 twice -3.83, each once -1. With
    spread 0.25 the first is -1 + 0.25 * 2.83 = -0.29: behind. With spread 2 it is 4.66: still ahead."""
    y = np.array([[[0.0, 0.0], [1.0, -3.0]]])
    w = np.array([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    assert D.rank_bootstrap(y, w, target=0)[2][1] == pytest.approx(1 / 3)
    assert D.rank_bootstrap(y, w, target=0, spread=0.25)[2][1] == 0.0
    assert D.rank_bootstrap(y, w, target=0, spread=2.0)[2][1] == pytest.approx(1 / 3)


def test_refutation_spread_is_students_over_the_normal_quantile():
    # scipy: t_4(1 - 0.05/6) = 3.9608, z(1 - 0.05/6) = 2.3940; t_2(0.975) = 4.3027, z(0.975) = 1.9600
    assert D.refutation_spread(5, 0.05 / 6) == pytest.approx(3.9608 / 2.3940, abs=2e-4)
    assert D.refutation_spread(3, 0.025) == pytest.approx(4.3027 / 1.9600, abs=2e-4)
    assert 1.0 < D.refutation_spread(1000, 0.05 / 6) < 1.01  # Student's t tends to the normal
    assert np.isnan(D.refutation_spread(1, 0.05))

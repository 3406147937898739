"""Summaries, Holm, paired comparisons: cross-checked against scipy and hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from analysis import compare, holm, paired_test, summarize, t_interval, welch_test
from analysis.records import SETTING_KEYS
from analysis.stats import signed_rank_permutation_p


def frame(rows):
    """Tidy runs frame from (method, seed, acc[, status][, setting overrides]) tuples."""
    out = []
    for r in rows:
        method, seed, acc = r[:3]
        status = r[3] if len(r) > 3 else "completed"
        extra = r[4] if len(r) > 4 else {}
        d = dict(dataset="cifar10", arch="vgg19", method=method, target_sparsity=0.9, initial_density=1.0,
                 seed=seed, protocol="paper", status=status, run_id=f"{method}-{seed}",
                 test_acc=acc if status == "completed" else np.nan, best_test_acc_after_pruning=np.nan,
                 sparsity=0.9, path="x")
        if method == "dense":
            d.update(target_sparsity=0.0)
        d.update(extra)
        out.append(d)
    return pd.DataFrame(out)


# ---------------------------------------------------------------------------------------------- t interval


def test_t_interval_matches_scipy():
    rng = np.random.default_rng(0)
    for n in (2, 3, 5, 10):
        x = rng.normal(93, 0.4, n)
        for conf in (0.9, 0.95, 0.99):
            r = t_interval(x, conf)
            lo, hi = st.t.interval(conf, n - 1, loc=x.mean(), scale=st.sem(x))
            assert r.ci_low == pytest.approx(lo, rel=1e-12) and r.ci_high == pytest.approx(hi, rel=1e-12)
            assert r.std == pytest.approx(np.std(x, ddof=1)) and r.sem == pytest.approx(st.sem(x))


def test_t_interval_hand_case():
    # x = 1, 2, 3: mean 2, sd 1, sem 1/sqrt(3); t_{0.975, 2} = 4.3026527297 (tables: 4.303)
    r = t_interval([1.0, 2.0, 3.0])
    assert r.mean == 2.0 and r.std == 1.0
    assert r.ci_high - 2.0 == pytest.approx(4.3026527297 / math.sqrt(3), rel=1e-10)


def test_t_interval_n1_and_n0():
    r = t_interval([93.0])
    assert r.n == 1 and r.mean == 93.0 and math.isnan(r.std) and math.isnan(r.ci_low) and math.isnan(r.ci_high)
    r0 = t_interval([])
    assert r0.n == 0 and math.isnan(r0.mean)


def test_summarize_matches_scipy_and_counts_diverged():
    rng = np.random.default_rng(1)
    rows = [("fggp", s, float(v)) for s, v in enumerate(rng.normal(93, 0.3, 5))]
    rows += [("gmp", 0, 92.5), ("gmp", 1, np.nan, "diverged"), ("gmp", 2, np.nan, "diverged")]
    rows += [("random", 0, np.nan, "diverged")]
    df = frame(rows)
    s = summarize(df).set_index("method")
    f = s.loc["fggp"]
    x = df.loc[df["method"] == "fggp", "test_acc"].to_numpy()
    lo, hi = st.t.interval(0.95, 4, loc=x.mean(), scale=st.sem(x))
    assert f["n"] == 5 and f["ci_low"] == pytest.approx(lo) and f["ci_high"] == pytest.approx(hi)
    assert f["std"] == pytest.approx(x.std(ddof=1)) and f["diverged"] == 0
    g = s.loc["gmp"]
    assert g["n"] == 1 and g["mean"] == 92.5 and math.isnan(g["ci_low"]) and g["diverged"] == 2
    r = s.loc["random"]  # all diverged: still listed
    assert r["n"] == 0 and math.isnan(r["mean"]) and r["diverged"] == 1
    assert list(summarize(df).columns[:5]) == list(SETTING_KEYS)


def test_summarize_ignores_row_order():
    rng = np.random.default_rng(2)
    df = frame([(m, s, float(rng.normal(93, 1))) for m in ("fggp", "gmp") for s in range(4)])
    a = summarize(df)
    b = summarize(df.sample(frac=1, random_state=7).reset_index(drop=True))
    pd.testing.assert_frame_equal(a, b)


def test_summarize_mean_is_the_same_bits_whatever_the_other_rows():
    """Twelve two-decimal accuracies (a committed cpu cell) whose exact mean is 77.895, a rounding tie: pandas' grouped
    mean returned 77.89500000000001 or 77.895 depending on the other groups of the frame, so a table printed 77.90
    or 77.89 for the same runs. The exactly rounded sum 934.74 / 12 is the double nearest 77.895, which prints as
    77.89, in every row order and beside any other groups."""
    x = [77.72, 77.43, 77.66, 78.27, 78.25, 77.57, 77.74, 78.39, 77.74, 78.18, 78.18, 77.61]
    rng = np.random.default_rng(3)
    seen_mean, seen_std = set(), set()
    for extra in range(0, 30, 3):
        rows = [("gf-annealed", s, v) for s, v in enumerate(x)]
        rows += [(f"m{i}", s, float(rng.normal(78, 1))) for i in range(extra) for s in range(int(rng.integers(1, 6)))]
        df = frame(rows).sample(frac=1, random_state=int(rng.integers(1000))).reset_index(drop=True)
        r = summarize(df).set_index("method").loc["gf-annealed"]
        seen_mean.add(float(r["mean"]))
        seen_std.add(float(r["std"]))
    assert seen_mean == {77.895} and f"{seen_mean.pop():.2f}" == "77.89"
    assert len(seen_std) == 1 and seen_std.pop() == pytest.approx(float(np.std(x, ddof=1)), rel=1e-12)


# ---------------------------------------------------------------------------------------------- Holm


def test_holm_hand_case_with_nan():
    out = holm([0.01, np.nan, 0.04, 0.03])
    np.testing.assert_allclose(out, [0.03, np.nan, 0.06, 0.06])


def test_holm_hand_cases():
    # m = 3: sorted 0.01*3 = 0.03, 0.02*2 = 0.04, 0.5*1 = 0.5
    np.testing.assert_allclose(holm([0.5, 0.01, 0.02]), [0.5, 0.03, 0.04])
    # monotone: 0.04*2 = 0.08 < previous 0.03*3? no: sorted 0.03*3=0.09, 0.04*2=0.08 -> max 0.09
    np.testing.assert_allclose(holm([0.04, 0.03, 0.9]), [0.09, 0.09, 0.9])
    # capped at 1
    np.testing.assert_allclose(holm([0.6, 0.7]), [1.0, 1.0])
    assert np.isnan(holm([np.nan, np.nan])).all()
    assert holm([]).shape == (0,)


def test_holm_matches_definition_on_random_data():
    rng = np.random.default_rng(3)
    for _ in range(20):
        p = rng.uniform(0, 0.2, rng.integers(1, 12))
        m = p.size
        order = np.argsort(p)
        expect = np.empty(m)
        running = 0.0
        for i, j in enumerate(order):
            running = max(running, min(1.0, (m - i) * p[j]))
            expect[j] = running
        np.testing.assert_allclose(holm(p), expect)
        # NaNs do not poison: inserting NaNs leaves the others unchanged
        with_nan = np.insert(p, [0, m // 2], np.nan)
        out = holm(with_nan)
        np.testing.assert_allclose(out[~np.isnan(with_nan)], expect)
        assert np.isnan(out[np.isnan(with_nan)]).all()


def test_holm_keeps_series_index():
    s = pd.Series([0.01, 0.04], index=["a", "b"])
    out = holm(s)
    assert list(out.index) == ["a", "b"] and out["a"] == pytest.approx(0.02)


# ---------------------------------------------------------------------------------------------- paired tests


def test_paired_test_matches_scipy():
    rng = np.random.default_rng(4)
    for n in (3, 5, 8, 20):
        x = rng.normal(93, 0.5, n)
        y = x - rng.normal(0.3, 0.4, n)
        r = paired_test(x, y)
        assert r.p_ttest == pytest.approx(st.ttest_rel(x, y).pvalue, rel=1e-10)
        assert r.p_wilcoxon == pytest.approx(st.wilcoxon(x - y, method="exact").pvalue, rel=1e-10)
        assert r.wilcoxon_method == "exact"
        d = x - y
        lo, hi = st.t.interval(0.95, n - 1, loc=d.mean(), scale=st.sem(d))
        assert (r.ci_low, r.ci_high) == (pytest.approx(lo), pytest.approx(hi))
        assert r.effect_size == pytest.approx(d.mean() / d.std(ddof=1))
        assert r.n_pairs == n and r.mean_diff == pytest.approx(d.mean())


def test_wilcoxon_exact_hand_case():
    # d = 1, 2, 3 (all positive, no ties): W- = 0; exact two-sided p = 2 * (1/8) = 0.25
    r = paired_test([2.0, 4.0, 6.0], [1.0, 2.0, 3.0])
    assert r.p_wilcoxon == pytest.approx(0.25) and r.wilcoxon_method == "exact"
    # 5 positive differences: p = 2 / 32 = 0.0625, the smallest possible with 5 seeds
    r5 = paired_test(np.arange(1, 6) + 0.5, np.zeros(5))
    assert r5.p_wilcoxon == pytest.approx(0.0625)


def test_wilcoxon_with_ties_uses_exhaustive_permutation():
    d = np.array([1.0, 1.0, 2.0, -0.5, 3.0])
    r = paired_test(d, np.zeros(5))
    assert r.wilcoxon_method == "exact-permutation"
    # hand enumeration of all 2^5 sign patterns of the signed-rank statistic
    ranks = st.rankdata(np.abs(d))
    obs = ranks[d > 0].sum()
    stats_all = [sum(ranks[i] for i in range(5) if (mask >> i) & 1) for mask in range(32)]
    mean = ranks.sum() / 2
    p = np.mean([abs(s - mean) >= abs(obs - mean) - 1e-12 for s in stats_all])
    assert r.p_wilcoxon == pytest.approx(p)


def test_signed_rank_permutation_matches_scipy_permutation():
    rng = np.random.default_rng(9)
    for n in (3, 5, 8):
        for _ in range(3):
            d = rng.integers(-3, 4, n).astype(float) / 10  # ties and zeros
            if not np.any(d):
                continue
            sp = st.wilcoxon(d, zero_method="wilcox", method=st.PermutationMethod()).pvalue
            assert signed_rank_permutation_p(d) == pytest.approx(sp), d


def test_undefined_tests_are_nan_not_errors():
    zero = paired_test([93.0, 92.0, 91.0], [93.0, 92.0, 91.0])  # all differences zero
    assert zero.n_pairs == 3 and zero.mean_diff == 0.0
    assert math.isnan(zero.p_wilcoxon) and zero.wilcoxon_method == "undefined"
    assert math.isnan(zero.p_ttest) and math.isnan(zero.effect_size)
    one = paired_test([93.0], [92.0])
    assert one.n_pairs == 1 and one.mean_diff == 1.0
    assert math.isnan(one.p_ttest) and math.isnan(one.p_wilcoxon) and math.isnan(one.ci_low)
    none = paired_test([], [])
    assert none.n_pairs == 0 and math.isnan(none.mean_diff)


def test_welch_matches_scipy():
    rng = np.random.default_rng(5)
    for _ in range(5):
        a, b = rng.normal(93, 0.5, 4), rng.normal(92.7, 1.2, 6)
        assert welch_test(a, b) == pytest.approx(st.ttest_ind(a, b, equal_var=False).pvalue, rel=1e-10)
        assert welch_test(a, b, "greater") == pytest.approx(
            st.ttest_ind(a, b, equal_var=False, alternative="greater").pvalue, rel=1e-10)
    assert math.isnan(welch_test([1.0], [2.0, 3.0]))


# ---------------------------------------------------------------------------------------------- compare


def _two_setting_frame(rng):
    rows = []
    for tgt in (0.9, 0.95):
        for s in range(5):
            base = rng.normal(93, 0.5)
            rows.append(("fggp", s, base + 0.4 + rng.normal(0, 0.1), "completed", {"target_sparsity": tgt}))
            rows.append(("gmp", s, base + rng.normal(0, 0.1), "completed", {"target_sparsity": tgt}))
    return frame(rows)


def test_compare_matches_scipy_per_setting():
    rng = np.random.default_rng(6)
    df = _two_setting_frame(rng)
    c = compare(df, "fggp", "gmp")
    assert list(c["target_sparsity"]) == [0.9, 0.95]
    for _, r in c.iterrows():
        sub = df[df["target_sparsity"] == r["target_sparsity"]]
        x = sub[sub["method"] == "fggp"].sort_values("seed")["test_acc"].to_numpy()
        y = sub[sub["method"] == "gmp"].sort_values("seed")["test_acc"].to_numpy()
        assert r["n_pairs"] == 5
        assert r["p_ttest"] == pytest.approx(st.ttest_rel(x, y).pvalue)
        assert r["p_wilcoxon"] == pytest.approx(st.wilcoxon(x, y).pvalue)
        assert r["p_welch"] == pytest.approx(st.ttest_ind(x, y, equal_var=False).pvalue)
        d = x - y
        assert r["effect_size"] == pytest.approx(d.mean() / d.std(ddof=1))
        assert r["mean_diff"] == pytest.approx(d.mean())
    np.testing.assert_allclose(c["p_holm"], holm(c["p_ttest"].to_numpy()))


def test_compare_pairs_by_seed_not_row_order():
    # fggp is exactly gmp + 1 on the same seed; rows of gmp are reversed and seed 9 exists only for fggp,
    # seed 7 only for gmp. Row-order pairing would give a different (wrong) answer.
    gmp = {0: 90.0, 1: 92.0, 2: 95.0, 3: 91.0, 7: 99.0}
    fggp = {0: 91.0, 1: 93.0, 2: 96.0, 3: 92.2, 9: 50.0}
    rows = [("fggp", s, v) for s, v in fggp.items()] + [("gmp", s, v) for s, v in reversed(list(gmp.items()))]
    c = compare(frame(rows), "fggp", "gmp").iloc[0]
    assert c["n_pairs"] == 4 and c["n_method"] == 5 and c["n_baseline"] == 5
    assert c["mean_diff"] == pytest.approx((1 + 1 + 1 + 1.2) / 4)
    x = np.array([91.0, 93.0, 96.0, 92.2])
    y = np.array([90.0, 92.0, 95.0, 91.0])
    assert c["p_ttest"] == pytest.approx(st.ttest_rel(x, y).pvalue)
    assert c["mean_method"] == pytest.approx(np.mean(list(fggp.values())))


def test_compare_shuffled_rows_identical():
    rng = np.random.default_rng(8)
    df = _two_setting_frame(rng)
    a = compare(df, "fggp", "gmp")
    b = compare(df.sample(frac=1, random_state=3).reset_index(drop=True), "fggp", "gmp")
    pd.testing.assert_frame_equal(a, b)


def test_compare_holm_nan_does_not_poison():
    rows = [("fggp", s, 93.0 + 0.1 * s + 0.5, "completed", {"target_sparsity": 0.9}) for s in range(4)]
    rows += [("gmp", s, 93.0 + 0.1 * s + (0.05 if s % 2 else -0.05), "completed", {"target_sparsity": 0.9})
             for s in range(4)]
    rows += [("fggp", 0, 90.0, "completed", {"target_sparsity": 0.98}), ("gmp", 0, 89.0, "completed",
                                                                         {"target_sparsity": 0.98})]
    c = compare(frame(rows), "fggp", "gmp").set_index("target_sparsity")
    assert math.isnan(c.loc[0.98, "p_ttest"]) and math.isnan(c.loc[0.98, "p_holm"])
    assert c.loc[0.9, "p_holm"] == pytest.approx(c.loc[0.9, "p_ttest"])  # m = 1


def test_compare_against_dense_broadcasts_reference_and_counts_diverged():
    rows = [("dense", s, 94.0 + 0.1 * s) for s in range(3)]
    rows += [("fggp", s, 93.5 + 0.1 * s + 0.05 * (s == 1), "completed", {"target_sparsity": t})
             for t in (0.9, 0.98) for s in range(3)]
    rows += [("fggp", 3, np.nan, "diverged", {"target_sparsity": 0.98})]
    c = compare(frame(rows), "fggp", "dense")
    assert list(c["target_sparsity"]) == [0.9, 0.98]
    assert (c["n_baseline"] == 3).all() and (c["n_pairs"] == 3).all()
    assert c["mean_diff"].iloc[0] == pytest.approx((-0.5 - 0.45 - 0.5) / 3)
    assert list(c["diverged_method"]) == [0, 1] and list(c["diverged_baseline"]) == [0, 0]


def test_compare_rejects_unknown_method_and_duplicates():
    df = frame([("fggp", 0, 93.0), ("gmp", 0, 92.0)])
    with pytest.raises(ValueError, match="no runs"):
        compare(df, "fggp", "granet")
    dup = frame([("fggp", 0, 93.0), ("fggp", 0, 93.5), ("gmp", 0, 92.0)])
    with pytest.raises(ValueError, match="unique"):
        compare(dup, "fggp", "gmp")

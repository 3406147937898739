"""Vectorised, seeded, stratified bootstrap and the probability of improvement."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analysis import aggregate_scores, bootstrap_ci, probability_of_improvement


def naive_bootstrap(x, n_resamples, seed, statistic=np.mean, confidence=0.95):
    """The reference: one Python iteration per resample."""
    x = np.sort(np.asarray(x, float))
    rng = np.random.default_rng(seed)
    dist = np.array([statistic(x[rng.integers(0, x.size, x.size)]) for _ in range(n_resamples)])
    return np.quantile(dist, [(1 - confidence) / 2, (1 + confidence) / 2])


def test_matches_naive_loop_and_is_seeded():
    x = np.random.default_rng(0).normal(93, 0.5, 12)
    r = bootstrap_ci(x, n_resamples=4000, seed=11)
    lo, hi = naive_bootstrap(x, 4000, 11)
    width = hi - lo
    assert abs(r.ci_low - lo) < 0.05 * width and abs(r.ci_high - hi) < 0.05 * width
    assert r.estimate == pytest.approx(x.mean())
    again = bootstrap_ci(x, n_resamples=4000, seed=11)
    assert (again.ci_low, again.ci_high) == (r.ci_low, r.ci_high)
    other = bootstrap_ci(x, n_resamples=4000, seed=12)
    assert (other.ci_low, other.ci_high) != (r.ci_low, r.ci_high)
    assert r.distribution.shape == (4000,)


def test_bootstrap_sd_of_mean_is_plugin_sem():
    # The bootstrap distribution of the mean has sd = std(x, ddof=0) / sqrt(n).
    x = np.random.default_rng(1).normal(0, 1, 40)
    r = bootstrap_ci(x, n_resamples=20000, seed=0)
    assert r.distribution.std() == pytest.approx(x.std() / math.sqrt(x.size), rel=0.03)


def test_order_of_values_does_not_matter():
    x = np.random.default_rng(2).normal(0, 1, 9)
    labels = np.repeat(["s1", "s2", "s3"], 3)
    perm = np.random.default_rng(3).permutation(9)
    a = bootstrap_ci(x, strata=labels, n_resamples=500, seed=4)
    b = bootstrap_ci(x[perm], strata=labels[perm], n_resamples=500, seed=4)
    assert (a.estimate, a.ci_low, a.ci_high) == (b.estimate, b.ci_low, b.ci_high)


def test_stratified_resamples_within_strata():
    # Constant within each setting: resampling seeds within settings cannot move the aggregate.
    x = np.array([1.0, 1.0, 1.0, 5.0, 5.0])
    labels = np.array(["a", "a", "a", "b", "b"])
    r = bootstrap_ci(x, strata=labels, n_resamples=1000, seed=0)
    assert r.estimate == 3.0  # mean of setting means, not the pooled mean 2.6
    assert r.ci_low == 3.0 and r.ci_high == 3.0
    pooled = bootstrap_ci(x, n_resamples=1000, seed=0)
    assert pooled.estimate == pytest.approx(2.6) and pooled.ci_high - pooled.ci_low > 1.0


def test_other_statistic_and_edge_cases():
    x = np.array([1.0, 2.0, 3.0, 100.0])
    r = bootstrap_ci(x, np.median, n_resamples=2000, seed=0)
    assert r.estimate == 2.5 and r.ci_low >= 1.0 and r.ci_high <= 100.0
    e = bootstrap_ci([], n_resamples=10)
    assert math.isnan(e.estimate)
    with pytest.raises(ValueError):
        bootstrap_ci(x, strata=["a"], n_resamples=10)


def runs(values: dict) -> pd.DataFrame:
    """{(target_sparsity, method): [acc per seed]} -> runs frame."""
    rows = []
    for (t, m), accs in values.items():
        for s, a in enumerate(accs):
            rows.append(dict(dataset="c", arch="v", method=m, target_sparsity=t, initial_density=1.0, seed=s,
                             protocol="p", status="completed", run_id=f"{t}{m}{s}", test_acc=a,
                             best_test_acc_after_pruning=np.nan, sparsity=t, path="x"))
    return pd.DataFrame(rows)


def test_probability_of_improvement_hand_case():
    # setting 0.9: a = [1, 2], b = [1.5, 1]: pairs (1,1.5)=0, (1,1)=1/2, (2,1.5)=1, (2,1)=1 -> 2.5/4 = 0.625
    # setting 0.95: a = [3], b = [3]: a tie -> 0.5.   Average: 0.5625
    df = runs({(0.9, "a"): [1.0, 2.0], (0.9, "b"): [1.5, 1.0], (0.95, "a"): [3.0], (0.95, "b"): [3.0],
               (0.98, "a"): [4.0]})  # 0.98: no b -> not counted
    r = probability_of_improvement(df, "a", "b", n_resamples=2000, seed=0)
    assert r.n_settings == 2
    assert list(r.per_setting["poi"]) == [0.625, 0.5]
    assert r.estimate == pytest.approx(0.5625)
    assert 0.25 <= r.ci_low <= r.estimate <= r.ci_high <= 0.75
    rev = probability_of_improvement(df, "b", "a", n_resamples=200, seed=0)
    assert rev.estimate == pytest.approx(1 - 0.5625)  # settings 0.9 (0.375) and 0.95 (0.5)
    low = probability_of_improvement(df, "a", "b", higher_is_better=False, n_resamples=200)
    assert low.estimate == pytest.approx(1 - 0.5625)


def test_probability_of_improvement_dominance_and_vs_dense():
    df = runs({(0.9, "a"): [5.0, 6.0, 7.0], (0.9, "b"): [1.0, 2.0, 3.0], (0.0, "dense"): [6.5, 6.5]})
    r = probability_of_improvement(df, "a", "b", n_resamples=1000, seed=1)
    assert (r.estimate, r.ci_low, r.ci_high) == (1.0, 1.0, 1.0)
    d = probability_of_improvement(df, "a", "dense", n_resamples=1000, seed=1)
    assert d.estimate == pytest.approx(1 / 3) and d.n_settings == 1


def test_aggregate_scores_is_mean_of_setting_means():
    df = runs({(0.9, "a"): [90.0, 92.0], (0.95, "a"): [80.0, 80.0, 83.0],
               (0.9, "b"): [91.0], (0.95, "b"): [79.0, 81.0], (0.98, "a"): [70.0]})  # 0.98 lacks b
    agg = aggregate_scores(df, n_resamples=500).set_index("method")
    assert agg.loc["a", "estimate"] == pytest.approx((91.0 + 81.0) / 2)
    assert agg.loc["b", "estimate"] == pytest.approx((91.0 + 80.0) / 2)
    assert (agg["n_settings"] == 2).all()
    assert agg.loc["a", "ci_low"] <= agg.loc["a", "estimate"] <= agg.loc["a", "ci_high"]


def test_aggregate_resamples_whole_seeds():
    # Two settings whose runs are equal seed by seed (one seed drives both): resampling whole seeds keeps them
    # together, so the mean over settings varies as one setting's seed-mean does; resampling seeds within each
    # setting independently would average two independent resamples and shrink the spread by sqrt(2).
    vals = [88.0, 90.0, 91.0, 93.0, 95.0, 89.0, 92.0, 94.0]
    df = runs({(0.9, "a"): vals, (0.95, "a"): vals, (0.9, "b"): [v - 1 for v in vals],
               (0.95, "b"): [v - 1 for v in vals]})
    agg = aggregate_scores(df, n_resamples=20000, seed=1).set_index("method")
    single = bootstrap_ci(vals, n_resamples=20000, seed=1)
    width = agg.loc["a", "ci_high"] - agg.loc["a", "ci_low"]
    assert width == pytest.approx(single.ci_high - single.ci_low, rel=0.06)
    strat = bootstrap_ci(vals * 2, strata=["s1"] * 8 + ["s2"] * 8, n_resamples=20000, seed=1)
    assert (strat.ci_high - strat.ci_low) == pytest.approx(width / math.sqrt(2), rel=0.08)


def test_pooled_effects_use_the_seed_as_the_unit():
    from scipy import stats as st

    from analysis import pooled_effects

    # per seed: mean over the two settings of (a - b) = [1.5, 0.5, 1.0, 2.0]
    df = runs({(0.9, "a"): [91.0, 90.0, 92.0, 93.0], (0.9, "b"): [90.0, 90.0, 91.0, 91.0],
               (0.95, "a"): [85.0, 84.0, 85.0, 86.0], (0.95, "b"): [83.0, 83.0, 84.0, 84.0]})
    p = pooled_effects(df, "a", ["b"], n_resamples=2000).iloc[0]
    per_seed = np.array([1.5, 0.5, 1.0, 2.0])
    assert p["n_settings"] == 2 and p["n_seeds"] == 4 and p["seeds_dropped"] == 0
    assert p["mean_diff"] == pytest.approx(1.25)
    lo, hi = st.t.interval(0.95, 3, loc=per_seed.mean(), scale=st.sem(per_seed))
    assert (p["ci_low"], p["ci_high"]) == (pytest.approx(lo), pytest.approx(hi))
    assert p["p_ttest"] == pytest.approx(st.ttest_1samp(per_seed, 0).pvalue)
    assert 0.5 <= p["boot_low"] <= p["boot_high"] <= 2.0
    # a seed missing in one setting is dropped from every setting
    short = df[~((df["target_sparsity"] == 0.95) & (df["method"] == "b") & (df["seed"] == 3))]
    q = pooled_effects(short, "a", ["b"], n_resamples=200).iloc[0]
    assert q["n_seeds"] == 3 and q["seeds_dropped"] == 1 and q["mean_diff"] == pytest.approx(1.0)

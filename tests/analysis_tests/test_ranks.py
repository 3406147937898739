"""Average ranks, Friedman / Iman-Davenport, Nemenyi CD and CD-diagram cliques: hand cases,
Demšar (2006) and scipy."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from analysis import average_ranks, cd_cliques, friedman, friedman_chi2_from_ranks, iman_davenport, nemenyi_cd

# Demšar 2006, Table 6: AUC of four C4.5 variants on 14 data sets. The table prints three decimals;
# in the "voting" row C4.5+cf and C4.5+m+cf both read 0.975 but are ranked 2 and 3 (the unrounded
# values differ), so C4.5+cf gets 0.9755 here to reproduce the published ranks.
DEMSAR_NAMES = ["C4.5", "C4.5+m", "C4.5+cf", "C4.5+m+cf"]
DEMSAR_AUC = np.array([
    [0.763, 0.768, 0.771, 0.798], [0.599, 0.591, 0.590, 0.569], [0.954, 0.971, 0.968, 0.967],
    [0.628, 0.661, 0.654, 0.657], [0.882, 0.888, 0.886, 0.898], [0.936, 0.931, 0.916, 0.931],
    [0.661, 0.668, 0.609, 0.685], [0.583, 0.583, 0.563, 0.625], [0.775, 0.838, 0.866, 0.875],
    [1.000, 1.000, 1.000, 1.000], [0.940, 0.962, 0.965, 0.962], [0.619, 0.666, 0.614, 0.669],
    [0.972, 0.981, 0.9755, 0.975], [0.957, 0.978, 0.946, 0.970],
])


def table_frame(values: np.ndarray, methods, seeds_per_cell=1, rng=None, extra_rows=()):
    """A runs frame whose setting i (target_sparsity varies) has method j with seed-mean values[i, j]."""
    rows = []
    for i in range(values.shape[0]):
        for j, m in enumerate(methods):
            if np.isnan(values[i, j]):
                continue
            offs = [0.0] if seeds_per_cell == 1 else [-0.01, 0.01] + [0.0] * (seeds_per_cell - 2)
            for s, o in enumerate(offs):
                rows.append(dict(dataset="d", arch="a", method=m, target_sparsity=round(0.5 + i / 100, 4),
                                 initial_density=1.0, seed=s, protocol="p", status="completed",
                                 run_id=f"{i}-{m}-{s}", test_acc=float(values[i, j]) + o,
                                 best_test_acc_after_pruning=np.nan, sparsity=0.5, path="x"))
    rows += list(extra_rows)
    return pd.DataFrame(rows)


def test_average_ranks_hand_case_with_ties():
    #            a     b     c     d
    v = np.array([[90.0, 91.0, 91.0, 89.0],   # b, c tie for 1-2 -> 1.5; a 3; d 4
                  [92.0, 92.0, 92.0, 93.0],   # d 1; a, b, c tie for 2-4 -> 3
                  [95.0, 94.0, 93.0, 92.0],   # a 1, b 2, c 3, d 4
                  [80.0, 81.0, 82.0, np.nan]])  # d missing: excluded
    dense = dict(dataset="d", arch="a", method="dense", target_sparsity=0.0, initial_density=1.0, seed=0,
                 protocol="p", status="completed", run_id="dense", test_acc=99.0,
                 best_test_acc_after_pruning=np.nan, sparsity=0.0, path="x")
    df = table_frame(v, list("abcd"), seeds_per_cell=2, extra_rows=[dense])
    r = average_ranks(df)
    expected = {"a": 7 / 3, "b": 6.5 / 3, "c": 7.5 / 3, "d": 3.0}
    assert list(r.ranks.index) == ["b", "a", "c", "d"]  # sorted best first
    for m, e in expected.items():
        assert r.ranks[m] == pytest.approx(e)
    np.testing.assert_allclose(r.per_setting.to_numpy(), [[3, 1.5, 1.5, 4], [3, 3, 3, 1], [1, 2, 3, 4]])
    assert r.n_settings == 3 and len(r.settings_excluded) == 1
    excluded = r.settings_excluded[0]
    assert excluded[2] == pytest.approx(0.53) and r.missing[excluded] == ["d"]
    assert "dense" not in r.ranks.index
    # lower is better reverses the ranking
    low = average_ranks(df, higher_is_better=False)
    for m, e in expected.items():
        assert low.ranks[m] == pytest.approx(5 - e)


def test_average_ranks_methods_subset_and_errors():
    v = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
    df = table_frame(v, ["x", "y", "z"])
    r = average_ranks(df, methods=["x", "y"])
    assert r.ranks.to_dict() == {"x": 1.5, "y": 1.5}
    with pytest.raises(ValueError, match="dense"):
        average_ranks(df, methods=["x", "dense"])
    with pytest.raises(ValueError, match="without runs"):
        average_ranks(df, methods=["x", "granet"])


def test_average_ranks_ignores_row_order():
    rng = np.random.default_rng(0)
    df = table_frame(rng.normal(90, 1, (6, 4)), list("abcd"), seeds_per_cell=3)
    a = average_ranks(df)
    b = average_ranks(df.sample(frac=1, random_state=1).reset_index(drop=True))
    pd.testing.assert_series_equal(a.ranks, b.ranks)
    pd.testing.assert_frame_equal(a.per_setting, b.per_setting)


def test_demsar_2006_average_ranks_and_friedman():
    df = table_frame(DEMSAR_AUC, DEMSAR_NAMES)
    r = average_ranks(df)
    got = {m: round(r.ranks[m], 3) for m in DEMSAR_NAMES}
    assert got == {"C4.5": 3.143, "C4.5+m": 2.0, "C4.5+cf": 2.893, "C4.5+m+cf": 1.964}
    # Demšar's worked numbers use the printed ranks and no tie correction.
    chi2 = friedman_chi2_from_ranks([3.143, 2.000, 2.893, 1.964], 14)
    assert chi2 == pytest.approx(9.28, abs=0.005)
    idr = iman_davenport(chi2, 4, 14)
    assert idr.statistic == pytest.approx(3.69, abs=0.005)
    assert (idr.df_num, idr.df_den) == (3, 39)
    assert idr.pvalue == pytest.approx(st.f.sf(idr.statistic, 3, 39))
    # friedman() itself is scipy's (tie-corrected) statistic on the same table.
    fr = friedman(df)
    sp = st.friedmanchisquare(*DEMSAR_AUC.T)
    assert fr.statistic == pytest.approx(sp.statistic) and fr.pvalue == pytest.approx(sp.pvalue)
    assert fr.statistic > chi2  # the tie correction divides by c < 1
    assert fr.k == 4 and fr.n_blocks == 14
    assert fr.iman_davenport == pytest.approx(13 * fr.statistic / (14 * 3 - fr.statistic))
    # CD for k = 4, N = 14 (Demšar: 2.569 * sqrt(20 / 84) = 1.25); no pair differs by CD or more
    cd = nemenyi_cd(4, 14)
    assert cd == pytest.approx(1.25, abs=0.005)
    assert cd_cliques(r.ranks, cd) == [tuple(r.ranks.index)]


def test_friedman_matches_scipy_on_random_data():
    rng = np.random.default_rng(2)
    for k, n in ((3, 5), (5, 12), (7, 12)):
        v = rng.normal(90, 1, (n, k))
        fr = friedman(table_frame(v, [f"m{j}" for j in range(k)]))
        sp = st.friedmanchisquare(*v.T)
        assert fr.statistic == pytest.approx(sp.statistic) and fr.pvalue == pytest.approx(sp.pvalue)
        # no ties: equals the textbook formula on average ranks
        avg = st.rankdata(-v, axis=1).mean(axis=0)
        assert fr.statistic == pytest.approx(friedman_chi2_from_ranks(avg, n))


def test_friedman_hand_case_and_perfect_agreement():
    # Three methods in the same order on four settings: ranks 1, 2, 3;
    # chi2 = 12*4/(3*4) * (1 + 4 + 9 - 3*16/4) = 8, p = exp(-4).
    v = np.array([[0.9, 0.5, 0.1], [0.8, 0.5, 0.2], [0.7, 0.4, 0.1], [0.9, 0.5, 0.3]])
    fr = friedman(table_frame(v, ["A", "B", "C"]))
    assert fr.statistic == pytest.approx(8.0) and fr.pvalue == pytest.approx(math.exp(-4))
    assert fr.iman_davenport == math.inf and fr.iman_davenport_pvalue == 0.0  # chi2 = N(k-1)
    # two methods: scipy's Friedman needs three, so NaN rather than an error
    two = friedman(table_frame(v[:, :2], ["A", "B"]))
    assert math.isnan(two.statistic) and math.isnan(two.iman_davenport)


def test_nemenyi_cd_k5_n12():
    # Demšar's q_0.05 for k = 5 is 2.728: CD = 2.728 * sqrt(5*6 / (6*12)) = 1.761
    assert round(nemenyi_cd(5, 12), 3) == 1.761
    assert nemenyi_cd(5, 12) == pytest.approx(2.728 * math.sqrt(30 / 72), abs=1e-3)


@pytest.mark.parametrize("k,q05,q10", [(2, 1.960, 1.645), (3, 2.343, 2.052), (4, 2.569, 2.291),
                                       (6, 2.850, 2.589), (8, 3.031, 2.780), (10, 3.164, 2.920)])
def test_nemenyi_q_against_demsar_table(k, q05, q10):
    scale = math.sqrt(k * (k + 1) / (6.0 * 10))
    # Demšar's table is printed to 3 decimals (q_0.05 for k = 3 is 2.3437 but printed 2.343)
    assert nemenyi_cd(k, 10, 0.05) / scale == pytest.approx(q05, abs=1e-3)
    assert nemenyi_cd(k, 10, 0.10) / scale == pytest.approx(q10, abs=1e-3)


def test_nemenyi_rejects_bad_input():
    with pytest.raises(ValueError):
        nemenyi_cd(1, 10)
    with pytest.raises(ValueError):
        nemenyi_cd(3, 0)


# ---------------------------------------------------------------------------------------------- CD cliques


def test_cliques_hand_cases():
    assert cd_cliques({"a": 1.0, "b": 1.5, "c": 2.2, "d": 3.5}, 1.0) == [("a", "b"), ("b", "c")]
    # The crossbar bug: sub-runs of one clique (b-c-d, a-b, ...) must not become extra bars.
    assert cd_cliques({"a": 1.0, "b": 1.2, "c": 1.4, "d": 1.6, "e": 3.0}, 1.0) == [("a", "b", "c", "d")]
    # b-c lies inside a-b-c: drawn once, as a-b-c; c-d is its own clique.
    assert cd_cliques({"d": 2.6, "c": 1.9, "b": 1.5, "a": 1.0}, 1.0) == [("a", "b", "c"), ("c", "d")]
    # all within CD: one bar; none within: no bar
    assert cd_cliques({"a": 1.0, "b": 1.1, "c": 1.2}, 5.0) == [("a", "b", "c")]
    assert cd_cliques({"a": 1.0, "b": 2.5, "c": 4.0}, 1.0) == []
    # a difference of exactly CD is significant (Demšar: "at least the critical difference")
    assert cd_cliques({"a": 1.0, "b": 2.0}, 1.0) == []
    # tied ranks: ordered by name
    assert cd_cliques({"z": 2.0, "y": 2.0}, 0.5) == [("y", "z")]
    assert cd_cliques(pd.Series({"a": 1.0, "b": 1.3}), 0.5) == [("a", "b")]


def test_cliques_are_exactly_the_maximal_cliques_brute_force():
    rng = np.random.default_rng(5)
    for _ in range(200):
        k = int(rng.integers(2, 8))
        names = [f"m{i}" for i in range(k)]
        ranks = dict(zip(names, np.round(rng.uniform(1, k, k), 1)))
        cd = float(rng.uniform(0.3, 2.5))
        got = {frozenset(c) for c in cd_cliques(ranks, cd)}
        cliques = [frozenset(s) for r in range(2, k + 1) for s in itertools.combinations(names, r)
                   if max(ranks[m] for m in s) - min(ranks[m] for m in s) < cd]
        maximal = {c for c in cliques if not any(c < o for o in cliques)}
        assert got == maximal
        for a, b in itertools.combinations(got, 2):
            assert not (a <= b or b <= a)

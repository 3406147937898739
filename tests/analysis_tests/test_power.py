"""Power of the paired t-test, minimum detectable differences and seeds needed: published G*Power values
and a Monte Carlo check."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as st

from analysis.power import min_detectable_difference, sd_upper_bound, seeds_needed, t_power


@pytest.mark.parametrize("dz,n,power", [(0.5, 34, 0.8078), (0.8, 15, 0.8213), (1.0, 10, 0.8031)])
def test_gpower_paired_two_sided(dz, n, power):
    # G*Power 3.1, "Means: difference from constant (one sample case)" / matched pairs, two tails, alpha 0.05,
    # power 0.80: total sample size and actual power as printed.
    assert seeds_needed(dz, 1.0) == n
    assert t_power(dz, 1.0, n) == pytest.approx(power, abs=5e-5)
    assert t_power(dz, 1.0, n - 1) < 0.8


def test_gpower_one_sided():
    # one tail, dz = 0.5, alpha 0.05, power 0.80: N = 27, actual power 0.8118
    assert seeds_needed(0.5, 1.0, alternative="greater") == 27
    assert t_power(0.5, 1.0, 27, alternative="greater") == pytest.approx(0.8118, abs=5e-5)


def test_power_matches_monte_carlo():
    rng = np.random.default_rng(0)
    R, n, sd, eff, alpha = 20000, 6, 1.3, 1.5, 0.05 / 6
    d = rng.normal(eff, sd, (R, n))
    t = d.mean(axis=1) / (d.std(axis=1, ddof=1) / math.sqrt(n))
    mc = np.mean(np.abs(t) > st.t.ppf(1 - alpha / 2, n - 1))
    se = math.sqrt(mc * (1 - mc) / R)
    assert abs(t_power(eff, sd, n, alpha) - mc) < 4 * se


def test_mdd_is_the_inverse_of_power():
    for sd, n, alpha, alt in ((2.7, 5, 0.05 / 6, "two-sided"), (0.5, 12, 0.05, "two-sided"), (1.0, 5, 0.01, "greater")):
        m = min_detectable_difference(sd, n, alpha, 0.8, alt)
        assert t_power(m, sd, n, alpha, alt) == pytest.approx(0.8, abs=1e-6)
    # scales with sd
    assert min_detectable_difference(2.0, 8) == pytest.approx(2 * min_detectable_difference(1.0, 8))


def test_undefined_inputs_are_nan():
    assert math.isnan(min_detectable_difference(1.0, 1))
    assert math.isnan(min_detectable_difference(float("nan"), 5))
    assert math.isnan(seeds_needed(0.5, 0.0))
    assert math.isnan(t_power(0.5, 1.0, 1))
    with pytest.raises(ValueError):
        t_power(0.5, 1.0, 5, alpha=1.5)


def test_sd_upper_bound_by_hand():
    # chi-square table: chi2_{0.20, 4} = 1.6488 (lower 20 % point, 4 df) -> factor sqrt(4 / 1.6488) = 1.5576;
    # chi2_{0.05, 9} = 3.3251 -> sqrt(9 / 3.3251) = 1.6452
    assert sd_upper_bound(1.0, 5, 0.8) == pytest.approx(1.5576, abs=1e-4)
    assert sd_upper_bound(2.0, 10, 0.95) == pytest.approx(2 * 1.6452, abs=2e-4)
    assert math.isnan(sd_upper_bound(1.0, 1)) and math.isnan(sd_upper_bound(float("nan"), 5))
    with pytest.raises(ValueError):
        sd_upper_bound(1.0, 5, 1.0)


def test_planning_from_the_upper_bound_reaches_the_power_at_least_80_percent_of_the_time():
    """Simulation of the planning rule: true sd 1, a 0.5-point effect, level 0.05/3, 80 % power; the plan is
    made from a pilot of 5 seed pairs. A plan reaches the power iff it asks for at least the seeds the true sd
    needs. From the pilot's sd itself that happens about P(chi2_4 >= 4) = 0.41 of the time (a little more for
    the integer steps); from its 80 % upper bound, at least 0.80 of the time (P(bound >= true sd) = 0.80)."""
    rng = np.random.default_rng(1)
    lev, effect, R = 0.05 / 3, 0.5, 1000
    n_true = seeds_needed(effect, 1.0, lev)
    sds = rng.normal(0.0, 1.0, (R, 5)).std(axis=1, ddof=1)
    point = np.mean([seeds_needed(effect, s, lev) >= n_true for s in sds])
    upper = np.mean([seeds_needed(effect, sd_upper_bound(s, 5, 0.8), lev) >= n_true for s in sds])
    se = math.sqrt(0.8 * 0.2 / R)  # 0.0126
    assert 0.35 < point < 0.55
    assert 0.8 - 3 * se < upper < 0.9

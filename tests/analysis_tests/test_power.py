"""Power of the paired t-test, minimum detectable differences and seeds needed: published G*Power values
and a Monte Carlo check."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as st

from analysis.power import min_detectable_difference, seeds_needed, t_power


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

"""Claim 3's refutation rule under simulation: the audit's rule, the plain bootstrap it replaced, and two candidates.

The audit refutes claim 3 ("FGGP has the highest ranking") when another method ranks ahead of FGGP in at least
1 - alpha / (k - 1) of the whole-seed bootstrap resamples, widened by t/z (analysis.decisions.refutation_spread and
rank_verdict). This study simulates grids with the audit's variance-components model (analysis.calibration.simulate)
and counts how often each rule refutes:

* ``widened``: the audit's rule (P(beaten by m) from analysis.decisions.rank_bootstrap with
  spread = refutation_spread(K, alpha / (k - 1)): the "expanded percentile" correction);
* ``plain``: the rule before it, the same without the widening (with 5 seeds it erred in about 7 % of grids where
  every method is equal, above alpha);
* ``swap``: a randomisation test that swaps FGGP's and m's runs within random sets of the settings x seeds cells,
  statistic FGGP's average rank minus m's (exact level under exchangeability; but its exact p-value cannot fall below
  about 2^-S when m and FGGP are the only close methods, S = settings, so with 6 settings and 7 methods it cannot
  reach alpha / 6 whatever the margin: see the ``clean`` scenario);
* ``seed-t``: per seed, the methods ranked within each setting and the ranks averaged over settings; a one-sided
  t-test over seeds of FGGP's average rank minus m's (seeds are independent replicates; no test where the
  differences have no spread).

Each refutes at level alpha / (k - 1) per method (Bonferroni over the other methods). Scenarios (delta = 0.5
points; components seed 0.15, seed x setting 0.12, noise 0.3, about the cpu protocol's): ``null`` (every method
equal), ``ahead-1`` / ``ahead-0.5`` (one alternative ahead of FGGP by delta / by delta / 2 in every setting,
the others equal to FGGP), and ``clean`` (one alternative 4 delta ahead, the others 20 delta behind, 0.01 noise:
a case any refutation rule should refute).

    PYTHONPATH=. python scripts/claim3_refutation_study.py [--replicates 1000] [--resamples 1000] [--seeds 5,12]

A study for choosing a rule: nothing here changes a verdict.
"""

from __future__ import annotations

import argparse
import functools
import sys

import numpy as np
from scipy import stats as st

from analysis import decisions as D
from analysis.calibration import Scenario, simulate

COMPONENTS = {"seed": 0.15, "setting_seed": 0.12, "noise": 0.3}
CLEAN = {"seed": 0.01, "setting_seed": 0.01, "noise": 0.01}


def p_bootstrap(y: np.ndarray, B: int, rng: np.random.Generator, spread: float = 1.0) -> float:
    """1 - the largest P(beaten by m): comparable with alpha / (k - 1) as the audit's threshold is."""
    _, _, beaten = D.rank_bootstrap(y, D.seed_weights(y.shape[-1], B, rng), target=0, spread=spread)
    return 1.0 - float(beaten.max())


def p_widened(y: np.ndarray, B: int, rng: np.random.Generator, alpha: float = 0.05) -> float:
    """The audit's rule: the bootstrap widened by t/z at the refutation level alpha / (k - 1)."""
    return p_bootstrap(y, B, rng, D.refutation_spread(y.shape[-1], alpha / (y.shape[-2] - 1)))


def p_swap(y: np.ndarray, B: int, rng: np.random.Generator) -> float:
    S, M, K = y.shape
    Z = rng.integers(0, 2, size=(B, S, K)).astype(float)
    base = y.mean(axis=-1)
    obs = D.average_ranks_of(base)
    best = 1.0
    for m in range(1, M):
        shift = (Z * (y[:, m, :] - y[:, 0, :])).mean(axis=-1)
        means = np.broadcast_to(base, (B, S, M)).copy()
        means[:, :, 0] += shift
        means[:, :, m] -= shift
        avg = D.average_ranks_of(means)
        hits = int(np.sum(avg[:, 0] - avg[:, m] >= obs[0] - obs[m] - 1e-9))
        best = min(best, (1 + hits) / (1 + B))
    return best


def p_seed_t(y: np.ndarray, B: int, rng: np.random.Generator) -> float:
    r = D.average_ranks_of(np.moveaxis(y, -1, 0))  # (K, M): each seed's average ranks
    d = r[:, :1] - r[:, 1:]  # positive: m ranks ahead of FGGP on that seed
    ok = d.std(axis=0, ddof=1) > 1e-12
    if not ok.any():
        return float("nan")
    return float(st.ttest_1samp(d[:, ok], 0.0, axis=0, alternative="greater").pvalue.min())


RULES = {"widened": p_widened, "plain": p_bootstrap, "swap": p_swap, "seed-t": p_seed_t}


def scenarios(S: int, A: int) -> dict:
    out = {"null": (np.zeros((S, A)), COMPONENTS)}
    for name, d in (("ahead-1", 1.0), ("ahead-0.5", 0.5)):
        adv = np.zeros((S, A))
        adv[:, 0] = -d
        out[name] = (adv, COMPONENTS)
    adv = np.full((S, A), 20.0)
    adv[:, 0] = -4.0
    out["clean"] = (adv, CLEAN)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--replicates", type=int, default=1000)
    ap.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples and swap patterns")
    ap.add_argument("--seeds", default="5,12", help="seed counts to simulate (default 5,12)")
    ap.add_argument("--settings", type=int, default=6)
    ap.add_argument("--alternatives", type=int, default=6)
    ap.add_argument("--alpha", type=float, default=0.05)
    a = ap.parse_args(argv)
    try:
        seeds = [int(x) for x in a.seeds.split(",")]
    except ValueError:
        print(f"error: --seeds {a.seeds}: give seed counts such as 5,12", file=sys.stderr)
        return 2
    if a.replicates < 1 or a.resamples < 1 or min(seeds) < 3 or a.settings < 1 or a.alternatives < 2:
        print("error: need --replicates, --resamples >= 1, seeds >= 3, --settings >= 1, --alternatives >= 2",
              file=sys.stderr)
        return 2
    S, A = a.settings, a.alternatives
    level = a.alpha / A
    print(f"{S} settings, fggp + {A} alternatives; refuted at p <= alpha / {A} = {level:.4f}; "
          f"{a.replicates} replicates, {a.resamples} resamples / swap patterns")
    rules = dict(RULES, widened=functools.partial(p_widened, alpha=a.alpha))
    for K in seeds:
        for i, (name, (adv, comp)) in enumerate(scenarios(S, A).items()):
            rng = np.random.default_rng([K, i])
            Y, _ = simulate(Scenario(name, name, K, adv, np.zeros(S)), a.replicates, rng, 0.5, comp)
            rates = {rule: float(np.mean([f(Y[r], a.resamples, rng) <= level for r in range(a.replicates)]))
                     for rule, f in rules.items()}
            print(f"  {K:2d} seeds  {name:10s} refuted: " + "  ".join(f"{k} {v:.3f}" for k, v in rates.items()))
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())

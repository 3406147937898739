"""The claims audit: packaged claims file, each decision rule on data built to decide it (supported,
refuted, inconclusive), per protocol, with expected p-values computed by scipy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from analysis import audit, load_claims, load_runs
from analysis.claims import DECISION_RULES
from analysis.formatting import fmt_p
from fake_records import make_record, write_grid, write_record

STRONG = {"fggp": 2.0, "annealed": 0.3, "gmp": 0.0, "random": -2.0, "dense": 0.5}
WEAK = {"fggp": -0.2, "annealed": 0.3, "gmp": 0.0, "random": -2.0, "dense": 0.5}


@pytest.fixture(scope="module")
def two_protocols(tmp_path_factory):
    """protocol "paper": fggp clearly best (two datasets -> 24 settings, 4 seeds, tiny noise, one
    diverged gmp run per dataset); protocol "mini": fggp 0.5 below annealed everywhere and below dense."""
    root = tmp_path_factory.mktemp("claims")
    for ds in ("cifar10", "cifar10-jpeg"):
        write_grid(root, dataset=ds, effects=STRONG, noise=0.02, protocol="paper", seeds=(0, 1, 2, 3),
                   diverged={("vgg19", "gmp", 0.95, 1.0, 0)})
    write_grid(root, effects=WEAK, noise=0.02, protocol="mini", archs=("vgg19",))
    return load_runs(root)


def verdicts(table: pd.DataFrame, protocol: str) -> dict:
    t = table[table["protocol"] == protocol]
    return dict(zip(t["claim"], t["verdict"]))


def test_claims_file_is_packaged_and_complete():
    cfg = load_claims()
    ids = [c["id"] for c in cfg["claims"]]
    assert ids == ["outperforms-alternatives", "surpasses-dense", "highest-ranking"]
    for c in cfg["claims"]:
        assert c["rule"] in DECISION_RULES and c["test"] and c["decision"].strip()
        assert c["alpha"] == 0.05 and c["min_seeds"] == 3 and c["method"] == "fggp"
        assert c["delta"] == 0.5 and c["comparison_test"] == "paired-t"
    ranks = cfg["claims"][2]
    assert ranks["supported_at"] == 0.95 and ranks["n_resamples"] == 10000
    sets = [s["set"] for s in cfg["sensitivity"]]
    assert {"comparison_test": "wilcoxon"} in sets and {"comparison_test": "welch"} in sets
    assert {"delta": 0.25} in sets and {"delta": 1.0} in sets
    assert {"exclude": ["annealed:r0=0.01", "gf-annealed:r0=0.01"]} in sets
    assert {"exclude": ["annealed", "gf-annealed"]} in sets
    assert {"alternatives": ["annealed", "annealed:r0=0.01", "gmp", "random"]} in sets
    assert {"collapsed": "exclude"} in sets
    assert len(sets) == 8 and {s["choice"] for s in cfg["sensitivity"]} == {"test", "alternatives", "annealed rate",
                                                                             "collapsed runs", "delta"}


def test_bad_claims_files(tmp_path):
    bad = tmp_path / "c.toml"
    bad.write_text("schema = [")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_claims(bad)
    good = _packaged_text()
    bad.write_text(good.replace("delta = 0.5 ", "delta = -0.5 "))
    with pytest.raises(ValueError, match="delta must be > 0"):
        load_claims(bad)
    bad.write_text(good.replace('comparison_test = "paired-t"', 'comparison_test = "z-test"'))
    with pytest.raises(ValueError, match="comparison_test must be one of"):
        load_claims(bad)
    bad.write_text(good.replace('rule = "surpasses_reference"', 'rule = "vibes"'))
    with pytest.raises(ValueError, match="unknown rule 'vibes'"):
        load_claims(bad)


def _packaged_text() -> str:
    from importlib import resources

    return resources.files("analysis").joinpath("claims.toml").read_text(encoding="utf-8")


def test_audit_per_protocol(two_protocols):
    t = audit(two_protocols)
    assert list(t["protocol"]) == ["mini"] * 3 + ["paper"] * 3
    assert verdicts(t, "paper") == {"outperforms-alternatives": "supported", "surpasses-dense": "supported",
                                    "highest-ranking": "supported"}
    # fggp 0.5 below annealed in every setting (noise 0.02): significant losses -> refuted, not "not shown";
    # below dense everywhere -> refuted; annealed always ranked ahead -> refuted
    assert verdicts(t, "mini") == {"outperforms-alternatives": "refuted", "surpasses-dense": "refuted",
                                   "highest-ranking": "refuted"}
    paper = t[t["protocol"] == "paper"].set_index("claim")
    assert (paper["diverged"] == 2).all() and (paper["completed"] == 2 * 200 - 2).all()
    assert paper.loc["outperforms-alternatives", "n_settings"] == 24
    ev = paper.loc["outperforms-alternatives", "evidence"]
    # In one setting the three gmp pairs left by the diverged run differ by exactly the same rounded amount:
    # no spread, the t statistic is undefined, the setting stays unresolved (never a win by default).
    assert "settings won 23, lost 0" in ev and "annealed 24/0/0/0" in ev and "gmp 23/0/0/1" in ev
    assert "P(fggp has the best average rank) = 1.000" in paper.loc["highest-ranking", "evidence"]
    assert "paired t-test" in paper.loc["outperforms-alternatives", "test"]
    mini = t[t["protocol"] == "mini"].set_index("claim")
    assert "annealed ranks ahead of fggp in 100.0%" in mini.loc["highest-ranking", "reason"]
    only = audit(two_protocols, protocol="mini")
    assert list(only["protocol"]) == ["mini"] * 3
    with pytest.raises(ValueError, match="protocols present"):
        audit(two_protocols, protocol="nope")


def test_too_few_seeds_is_inconclusive(tmp_path):
    write_grid(tmp_path, effects=STRONG, noise=0.02, seeds=(0, 1))
    t = audit(tmp_path)  # a path works too
    assert set(t["verdict"]) == {"inconclusive"}


def frame(spec: dict) -> pd.DataFrame:
    """{(target_sparsity, method): [acc per seed]} -> runs frame of one dataset/arch/protocol."""
    rows = []
    for (tgt, m), accs in spec.items():
        for s, a in enumerate(accs):
            rows.append(dict(dataset="cifar10", arch="vgg19", method=m, target_sparsity=tgt if m != "dense" else 0.0,
                             initial_density=1.0, seed=s, protocol="paper", status="completed", run_id=f"{tgt}{m}{s}",
                             test_acc=a, best_test_acc_after_pruning=np.nan, sparsity=tgt, path="x",
                             collapsed=a <= 11.0))
    return pd.DataFrame(rows)


def claim(df, cid, **overrides):
    t = audit(df, overrides=overrides or None).set_index("claim")
    return t.loc[cid, "verdict"], t.loc[cid, "evidence"], t.loc[cid, "reason"]


DENSE = np.array([90.0, 92.0, 94.0, 91.0, 93.0])  # seed-to-seed spread shared by every run of a seed


def test_surpasses_dense_is_paired_on_seed():
    up = DENSE + np.array([0.8, 0.9, 1.0, 0.85, 0.95])
    down = DENSE - 2.0 + np.array([0.0, 0.1, -0.1, 0.05, -0.05])
    df = frame({(None, "dense"): DENSE, (0.9, "fggp"): up, (0.95, "fggp"): down, (0.98, "fggp"): down - 1.0})
    v, ev, reason = claim(df, "surpasses-dense")
    assert v == "supported" and "in 1 of 3 setting(s)" in reason
    # one-sided paired t of fggp > dense at 90 %, Holm over 3 settings: the smallest of three p, times 3
    p = st.ttest_rel(up, DENSE, alternative="greater").pvalue
    assert f"one-sided Holm {'p < 0.0001' if 3 * p < 1e-4 else 'p = ' + fmt_p(3 * p)}" in ev
    assert "win 1, loss 2, equivalent 0" in ev
    # the unpaired Welch test ignores that seed 2 is good for both: no significant surplus
    assert st.ttest_ind(up, DENSE, equal_var=False, alternative="greater").pvalue > 0.1
    v, ev, _ = claim(df, "surpasses-dense", comparison_test="welch")
    assert v == "inconclusive" and "win 0" in ev


def test_surpasses_dense_refuted_needs_evidence_in_every_setting():
    down = DENSE - 2.0 + np.array([0.0, 0.1, -0.1, 0.05, -0.05])
    df = frame({(None, "dense"): DENSE, (0.9, "fggp"): down, (0.95, "fggp"): down - 0.5, (0.98, "fggp"): down - 1})
    v, ev, reason = claim(df, "surpasses-dense")
    assert v == "refuted" and "win 0, loss 3" in ev and "in every one of 3 settings" in reason
    two = frame({(None, "dense"): DENSE, (0.9, "fggp"): down, (0.95, "fggp"): down - 0.5})
    assert claim(two, "surpasses-dense")[0] == "inconclusive"  # fewer than min_settings: cannot refute
    noisy = frame({(None, "dense"): DENSE, (0.9, "fggp"): DENSE + [3, -3, 2, -2, 0.5], (0.95, "fggp"): down,
                   (0.98, "fggp"): down})
    assert claim(noisy, "surpasses-dense")[0] == "inconclusive"  # one setting can still hold a surplus
    nodense = frame({(0.9, "fggp"): [92.5, 92.6, 92.7]})
    assert claim(nodense, "surpasses-dense")[:2] == ("inconclusive", "")


TINY = np.array([0.01, -0.02, 0.015, -0.01, 0.0, 0.02, -0.015, 0.005])


def _three(shift: float) -> pd.DataFrame:
    spec = {}
    for t, base in ((0.9, 93.0), (0.95, 92.0), (0.98, 91.0)):
        gmp = base + np.linspace(-1, 1, 8)
        spec[(t, "gmp")] = gmp
        spec[(t, "fggp")] = gmp + shift + TINY
    return frame(spec)


def test_outperforms_refuted_by_equivalence_and_supported_by_real_wins():
    # differences of 0 +- 0.02: equivalent within +-0.5 pp in every setting -> refuted, with evidence
    v, ev, reason = claim(_three(0.0), "outperforms-alternatives")
    assert v == "refuted" and "gmp 0/0/3/0" in ev and "equivalent within +-0.50 pp" in reason
    tost = max(st.ttest_1samp(TINY, -0.5, alternative="greater").pvalue,
               st.ttest_1samp(TINY, 0.5, alternative="less").pvalue)
    assert 3 * tost < 0.05  # Holm over 3 settings of the same differences: all equivalent
    # +0.2: significant, but smaller than delta -> still equivalent, never a win
    assert st.ttest_1samp(TINY + 0.2, 0).pvalue < 0.001
    v, ev, _ = claim(_three(0.2), "outperforms-alternatives")
    assert v == "refuted" and "gmp 0/0/3/0" in ev
    # with delta = 0.1 the same +0.2 is no longer negligible: three significant wins
    v, ev, _ = claim(_three(0.2), "outperforms-alternatives", delta=0.1)
    assert v == "supported" and "gmp 3/0/0/0" in ev
    # +1.0: wins everywhere
    v, ev, reason = claim(_three(1.0), "outperforms-alternatives")
    assert v == "supported" and "settings won 3, lost 0" in ev and "in 3 of 3 settings" in reason


def test_outperforms_unresolved_when_ahead_but_not_significant():
    spec = {}
    for t, base in ((0.9, 93.0), (0.95, 92.0), (0.98, 91.0)):
        spec[(t, "fggp")] = [base + 0.1, base + 1.0, base - 0.5]
        spec[(t, "gmp")] = [base, base, base - 0.4]
    v, ev, reason = claim(frame(spec), "outperforms-alternatives")
    assert v == "inconclusive" and "settings won 0, lost 0" in ev and "unresolved 3" in ev
    assert "not enough evidence" in reason


def test_outperforms_needs_every_alternative():
    # fggp beats gmp by 1 pp everywhere (significantly) but only matches annealed's mean noisily
    spec = {}
    for t, base in ((0.9, 93.0), (0.95, 92.0), (0.98, 91.0)):
        gmp = base + np.linspace(-1, 1, 8)
        spec[(t, "gmp")] = gmp
        spec[(t, "fggp")] = gmp + 1.0 + TINY
        spec[(t, "annealed")] = gmp + 1.0 + np.array([2.0, -2.0, 1.5, -1.5, 0.5, -0.5, 1.0, -1.0])
    v, ev, _ = claim(frame(spec), "outperforms-alternatives")
    assert v == "inconclusive" and "settings won 0" in ev and "gmp 3/0/0/0" in ev and "annealed 0/0/0/3" in ev
    # dropping annealed (a sensitivity choice) leaves gmp alone: supported
    assert claim(frame(spec), "outperforms-alternatives", exclude=["annealed"])[0] == "supported"


def test_highest_ranking_cases():
    def spec(order, n_set=4):
        out = {}
        for i in range(n_set):
            t = 0.9 + 0.02 * i
            for rank, m in enumerate(order):
                out[(t, m)] = [90.0 - rank + 0.1 * s for s in range(3)]
        return out

    v, ev, reason = claim(frame(spec(["fggp", "gmp", "random"])), "highest-ranking")
    assert v == "supported" and "P(fggp has the best average rank) = 1.000" in ev
    v, ev, reason = claim(frame(spec(["gmp", "fggp", "random"])), "highest-ranking")
    assert v == "refuted" and "gmp ranks ahead of fggp in 100.0%" in reason
    # 3 seeds, 3 methods: widened by t_2(0.975) / z(0.975) = 4.3027 / 1.9600 (scipy) for the refutation
    assert "of resamples widened by t/z = 2.195 (refuted at >= 0.975 = 1 - alpha/2)" in ev
    tie = spec(["fggp", "gmp", "random"])
    for key in [k for k in tie if k[1] == "gmp"]:
        tie[key] = tie[(key[0], "fggp")]
    v, ev, reason = claim(frame(tie), "highest-ranking")
    assert v == "inconclusive" and "P(fggp has the best average rank) = 0.500" in ev
    assert reason.endswith("no method ranks ahead of it in 97.5% or more of the widened resamples: the ranking is "
                           "too uncertain")
    two = {k: v for k, v in spec(["fggp", "gmp", "random"]).items() if k[1] != "random"}
    assert claim(frame(two), "highest-ranking")[2] == "only 2 methods (fggp, gmp); ranking needs at least 3"


def test_collapsed_runs_are_counted_and_numbers_are_machine_readable():
    spec = {}
    for t, base in ((0.9, 93.0), (0.95, 92.0), (0.98, 91.0)):
        spec[(t, "fggp")] = [base, base + 0.2, base - 0.1]
        spec[(t, "gmp")] = [base - 0.3, base, base - 0.2]
        spec[(t, "random")] = [10.0, 10.0, 35.0] if t == 0.98 else [base - 5, base - 4, base - 6]
    t = audit(frame(spec), with_numbers=True).set_index("claim")
    assert (t["collapsed"] == 2).all()
    assert "collapsed runs (at chance level, kept in every statistic): random 2" in t.loc["outperforms-alternatives",
                                                                                          "evidence"]
    n1 = t.loc["outperforms-alternatives", "numbers"]
    assert n1["settings"] == 3 and n1["alternatives"] == ["gmp", "random"] and n1["collapsed"] == {"random": 2}
    assert set(n1["per_alternative"]["gmp"]) == {"win", "loss", "equivalent", "unresolved", "few seeds"}
    n3 = t.loc["highest-ranking", "numbers"]
    assert n3["methods"] == ["fggp", "gmp", "random"] and 0.0 <= n3["p_best"] <= 1.0
    assert set(n3["rank_ci"]) == {"fggp", "gmp", "random"}


def test_collapsed_runs_can_be_excluded_as_a_sensitivity_variant(tmp_path):
    # fggp and annealed equal (noise sd 0.15) over 6 seeds, but annealed collapses to 10 % at seed 0 everywhere.
    # Kept: the paired differences hold one of about +80 points, so no setting is resolved (CI half-width ~ 35).
    # Excluded: 5 seeds with differences of sd ~ 0.2 -> the 90 % TOST interval (+-2.13 * 0.2 / sqrt(5) ~ 0.2)
    # lies inside +-0.5 in every setting: equivalent everywhere, so "fggp outperforms" is refuted.
    write_grid(tmp_path, methods=("fggp", "annealed"), archs=("vgg19",), starts=(1.0,), seeds=range(6),
               effects={"fggp": 0.0, "annealed": 0.0, "dense": 0.0})
    for t in (0.9, 0.95, 0.98):
        write_record(tmp_path, make_record(method="annealed", target_sparsity=t, seed=0, test_acc=10.0))
    df = load_runs(tmp_path)
    kept = audit(df).set_index("claim").loc["outperforms-alternatives"]
    dropped = audit(df, overrides={"collapsed": "exclude"}).set_index("claim").loc["outperforms-alternatives"]
    assert kept["verdict"] == "inconclusive" and "annealed 0/0/0/3" in kept["evidence"]
    assert dropped["verdict"] == "refuted" and "annealed 0/0/3/0" in dropped["evidence"]
    assert kept["collapsed"] == dropped["collapsed"] == 3  # the count of the protocol's collapsed runs stays
    with pytest.raises(ValueError, match="collapsed must be 'keep' or 'exclude'"):
        audit(df, overrides={"collapsed": "drop"})

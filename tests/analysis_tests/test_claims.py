"""The claims audit: packaged claims file, each decision rule on data built to decide it (supported, supported
by less than delta, refuted, inconclusive), collapsed runs, studies joining protocols; expected p-values from
scipy, counts worked by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from analysis import audit, load_claims, load_runs
from analysis.claims import RULES
from analysis.formatting import fmt_p
from fake_records import write_grid

STRONG = {"fggp": 2.0, "annealed": 0.3, "gmp": 0.0, "random": -2.0, "dense": 0.5}
WEAK = {"fggp": -0.2, "annealed": 0.3, "gmp": 0.0, "random": -2.0, "dense": 0.5}
IDS = ["outperforms-alternatives", "surpasses-dense", "highest-ranking", "order-gradient-first",
       "rate-fixed-beats-annealed"]


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


def verdicts(table: pd.DataFrame, protocol: str, col: str = "verdict") -> dict:
    t = table[table["protocol"] == protocol]
    return dict(zip(t["claim"], t[col]))


def test_claims_file_is_packaged_and_complete():
    cfg = load_claims()
    assert cfg["schema"] == "fggp-repro/claims/v3"
    assert [c.id for c in cfg["claims"]] == IDS
    for c in cfg["claims"]:
        assert c.rule in RULES and c.test and c.decision.strip()
        assert c.alpha == 0.05 and c.min_seeds == 3 and c.method == "fggp" and c.delta == 0.5
        assert c.comparison_test == "paired-t" and c.collapsed == "separate" and c.aggregation == "seed-ranks"
        # the published methods are the alternatives; FGGP's ablation cells are not; random is the floor
        assert c.alternatives == ("annealed", "annealed:r0=0.01", "gmp", "gmp-mt", "granet")
        assert c.floor == ("random",)
    order, rate = cfg["claims"][3], cfg["claims"][4]
    assert "order" in order.id and "rate" in rate.id
    assert order.pairs == (("fggp", "mf-fixed"), ("gf-annealed", "annealed"),
                           ("gf-annealed:r0=0.01", "annealed:r0=0.01"))
    assert rate.pairs == (("fggp", "gf-annealed"), ("fggp", "gf-annealed:r0=0.01"), ("mf-fixed", "annealed"),
                          ("mf-fixed", "annealed:r0=0.01"))
    assert order.interactions == rate.interactions == (("fggp", "mf-fixed", "gf-annealed", "annealed"),
                                                       ("fggp", "mf-fixed", "gf-annealed:r0=0.01", "annealed:r0=0.01"))
    ranks = cfg["claims"][2]
    assert ranks.supported_at == 0.95 and ranks.n_resamples == 10000
    sets = [s["set"] for s in cfg["sensitivity"]]
    assert {"comparison_test": "wilcoxon"} in sets and {"comparison_test": "welch"} in sets
    assert {"delta": 0.25} in sets and {"delta": 1.0} in sets and {"aggregation": "seed-means"} in sets
    assert {"collapsed": "keep"} in sets
    with_ablations = next(s for s in sets if "mf-fixed" in s.get("alternatives", ()))
    assert {"gf-annealed", "mf-fixed"} <= set(with_ablations["alternatives"])
    assert cfg["studies"] == {"cpu-both": ["cpu", "cpu-resnet"]}


def test_bad_claims_files(tmp_path):
    bad = tmp_path / "c.toml"
    bad.write_text("schema = [")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_claims(bad)
    good = _packaged_text()
    cases = (("delta = 0.5 ", "delta = -0.5 ", "delta must be > 0"),
             ('comparison_test = "paired-t"', 'comparison_test = "z-test"', "comparison_test must be"),
             ('rule = "surpasses_reference"', 'rule = "vibes"', "unknown rule 'vibes'"),
             ('collapsed = "separate"     #', 'collapsed = "drop"     #', "collapsed must be one of"),
             ('aggregation = "seed-ranks" #', 'aggregation = "median" #', "aggregation must be one of"),
             ('schema = "fggp-repro/claims/v3"', 'schema = "fggp-repro/claims/v2"', "schema must be"),
             ('protocols = ["cpu", "cpu-resnet"]', 'protocols = ["cpu"]', r"\[studies.cpu-both\] needs"),
             ('pairs = [["fggp", "mf-fixed"],', 'pairs = [["fggp"],', "each of pairs is"))
    for old, new, message in cases:
        assert old in good, old
        bad.write_text(good.replace(old, new, 1))
        with pytest.raises(ValueError, match=message):
            load_claims(bad)


def _packaged_text() -> str:
    from importlib import resources

    return resources.files("analysis").joinpath("claims.toml").read_text(encoding="utf-8")


def test_audit_per_protocol(two_protocols):
    t = audit(two_protocols)
    assert list(t["protocol"]) == ["mini"] * 5 + ["paper"] * 5
    # fggp 1.7 points ahead of annealed (the nearest) in every setting, noise 0.02: a lead of delta or more
    assert verdicts(t, "paper") == {"outperforms-alternatives": "supported", "surpasses-dense": "supported",
                                    "highest-ranking": "supported", "order-gradient-first": "inconclusive",
                                    "rate-fixed-beats-annealed": "inconclusive"}
    assert verdicts(t, "paper", "verdict_text")["outperforms-alternatives"] == "supported"  # not "by less than"
    # fggp 0.5 below annealed in every setting (noise 0.02): significant deficits -> refuted, not "not shown";
    # below dense everywhere -> refuted; annealed always ranked ahead -> refuted
    assert verdicts(t, "mini") == {"outperforms-alternatives": "refuted", "surpasses-dense": "refuted",
                                   "highest-ranking": "refuted", "order-gradient-first": "inconclusive",
                                   "rate-fixed-beats-annealed": "inconclusive"}
    paper = t[t["protocol"] == "paper"].set_index("claim")
    assert (paper["diverged"] == 2).all() and (paper["completed"] == 2 * 200 - 2).all()
    assert paper.loc["outperforms-alternatives", "n_settings"] == 24
    assert paper.loc["outperforms-alternatives", "covers"] == (
        "protocol paper: cifar10 resnet50 at 90/95/98% from dense-start and 50%-sparse-start; cifar10 vgg19 at "
        "90/95/98% from dense-start and 50%-sparse-start; cifar10-jpeg resnet50 at 90/95/98% from dense-start and "
        "50%-sparse-start; cifar10-jpeg vgg19 at 90/95/98% from dense-start and 50%-sparse-start (24 settings)")
    ev = paper.loc["outperforms-alternatives", "evidence"]
    # In one setting the three gmp pairs left by the diverged run differ by exactly the same rounded amount:
    # no spread, the t statistic is undefined, the setting stays unresolved (never a lead by default).
    assert "settings won 23 (23 with every lead >= 0.5 pp), lost 0" in ev
    assert "annealed: ahead 24 (0 by less than 0.5), equivalent 0, behind 0, unresolved 0" in ev
    assert "gmp: ahead 23 (0 by less than 0.5), equivalent 0, behind 0, unresolved 1" in ev
    assert "P(fggp has the best average rank) = 1.000" in paper.loc["highest-ranking", "evidence"]
    # the 2 x 2 ablation has no runs here: the mechanism claims say so
    assert paper.loc["order-gradient-first", "reason"].startswith("no comparison has runs of both its methods")
    mini = t[t["protocol"] == "mini"].set_index("claim")
    assert "annealed ranks ahead of fggp in 100.0%" in mini.loc["highest-ranking", "reason"]
    only = audit(two_protocols, protocol="mini")
    assert list(only["protocol"]) == ["mini"] * 5
    with pytest.raises(ValueError, match="protocols present"):
        audit(two_protocols, protocol="nope")


def test_too_few_seeds_is_inconclusive(tmp_path):
    write_grid(tmp_path, effects=STRONG, noise=0.02, seeds=(0, 1))
    t = audit(tmp_path)  # a path works too
    assert set(t["verdict"]) == {"inconclusive"}


def frame(spec: dict, protocol: str = "paper", arch: str = "vgg19") -> pd.DataFrame:
    """{(target_sparsity, method): [acc per seed]} -> runs frame of one dataset/arch/protocol (NaN: no run)."""
    rows = []
    for (tgt, m), accs in spec.items():
        for s, a in enumerate(accs):
            if a is None or np.isnan(a):
                continue
            rows.append(dict(dataset="cifar10", arch=arch, method=m, target_sparsity=tgt if m != "dense" else 0.0,
                             initial_density=1.0, seed=s, protocol=protocol, status="completed",
                             run_id=f"{protocol}{tgt}{m}{s}", test_acc=float(a), best_test_acc_after_pruning=np.nan,
                             sparsity=tgt, path="x", collapsed=float(a) <= 11.0))
    return pd.DataFrame(rows)


def claim(df, cid, **overrides):
    t = audit(df, overrides=overrides or None).set_index("claim")
    return t.loc[cid, "verdict_text"], t.loc[cid, "evidence"], t.loc[cid, "reason"]


DENSE = np.array([90.0, 92.0, 94.0, 91.0, 93.0])  # seed-to-seed spread shared by every run of a seed


def test_surpasses_dense_is_paired_on_seed():
    up = DENSE + np.array([0.8, 0.9, 1.0, 0.85, 0.95])
    down = DENSE - 2.0 + np.array([0.0, 0.1, -0.1, 0.05, -0.05])
    df = frame({(None, "dense"): DENSE, (0.9, "fggp"): up, (0.95, "fggp"): down, (0.98, "fggp"): down - 1.0})
    v, ev, reason = claim(df, "surpasses-dense")
    # the surplus at 90 % is 0.9 on average: significant and >= delta (estimate), so no qualifier
    assert v == "supported" and "in 1 of 3 setting(s) (1 by 0.5 pp or more" in reason
    # one-sided paired t of fggp > dense at 90 %, Holm over 3 settings: the smallest of three p, times 3
    p = st.ttest_rel(up, DENSE, alternative="greater").pvalue
    assert f"one-sided Holm {'p < 0.0001' if 3 * p < 1e-4 else 'p = ' + fmt_p(3 * p)}" in ev
    assert "ahead 1 (0 by less than 0.5), equivalent 0, behind 2" in ev
    # the unpaired Welch test ignores that seed 2 is good for both: no significant surplus
    assert st.ttest_ind(up, DENSE, equal_var=False, alternative="greater").pvalue > 0.1
    v, ev, _ = claim(df, "surpasses-dense", comparison_test="welch")
    assert v == "inconclusive" and "ahead 0" in ev


def test_surpasses_dense_by_less_than_delta_is_supported_and_says_so():
    """fggp 0.25 points above dense in every setting and seed (+-0.01): one-sided paired t p < 0.0001 (scipy),
    Holm x3 still tiny; the surplus is real and smaller than delta: supported, by less than 0.5 points, never
    refuted (v2 counted it as an equivalence and refuted the claim)."""
    wob = np.array([0.01, -0.01, 0.0, 0.005, -0.005])
    up = DENSE + 0.25 + wob
    assert 3 * st.ttest_rel(up, DENSE, alternative="greater").pvalue < 1e-4
    df = frame({(None, "dense"): DENSE, (0.9, "fggp"): up, (0.95, "fggp"): up, (0.98, "fggp"): up})
    v, ev, reason = claim(df, "surpasses-dense")
    assert v == "supported, by less than 0.5 points"
    assert "each time by less than 0.5 pp (estimates)" in reason and "ahead 3 (3 by less than 0.5)" in ev


def test_surpasses_dense_refuted_needs_evidence_in_every_setting():
    down = DENSE - 2.0 + np.array([0.0, 0.1, -0.1, 0.05, -0.05])
    df = frame({(None, "dense"): DENSE, (0.9, "fggp"): down, (0.95, "fggp"): down - 0.5, (0.98, "fggp"): down - 1})
    v, ev, reason = claim(df, "surpasses-dense")
    assert v == "refuted" and "ahead 0, equivalent 0, behind 3" in ev and "in every one of 3 settings" in reason
    two = frame({(None, "dense"): DENSE, (0.9, "fggp"): down, (0.95, "fggp"): down - 0.5})
    assert claim(two, "surpasses-dense")[0] == "inconclusive"  # fewer than min_settings: cannot refute
    noisy = frame({(None, "dense"): DENSE, (0.9, "fggp"): DENSE + [3, -3, 2, -2, 0.5], (0.95, "fggp"): down,
                   (0.98, "fggp"): down})
    assert claim(noisy, "surpasses-dense")[0] == "inconclusive"  # one setting can still hold a surplus
    nodense = frame({(0.9, "fggp"): [92.5, 92.6, 92.7]})
    assert claim(nodense, "surpasses-dense")[:2] == ("inconclusive", "")


TINY = np.array([0.01, -0.02, 0.015, -0.01, 0.0, 0.02, -0.015, 0.005])


def _three(shift: float, other: str = "gmp") -> pd.DataFrame:
    spec = {}
    for t, base in ((0.9, 93.0), (0.95, 92.0), (0.98, 91.0)):
        gmp = base + np.linspace(-1, 1, 8)
        spec[(t, other)] = gmp
        spec[(t, "fggp")] = gmp + shift + TINY
    return frame(spec)


def test_a_significant_lead_inside_delta_is_supported_and_qualified_never_refuted():
    # differences of 0 +- 0.02: no significant difference, TOST inside +-0.5 in every setting -> refuted
    v, ev, reason = claim(_three(0.0), "outperforms-alternatives")
    assert v == "refuted" and "gmp: ahead 0, equivalent 3, behind 0" in ev and "equivalent to it within" in reason
    tost = max(st.ttest_1samp(TINY, -0.5, alternative="greater").pvalue,
               st.ttest_1samp(TINY, 0.5, alternative="less").pvalue)
    assert 3 * tost < 0.05  # Holm over 3 settings of the same differences: all equivalent
    # +0.2 in every setting and seed: significant (two-sided p < 0.001, scipy) and smaller than delta. v2 read it
    # as an equivalence and refuted the claim; it is a lead, of less than delta
    assert 3 * st.ttest_1samp(TINY + 0.2, 0).pvalue < 0.001
    v, ev, reason = claim(_three(0.2), "outperforms-alternatives")
    assert v == "supported, by less than 0.5 points"
    assert "gmp: ahead 3 (3 by less than 0.5)" in ev and "settings won 3 (0 with every lead >= 0.5 pp)" in ev
    assert "every lead is smaller than 0.5 pp" in reason
    # with delta = 0.1 the same +0.2 is a lead of delta or more: no qualifier
    v, ev, _ = claim(_three(0.2), "outperforms-alternatives", delta=0.1)
    assert v == "supported" and "gmp: ahead 3 (0 by less than 0.1)" in ev
    # +1.0: ahead everywhere, by delta or more
    v, ev, reason = claim(_three(1.0), "outperforms-alternatives")
    assert v == "supported" and "settings won 3 (3 with every lead >= 0.5 pp), lost 0" in ev
    # as seeds are added a significant lead stays a lead: it cannot turn into a loss (v2's flip)
    for k in (5, 6, 7, 8):
        spec = {key: vals[:k] for key, vals in _spec_of(_three(0.2)).items()}
        assert not claim(frame(spec), "outperforms-alternatives")[0].startswith("refuted")


def _spec_of(df: pd.DataFrame) -> dict:
    return {(t, m): g.sort_values("seed")["test_acc"].to_numpy() for (t, m), g in df.groupby(["target_sparsity",
                                                                                              "method"])}


def test_outperforms_unresolved_when_ahead_but_not_significant():
    spec = {}
    for t, base in ((0.9, 93.0), (0.95, 92.0), (0.98, 91.0)):
        spec[(t, "fggp")] = [base + 0.1, base + 1.0, base - 0.5]
        spec[(t, "gmp")] = [base, base, base - 0.4]
    v, ev, reason = claim(frame(spec), "outperforms-alternatives")
    assert v == "inconclusive" and "settings won 0" in ev and "lost 0" in ev and "unresolved 3" in ev
    assert "not enough evidence" in reason


def test_outperforms_needs_every_alternative_and_ignores_the_ablation_cells():
    # fggp beats gmp by 1 pp everywhere (significantly) but only matches annealed's mean noisily
    spec = {}
    for t, base in ((0.9, 93.0), (0.95, 92.0), (0.98, 91.0)):
        gmp = base + np.linspace(-1, 1, 8)
        spec[(t, "gmp")] = gmp
        spec[(t, "fggp")] = gmp + 1.0 + TINY
        spec[(t, "annealed")] = gmp + 1.0 + np.array([2.0, -2.0, 1.5, -1.5, 0.5, -0.5, 1.0, -1.0])
        spec[(t, "mf-fixed")] = gmp + 5.0  # an ablation cell far ahead: not a state-of-the-art alternative
    v, ev, _ = claim(frame(spec), "outperforms-alternatives")
    assert v == "inconclusive" and "settings won 0" in ev and "gmp: ahead 3" in ev
    assert "annealed: ahead 0, equivalent 0, behind 0, unresolved 3" in ev and "mf-fixed" not in ev
    # dropping annealed (a sensitivity choice) leaves gmp alone: supported
    assert claim(frame(spec), "outperforms-alternatives", exclude=["annealed"])[0] == "supported"
    # with the ablation cells as alternatives, mf-fixed is ahead of fggp everywhere: refuted
    alts = ["annealed", "gmp", "mf-fixed"]
    assert claim(frame(spec), "outperforms-alternatives", alternatives=alts, exclude=["annealed"])[0] == "refuted"


def test_a_collapsed_competitor_run_does_not_turn_a_clear_win_into_unresolved():
    """fggp 1.0 point ahead of annealed and gmp at every seed of 3 settings (+-0.02), 8 seeds; annealed's seed-0
    run at 90 % collapsed to 10 %. Set aside, its pair leaves that comparison: 7 pairs of differences 1.0 + TINY[1:]
    (p < 0.0001, scipy), a lead everywhere: supported, 3 of 3 settings. Kept (the sensitivity variant), the pair's
    difference of about 83 points puts the sd near 29 and the setting goes unresolved: 2 of 3."""
    spec = {}
    for t, base in ((0.9, 93.0), (0.95, 92.0), (0.98, 91.0)):
        other = base + np.linspace(-1, 1, 8)
        spec[(t, "fggp")] = other + 1.0 + TINY
        spec[(t, "gmp")] = other
        spec[(t, "annealed")] = other.copy()
    spec[(0.9, "annealed")][0] = 10.0
    d = (spec[(0.9, "fggp")] - spec[(0.9, "annealed")])[1:]
    assert st.ttest_1samp(d, 0).pvalue < 1e-4
    v, ev, _ = claim(frame(spec), "outperforms-alternatives")
    assert v == "supported" and "annealed: ahead 3 (0 by less than 0.5)" in ev
    assert "seed pairs set aside from the accuracy tests because a run is at chance level: 1" in ev
    assert "annealed 0/24 [0.0-14.2 %]" not in ev and "annealed 1/24" in ev  # its collapse is counted
    v, ev, _ = claim(frame(spec), "outperforms-alternatives", collapsed="keep")
    assert "annealed: ahead 2 (0 by less than 0.5), equivalent 0, behind 0, unresolved 1" in ev
    assert v == "supported" and "settings won 2" in ev  # still a majority of 3, without the collapsed setting


def test_significantly_more_collapses_keep_a_majority_of_leads_from_support():
    """fggp ahead of gmp by 1 point on every seed where both trained, but fggp collapsed at 7 (setting, seed)
    pairs where gmp did not, and gmp never alone: exact McNemar, P(X >= 7), X ~ Binomial(7, 1/2) = 1/128 = 0.0078
    (one method compared: Holm changes nothing) < 0.05. Not supported: inconclusive, with the reason."""
    spec = {}
    for t, base in ((0.9, 93.0), (0.95, 92.0), (0.98, 91.0)):
        other = base + np.linspace(-1, 1, 12)
        spec[(t, "gmp")] = other
        spec[(t, "fggp")] = other + 1.0 + np.resize(TINY, 12)
    for t, seeds in ((0.9, (0, 1, 2)), (0.95, (3, 4)), (0.98, (5, 6))):
        for s in seeds:
            spec[(t, "fggp")][s] = 10.0
    assert st.binomtest(7, 7, 0.5, alternative="greater").pvalue == pytest.approx(1 / 128)
    v, ev, reason = claim(frame(spec), "outperforms-alternatives")
    assert v == "inconclusive" and "reaches chance level significantly more often than gmp" in reason
    assert "gmp 7:0 (Holm p = 0.0078 that fggp collapses more)" in ev
    assert "fggp 7/36" in ev


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
    # a tie at every seed: each of the two has rank 1.5 in every resample, best shared: P(best) = 1/2
    assert v == "inconclusive" and "P(fggp has the best average rank) = 0.500" in ev
    assert reason.endswith("no method ranks ahead of it in 97.5% or more of the widened resamples: the ranking is "
                           "too uncertain")
    two = {k: v for k, v in spec(["fggp", "gmp", "random"]).items() if k[1] != "random"}
    assert claim(frame(two), "highest-ranking")[2] == "only 2 methods (fggp, gmp); ranking needs at least 3"


def test_the_ranking_uses_every_seed_of_each_setting():
    """Setting 90 % has 6 seeds, 95 % and 98 % have 3 (as a start planned with fewer seeds). On seeds 0-2 gmp is
    ahead of fggp everywhere; on seeds 3-5 of the 90 % setting fggp is ahead. Per-seed ranks averaged over each
    setting's own seeds: at 90 % fggp 1.5, gmp 1.5 (3 seeds each way), at 95 % and 98 % fggp 2, gmp 1; averaged
    over the settings fggp (1.5 + 2 + 2) / 3 = 1.8333, gmp 1.1667, random 3. Cut to the 3 seeds common to all
    settings (v2), fggp would average 2."""
    spec = {}
    for t, k in ((0.9, 6), (0.95, 3), (0.98, 3)):
        spec[(t, "gmp")] = [90.0] * k
        spec[(t, "fggp")] = [89.0, 89.0, 89.0, 91.0, 91.0, 91.0][:k]
        spec[(t, "random")] = [80.0 + 0.1 * s for s in range(k)]
    t = audit(frame(spec), with_numbers=True).set_index("claim")
    ranks = t.loc["highest-ranking", "numbers"]["average_ranks"]
    assert ranks["fggp"] == pytest.approx(11 / 6) and ranks["gmp"] == pytest.approx(7 / 6)
    assert ranks["random"] == 3.0
    assert "6 settings" not in t.loc["highest-ranking", "evidence"]
    assert "3 settings with 6/3 seeds, resampled within 2 group(s)" in t.loc["highest-ranking", "evidence"]


def _ablation(order_effect: float, rate_effect: float, seeds: int = 8) -> pd.DataFrame:
    """The 2 x 2 cells plus gmp, random and dense in 3 settings: magnitude-first annealed at the base, each
    mechanism adding its effect (gradient-first: ``order_effect``; fixed rate: ``rate_effect``), seed-to-seed
    spread shared by every run of a seed, run noise +-0.02."""
    spec = {(None, "dense"): 95.0 + np.linspace(-1, 1, seeds)}
    for t, base in ((0.9, 93.0), (0.95, 92.0), (0.98, 91.0)):
        common = base + np.linspace(-1, 1, seeds)
        for i, (m, o, r) in enumerate((("fggp", 1, 1), ("gf-annealed", 1, 0), ("mf-fixed", 0, 1), ("annealed", 0, 0))):
            spec[(t, m)] = common + o * order_effect + r * rate_effect + np.roll(np.resize(TINY, seeds), 3 * i)
        spec[(t, "gmp")] = common - 1.0 + np.resize(TINY[::-1], seeds)
        spec[(t, "random")] = common - 5.0
    return frame(spec)


def test_a_planted_order_effect_supports_the_order_claim():
    """Gradient-first 1 point ahead of magnitude-first at both rates, no rate effect: the order claim holds at the
    fixed rate (fggp vs mf-fixed) and at the annealed rate (gf-annealed vs annealed) in every setting; the rate
    claim finds the fixed and the annealed rate equivalent (differences 0 +- 0.05, TOST inside +-0.5): refuted.
    The interaction (fggp - mf-fixed) - (gf-annealed - annealed) is 0 +- 0.1."""
    t = audit(_ablation(1.0, 0.0), with_numbers=True).set_index("claim")
    assert t.loc["order-gradient-first", "verdict_text"] == "supported"
    assert t.loc["rate-fixed-beats-annealed", "verdict"] == "refuted"
    n = t.loc["order-gradient-first", "numbers"]
    assert n["comparisons"]["fggp vs mf-fixed"]["ahead"] == 3
    assert n["comparisons"]["gf-annealed vs annealed"]["ahead"] == 3
    inter = n["interactions"]["(fggp - mf-fixed) - (gf-annealed - annealed)"]
    assert all(abs(x) < 0.1 for x in inter["estimates"]) and inter["significant"] == 0
    assert "without runs here: gf-annealed:r0=0.01 vs annealed:r0=0.01" in t.loc["order-gradient-first", "evidence"]
    # the rate claim likewise, from a planted rate effect; both, from both
    t = audit(_ablation(0.0, 1.0)).set_index("claim")
    assert t.loc["rate-fixed-beats-annealed", "verdict"] == "supported"
    assert t.loc["order-gradient-first", "verdict"] == "refuted"
    t = audit(_ablation(0.3, 0.3)).set_index("claim")
    assert t.loc["order-gradient-first", "verdict_text"] == "supported, by less than 0.5 points"
    assert t.loc["rate-fixed-beats-annealed", "verdict_text"] == "supported, by less than 0.5 points"


def test_an_interaction_alone_is_no_order_effect():
    """Only the fggp cell is better (1 point): the order matters at the fixed rate but not at the annealed one,
    the rate with gradient-first but not with magnitude-first. Both claims say 'at every level': refuted (the
    other level is equivalent), and the interaction of 1 point is reported, significant in every setting."""
    df = _ablation(0.0, 0.0)
    df.loc[df["method"] == "fggp", "test_acc"] += 1.0
    t = audit(df, with_numbers=True).set_index("claim")
    assert t.loc["order-gradient-first", "verdict"] == "refuted"
    assert t.loc["rate-fixed-beats-annealed", "verdict"] == "refuted"
    inter = t.loc["order-gradient-first", "numbers"]["interactions"]["(fggp - mf-fixed) - (gf-annealed - annealed)"]
    assert inter["significant"] == 3 and all(0.9 < x < 1.1 for x in inter["estimates"])


def test_each_annealed_rate_is_its_own_comparison():
    """gf-annealed and annealed at r0 = 0.5 and at r0 = 0.01: gradient-first ahead at 0.5, behind at 0.01. Never
    pooled: the order claim is refuted by the r0 = 0.01 comparison; dropping that rate (a sensitivity choice)
    leaves the order effect at r0 = 0.5 and at the fixed rate: supported."""
    df = _ablation(1.0, 0.0)
    extra = df[df["method"].isin(["gf-annealed", "annealed"])].copy()
    extra["method"] = extra["method"] + ":r0=0.01"
    extra.loc[extra["method"] == "gf-annealed:r0=0.01", "test_acc"] -= 2.0
    df = pd.concat([df, extra], ignore_index=True)
    t = audit(df).set_index("claim")
    assert t.loc["order-gradient-first", "verdict"] == "refuted"
    assert t.loc["order-gradient-first", "reason"] == ("annealed:r0=0.01 is significantly ahead of gf-annealed:r0=0.01 "
                                                       "or equivalent to it within +-0.50 pp in 3 of 3 settings (at "
                                                       "least half)")
    t = audit(df, overrides={"exclude": ["annealed:r0=0.01", "gf-annealed:r0=0.01"]}).set_index("claim")
    assert t.loc["order-gradient-first", "verdict"] == "supported"


def test_collapsed_runs_are_counted_and_numbers_are_machine_readable():
    spec = {}
    for t, base in ((0.9, 93.0), (0.95, 92.0), (0.98, 91.0)):
        spec[(t, "fggp")] = [base, base + 0.2, base - 0.1]
        spec[(t, "gmp")] = [base - 0.3, base, base - 0.2]
        spec[(t, "random")] = [10.0, 10.0, 35.0] if t == 0.98 else [base - 5, base - 4, base - 6]
    t = audit(frame(spec), with_numbers=True).set_index("claim")
    assert (t["collapsed"] == 2).all()
    n1 = t.loc["outperforms-alternatives", "numbers"]
    assert n1["settings"] == 3 and n1["alternatives"] == ["gmp", "random"]
    assert n1["collapses"]["rates"]["random"]["collapsed"] == 2 and n1["collapses"]["rates"]["random"]["runs"] == 9
    # exact 95 % interval of 2/9 (scipy's Clopper-Pearson)
    ci = st.binomtest(2, 9).proportion_ci(method="exact")
    assert n1["collapses"]["rates"]["random"]["ci"] == pytest.approx([ci.low, ci.high])
    assert set(n1["per_method"]["gmp"]) == {"ahead", "ahead <d", "equivalent", "behind", "unresolved", "few seeds"}
    n3 = t.loc["highest-ranking", "numbers"]
    # fggp > gmp > random at every seed of every setting (random's runs at chance level included): per-seed ranks
    # 1, 2, 3 everywhere, so every resample of seeds gives the same ranks: P(best) = 1, intervals [r, r]
    assert n3["methods"] == ["fggp", "gmp", "random"] and n3["p_best"] == 1.0
    assert n3["average_ranks"] == {"fggp": 1.0, "gmp": 2.0, "random": 3.0}
    assert n3["rank_ci"] == {"fggp": [1.0, 1.0], "gmp": [2.0, 2.0], "random": [3.0, 3.0]}


def test_study_joins_protocols_without_pooling_them(tmp_path):
    """Synthetic records of the two protocols of the packaged study cpu-both: cpu (vgg19) and cpu-resnet
    (resnet50), 3 settings each. The study judges the 6 settings together (Holm over 6), each within its own
    protocol; every verdict names both protocols. Until cpu-resnet has records the study is not judged."""
    for proto, arch in (("cpu", "vgg19"), ("cpu-resnet", "resnet50")):
        write_grid(tmp_path, protocol=proto, archs=(arch,), starts=(1.0,), effects=STRONG, noise=0.02, seeds=range(4))
    df = load_runs(tmp_path)
    t = audit(df)
    assert list(dict.fromkeys(t["protocol"])) == ["cpu", "cpu-resnet", "cpu-both"]
    study = t[t["protocol"] == "cpu-both"].set_index("claim")
    assert (study["scope"] == "study").all() and study.loc["outperforms-alternatives", "n_settings"] == 6
    assert study.loc["outperforms-alternatives", "covers"] == (
        "protocol cpu: cifar10 vgg19 at 90/95/98% from dense-start (3 settings); protocol cpu-resnet: cifar10 "
        "resnet50 at 90/95/98% from dense-start (3 settings)")
    assert study.loc["outperforms-alternatives", "verdict"] == "supported"
    assert "settings won 6" in study.loc["outperforms-alternatives", "evidence"]
    # the same records labelled one protocol would share settings across archs? never: the arch is in the key,
    # and the protocol too: a study's setting is one protocol's
    from analysis.claims import build_arrays

    a = build_arrays(df, "fggp")
    assert len(a.settings) == 6 and {k[4] for k in a.settings} == {"cpu", "cpu-resnet"}
    assert len(set(a.groups)) == 2  # seeds resampled within each protocol's start
    only = df[df["protocol"] == "cpu"]
    assert "cpu-both" not in set(audit(only)["protocol"])
    with pytest.raises(ValueError, match="cpu-resnet has no records yet"):
        audit(only, protocol="cpu-both")

"""Calibration at a study's design (``calibrate --fit STUDY --design``): the settings of every protocol of the study,
each with its own protocol's seeds and fitted components, judged by the audit's own decide() as the study's audit
judges it (Holm over all settings, seeds resampled within each protocol's starts).

Tolerances as in test_calibration.py: a rate from R replicates has binomial se sqrt(p (1 - p) / R); "at most about
alpha" is asserted as rate <= alpha + 3 se."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import analysis.claims as claims
from analysis import audit, load_claims
from analysis.calibration import (
    METHODS,
    arrays_of,
    calibrate,
    decide_arrays,
    design_scenarios,
    join_designs,
    simulate,
)
from analysis.claims import build_arrays
from analysis.cli import main
from analysis.decisions import VERDICT_NAMES
from fake_records import make_record, write_record

ALPHA = 0.05
IDS = ("outperforms-alternatives", "surpasses-dense", "highest-ranking", "order-gradient-first",
       "rate-fixed-beats-annealed")

# Protocol pa (vgg19, targets 90 % and 95 %, dense start, seeds 0-2): fggp = base + c_k + d_k / 2 and annealed =
# base + c_k - d_k / 2, seed effect c = (-1, 0, 1), fggp - annealed d = (0, 1, 2) at 90 %, (0, 2, 4) at 95 %;
# random 20 below, its seed-0 run at 90 % at chance level (10.0).
PA = {0.9: (70.0, (0.0, 1.0, 2.0)), 0.95: (68.0, (0.0, 2.0, 4.0))}
PA_SEED = (-1.0, 0.0, 1.0)
# Protocol pb (resnet50, targets 90 %, 95 %, 98 %, dense start, seeds 0-1): fggp = base + c_k + g_k + d_k / 2,
# gmp = base + c_k + g_k - d_k / 2, seed effect c = (-0.5, 0.5), seed x setting g = (-1, 1) at 98 % only (0
# elsewhere), fggp - gmp d = (0, 1), (0, 2), (0, 3).
PB = {0.9: (75.0, (0.0, 1.0), (0.0, 0.0)), 0.95: (74.0, (0.0, 2.0), (0.0, 0.0)), 0.98: (72.0, (0.0, 3.0), (-1.0, 1.0))}
PB_SEED = (-0.5, 0.5)


def _write(root, protocol, arch, rows, dense_seeds):
    for t, m, k, acc in rows:
        write_record(root, make_record(arch=arch, method=m, target_sparsity=t, seed=k, protocol=protocol,
                                       test_acc=acc))
    for k in dense_seeds:
        write_record(root, make_record(arch=arch, method="dense", seed=k, protocol=protocol, test_acc=80.0 + k))


def _write_pa(root):
    rows = []
    for t, (base, d) in PA.items():
        for k, (c, dk) in enumerate(zip(PA_SEED, d)):
            rows += [(t, "fggp", k, base + c + dk / 2), (t, "annealed", k, base + c - dk / 2),
                     (t, "random", k, 10.0 if (t, k) == (0.9, 0) else base + c - 20.0)]
    _write(root, "pa", "vgg19", rows, range(3))


def _write_pb(root, targets=(0.9, 0.95, 0.98)):
    rows = []
    for t in targets:
        base, d, g = PB[t]
        for k, (c, gk, dk) in enumerate(zip(PB_SEED, g, d)):
            rows += [(t, "fggp", k, base + c + gk + dk / 2), (t, "gmp", k, base + c + gk - dk / 2)]
    _write(root, "pb", "resnet50", rows, range(2))


@pytest.fixture
def study(monkeypatch):
    """analysis/claims.toml with a study "both" of protocols pa and pb, planned with 4 and 6 seeds."""
    real = load_claims()
    cfg = {**real, "studies": {**real["studies"], "both": ["pa", "pb"]},
           "plans": {**real["plans"], "pa": {"seeds": {"dense-start": 4}}, "pb": {"seeds": {"dense-start": 6}}}}
    monkeypatch.setattr(claims, "load_claims", lambda *a, **k: cfg)
    return cfg


def test_a_studys_design_is_every_setting_of_each_protocol_with_its_own_seeds_and_noise(tmp_path, study, capsys):
    """Worked by hand from the records above (random and dense aside, as the fit leaves them).

    pa, 2 settings x 2 methods x 3 seeds: the residuals of each setting's method-by-seed interaction are
    +-(d_k - mean d) / 2, so a setting's own noise is sqrt(sum (d_k - mean d)^2 / 4): sqrt(2 / 4) = 0.71 at 90 %,
    sqrt(8 / 4) = 1.41 at 95 %; pooled, (1 + 4) / (2 x 1 x 2) = 1.25, noise 1.12. The seed x setting means are the
    seed effect c_k alone: seed x setting max(0 - 1.25 / 2, 0) = 0, seed sqrt(2 / 2 - 1.25 / 4) = sqrt(0.6875) =
    0.83. One run at chance level of 2 x 3 x 3 = 18 completed sparse runs: 0.0556.

    pb, 3 settings x 2 methods x 2 seeds: a setting's own noise is |d_1 - d_0| / 2: 0.50, 1.00, 1.50; pooled,
    (1 + 4 + 9) / 4 / 3 = 7 / 6, noise 1.08. Seed x setting means b = c + g, their mean over settings a = c + g /
    3 = -+5/6; sum (b - a)^2 = 2 (2/9) + 8/9 = 4/3 over (3 - 1)(2 - 1): 2/3 - (7/6) / 2 = 1/12, sd 0.29; seed
    2 (5/6)^2 - (1/12) / 3 - (7/6) / 6 = 7/6, sd 1.08. No run at chance level."""
    _write_pa(tmp_path)
    _write_pb(tmp_path)
    assert main(["calibrate", "--fit", "both", "--results", str(tmp_path), "--design", "--replicates", "2",
                 "--resamples", "5"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "study both joins protocols pa + pb (analysis/claims.toml [studies.both]), each fitted on its " \
                     "own records:"
    assert out[1] == ("variance components of protocol pa (2 settings x 2 methods x 3 seeds, random excluded), "
                      "standard deviations in accuracy points: seed 0.83, seed x setting 0.00, noise 1.12; runs at "
                      "chance level: 0.0556 of the completed sparse runs")
    assert out[2] == ("variance components of protocol pb (3 settings x 2 methods x 2 seeds, random excluded), "
                      "standard deviations in accuracy points: seed 1.08, seed x setting 0.29, noise 1.08; runs at "
                      "chance level: 0.0000 of the completed sparse runs")
    # the union of the settings (2 of pa, 3 of pb) and of the methods, each protocol's seeds (the most its cells
    # have: 3 and 2), the audit's rules over all of them
    assert out[3] == ("simulated at the design of study both: 5 settings (2 of pa, 3 of pb), each protocol's simulated "
                      "as its own grid (its seeds, components and dense reference); fggp + 3 other methods (annealed, "
                      "gmp, random) + dense; a protocol without runs of a method has none in the simulation either; 2 "
                      "replicates per scenario, 5 resamples of seeds for claim 3; every replicate judged by "
                      "analysis.claims.decide, the audit's own, as the study's audit: Holm over all 5 settings, seeds "
                      "resampled within each protocol's starts")
    assert out[4] == ("  protocol pa: 2 settings, fggp + 2 other methods (annealed, random) + dense, 3 seeds; standard "
                      "deviations seed 0.83, seed x setting 0.00, noise 0.71 at cifar10 vgg19 90% dense-start, 1.41 at "
                      "cifar10 vgg19 95% dense-start (dense: the pooled 1.12); run noise Student-t with 5 degrees of "
                      "freedom (heavy tails); runs at chance level drawn at the fitted rate 0.0556 per sparse run")
    assert out[5] == ("  protocol pb: 3 settings, fggp + 1 other methods (gmp) + dense, 2 seeds; standard deviations "
                      "seed 1.08, seed x setting 0.29, noise 0.50 at cifar10 resnet50 90% dense-start, 1.00 at "
                      "cifar10 resnet50 95% dense-start, 1.50 at cifar10 resnet50 98% dense-start (dense: the pooled "
                      "1.08); run noise Student-t with 5 degrees of freedom (heavy tails); runs at chance level drawn "
                      "at the fitted rate 0.0000 per sparse run")
    assert "null: no difference anywhere (3/3/2/2/2 seeds by setting)" in out
    # with --plan: each protocol's [plans.<protocol>] (the fixture: 4 seeds for pa, 6 for pb)
    assert main(["calibrate", "--fit", "both", "--results", str(tmp_path), "--design", "--plan", "--replicates", "2",
                 "--resamples", "5"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert ", seeds by start: 4 at the dense-start; " in out[4] and ", seeds by start: 6 at the dense-start; " in out[5]
    assert "null: no difference anywhere (4/4/6/6/6 seeds by setting)" in out


def test_join_designs_and_the_simulation_keep_each_protocols_settings_seeds_and_noise():
    pa = {"seed": 0.0, "setting_seed": 0.0, "noise": 1.0, "noise_by_setting": [0.5, 2.0]}
    pb = {"seed": 0.0, "setting_seed": 0.0, "noise": 3.0, "noise_by_setting": [1.0, 1.0, 4.0]}
    j = join_designs([("pa", 2, ["fggp", "annealed", "random"], 6, pa, None),
                      ("pb", 3, ["fggp", "gmp"], 4, pb, (4, 3, 3))])
    assert j["S"] == 5 and j["K"] == 6 and j["methods"] == ["fggp", "annealed", "gmp", "random"]
    assert j["protocols"] == ("pa", "pa", "pb", "pb", "pb") and j["seeds_by_setting"] == (6, 6, 4, 3, 3)
    assert j["components"] == {"pa": pa, "pb": pb}
    assert j["absent"].tolist() == [[False, False, True, False]] * 2 + [[False, True, False, True]] * 3
    scn = design_scenarios(j["S"], K=j["K"], seeds_by_setting=j["seeds_by_setting"], methods=j["methods"],
                           protocols=j["protocols"], absent=j["absent"])["null"]
    Y, Dref = simulate(scn, 4000, np.random.default_rng(1), components=j["components"])
    assert Y.shape == (4000, 5, 4, 6) and Dref.shape == (4000, 5, 6)
    have = np.isfinite(Y).all(axis=0)  # (S, M, K): the runs every replicate has
    assert (have == ~np.isnan(Y).all(axis=0)).all()
    # pa: every seed, no gmp; pb: its seeds by setting, only fggp and gmp
    assert have[:2].sum(axis=-1).tolist() == [[6, 6, 0, 6]] * 2
    assert have[2:].sum(axis=-1).tolist() == [[4, 0, 4, 0], [3, 0, 3, 0], [3, 0, 3, 0]]
    assert np.isfinite(Dref).all(axis=0).sum(axis=-1).tolist() == [6, 6, 4, 3, 3]
    # no seed effects here: the spread of a setting's fggp runs is its own protocol's noise of that setting (4000 x
    # its seeds draws of unit-variance Student-t noise: within 5 %); dense, the pooled noise of its protocol
    sd = [float(np.nanstd(Y[:, s, 0])) for s in range(5)]
    assert sd == pytest.approx([0.5, 2.0, 1.0, 1.0, 4.0], rel=0.05)
    assert float(np.nanstd(Dref[:, 0])) == pytest.approx(1.0, rel=0.05)
    assert float(np.nanstd(Dref[:, 2])) == pytest.approx(3.0, rel=0.05)
    with pytest.raises(ValueError, match="no components for protocol"):
        simulate(scn, 1, np.random.default_rng(0), components={"pa": pa})
    # the seeds resampled together: a protocol's settings with the same seeds, never two protocols' settings
    a = arrays_of(Y[:1], Dref[:1], j["methods"], j["seeds_by_setting"], j["protocols"])
    assert a.groups.tolist() == [0, 0, 2, 1, 1] and [k[4] for k in a.settings] == list(j["protocols"])
    assert arrays_of(Y[:1], Dref[:1], j["methods"], None, j["protocols"]).groups.tolist() == [0, 0, 1, 1, 1]


def _two_protocols():
    """A cpu-like protocol (6 settings, 12 seeds at the dense start and 5 at the sparse one, the cpu records'
    spreads and collapse rate) joined with a second one of 3 settings and 6 seeds with spreads of its own (twice the
    seed effect, a smaller noise, no collapses); both with every method."""
    a = {"seed": 0.19, "setting_seed": 0.11, "noise": 0.35, "collapse_rate": 0.0084, "tail_df": 5,
         "noise_by_setting": [0.28, 0.27, 0.5, 0.23, 0.31, 0.4]}
    b = {"seed": 0.4, "setting_seed": 0.2, "noise": 0.3, "collapse_rate": 0.0, "tail_df": 5}
    return join_designs([("a", 6, list(METHODS), 12, a, (12, 12, 12, 5, 5, 5)),
                         ("b", 3, list(METHODS), 6, b, None)])


def _rates(j, scenarios, R, seed, resamples=100):
    d = design_scenarios(j["S"], K=j["K"], seeds_by_setting=j["seeds_by_setting"], methods=j["methods"],
                         protocols=j["protocols"], absent=j["absent"])
    return calibrate([d[s] for s in scenarios], n_replicates=R, seed=seed, n_resamples=resamples,
                     components=j["components"]).set_index(["scenario", "claim"])


def test_a_study_under_no_effect_supports_no_claim_beyond_alpha():
    """No difference anywhere in either protocol: no claim supported beyond alpha, claim 3 refuted no more often
    (200 replicates: alpha + 3 se = 0.096)."""
    R = 200
    r = _rates(_two_protocols(), ["null"], R, 21)
    bound = ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / R)
    for cid in IDS:
        assert r.loc[("null", cid), "supported"] <= bound, cid
    assert r.loc[("null", "highest-ranking"), "refuted"] <= bound


def test_a_study_finds_an_effect_of_two_delta_planted_in_both_protocols():
    """Order and rate effects of 2 delta each in both protocols: every claim supported in most replicates, never
    refuted."""
    r = _rates(_two_protocols(), ["effect-2"], 60, 22)
    for cid in IDS:
        assert r.loc[("effect-2", cid), "supported"] >= 0.9, cid
        assert r.loc[("effect-2", cid), "refuted"] == 0.0, cid


def test_a_study_member_with_too_few_records_is_refused_in_one_line(tmp_path, study, capsys):
    _write_pa(tmp_path)
    _write_pb(tmp_path, targets=(0.9,))  # pb: one setting
    assert main(["calibrate", "--fit", "both", "--results", str(tmp_path), "--design", "--plan"]) == 2
    assert capsys.readouterr() == ("", "error: cannot calibrate study both: protocol pb has too few records to fit "
                                       "its variance components, 1 setting (the fit needs 2 settings and 2 methods "
                                       "besides random with a completed run of each method at the same 2 seeds, runs "
                                       "at chance level aside)\n")
    # pa: every setting, but one seed with a run of every method (fggp alone at seeds 1 and 2)
    for p in tmp_path.rglob("*.json"):
        if "-pa-" in p.name and "annealed" in p.name and not p.name.endswith("-s0.json"):
            p.unlink()
    for p in tmp_path.rglob("*.json"):
        if "-pb-" in p.name:
            p.unlink()
    _write_pb(tmp_path)
    assert main(["calibrate", "--fit", "both", "--results", str(tmp_path)]) == 2
    assert capsys.readouterr().err == ("error: cannot calibrate study both: protocol pa has too few records to fit its "
                                       "variance components, at most 1 seed with a run of every method in a setting "
                                       "(the fit needs 2 settings and 2 methods besides random with a completed run of "
                                       "each method at the same 2 seeds, runs at chance level aside)\n")
    assert main(["calibrate", "--fit", "both", "--results", str(tmp_path), "--design", "--plan", "dense-start=5"]) == 2
    assert capsys.readouterr().err == ("error: --plan dense-start=5 gives one protocol's design; study both joins "
                                       "several: give --plan alone (each protocol's [plans.P] of "
                                       "analysis/claims.toml), or --fit one of pa, pb\n")
    for p in tmp_path.rglob("*.json"):
        if "-pb-" in p.name:
            p.unlink()
    assert main(["calibrate", "--fit", "both", "--results", str(tmp_path), "--design"]) == 2
    assert capsys.readouterr().err == ("error: study both joins pa, pb, and pb has no records yet: calibrate the "
                                       "protocols alone until it has\n")


def _study_records(Y, Dref, protocols, methods):
    """One replicate as run records: setting s of its protocol at target (0.9, 0.95, 0.98)[i] (i its place in the
    protocol), dense start; NaN is no run."""
    rows, place = [], {}
    for s, p in enumerate(protocols):
        i = place[p] = place.get(p, -1) + 1
        for m, name in enumerate(methods):
            for k in range(Y.shape[-1]):
                if np.isfinite(Y[s, m, k]):
                    rows.append(dict(dataset="d", arch="a", method=name, target_sparsity=(0.9, 0.95, 0.98)[i],
                                     initial_density=1.0, seed=k, protocol=p, status="completed",
                                     run_id=f"{p}{s}{m}{k}", test_acc=float(Y[s, m, k]), path="x",
                                     best_test_acc_after_pruning=np.nan, sparsity=0.9,
                                     collapsed=bool(Y[s, m, k] <= 11.0)))
        if i == 0:
            for k in range(Y.shape[-1]):
                if np.isfinite(Dref[s, k]):
                    rows.append(dict(dataset="d", arch="a", method="dense", target_sparsity=0.0, initial_density=1.0,
                                     seed=k, protocol=p, status="completed", run_id=f"{p}d{k}",
                                     test_acc=float(Dref[s, k]), path="x", best_test_acc_after_pruning=np.nan,
                                     sparsity=0.0, collapsed=False))
    return pd.DataFrame(rows)


def test_the_audit_of_a_simulated_study_agrees_with_the_vectorised_rules():
    """The same replicate of a study's design, judged as arrays and as records by the audit's study: the same
    verdicts (protocol b with fewer seeds and without gf-annealed, runs at chance level included)."""
    from dataclasses import replace

    cfg = load_claims()
    cfg = {**cfg, "claims": [replace(c, n_resamples=200) for c in cfg["claims"]],
           "studies": {"ab": ["a", "b"]}, "plans": {}}
    comp = {"seed": 1.0, "setting_seed": 0.5, "noise": 0.6, "collapse_rate": 0.03}
    j = join_designs([("a", 3, list(METHODS), 5, comp, None),
                      ("b", 3, [m for m in METHODS if m != "gf-annealed"], 4, {**comp, "noise": 0.3}, None)])
    d = design_scenarios(j["S"], K=j["K"], seeds_by_setting=j["seeds_by_setting"], methods=j["methods"],
                         protocols=j["protocols"], absent=j["absent"])
    seen = set()
    for i, name in enumerate(("null", "effect-1")):
        Y, Dref = simulate(d[name], 3, np.random.default_rng(30 + i), components=j["components"])
        for r in range(3):
            v = decide_arrays(Y[r:r + 1], Dref[r:r + 1], cfg, rng=np.random.default_rng(0), n_resamples=200,
                              methods=j["methods"], seeds_by_setting=j["seeds_by_setting"], protocols=j["protocols"])
            records = _study_records(Y[r], Dref[r], j["protocols"], j["methods"])
            a = arrays_of(Y[r:r + 1], Dref[r:r + 1], j["methods"], j["seeds_by_setting"], j["protocols"])
            assert a.groups.tolist() == build_arrays(records, "fggp").groups.tolist() == [0, 0, 0, 1, 1, 1]
            t = audit(records, protocol="ab", claims=cfg)
            assert set(t["scope"]) == {"study"}
            got = dict(zip(t["claim"], t["verdict"]))
            assert got == {cid: VERDICT_NAMES[int(code[0])] for cid, code in v.items()}, (name, r)
            seen.update(got.values())
    assert len(seen) >= 2

"""The claims audit: packaged claims file, each decision rule on data built to decide it, per protocol."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import audit, load_claims, load_runs
from analysis.claims import DECISION_RULES
from fake_records import write_grid

STRONG = {"fggp": 2.0, "annealed": 0.3, "gmp": 0.0, "random": -2.0, "dense": 0.5}
WEAK = {"fggp": -0.2, "annealed": 0.3, "gmp": 0.0, "random": -2.0, "dense": 0.5}


@pytest.fixture(scope="module")
def two_protocols(tmp_path_factory):
    """protocol "paper": fggp clearly best (two datasets -> 24 settings, 4 seeds, tiny noise, one
    diverged gmp run per dataset); protocol "mini": fggp below annealed everywhere and below dense."""
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


def test_audit_per_protocol(two_protocols):
    t = audit(two_protocols)
    assert list(t["protocol"]) == ["mini"] * 3 + ["paper"] * 3
    assert verdicts(t, "paper") == {"outperforms-alternatives": "supported", "surpasses-dense": "supported",
                                    "highest-ranking": "supported"}
    assert verdicts(t, "mini") == {"outperforms-alternatives": "not supported", "surpasses-dense": "not supported",
                                   "highest-ranking": "not supported"}
    paper = t[t["protocol"] == "paper"].set_index("claim")
    assert (paper["diverged"] == 2).all() and (paper["completed"] == 2 * 200 - 2).all()
    assert paper.loc["outperforms-alternatives", "n_settings"] == 24
    ev = paper.loc["outperforms-alternatives", "evidence"]
    assert "24/24 settings" in ev and "annealed 24/0" in ev
    # k = 4, N = 24: CD = 2.569 * sqrt(20 / 144) = 0.957 < the gap of 1 (fggp always 1st, annealed 2nd)
    assert "gap +1.000 vs Nemenyi CD 0.957" in paper.loc["highest-ranking", "evidence"]
    assert "paired t-test" in paper.loc["outperforms-alternatives", "test"]
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
                             test_acc=a, best_test_acc_after_pruning=np.nan, sparsity=tgt, path="x"))
    return pd.DataFrame(rows)


def claim(df, cid):
    t = audit(df).set_index("claim")
    return t.loc[cid, "verdict"], t.loc[cid, "evidence"]


def test_surpasses_dense_inconclusive_when_above_but_not_significant():
    df = frame({(0.9, "fggp"): [94.0, 93.0, 95.0], (0.98, "fggp"): [90.0, 90.1, 90.2],
                (None, "dense"): [93.9, 93.5, 94.1]})
    v, ev = claim(df, "surpasses-dense")
    assert v == "inconclusive" and "above dense in 1/2 settings, significantly in 0" in ev


def test_surpasses_dense_supported_and_not_supported():
    up = frame({(0.9, "fggp"): [94.5, 94.6, 94.55], (0.98, "fggp"): [90.0, 90.1, 90.2],
                (None, "dense"): [93.9, 93.95, 94.0]})
    assert claim(up, "surpasses-dense")[0] == "supported"
    down = frame({(0.9, "fggp"): [92.5, 92.6, 92.55], (None, "dense"): [93.9, 93.95, 94.0]})
    assert claim(down, "surpasses-dense")[0] == "not supported"
    few = frame({(0.9, "fggp"): [92.5, 92.6], (None, "dense"): [93.9, 93.95, 94.0]})
    assert claim(few, "surpasses-dense")[0] == "inconclusive"  # fewer than 3 seeds: no verdict against
    nodense = frame({(0.9, "fggp"): [92.5, 92.6, 92.7]})
    assert claim(nodense, "surpasses-dense") == ("inconclusive", "no dense reference runs")


def test_outperforms_unresolved_when_ahead_but_not_significant():
    # fggp ahead on average in all three settings but noisy: no significant win, no loss.
    spec = {}
    for t, base in ((0.9, 93.0), (0.95, 92.0), (0.98, 91.0)):
        spec[(t, "fggp")] = [base + 0.1, base + 1.0, base - 0.5]
        spec[(t, "gmp")] = [base, base, base - 0.4]
    v, ev = claim(frame(spec), "outperforms-alternatives")
    assert v == "inconclusive" and "in 0/3 settings" in ev and "unresolved 3" in ev


def test_highest_ranking_best_but_not_beyond_cd_is_inconclusive():
    # 3 methods, 4 settings: fggp always first, but CD(3, 4) = 1.657 > the gap of 1
    spec = {}
    for t in (0.9, 0.92, 0.95, 0.98):
        spec[(t, "fggp")] = [93.0, 93.1, 93.2]
        spec[(t, "gmp")] = [92.0, 92.1, 92.2]
        spec[(t, "random")] = [90.0, 90.1, 90.2]
    v, ev = claim(frame(spec), "highest-ranking")
    assert v == "inconclusive" and "gap +1.000 vs Nemenyi CD 1.657" in ev

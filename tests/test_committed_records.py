"""Every committed run record keeps its run id: recomputed from its stored config, it is its stored run_id."""

import json
from pathlib import Path

import pytest

from fggp_repro.spec import config as C

REPO = Path(__file__).resolve().parent.parent
RECORDS = sorted(p for p in (REPO / "results").rglob("*.json") if "raw" in p.relative_to(REPO / "results").parts)


def test_there_are_committed_records():
    assert len(RECORDS) >= 191  # 185 mini + 6 paper-short when this test was written


@pytest.mark.parametrize("path", RECORDS, ids=lambda p: str(p.relative_to(REPO / "results")))
def test_run_id_recomputes_from_the_stored_config(path):
    rec = json.loads(path.read_text())
    cfg = C.from_dict(rec["config"])
    assert C.run_id(cfg) == rec["run_id"] == path.stem
    if cfg.pruning.method == "dense":
        # every dense record already holds the values canonicalisation gives (the defaults), so none changes id
        assert {k: rec["config"]["pruning"][k] for k in C.DENSE_IGNORED} == {
            "sparsity": 0.9, "init": "dense", "rate": 0.5, "r0": 0.5, "r_min": 0.005, "mt_fraction": 0.0005}

"""Which look an audit is (analysis/looks.py): complete seeds counted by hand on small frames, the three
looks against a plan, the plans of the claims file, and the look in the audit, its table and its command."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from analysis import audit, load_claims
from analysis.cli import audit_main
from analysis.looks import complete_seeds, design_look
from fake_records import write_grid


def runs(spec: dict, protocol: str = "p") -> pd.DataFrame:
    """{(target_sparsity, initial_density, method): {seed: status}} -> a runs frame of one dataset/arch."""
    rows = []
    for (tgt, dens, m), seeds in spec.items():
        for s, status in seeds.items():
            rows.append(dict(dataset="cifar10", arch="vgg19", method=m, target_sparsity=tgt, initial_density=dens,
                             seed=s, protocol=protocol, status=status, run_id=f"{tgt}{dens}{m}{s}",
                             test_acc=90.0 if status == "completed" else float("nan"), collapsed=False))
    return pd.DataFrame(rows)


C = "completed"
DENSE4 = {(0.0, 1.0, "dense"): {0: C, 1: C, 2: C, 3: C}}
# dense start: at 90 % annealed lacks seed 3 -> 3 complete seeds; at 95 % all of 0-3 -> 4; the start has the fewer, 3.
# 50 %-sparse start at 90 %: fggp has seeds 0 and 1, annealed only seed 0 (diverged, still a finished run) -> 1.
SPEC = {**DENSE4,
        (0.9, 1.0, "fggp"): {0: C, 1: C, 2: C, 3: C}, (0.9, 1.0, "annealed"): {0: C, 1: C, 2: C},
        (0.95, 1.0, "fggp"): {0: C, 1: C, 2: C, 3: C}, (0.95, 1.0, "annealed"): {0: C, 1: C, 2: C, 3: C},
        (0.9, 0.5, "fggp"): {0: C, 1: C}, (0.9, 0.5, "annealed"): {0: "diverged"}}


def test_complete_seeds_by_hand():
    assert complete_seeds(runs(SPEC)) == {"dense-start": 3, "50%-sparse-start": 1}
    # the dense reference counts too: without its seeds 2 and 3, only seeds 0 and 1 are complete at the dense start
    fewer = {**SPEC, (0.0, 1.0, "dense"): {0: C, 1: C}}
    assert complete_seeds(runs(fewer)) == {"dense-start": 2, "50%-sparse-start": 1}
    # no dense runs at all (a check protocol): only the sparse methods decide
    no_dense = {k: v for k, v in SPEC.items() if k[2] != "dense"}
    assert complete_seeds(runs(no_dense)) == {"dense-start": 3, "50%-sparse-start": 1}
    # a seed that one method of a setting never ran is never complete there, however many others ran it
    assert complete_seeds(runs({(0.9, 1.0, "fggp"): {5: C, 6: C}, (0.9, 1.0, "gmp"): {7: C}})) == {"dense-start": 0}


def test_the_three_looks():
    plans = {"p": {"seeds": {"dense-start": 3, "50%-sparse-start": 2}, "source": "a test plan"}}
    look = design_look(runs(SPEC), "p", plans)
    assert look.kind == "interim" and look.seeds == {"dense-start": 3, "50%-sparse-start": 1}
    assert "Complete seeds: dense-start 3 of 3 planned, 50%-sparse-start 1 of 2 planned" in look.text
    assert "[plans.p]: a test plan" in look.text and "decides nothing" in look.text

    done = {**SPEC, (0.9, 0.5, "annealed"): {0: "diverged", 1: C}}
    look = design_look(runs(done), "p", plans)
    assert look.kind == "final" and "dense-start 3 of 3 planned, 50%-sparse-start 2 of 2 planned" in look.text

    # more seeds than planned is still the planned look (the start has at least its seeds)
    assert design_look(runs(done), "p", {"p": {**plans["p"], "seeds": {"dense-start": 2,
                                                                       "50%-sparse-start": 2}}}).kind == "final"

    # a planned start with no runs yet: 0 of its seeds
    only_dense = {k: v for k, v in SPEC.items() if k[1] == 1.0}
    look = design_look(runs(only_dense), "p", plans)
    assert look.kind == "interim" and "50%-sparse-start 0 of 2 planned" in look.text

    # runs from a start outside the plan: not the planned design
    look = design_look(runs(done), "p", {"p": {"seeds": {"dense-start": 3}, "source": "x"}})
    assert look.kind == "unplanned" and "50%-sparse-start 2 (not in the plan)" in look.text

    # no plan for the protocol
    look = design_look(runs(done), "q-other", plans)
    assert look.kind == "unplanned" and look.planned == {}
    assert "No seeds are planned for protocol q-other" in look.text
    assert design_look(runs(done), "p", None).kind == "unplanned"


def _packaged_text() -> str:
    from importlib import resources

    return resources.files("analysis").joinpath("claims.toml").read_text(encoding="utf-8")


def test_packaged_plans():
    plans = load_claims()["plans"]
    assert plans["cpu"]["seeds"] == {"dense-start": 12, "50%-sparse-start": 5}
    assert plans["mini"]["seeds"] == {"dense-start": 5, "50%-sparse-start": 5}
    assert plans["paper"]["seeds"] == plans["paper-short"]["seeds"] == {"dense-start": 5, "50%-sparse-start": 5}


@pytest.mark.parametrize("old,new,message", [
    ('"dense-start" = 12,', '"dense" = 12,', r"'dense' is not a start label"),
    ('"dense-start" = 12,', '"dense-start" = 1,', r"seeds.dense-start must be a whole number of seeds >= 2, got 1"),
    ('"dense-start" = 12,', '"dense-start" = 12.5,', r"got 12.5"),
    ('"dense-start" = 12,', '"dense-start" = true,', r"got True"),
    ('source = "5 seeds in every cell', 'note = "5 seeds in every cell', r"\[plans.cpu\] needs exactly two keys"),
    ('seeds = { "dense-start" = 12, "50%-sparse-start" = 5 }', 'seeds = 12', r"\[plans.cpu\] seeds must be a table"),
])
def test_bad_plans(tmp_path, old, new, message):
    text = _packaged_text()
    assert old in text
    bad = tmp_path / "c.toml"
    bad.write_text(text.replace(old, new, 1))
    with pytest.raises(ValueError, match=message):
        load_claims(bad)


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    """protocol cpu, both starts, seeds 0-4: dense start 5 of 12 planned, sparse start 5 of 5."""
    root = tmp_path_factory.mktemp("looks")
    write_grid(root, protocol="cpu", archs=("vgg19",), targets=(0.9, 0.95), seeds=(0, 1, 2, 3, 4))
    return root


def test_look_in_the_audit_and_its_command(grid, tmp_path, capsys):
    t = audit(grid)
    assert list(t["look"]) == ["interim"] * 5
    assert audit_main(["--results", str(grid)]) == 0
    out = capsys.readouterr().out
    assert "Look: interim. Complete seeds: dense-start 5 of 12 planned, 50%-sparse-start 5 of 5 planned" in out
    assert audit_main(["--results", str(grid), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["look"] for r in rows} == {"interim"} and "dense-start 5 of 12 planned" in rows[0]["look_note"]
    # the same records read with a claims file that plans 5 seeds per start: the final look
    claims = tmp_path / "claims.toml"
    claims.write_text(_packaged_text().replace('"dense-start" = 12,', '"dense-start" = 5,', 1))
    assert audit_main(["--results", str(grid), "--claims", str(claims)]) == 0
    assert "Look: final. Complete seeds: dense-start 5 of 5 planned" in capsys.readouterr().out

"""Which look at a protocol's design an audit is: interim, final, or of an unplanned design.

The audit's decision rules are calibrated (``tests/analysis_tests/test_calibration.py``) for one look
at a fixed number of seeds. A grid that grows seed by seed, with its tables regenerated after every
batch, is looked at many times; a verdict read from one of those looks is not a verdict of the design.
``analysis/claims.toml`` therefore declares, per protocol, the seeds each start is planned to have
(``[plans.<protocol>]``), and every audit says which look it is:

* ``final``: every start in the plan has at least its planned number of complete seeds, and no start
  outside the plan has runs;
* ``interim``: some planned start has fewer complete seeds than planned (none at all included);
* ``unplanned``: the protocol has no plan, or has runs from a start its plan does not name.

A seed is complete in a setting when every method with runs in that setting, and the dense reference of
its dataset and architecture (where one exists), has a finished record (completed or diverged) at that
seed. A start's complete seeds are the fewest over its settings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pandas as pd

from .records import DENSE, start_label

__all__ = ["Look", "LOOKS", "check_plans", "complete_seeds", "design_look", "study_look", "start_seeds_problem"]

LOOKS = ("final", "interim", "unplanned")
_START = re.compile(r"^(dense-start|\d+(\.\d+)?%-sparse-start)$")


@dataclass(frozen=True)
class Look:
    """Which look at the planned design an audit of one protocol is."""

    kind: str  #: one of LOOKS
    seeds: dict  #: start label -> complete seeds (the fewest over the start's settings)
    planned: dict = field(default_factory=dict)  #: start label -> planned seeds; {} without a plan
    text: str = ""  #: one paragraph of words for tables and the command line


def check_plans(plans, where: str) -> dict:
    """Validate the ``[plans]`` table of a claims file: protocol -> {seeds = {start label = int}, source = str}.
    Raises ``ValueError`` naming the problem and how to fix it."""
    if not isinstance(plans, dict):
        raise ValueError(f"claims file {where}: [plans] must be a table of protocols, got {plans!r}")
    for protocol, plan in plans.items():
        head = f"claims file {where}: [plans.{protocol}]"
        if not isinstance(plan, dict) or set(plan) != {"seeds", "source"}:
            raise ValueError(f"{head} needs exactly two keys, seeds (a table start label = seeds) and source "
                             f"(where the number was decided)")
        if not isinstance(plan["source"], str) or not plan["source"].strip():
            raise ValueError(f"{head} source must name where the planned seeds were decided")
        seeds = plan["seeds"]
        if not isinstance(seeds, dict) or not seeds:
            raise ValueError(f"{head} seeds must be a table such as {{ \"dense-start\" = 5 }}")
        for start, n in seeds.items():
            problem = start_seeds_problem(start, n)
            if problem:
                raise ValueError(f"{head} seeds{'.' if _START.match(start) else ': '}{problem}")
    return plans


def start_seeds_problem(start, n) -> str | None:
    """What is wrong with one planned start label and its seeds, in words, or None."""
    if not isinstance(start, str) or not _START.match(start):
        return f"{start!r} is not a start label; use \"dense-start\" or e.g. \"50%-sparse-start\""
    if not isinstance(n, int) or isinstance(n, bool) or n < 2:
        return f"{start} must be a whole number of seeds >= 2, got {n!r}"
    return None


def complete_seeds(dp: pd.DataFrame, reference: str = DENSE) -> dict:
    """Start label -> the fewest complete seeds over that start's settings, for one protocol's runs ``dp``
    (a :func:`analysis.load_runs` frame). Every record is a finished run (completed or diverged: a run still
    in flight has none), so a record at a seed is all a method needs there. Starts without sparse runs are
    absent."""
    ref_seeds = {k: set(g["seed"].astype(int)) for k, g in dp[dp["method"] == reference].groupby(["dataset", "arch"])}
    out: dict = {}
    sparse = dp[dp["method"] != reference]
    for (ds, arch, _, dens), g in sparse.groupby(["dataset", "arch", "target_sparsity", "initial_density"]):
        have = [set(s.astype(int)) for _, s in g.groupby("method")["seed"]]
        have += [ref_seeds[(ds, arch)]] if (ds, arch) in ref_seeds else []
        n = len(set.intersection(*have))
        label = start_label(float(dens))
        out[label] = min(out.get(label, n), n)
    return out


def design_look(dp: pd.DataFrame, protocol: str, plans: dict | None, reference: str = DENSE) -> Look:
    """The look the records ``dp`` of ``protocol`` are at, against ``plans`` (the claims file's ``[plans]``)."""
    have = complete_seeds(dp, reference)
    plan = (plans or {}).get(protocol)
    calib = ("The decision rules are calibrated for one look at a fixed number of seeds "
             "(tests/analysis_tests/test_calibration.py)")
    if plan is None:
        now = ", ".join(f"{s} {n}" for s, n in sorted(have.items())) or "none"
        return Look("unplanned", have, {}, text=(
            f"Look: unplanned. No seeds are planned for protocol {protocol} (analysis/claims.toml [plans]); complete "
            f"seeds now: {now}. {calib}: these verdicts keep those error rates only if the number of seeds present "
            f"was fixed before the runs were made."))
    planned = dict(plan["seeds"])
    extra = sorted(set(have) - set(planned))
    parts = [f"{s} {have.get(s, 0)} of {n} planned" for s, n in planned.items()]
    parts += [f"{s} {have[s]} (not in the plan)" for s in extra]
    counts = ", ".join(parts)
    src = f"analysis/claims.toml [plans.{protocol}]: {' '.join(plan['source'].split())}"
    if extra:
        return Look("unplanned", have, planned, text=(
            f"Look: unplanned. Complete seeds: {counts} ({src}). Runs from a start outside the plan are in the "
            f"audit, so it is not the planned design. {calib}."))
    if all(have.get(s, 0) >= n for s, n in planned.items()):
        return Look("final", have, planned, text=(
            f"Look: final. Complete seeds: {counts} ({src}). {calib}, and these verdicts are that look."))
    return Look("interim", have, planned, text=(
        f"Look: interim. Complete seeds: {counts} ({src}). {calib}, at the planned seeds. A verdict of an interim "
        f"look decides nothing and can change as seeds are added; only the final look's verdicts are the audit's."))


def study_look(runs: pd.DataFrame, protocols, plans: dict | None, reference: str = DENSE) -> Look:
    """The look of a study joining ``protocols``: the least final of their looks (unplanned, then interim,
    then final), with each protocol's own account."""
    looks = [design_look(runs[runs["protocol"] == p], p, plans, reference) for p in protocols]
    kinds = {lk.kind for lk in looks}
    kind = "unplanned" if "unplanned" in kinds else "interim" if "interim" in kinds else "final"
    text = (f"Look of the study ({', '.join(protocols)}): {kind}, the least final of its protocols' looks. "
            + " ".join(f"[{p}] {lk.text}" for p, lk in zip(protocols, looks)))
    return Look(kind, {}, {}, text)

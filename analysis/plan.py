"""Planning: how many seeds each setting of a protocol needs for the audit's paired comparisons to
detect a given difference, from the seed-to-seed spread observed so far (``fggp-repro plan``)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .claims import judge
from .formatting import fmt_num
from .power import min_detectable_difference, seeds_needed
from .records import DENSE, SETTING_KEYS, setting_label

__all__ = ["plan", "plan_text", "PLAN_COLUMNS"]

PLAN_COLUMNS = list(SETTING_KEYS) + ["baseline", "alternative", "n_pairs", "sd", "m", "level", "mdd_now",
                                     "seeds_needed"]


def plan(runs: pd.DataFrame, claim: dict, *, effect: float, power: float = 0.8, alpha: float = 0.05) -> pd.DataFrame:
    """Per setting and comparison of one protocol (``claim["method"]`` against every other sparse method,
    two-sided, and against dense, one-sided): the paired seeds so far, the standard deviation of the
    paired differences, the minimum detectable difference with those seeds, and the seeds needed to
    detect ``effect`` (accuracy points) with probability ``power``. The level is alpha / m, m = the
    settings in the comparison's family (Bonferroni: the first step of the audit's Holm procedure, so a
    conservative figure). NaN where fewer than 2 pairs leave the spread unknown."""
    j = judge(runs, {**claim, "comparison_test": "paired-t"})
    rows = []
    if j.design is None:
        return pd.DataFrame(columns=PLAN_COLUMNS)
    for b, f in j.families.items():
        idx = [i for i in range(len(j.design.settings)) if b != DENSE or j.design.has_dense[i]]
        m = len(idx)
        for i in idx:
            n = int(f.stats.n[i])
            sd = float(f.stats.sd[i])
            lev = alpha / m
            rows.append(dict(zip(SETTING_KEYS, j.design.settings[i]), baseline=b, alternative=f.alternative, n_pairs=n,
                             sd=sd, m=m, level=lev,
                             mdd_now=min_detectable_difference(sd, n, lev, power, f.alternative),
                             seeds_needed=seeds_needed(effect, sd, lev, power, f.alternative)))
    return pd.DataFrame(rows, columns=PLAN_COLUMNS)


def _n(x: float) -> str:
    if math.isnan(x):
        return "n/a"
    if math.isinf(x):
        return "> 100000"
    return str(int(x))


def plan_text(table: pd.DataFrame, protocol: str, claim: dict, *, effect: float, power: float, alpha: float) -> str:
    """The plan as printed by ``fggp-repro plan``: one block per setting, one line per comparison, then the
    seeds the setting needs (the most any of its comparisons needs)."""
    m = claim["method"]
    lines = [f"protocol {protocol}: seeds needed to detect a difference of {fmt_num(effect)} accuracy points with "
             f"{power:.0%} power (paired t-test; {m} vs alternatives two-sided, vs dense one-sided; level alpha/m = "
             f"{alpha:g}/m, m = the settings of each comparison), from the observed sd of the seed-paired differences"]
    if table.empty:
        return lines[0] + f"\n  no {m} runs: nothing to plan"
    overall = []
    for key, g in table.groupby(list(SETTING_KEYS), sort=False):
        lines.append(f"  {setting_label(*key[:4])}")
        w = max(len(b) for b in g["baseline"])
        for r in g.itertuples(index=False):
            side = "one-sided" if r.alternative == "greater" else "two-sided"
            lines.append(f"    {m} - {r.baseline:{w}s}  pairs {r.n_pairs:2d}  sd {fmt_num(r.sd):>6s}  "
                         f"MDD now {fmt_num(r.mdd_now):>6s} pp  needs {_n(r.seeds_needed):>6s} seeds ({side}, "
                         f"m = {r.m})")
        need = g["seeds_needed"].to_numpy(float)
        if np.isnan(need).all():
            lines.append("    -> unknown: fewer than 2 paired seeds, no spread to plan from")
            overall.append(math.nan)
        else:
            top = float(np.nanmax(need))
            unknown = int(np.isnan(need).sum())
            lines.append(f"    -> this setting needs {_n(top)} seeds" + (f" ({unknown} comparison(s) unknown)" if unknown else ""))
            overall.append(top)
    known = [x for x in overall if not math.isnan(x)]
    if known:
        lines.append(f"every setting: {_n(max(known))} seeds (the most any setting needs)")
    return "\n".join(lines)

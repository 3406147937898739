"""Planning: how many seeds each setting of a protocol needs for the audit's paired comparisons to
detect a given difference, from the seed-to-seed spread observed so far (``fggp-repro plan``)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .claims import build_arrays, compare, with_overrides
from .formatting import fmt_num
from .power import min_detectable_difference, sd_upper_bound, seeds_needed
from .records import COLLAPSED_AT, DENSE, SETTING_KEYS, setting_label

__all__ = ["plan", "plan_text", "PLAN_COLUMNS"]

PLAN_COLUMNS = list(SETTING_KEYS) + ["baseline", "alternative", "n_pairs", "sd", "m", "level", "mdd_now",
                                     "seeds_needed", "sd_upper", "seeds_needed_upper", "mdd_at", "mdd_at_upper",
                                     "collapsed"]
#: Confidence of the upper bound on each sd that the conservative plan uses (Browne 1995).
SD_CONFIDENCE = 0.8


def plan(runs: pd.DataFrame, claim: dict, *, effect: float, power: float = 0.8, alpha: float = 0.05,
         sd_confidence: float = SD_CONFIDENCE, at_seeds: int | None = None) -> pd.DataFrame:
    """Per setting and comparison of one protocol (``claim["method"]`` against every other sparse method,
    two-sided, and against dense, one-sided): the paired seeds so far, the standard deviation of the
    paired differences, the minimum detectable difference with those seeds, and the seeds needed to
    detect ``effect`` (accuracy points) with probability ``power``. The level is alpha / m, m = the
    settings in the comparison's family (Bonferroni: the first step of the audit's Holm procedure, so a
    conservative figure). NaN where fewer than 2 pairs leave the spread unknown.

    The sd of a few pairs is itself uncertain, and a plan from it reaches the power only about half the time;
    ``sd_upper`` is its ``sd_confidence`` upper confidence bound and ``seeds_needed_upper`` the seeds that bound
    asks for, which reach the power with probability at least ``sd_confidence`` (checked by simulation in
    tests/analysis_tests/test_power.py).

    ``at_seeds``: also the minimum detectable difference with that many seeds (a budget's worth), from the sd
    (``mdd_at``) and from its upper bound (``mdd_at_upper``); NaN columns otherwise.

    ``claim`` is a :class:`analysis.claims.ClaimConfig`. Runs at chance level (final accuracy <= 11 %) follow its
    ``collapsed`` as the audit does: "separate" (the default) sets aside every seed pair with such a run, so the
    plan is not driven by a collapse (collapses are compared on their own); "keep" plans from every completed run,
    where one collapse can dominate an sd. ``collapsed`` counts the runs at chance level among each comparison's
    pairs (either method) that entered its sd: 0 under "separate"."""
    claim = with_overrides(claim, {"comparison_test": "paired-t"})
    a = build_arrays(runs, claim.method, claim.reference)
    rows = []
    if a is None:
        return pd.DataFrame(columns=PLAN_COLUMNS)
    fg = a.values(claim.method)
    for b in a.methods[1:] + [DENSE]:
        if not a.has(b):
            continue
        alt = "greater" if b == DENSE else "two-sided"
        other = np.where(a.has_dense[:, None], a.dense, np.nan) if b == DENSE else a.values(b)
        f = compare(fg, other, claim, alt, claim.method, b)
        idx = [i for i in range(len(a.settings)) if b != DENSE or a.has_dense[i]]
        m = len(idx)
        for i in idx:
            n = int(f.stats.n[i])
            sd = float(f.stats.sd[i])
            lev = alpha / m
            up = sd_upper_bound(sd, n, sd_confidence)
            at = [math.nan if at_seeds is None else min_detectable_difference(s, at_seeds, lev, power, alt)
                  for s in (sd, up)]  # what a budget of at_seeds detects, from the sd and from its bound
            paired = np.isfinite(fg[i]) & np.isfinite(other[i])
            if claim.collapsed == "separate":  # the pairs the sd comes from: none with a run at chance level
                paired &= (fg[i] > COLLAPSED_AT) & (other[i] > COLLAPSED_AT)
            n_coll = int((fg[i][paired] <= COLLAPSED_AT).sum() + (other[i][paired] <= COLLAPSED_AT).sum())
            rows.append(dict(zip(SETTING_KEYS, a.settings[i]), baseline=b, alternative=alt, n_pairs=n,
                             sd=sd, m=m, level=lev,
                             mdd_now=min_detectable_difference(sd, n, lev, power, alt),
                             seeds_needed=seeds_needed(effect, sd, lev, power, alt),
                             sd_upper=up, seeds_needed_upper=seeds_needed(effect, up, lev, power, alt),
                             mdd_at=at[0], mdd_at_upper=at[1], collapsed=n_coll))
    return pd.DataFrame(rows, columns=PLAN_COLUMNS)


def _n(x: float) -> str:
    if math.isnan(x):
        return "n/a"
    if math.isinf(x):
        return "> 100000"
    return str(int(x))


def plan_text(table: pd.DataFrame, protocol: str, claim: dict, *, effect: float, power: float, alpha: float,
              sd_confidence: float = SD_CONFIDENCE, at_seeds: int | None = None) -> str:
    """The plan as printed by ``fggp-repro plan``: one block per setting, one line per comparison, then the
    seeds the setting needs (the most any of its comparisons needs), from each sd and from its upper bound.
    With ``at_seeds``, each comparison also shows the difference that many seeds would detect."""
    m = claim.method
    conf = f"{sd_confidence:.0%}"
    lines = [f"protocol {protocol}: seeds needed to detect a difference of {fmt_num(effect)} accuracy points with "
             f"{power:.0%} power (paired t-test; {m} vs alternatives two-sided, vs dense one-sided; level alpha/m = "
             f"{alpha:g}/m, m = the settings of each comparison), from the observed sd of the seed-paired differences "
             f"and, in brackets, from its {conf} upper confidence bound (a plan from the sd itself reaches the power "
             f"only about half the time; one from the bound, in at least {conf} of cases)"
             + (f"; 'at {at_seeds}': the smallest difference {at_seeds} seeds would detect with that power"
                if at_seeds else "")]
    if table.empty:
        return lines[0] + f"\n  no {m} runs: nothing to plan"
    overall, overall_up = [], []
    for key, g in table.groupby(list(SETTING_KEYS), sort=False):
        lines.append(f"  {setting_label(*key[:4])}")
        w = max(len(b) for b in g["baseline"])
        for r in g.itertuples(index=False):
            side = "one-sided" if r.alternative == "greater" else "two-sided"
            lines.append(f"    {m} - {r.baseline:{w}s}  pairs {r.n_pairs:2d}  sd {fmt_num(r.sd):>6s} "
                         f"[{fmt_num(r.sd_upper):>6s}]  MDD now {fmt_num(r.mdd_now):>6s} pp  needs "
                         f"{_n(r.seeds_needed):>6s} [{_n(r.seeds_needed_upper):>6s}] seeds ({side}, m = {r.m})"
                         + (f"  at {at_seeds} {fmt_num(r.mdd_at):>6s} [{fmt_num(r.mdd_at_upper):>6s}] pp"
                            if at_seeds else "") + (f"  {r.collapsed} at chance level†" if r.collapsed else ""))
        need = g["seeds_needed"].to_numpy(float)
        need_up = g["seeds_needed_upper"].to_numpy(float)
        if np.isnan(need).all():
            lines.append("    -> unknown: fewer than 2 paired seeds, no spread to plan from")
            overall.append(math.nan)
            overall_up.append(math.nan)
        else:
            top, top_up = float(np.nanmax(need)), float(np.nanmax(need_up))
            unknown = int(np.isnan(need).sum())
            at = ""
            if at_seeds:
                at = (f"; {at_seeds} seeds detect {fmt_num(float(np.nanmax(g['mdd_at'])))} "
                      f"[{fmt_num(float(np.nanmax(g['mdd_at_upper'])))}] pp in every comparison")
            lines.append(f"    -> this setting needs {_n(top)} [{_n(top_up)}] seeds"
                         + (f" ({unknown} comparison(s) unknown)" if unknown else "") + at)
            overall.append(top)
            overall_up.append(top_up)
    known = [x for x in overall if not math.isnan(x)]
    if known:
        known_up = [x for x in overall_up if not math.isnan(x)]
        lines.append(f"every setting: {_n(max(known))} [{_n(max(known_up))}] seeds (the most any setting needs)")
    n_coll = int(table["collapsed"].sum())
    if claim.collapsed == "separate":
        lines.append("a run at chance level (final accuracy <= 11 %) leaves its comparisons, as in the audit's "
                     "accuracy tests (collapses are compared on their own; --collapsed keep plans with them)")
    elif n_coll:
        lines.append("† runs at chance level (final accuracy <= 11 %) among the comparison's pairs, kept "
                     "(--collapsed keep): one such run can dominate an sd; --collapsed separate plans without them")
    return "\n".join(lines)

"""The claims audit: the paper's claims (``claims.toml``, shipped with the package) judged on the
run records, one protocol at a time, each by the statistic its entry names.

The decision rules are stated in words in ``claims.toml`` and implemented here, one function
per rule (:data:`DECISION_RULES`).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from .formatting import fmt_num, fmt_signed, p_is
from .ranks import average_ranks, friedman, nemenyi_cd
from .records import DENSE, SETTING_KEYS, SORT_KEYS, load_runs, method_order, setting_label
from .stats import compare, holm, method_values, welch_test

__all__ = ["Verdict", "load_claims", "audit", "DECISION_RULES", "VERDICTS", "AUDIT_COLUMNS"]

VERDICTS = ("supported", "not supported", "inconclusive")
AUDIT_COLUMNS = ["protocol", "claim", "verdict", "test", "evidence", "n_settings", "completed", "diverged", "text"]


@dataclass(frozen=True)
class Verdict:
    """One claim judged on one protocol."""

    verdict: str  #: one of VERDICTS
    evidence: str  #: the numbers behind the verdict, one line
    n_settings: int  #: settings the decision looked at


def load_claims(path: str | Path | None = None) -> dict:
    """The claims file as a dict: the packaged ``analysis/claims.toml`` unless ``path`` is given.
    Every claim gets the ``[defaults]`` merged under its own keys."""
    if path is None:
        text = resources.files("analysis").joinpath("claims.toml").read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    cfg = tomllib.loads(text)
    defaults = cfg.get("defaults", {})
    claims = []
    for c in cfg.get("claims", []):
        for key in ("id", "text", "rule", "test"):
            if key not in c:
                raise ValueError(f"claims file: a claim lacks {key!r}")
        if c["rule"] not in DECISION_RULES:
            raise ValueError(f"claims file: claim {c['id']!r} names unknown rule {c['rule']!r}; "
                             f"known: {', '.join(DECISION_RULES)}")
        claims.append({**defaults, **c})
    return {**cfg, "claims": claims}


# --------------------------------------------------------------------------------------------
# helpers


def _label(key) -> str:
    return setting_label(*key[:4], with_dataset=True)


def _sparse_settings(df: pd.DataFrame, method: str) -> list[tuple]:
    s = df.loc[df["method"] == method, list(SETTING_KEYS)].drop_duplicates()
    s = s.sort_values([k for k in SORT_KEYS if k in SETTING_KEYS], kind="mergesort")
    return [tuple(r) for r in s.itertuples(index=False, name=None)]


def _keyed(frame: pd.DataFrame) -> dict[tuple, dict]:
    return {tuple(r[k] for k in SETTING_KEYS): r for r in frame.to_dict("records")}


# --------------------------------------------------------------------------------------------
# claim 1: outperforms its alternatives in most settings


def outperforms_in_most_settings(df: pd.DataFrame, c: dict) -> Verdict:
    m, alpha, min_seeds, min_settings = c["method"], c["alpha"], c["min_seeds"], c["min_settings"]
    present = set(df["method"])
    if m not in present:
        return Verdict("inconclusive", f"no {m} runs", 0)
    alts = [a for a in method_order(c["alternatives"]) if a in present and a not in (m, DENSE)]
    settings = _sparse_settings(df, m)
    S = len(settings)
    if not alts:
        return Verdict("inconclusive", f"no alternative has runs (looked for {', '.join(c['alternatives'])})", S)
    comps = {a: _keyed(compare(df, m, a)) for a in alts}
    wins = losses = 0
    per_alt = {a: [0, 0] for a in alts}  # [significantly better, mean not better]
    min_pairs = math.inf
    for key in settings:
        rows = [comps[a].get(key) for a in alts]
        n_pairs = [0 if r is None else int(r["n_pairs"]) for r in rows]
        min_pairs = min(min_pairs, *n_pairs)
        adequate = all(n >= min_seeds for n in n_pairs)
        sig_better, not_better = [], []
        for a, r in zip(alts, rows):
            ok = r is not None and r["n_pairs"] > 0
            sb = ok and r["mean_diff"] > 0 and r["p_holm"] < alpha
            nb = ok and r["mean_diff"] <= 0
            per_alt[a][0] += bool(sb)
            per_alt[a][1] += bool(nb)
            sig_better.append(sb)
            not_better.append(nb)
        if adequate and all(sig_better):
            wins += 1
        elif adequate and any(not_better):
            losses += 1
    unresolved = S - wins - losses
    detail = "; ".join(f"{a} {per_alt[a][0]}/{per_alt[a][1]}" for a in alts)
    ev = (f"fggp significantly better than all {len(alts)} alternatives in {wins}/{S} settings, "
          f"a paired mean not better than some alternative's in {losses}, unresolved {unresolved}; "
          f"per alternative (sig. better / mean not better): {detail}; "
          f"min paired seeds {0 if min_pairs is math.inf else min_pairs}; alpha {alpha} after Holm")
    if S < min_settings:
        return Verdict("inconclusive", f"only {S} settings (< {min_settings}); " + ev, S)
    if wins > S / 2:
        return Verdict("supported", ev, S)
    if losses >= S / 2:
        return Verdict("not supported", ev, S)
    return Verdict("inconclusive", ev, S)


# --------------------------------------------------------------------------------------------
# claim 2: occasionally surpasses the dense network


def surpasses_reference(df: pd.DataFrame, c: dict) -> Verdict:
    m, ref, alpha, min_seeds = c["method"], c.get("reference", DENSE), c["alpha"], c["min_seeds"]
    present = set(df["method"])
    if m not in present:
        return Verdict("inconclusive", f"no {m} runs", 0)
    if ref not in present:
        return Verdict("inconclusive", f"no {ref} reference runs", 0)
    all_settings = _sparse_settings(df, m)
    sdf = pd.DataFrame(all_settings, columns=list(SETTING_KEYS))
    va = method_values(df, m, "test_acc", sdf)
    vb = method_values(df, ref, "test_acc", sdf)
    ga = {k: g["value"].to_numpy(float) for k, g in va.groupby(list(SETTING_KEYS), sort=False)}
    gb = {k: g["value"].to_numpy(float) for k, g in vb.groupby(list(SETTING_KEYS), sort=False)}
    # Settings whose dataset/arch has dense runs at all (completed or not).
    has_ref = set(map(tuple, df.loc[df["method"] == ref, ["dataset", "arch", "protocol"]].drop_duplicates()
                      .itertuples(index=False, name=None)))
    settings = [k for k in all_settings if (k[0], k[1], k[4]) in has_ref]
    no_ref = len(all_settings) - len(settings)
    if not settings:
        return Verdict("inconclusive", f"no {ref} runs for the datasets/architectures {m} ran on", 0)
    rows = []
    for key in settings:
        a, b = ga.get(key, np.array([])), gb.get(key, np.array([]))
        rows.append(dict(key=key, n_a=a.size, n_b=b.size,
                         mean_a=a.mean() if a.size else math.nan, mean_b=b.mean() if b.size else math.nan,
                         p=welch_test(a, b, alternative="greater")))
    t = pd.DataFrame(rows)
    t["p_holm"] = holm(t["p"].to_numpy(float))
    t["above"] = t["mean_a"] > t["mean_b"]
    t["adequate"] = (t["n_a"] >= min_seeds) & (t["n_b"] >= min_seeds)
    t["sig"] = t["above"] & t["adequate"] & (t["p_holm"] < alpha)
    S = len(t)
    n_above, n_sig = int(t["above"].sum()), int(t["sig"].sum())
    under = int((~t["adequate"]).sum())
    t["margin"] = t["mean_a"] - t["mean_b"]
    best = t.loc[t["margin"].idxmax()] if t["margin"].notna().any() else None
    ev = (f"{m} mean above {ref} in {n_above}/{S} settings, significantly in {n_sig} "
          f"(one-sided Welch, Holm over {int(t['p'].notna().sum())} settings, alpha {alpha})")
    if best is not None:
        ev += (f"; largest margin {fmt_signed(best['margin'])} pp at {_label(best['key'])} "
               f"({m} {fmt_num(best['mean_a'])} n={best['n_a']}, {ref} {fmt_num(best['mean_b'])} n={best['n_b']}, "
               f"{p_is(best['p'])}, Holm {p_is(best['p_holm'])})")
    if under:
        ev += f"; {under} settings with fewer than {min_seeds} runs on a side"
    if no_ref:
        ev += f"; {no_ref} {m} settings without {ref} runs"
    if n_sig:
        return Verdict("supported", ev, S)
    if n_above == 0 and under == 0:
        return Verdict("not supported", ev, S)
    return Verdict("inconclusive", ev, S)


# --------------------------------------------------------------------------------------------
# claim 3: highest ranking across the settings


def best_average_rank(df: pd.DataFrame, c: dict) -> Verdict:
    m, alpha, min_seeds, min_settings = c["method"], c["alpha"], c["min_seeds"], c["min_settings"]
    present = set(df["method"])
    if m not in present:
        return Verdict("inconclusive", f"no {m} runs", 0)
    methods = method_order(x for x in present if x != DENSE)
    k = len(methods)
    if k < 3:
        return Verdict("inconclusive", f"only {k} methods ({', '.join(methods)}); ranking needs at least 3", 0)
    # Settings where some method has fewer than min_seeds completed runs are left out of the
    # ranking (and reported): a seed-mean of one or two runs is not a rank to build a verdict on.
    d = df[(df["status"] == "completed") & df["method"].isin(methods) & np.isfinite(df["test_acc"].astype(float))]
    cnt = d.groupby(list(SETTING_KEYS) + ["method"]).size().unstack("method").reindex(columns=methods).fillna(0)
    complete = cnt[(cnt > 0).all(axis=1)]
    under = set(map(tuple, complete.index[(complete < min_seeds).any(axis=1)]))
    keep = ~pd.Series([tuple(r) in under for r in df[list(SETTING_KEYS)].itertuples(index=False, name=None)],
                      index=df.index, dtype=bool)
    df = df[keep]
    if not set(methods) <= set(df["method"]):
        return Verdict("inconclusive", f"no setting where all {k} methods have at least {min_seeds} completed runs "
                                       f"({len(under)} under-seeded)", 0)
    ar = average_ranks(df, "test_acc", True, methods)
    N = ar.n_settings
    excl = len(ar.settings_excluded)
    if N == 0 or m not in ar.ranks.index or np.isnan(ar.ranks[m]):
        return Verdict("inconclusive", f"no setting where all {k} methods have at least {min_seeds} completed runs "
                                       f"({excl} lacked a method, {len(under)} under-seeded)", 0)
    fr = friedman(df, "test_acc", methods)
    cd = nemenyi_cd(k, N, alpha)
    r = ar.ranks
    r_m = float(r[m])
    others = r.drop(m)
    second_name = others.index[0]
    r_second = float(others.iloc[0])
    gap = r_second - r_m
    ev = (f"{m} average rank {r_m:.3f} of {k} methods over {N} settings; "
          f"{'next' if gap >= 0 else 'best'} {second_name} {r_second:.3f}, gap {gap:+.3f} vs Nemenyi CD {cd:.3f} "
          f"(alpha {alpha}); Friedman chi2 {fmt_num(fr.statistic, 3)}, {p_is(fr.pvalue)}; "
          f"Iman-Davenport F {fmt_num(fr.iman_davenport, 3)}, {p_is(fr.iman_davenport_pvalue)}; "
          f"settings left out: {excl} lacking a method, {len(under)} with fewer than {min_seeds} seeds")
    if N < min_settings:
        return Verdict("inconclusive", f"only {N} usable settings (< {min_settings}); " + ev, N)
    if gap < 0:
        return Verdict("not supported", ev, N)
    if gap > 0 and fr.iman_davenport_pvalue < alpha and gap >= cd:
        return Verdict("supported", ev, N)
    return Verdict("inconclusive", ev, N)


#: rule name (the ``rule`` of a claim in claims.toml) -> decision function (protocol frame, claim) -> Verdict
DECISION_RULES: dict[str, Callable[[pd.DataFrame, dict], Verdict]] = {
    "outperforms_in_most_settings": outperforms_in_most_settings,
    "surpasses_reference": surpasses_reference,
    "best_average_rank": best_average_rank,
}


# --------------------------------------------------------------------------------------------


def audit(df_or_path, protocol: str | None = None, claims: str | Path | dict | None = None) -> pd.DataFrame:
    """Judge every claim, separately for each protocol in the records (or only ``protocol``).

    ``df_or_path`` is a frame from :func:`analysis.load_runs` or a results folder. ``claims`` is a
    claims TOML path or an already loaded dict; the packaged ``claims.toml`` by default.

    Returns one row per (protocol, claim), protocols sorted, claims in file order, with columns
    protocol, claim (id), verdict ("supported" | "not supported" | "inconclusive"), test (the
    statistic that decides it), evidence (the numbers behind the verdict), n_settings, completed
    and diverged (runs of that protocol; diverged runs are excluded from the statistics), text.
    """
    df = load_runs(df_or_path) if isinstance(df_or_path, (str, Path)) else df_or_path
    cfg = claims if isinstance(claims, dict) else load_claims(claims)
    protocols = sorted(df["protocol"].unique())
    if protocol is not None:
        if protocol not in protocols:
            raise ValueError(f"no runs of protocol {protocol!r}; protocols present: {', '.join(protocols) or 'none'}")
        protocols = [protocol]
    rows = []
    for p in protocols:
        dp = df[df["protocol"] == p]
        n_done = int((dp["status"] == "completed").sum())
        n_div = int((dp["status"] == "diverged").sum())
        for c in cfg["claims"]:
            v = DECISION_RULES[c["rule"]](dp, c)
            rows.append(dict(protocol=p, claim=c["id"], verdict=v.verdict, test=c["test"], evidence=v.evidence,
                             n_settings=v.n_settings, completed=n_done, diverged=n_div,
                             text=" ".join(c["text"].split())))
    return pd.DataFrame(rows, columns=AUDIT_COLUMNS)

"""Sensitivity of the claims audit to the analysis choices: every verdict recomputed with one choice
changed at a time (the ``[[sensitivity]]`` entries of ``claims.toml``), so that a reader sees at once
whether a verdict hangs on a choice."""

from __future__ import annotations

import pandas as pd

from .claims import audit, load_claims, with_overrides
from .records import DENSE

__all__ = ["sensitivity_table"]


def _alternatives_present(df: pd.DataFrame, cfg: dict, overrides: dict | None) -> list[str]:
    c = with_overrides(next(c for c in cfg["claims"] if c.rule == "outperforms_in_most_settings"), overrides)
    present = set(df["method"]) - {DENSE}
    return sorted(a for a in c.alternatives if a in present)


def sensitivity_table(df: pd.DataFrame, protocol: str, claims: dict | None = None,
                      base: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per variant (the defaults first), one column per claim id with its verdict (with the "by less
    than delta points" qualifier where it applies) on ``protocol`` (a protocol, or a study of the claims file);
    a verdict that differs from the default's carries a trailing ``*``. ``note`` says when a variant cannot change
    anything here. ``base``: the default audit, when already computed.

    Columns: choice, variant, <claim ids...>, note."""
    cfg = claims or load_claims()
    studies = cfg.get("studies", {})
    dp = df[df["protocol"].isin(studies.get(protocol, [protocol]))]
    ids = [c.id for c in cfg["claims"]]
    if base is None:
        base = audit(dp, protocol=protocol, claims=cfg)
    base_v = dict(zip(base["claim"], base["verdict_text"]))
    rows = [dict(choice="defaults", variant=_defaults_label(cfg), **base_v, note="")]
    alts0 = _alternatives_present(dp, cfg, None)
    for s in cfg.get("sensitivity", []):
        over = dict(s["set"])
        note = ""
        if "alternatives" in over or "exclude" in over:
            alts = _alternatives_present(dp, cfg, over)
            if alts == alts0:
                note = "same alternatives as the defaults here"
            elif not alts:
                note = "no alternative left"
            else:
                note = "alternatives: " + ", ".join(alts)
                if any(a.startswith("annealed") for a in alts0) and not any(a.startswith("annealed") for a in alts):
                    note += " (no run of the annealed rate it keeps)"
        if over.get("collapsed") == "keep":
            n = int(dp["collapsed"].sum())
            note = f"{n} run(s) at chance level kept" if n else "no run at chance level here"
        t = audit(dp, protocol=protocol, claims=cfg, overrides=over)
        v = dict(zip(t["claim"], t["verdict_text"]))
        rows.append(dict(choice=s["choice"], variant=s["label"],
                         **{cid: v[cid] + ("*" if v[cid] != base_v[cid] else "") for cid in ids}, note=note))
    return pd.DataFrame(rows, columns=["choice", "variant", *ids, "note"])


def _defaults_label(cfg: dict) -> str:
    d = cfg["defaults"]
    test = {"paired-t": "paired t-test", "wilcoxon": "Wilcoxon", "welch": "Welch"}[d["comparison_test"]]
    return (f"{test}, published alternatives + random, both annealed rates, runs at chance level set aside, "
            f"{d['aggregation']}, delta = {d['delta']:g} pp, alpha = {d['alpha']:g}")

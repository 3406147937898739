"""Sensitivity of the claims audit to the analysis choices: every verdict recomputed with one choice
changed at a time (the ``[[sensitivity]]`` entries of ``claims.toml``), so that a reader sees at once
whether a verdict hangs on a choice."""

from __future__ import annotations

import pandas as pd

from .claims import audit, load_claims
from .records import DENSE

__all__ = ["sensitivity_table"]


def _alternatives_present(df: pd.DataFrame, cfg: dict, overrides: dict | None) -> list[str]:
    c = {**cfg["defaults"], **(overrides or {})}
    excl = set(c.get("exclude", ()))
    present = set(df["method"]) - {DENSE}
    return sorted(a for a in c["alternatives"] if a not in excl and a in present)


def sensitivity_table(df: pd.DataFrame, protocol: str, claims: dict | None = None) -> pd.DataFrame:
    """One row per variant (the defaults first), one column per claim id with its verdict on
    ``protocol``; a verdict that differs from the default's carries a trailing ``*``. ``note`` says
    when a variant cannot change anything here (e.g. no runs of the annealed rate it keeps or drops).

    Columns: choice, variant, <claim ids...>, note."""
    cfg = claims or load_claims()
    dp = df[df["protocol"] == protocol]
    ids = [c["id"] for c in cfg["claims"]]
    base = audit(dp, protocol=protocol, claims=cfg)
    base_v = dict(zip(base["claim"], base["verdict"]))
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
        if over.get("collapsed") == "exclude":
            n = int(dp["collapsed"].sum())
            note = f"{n} run(s) at chance level dropped" if n else "no run at chance level here"
        t = audit(dp, protocol=protocol, claims=cfg, overrides=over)
        v = dict(zip(t["claim"], t["verdict"]))
        rows.append(dict(choice=s["choice"], variant=s["label"],
                         **{cid: v[cid] + ("*" if v[cid] != base_v[cid] else "") for cid in ids}, note=note))
    return pd.DataFrame(rows, columns=["choice", "variant", *ids, "note"])


def _defaults_label(cfg: dict) -> str:
    d = cfg["defaults"]
    test = {"paired-t": "paired t-test", "wilcoxon": "Wilcoxon", "welch": "Welch"}[d["comparison_test"]]
    return f"{test}, all alternatives, both annealed rates, delta = {d['delta']:g} pp, alpha = {d['alpha']:g}"

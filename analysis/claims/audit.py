"""The audit: records -> arrays (:mod:`.arrays`) -> ``decide()`` (:mod:`.decide`) -> ``explain()``
(:mod:`.explain`) -> one row per (protocol or study, claim)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..looks import design_look, study_look
from ..records import DENSE, load_runs
from .arrays import Arrays, build_arrays
from .config import ClaimConfig, check_overrides, load_claims, with_overrides
from .decide import ClaimResult, Decider
from .explain import Explained, explain

__all__ = ["AUDIT_COLUMNS", "Judged", "judge", "audit", "studies_status", "scopes"]

AUDIT_COLUMNS = ["protocol", "scope", "claim", "verdict", "verdict_text", "look", "covers", "reason", "test",
                 "evidence", "n_settings", "completed", "diverged", "collapsed", "text"]


@dataclass
class Judged:
    """Every claim decided and explained on the runs of one protocol or study."""

    name: str
    kind: str  #: "protocol" or "study"
    protocols: list
    runs: pd.DataFrame
    claims: list  #: ClaimConfig, file order (overrides applied)
    arrays: Arrays | None
    decider: Decider | None
    results: dict = field(default_factory=dict)  #: claim id -> ClaimResult
    words: dict = field(default_factory=dict)  #: claim id -> Explained

    def claim(self, rule: str) -> ClaimConfig:
        return next(c for c in self.claims if c.rule == rule)

    def result(self, rule: str) -> ClaimResult:
        return self.results[self.claim(rule).id]


def judge(runs: pd.DataFrame, cfg: dict, overrides: dict | None = None, *, name: str | None = None,
          kind: str = "protocol") -> Judged:
    """Decide and explain every claim of ``cfg`` on ``runs`` (one protocol's, or one study's: several
    protocols, each setting within one of them)."""
    claims = [with_overrides(c, overrides) for c in cfg["claims"]]
    protocols = sorted(runs["protocol"].unique())
    name = name or (protocols[0] if len(protocols) == 1 else "+".join(protocols))
    method = claims[0].method if claims else "fggp"
    reference = claims[0].reference if claims else DENSE
    arrays = build_arrays(runs, method, reference)
    j = Judged(name, kind, protocols, runs, claims, arrays, None)
    if arrays is None:
        for c in claims:
            j.words[c.id] = Explained("inconclusive", "inconclusive", f"there are no {c.method} runs", "", "", 0,
                                      {"settings": 0})
        return j
    j.decider = Decider(arrays)
    for c in claims:
        j.results[c.id] = j.decider.decide(c)
        j.words[c.id] = explain(j.results[c.id], j.decider)
    return j


def studies_status(df: pd.DataFrame, cfg: dict) -> list[tuple[str, list, list]]:
    """(study, protocols with records, protocols without) for every study of the claims file."""
    have = set(df["protocol"])
    return [(name, [p for p in ps if p in have], [p for p in ps if p not in have])
            for name, ps in cfg.get("studies", {}).items()]


def scopes(df: pd.DataFrame, cfg: dict, protocol: str | None = None) -> list[tuple[str, str, list]]:
    """(name, kind, protocols) of what ``audit`` judges: every protocol with records, then every study all of
    whose protocols have records (or only ``protocol``, a protocol or a study)."""
    protocols = sorted(df["protocol"].unique())
    out = [(p, "protocol", [p]) for p in protocols]
    out += [(name, "study", ps) for name, ps, missing in studies_status(df, cfg) if not missing]
    if protocol is not None:
        studies = cfg.get("studies", {})
        if protocol in studies:
            missing = [p for p in studies[protocol] if p not in protocols]
            if missing:
                raise ValueError(f"study {protocol} joins {', '.join(studies[protocol])}, and {', '.join(missing)} "
                                 f"has no records yet: audit the protocols alone until it has")
        elif protocol not in protocols:
            raise ValueError(f"no runs of protocol {protocol!r}; protocols present: {', '.join(protocols) or 'none'}")
        out = [s for s in out if s[0] == protocol]
    return out


def audit(df_or_path, protocol: str | None = None, claims: str | Path | dict | None = None,
          overrides: dict | None = None, *, with_numbers: bool = False) -> pd.DataFrame:
    """Judge every claim, separately for each protocol in the records and for each study of the claims file
    whose protocols all have records (or only ``protocol``, which may name a study).

    ``df_or_path`` is a frame from :func:`analysis.load_runs` or a results folder; ``claims`` a claims TOML path
    or an already loaded dict (the packaged ``claims.toml`` by default); ``overrides`` replaces claim settings
    for every claim (e.g. ``{"delta": 1.0}``, ``{"comparison_test": "wilcoxon"}``, ``{"exclude": [...]}``,
    ``{"collapsed": "keep"}``, ``{"aggregation": "seed-means"}``): the sensitivity analysis.

    One row per (protocol or study, claim), claims in file order, columns :data:`AUDIT_COLUMNS`: ``protocol``
    (the protocol's or study's name), ``scope`` ("protocol" | "study"), ``verdict`` ("supported" | "refuted" |
    "inconclusive"), ``verdict_text`` (with "by less than delta points" where every margin is below delta),
    ``look`` ("final" | "interim" | "unplanned"), ``covers`` (the protocols and settings of the verdict),
    ``reason``, ``test``, ``evidence``, ``n_settings`` and the completed, diverged and collapsed runs.
    ``with_numbers`` adds a column ``numbers`` of machine-readable dicts."""
    df = load_runs(df_or_path) if isinstance(df_or_path, (str, Path)) else df_or_path
    cfg = claims if isinstance(claims, dict) else load_claims(claims)
    check_overrides(cfg["defaults"], overrides)
    rows = []
    for name, kind, protos in scopes(df, cfg, protocol):
        dp = df[df["protocol"].isin(protos)]
        j = judge(dp, cfg, overrides, name=name, kind=kind)
        rows += audit_rows(j, cfg, with_numbers)
    cols = AUDIT_COLUMNS + (["numbers"] if with_numbers else [])
    return pd.DataFrame(rows, columns=cols)


def look_of(j: Judged, cfg: dict):
    """The look (analysis.looks) of a protocol, or the combined look of a study's protocols."""
    ref = j.claims[0].reference if j.claims else DENSE
    if j.kind == "study":
        return study_look(j.runs, j.protocols, cfg.get("plans"), ref)
    return design_look(j.runs, j.name, cfg.get("plans"), ref)


def audit_rows(j: Judged, cfg: dict, with_numbers: bool = False) -> list[dict]:
    dp = j.runs
    n_done = int((dp["status"] == "completed").sum())
    n_div = int((dp["status"] == "diverged").sum())
    n_coll = int(dp["collapsed"].sum()) if "collapsed" in dp.columns else 0
    look = look_of(j, cfg).kind
    rows = []
    for c in j.claims:
        w = j.words[c.id]
        row = dict(protocol=j.name, scope=j.kind, claim=c.id, verdict=w.verdict, verdict_text=w.verdict_text,
                   look=look, covers=w.covers, reason=w.reason, test=" ".join(c.test.split()), evidence=w.evidence,
                   n_settings=w.n_settings, completed=n_done, diverged=n_div, collapsed=n_coll,
                   text=" ".join(c.text.split()))
        if with_numbers:
            row["numbers"] = w.numbers
        rows.append(row)
    return rows

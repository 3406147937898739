"""The claims file (``analysis/claims.toml``) as typed configuration: one :class:`ClaimConfig` per claim,
shared by the audit and the calibration (both call :func:`analysis.claims.decide` with it)."""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from ..looks import check_plans
from ..ranking import AGGREGATIONS

__all__ = ["ClaimConfig", "RULES", "COMPARISON_TESTS", "COLLAPSED", "SCHEMA", "load_claims", "with_overrides",
           "check_overrides"]

SCHEMA = "fggp-repro/claims/v3"
#: the decision rules a claim may name (``rule`` in claims.toml); analysis.claims.decide implements each
RULES = ("outperforms_in_most_settings", "surpasses_reference", "best_average_rank", "pairs_in_most_settings")
#: comparison tests a claim may use (``comparison_test``)
COMPARISON_TESTS = ("paired-t", "wilcoxon", "welch")
#: how runs at chance level enter the accuracy comparisons (``collapsed``)
COLLAPSED = ("separate", "keep")


@dataclass(frozen=True)
class ClaimConfig:
    """One claim with every setting it is judged under (the file's [defaults] merged under its own keys)."""

    id: str
    text: str
    rule: str
    test: str
    decision: str
    method: str
    alpha: float
    delta: float
    min_seeds: int
    min_settings: int
    comparison_test: str
    collapsed: str
    aggregation: str
    power: float
    alternatives: tuple  #: the state-of-the-art alternatives (published methods)
    floor: tuple  #: methods compared and ranked as a floor (random pruning)
    reference: str
    #: (a, b) comparisons that must all hold (rule pairs_in_most_settings): a better than b
    pairs: tuple = ()
    #: (a, b, c, d): the interaction (a - b) - (c - d), reported
    interactions: tuple = ()
    supported_at: float = 0.95
    n_resamples: int = 10_000
    seed: int = 0
    rank_confidence: float = 0.95

    @property
    def compared(self) -> list[str]:
        """The methods claims 1 and 3 compare ``method`` with: the alternatives, then the floor."""
        return list(dict.fromkeys(list(self.alternatives) + list(self.floor)))

    def comparison_key(self) -> tuple:
        """What a pairwise comparison depends on (comparisons are shared between claims with the same key)."""
        return (self.comparison_test, self.delta, self.alpha, self.min_seeds, self.collapsed)


_TYPES = {"method": str, "alpha": float, "delta": float, "min_seeds": int, "min_settings": int,
          "comparison_test": str, "collapsed": str, "aggregation": str, "power": float, "alternatives": list,
          "floor": list, "reference": str}
_FIELDS = {f.name for f in dataclasses.fields(ClaimConfig)}


def _coerce(d: dict, where: str) -> dict:
    for key, typ in _TYPES.items():
        if key not in d:
            continue
        v = d[key]
        if typ is float and isinstance(v, int) and not isinstance(v, bool):
            v = d[key] = float(v)
        if not isinstance(v, typ) or isinstance(v, bool):
            raise ValueError(f"claims file {where}: {key} must be a {typ.__name__}, got {v!r}")
    return d


def _check_values(c: dict, where: str) -> None:
    if not 0.0 < float(c.get("alpha", 0.05)) < 1.0:
        raise ValueError(f"claims file {where}: alpha must be in (0, 1), got {c['alpha']}")
    if not float(c.get("delta", 0.5)) > 0:
        raise ValueError(f"claims file {where}: delta must be > 0, got {c['delta']}")
    if c.get("collapsed", "separate") not in COLLAPSED:
        raise ValueError(f"claims file {where}: collapsed must be one of {', '.join(COLLAPSED)}, "
                         f"got {c['collapsed']!r}")
    if c.get("comparison_test", "paired-t") not in COMPARISON_TESTS:
        raise ValueError(f"claims file {where}: comparison_test must be one of {', '.join(COMPARISON_TESTS)}, "
                         f"got {c['comparison_test']!r}")
    if c.get("aggregation", "seed-ranks") not in AGGREGATIONS:
        raise ValueError(f"claims file {where}: aggregation must be one of {', '.join(AGGREGATIONS)}, "
                         f"got {c['aggregation']!r}")
    if int(c.get("min_seeds", 3)) < 2:
        raise ValueError(f"claims file {where}: min_seeds must be >= 2, got {c['min_seeds']}")
    unknown = set(c) - _FIELDS - {"exclude"}
    if unknown:
        raise ValueError(f"claims file {where}: unknown setting(s) {', '.join(sorted(unknown))}")


def _make(merged: dict, where: str) -> ClaimConfig:
    d = dict(merged)
    excl = set(d.pop("exclude", ()))
    for key in ("alternatives", "floor"):
        d[key] = tuple(a for a in d.get(key, ()) if a not in excl)
    d["pairs"] = tuple(tuple(p) for p in d.get("pairs", ()) if not excl & set(p))
    d["interactions"] = tuple(tuple(p) for p in d.get("interactions", ()) if not excl & set(p))
    for p in d["pairs"]:
        if len(p) != 2 or not all(isinstance(x, str) for x in p):
            raise ValueError(f"claims file {where}: claim {d.get('id')!r}: each of pairs is [better, worse], got {p!r}")
    for p in d["interactions"]:
        if len(p) != 4 or not all(isinstance(x, str) for x in p):
            raise ValueError(f"claims file {where}: claim {d.get('id')!r}: each of interactions is [a, b, c, d] "
                             f"for (a - b) - (c - d), got {p!r}")
    d["decision"] = d.get("decision", "")
    try:
        return ClaimConfig(**d)
    except TypeError as e:
        raise ValueError(f"claims file {where}: claim {d.get('id')!r}: {e}") from None


def load_claims(path: str | Path | None = None) -> dict:
    """The claims file: the packaged ``analysis/claims.toml`` unless ``path`` is given. Returns a dict with
    ``defaults`` (a dict), ``claims`` (a list of :class:`ClaimConfig`), ``sensitivity``, ``plans`` and
    ``studies`` ({name: [protocols]}). Raises ``ValueError`` naming the problem for a malformed file."""
    if path is None:
        text = resources.files("analysis").joinpath("claims.toml").read_text(encoding="utf-8")
        where = "analysis/claims.toml"
    else:
        where = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            raise ValueError(f"cannot read the claims file {where} ({why}); give --claims a TOML file shaped like "
                             f"analysis/claims.toml") from None
    try:
        cfg = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"claims file {where}: not valid TOML ({e})") from None
    if cfg.get("schema") != SCHEMA:
        raise ValueError(f"claims file {where}: schema must be {SCHEMA!r}, got {cfg.get('schema')!r}")
    defaults = cfg.get("defaults", {})
    for key in _TYPES:
        if key not in defaults:
            raise ValueError(f"claims file {where}: [defaults] lacks {key!r}")
    _coerce(defaults, where)
    _check_values(defaults, where)
    claims = []
    for c in cfg.get("claims", []):
        for key in ("id", "text", "rule", "test"):
            if key not in c:
                raise ValueError(f"claims file {where}: a claim lacks {key!r}")
        if c["rule"] not in RULES:
            raise ValueError(f"claims file {where}: claim {c['id']!r} names unknown rule {c['rule']!r}; "
                             f"known: {', '.join(RULES)}")
        merged = _coerce({**defaults, **c}, where)
        _check_values(merged, where)
        cc = _make(merged, where)
        if cc.rule == "pairs_in_most_settings" and not cc.pairs:
            raise ValueError(f"claims file {where}: claim {cc.id!r} (rule pairs_in_most_settings) needs pairs")
        claims.append(cc)
    if len({c.id for c in claims}) != len(claims):
        raise ValueError(f"claims file {where}: two claims share an id")
    for s in cfg.get("sensitivity", []):
        if not {"choice", "label", "set"} <= set(s) or not isinstance(s["set"], dict):
            raise ValueError(f"claims file {where}: a [[sensitivity]] entry needs choice, label and a table 'set'")
        _check_values(_coerce({**defaults, **s["set"]}, where), where)
    studies = {}
    for name, st in cfg.get("studies", {}).items():
        protos = st.get("protocols") if isinstance(st, dict) else None
        if (not isinstance(protos, list) or len(protos) < 2 or not all(isinstance(p, str) and p for p in protos)
                or len(set(protos)) != len(protos)):
            raise ValueError(f"claims file {where}: [studies.{name}] needs protocols, a list of at least two "
                             f"different protocol names")
        studies[name] = list(protos)
    plans = check_plans(cfg.get("plans", {}), where)
    return {**cfg, "defaults": defaults, "claims": claims, "plans": plans, "studies": studies}


def check_overrides(defaults: dict, overrides: dict | None) -> None:
    """Raise ``ValueError`` for overrides (a sensitivity variant, or an audit call's) that no claim accepts."""
    if overrides:
        _check_values(_coerce({**defaults, **overrides}, "overrides"), "overrides")


def with_overrides(claim: ClaimConfig, overrides: dict | None) -> ClaimConfig:
    """``claim`` with some settings replaced (``exclude`` drops methods from the alternatives and the floor)."""
    if not overrides:
        return claim
    over = _coerce(dict(overrides), "overrides")
    excl = set(over.pop("exclude", ()))
    for key in ("alternatives", "floor"):
        if key in over:
            over[key] = tuple(over[key])
    c = dataclasses.replace(claim, **over)
    if excl:
        c = dataclasses.replace(c, alternatives=tuple(a for a in c.alternatives if a not in excl),
                                floor=tuple(a for a in c.floor if a not in excl),
                                pairs=tuple(p for p in c.pairs if not excl & set(p)),
                                interactions=tuple(p for p in c.interactions if not excl & set(p)))
    return c

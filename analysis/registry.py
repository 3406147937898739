"""The registry of outputs: every figure and table is one entry (name -> function).

An output function takes a :class:`Context` (the records of one protocol, with cached
statistics) and the output folder, writes its files and returns their paths, or raises
:class:`SkipOutput` with a one-line reason when the protocol has nothing for it to draw.
Adding a figure or table is one decorated function in ``figures.py`` or ``tables.py``; the report
(``report.py``: ``REPORT.md``, the verdicts, the main table and every figure of the protocol) comes last.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from .records import DENSE, method_order


class SkipOutput(Exception):
    """Raised by an output function when its protocol has no data for it (a one-line reason)."""


@dataclass(frozen=True)
class Output:
    name: str
    kind: str  #: "figure", "table" or "report"
    func: Callable[["Context", Path], list[Path]]
    description: str


REGISTRY: dict[str, Output] = {}
KINDS = ("figure", "table", "report")


def register(name: str, kind: str, description: str):
    """Decorator adding an output function to :data:`REGISTRY` under ``name``."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(map(repr, KINDS))}, got {kind!r}")

    def deco(func):
        if name in REGISTRY:
            raise ValueError(f"output {name!r} registered twice")
        REGISTRY[name] = Output(name, kind, func, description)
        return func

    return deco


def all_outputs() -> dict[str, Output]:
    """Every registered output in registration order (figures, tables), the report last: it shows what the others
    made."""
    from . import figures, report, tables  # noqa: F401  (importing registers them)

    return dict(sorted(REGISTRY.items(), key=lambda kv: kv[1].kind == "report"))


@dataclass
class Context:
    """The records of one protocol (or one study), with the statistics several outputs share computed once."""

    protocol: str
    runs: pd.DataFrame  #: load_runs rows of this protocol (all statuses)
    histories: pd.DataFrame
    layer_sparsity: pd.DataFrame
    method: str = "fggp"  #: the method the paper is about
    kind: str = "protocol"  #: "protocol", or "study" (several protocols joined, analysis/claims.toml [studies])
    alpha: float = 0.05
    confidence: float = 0.95
    n_resamples: int = 10_000
    seed: int = 0
    #: what this run of ``figures`` made so far: output name -> the files it wrote, or the one-line reason it skipped
    produced: dict = field(default_factory=dict)
    skipped: dict = field(default_factory=dict)
    _cache: dict = field(default_factory=dict, repr=False)

    def cached(self, key, make):
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    @property
    def methods(self) -> list[str]:
        """Sparse (non-dense) methods of this protocol, in display order."""
        return method_order(m for m in self.runs["method"].unique() if m != DENSE)

    @property
    def completed(self) -> pd.DataFrame:
        return self.runs[self.runs["status"] == "completed"]

    def summary(self, metric: str = "test_acc") -> pd.DataFrame:
        from .stats import summarize

        return self.cached(("summary", metric), lambda: summarize(self.runs, metric, self.confidence))

    @property
    def claims(self) -> dict:
        """The packaged claims configuration (analysis/claims.toml)."""
        from .claims import load_claims

        return self.cached("claims", load_claims)

    def claim(self, rule: str):
        """The :class:`analysis.claims.ClaimConfig` of the claim decided by ``rule``."""
        return next(c for c in self.claims["claims"] if c.rule == rule)

    def judged(self):
        """Every claim decided and explained on these runs, once (:func:`analysis.claims.judge`): the audit,
        the comparisons and the ranking every output shows come from it."""
        from .claims import judge

        return self.cached("judged", lambda: judge(self.runs, self.claims, name=self.protocol, kind=self.kind))

    def audit(self) -> pd.DataFrame:
        """The claims audit of this protocol or study (with the machine-readable numbers)."""
        from .claims.audit import AUDIT_COLUMNS, audit_rows

        return self.cached("audit", lambda: pd.DataFrame(audit_rows(self.judged(), self.claims, True),
                                                         columns=AUDIT_COLUMNS + ["numbers"]))

    def ranking(self):
        """The one ranking (claim 3's: its methods, seeds, aggregation and resamples), or SkipOutput."""
        j = self.judged()
        if j.arrays is None:
            raise SkipOutput(f"no {self.method} runs: nothing to rank")
        r = j.result("best_average_rank")
        if r.ranking is None:
            methods = r.detail.get("methods", [])
            raise SkipOutput(f"nothing to rank: {r.why or 'too few methods'} ({', '.join(methods)})")
        return r.ranking

    def ranking_of(self, metric: str):
        """The ranking's methods, seeds and aggregation on another metric (e.g. the best-epoch accuracy):
        observed average ranks (no resampling worth reading), or a string when there is nothing to rank."""
        from .claims import build_arrays
        from .ranking import rank_arrays

        def make():
            rk = self.ranking()
            c = self.claim("best_average_rank")
            a = build_arrays(self.runs, self.method, c.reference, metric)
            if a is None:
                return "no runs"
            Y = a.Y[:, [a.methods.index(m) for m in rk.methods], :]
            return rank_arrays(Y, a.groups, aggregation=c.aggregation, min_seeds=c.min_seeds, n_resamples=1,
                               alpha=c.alpha, methods=rk.methods, settings=a.settings)

        return self.cached(("ranking_of", metric), make)

    def comparison(self, baseline: str):
        """``method`` against ``baseline`` (dense: one-sided) per setting, under claim 1's configuration."""
        j = self.judged()
        c = self.claim("outperforms_in_most_settings")
        return j.decider.comparison(c.method, baseline, c, "greater" if baseline == DENSE else "two-sided")

    def scale(self) -> str:
        """One line naming the protocol's scale: architecture and width, epochs, training images, dense accuracy."""
        from .formatting import scale_line

        return self.cached("scale", lambda: scale_line(self.protocol, self.runs, self.summary()))

    @property
    def accuracy_runs(self) -> pd.DataFrame:
        """The runs the accuracy comparisons pair: with collapsed = "separate" (claims.toml) the runs at chance
        level leave (every seed pair with one of them is set aside; collapses are compared on their own)."""
        if self.claim("outperforms_in_most_settings").collapsed == "separate" and "collapsed" in self.runs:
            return self.runs[~self.runs["collapsed"].astype(bool)]
        return self.runs

    def comparisons(self) -> pd.DataFrame:
        """``method`` against every other method present (dense included), stacked (descriptive statistics of
        the pairs the decisions use)."""
        from .stats import COMPARE_COLUMNS, compare

        def make():
            present = set(self.runs["method"])
            if self.method not in present:
                return pd.DataFrame(columns=COMPARE_COLUMNS)
            others = [m for m in method_order(present) if m != self.method]
            runs = self.accuracy_runs
            frames = [compare(runs, self.method, b, confidence=self.confidence) for b in others
                      if b in set(runs["method"])]
            return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COMPARE_COLUMNS)

        return self.cached("comparisons", make)

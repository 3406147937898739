"""The registry of outputs: every figure and table is one entry (name -> function).

An output function takes a :class:`Context` (the records of one protocol, with cached
statistics) and the output folder, writes its files and returns their paths, or raises
:class:`SkipOutput` with a one-line reason when the protocol has nothing for it to draw.
Adding a figure or table is one decorated function in ``figures.py`` or ``tables.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from .records import DENSE, SETTING_KEYS, method_order


class SkipOutput(Exception):
    """Raised by an output function when its protocol has no data for it (a one-line reason)."""


@dataclass(frozen=True)
class Output:
    name: str
    kind: str  #: "figure" or "table"
    func: Callable[["Context", Path], list[Path]]
    description: str


REGISTRY: dict[str, Output] = {}


def register(name: str, kind: str, description: str):
    """Decorator adding an output function to :data:`REGISTRY` under ``name``."""
    if kind not in ("figure", "table"):
        raise ValueError(f"kind must be 'figure' or 'table', got {kind!r}")

    def deco(func):
        if name in REGISTRY:
            raise ValueError(f"output {name!r} registered twice")
        REGISTRY[name] = Output(name, kind, func, description)
        return func

    return deco


def all_outputs() -> dict[str, Output]:
    """Every registered output, tables first, in registration order."""
    from . import figures, tables  # noqa: F401  (importing registers them)

    return dict(REGISTRY)


@dataclass
class Context:
    """The records of one protocol, with the statistics several outputs share computed once."""

    protocol: str
    runs: pd.DataFrame  #: load_runs rows of this protocol (all statuses)
    histories: pd.DataFrame
    layer_sparsity: pd.DataFrame
    method: str = "fggp"  #: the method the paper is about
    alpha: float = 0.05
    confidence: float = 0.95
    n_resamples: int = 10_000
    seed: int = 0
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

    def ranks(self):
        from .ranks import average_ranks

        return self.cached("ranks", lambda: average_ranks(self.runs, "test_acc", True, self.methods or None))

    def rankable(self):
        """(average ranks, k methods, n settings), or SkipOutput when there is nothing to rank."""
        ar = self.ranks()
        k, n = len(ar.ranks), ar.n_settings
        if k < 2:
            raise SkipOutput(f"only {k} sparse method(s): nothing to rank")
        if n == 0:
            raise SkipOutput("no setting where every method has a completed run")
        return ar, k, n

    @property
    def claims(self) -> dict:
        """The packaged claims configuration (analysis/claims.toml)."""
        from .claims import load_claims

        return self.cached("claims", load_claims)

    def claim(self, rule: str) -> dict:
        """The merged configuration of the claim decided by ``rule``."""
        return next(c for c in self.claims["claims"] if c["rule"] == rule)

    def audit(self) -> pd.DataFrame:
        """The claims audit of this protocol (with the machine-readable numbers)."""
        from .claims import audit

        return self.cached("audit", lambda: audit(self.runs, protocol=self.protocol, claims=self.claims,
                                                  with_numbers=True))

    def judgement(self):
        """Per-setting decisions of ``method`` against every other method and dense (claims.toml defaults)."""
        from .claims import judge

        return self.cached("judgement", lambda: judge(self.runs, self.claim("outperforms_in_most_settings")))

    def rank_uncertainty(self):
        """Whole-seed bootstrap of the average ranks of every sparse method (``method`` first when present);
        a string (the reason) when there is nothing to rank."""
        from .bootstrap import _cube
        from .claims import rank_uncertainty

        def make():
            methods = self.methods
            if self.method in methods:
                methods = [self.method] + [m for m in methods if m != self.method]
            if len(methods) < 2:
                return f"only {len(methods)} sparse method(s): nothing to rank"
            sp = self.runs[self.runs["method"].isin(methods)]
            settings = [tuple(r) for r in sp[list(SETTING_KEYS)].drop_duplicates().sort_values(
                list(SETTING_KEYS), kind="mergesort").itertuples(index=False, name=None)]
            Y, seeds = _cube(self.runs, methods, settings, "test_acc")
            c = self.claim("best_average_rank")
            return rank_uncertainty(Y, settings, seeds, methods, int(c["min_seeds"]), self.n_resamples, self.seed)

        return self.cached("rank_uncertainty", make)

    def scale(self) -> str:
        """One line naming the protocol's scale: architecture and width, epochs, training images, dense accuracy."""
        from .formatting import scale_line

        return self.cached("scale", lambda: scale_line(self.protocol, self.runs, self.summary()))

    def comparisons(self) -> pd.DataFrame:
        """``method`` against every other method present (dense included), stacked."""
        from .stats import COMPARE_COLUMNS, compare

        def make():
            present = set(self.runs["method"])
            if self.method not in present:
                return pd.DataFrame(columns=COMPARE_COLUMNS)
            others = [m for m in method_order(present) if m != self.method]
            frames = [compare(self.runs, self.method, b, confidence=self.confidence) for b in others]
            return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COMPARE_COLUMNS)

        return self.cached("comparisons", make)

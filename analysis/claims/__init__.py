"""The claims audit: the paper's claims (``analysis/claims.toml``, shipped with the package) judged on the
run records, per protocol and per study (protocols joined, never pooled within a setting).

One decision path: records -> arrays (:func:`build_arrays`) -> :func:`decide` (typed
:class:`ClaimConfig`, shared with the calibration in :mod:`analysis.calibration`) -> :func:`explain` (the
words) -> the audit's rows (:func:`audit`), its tables and figures. The decision rules are stated in words
in ``claims.toml``; the arithmetic on arrays is :mod:`analysis.decisions` and :mod:`analysis.ranking`.
"""

from ..decisions import VERDICT_NAMES as VERDICTS
from .arrays import Arrays, build_arrays
from .audit import AUDIT_COLUMNS, Judged, audit, judge, scopes, studies_status
from .config import COLLAPSED, COMPARISON_TESTS, RULES, SCHEMA, ClaimConfig, load_claims, with_overrides
from .decide import ClaimResult, Comparison, Decider, compare, comparison_stats, decide, mdd
from .explain import Explained, explain

__all__ = ["VERDICTS", "Arrays", "build_arrays", "AUDIT_COLUMNS", "Judged", "audit", "judge", "scopes",
           "studies_status", "COLLAPSED", "COMPARISON_TESTS", "RULES", "SCHEMA", "ClaimConfig", "load_claims",
           "with_overrides", "ClaimResult", "Comparison", "Decider", "compare", "comparison_stats", "decide", "mdd",
           "Explained", "explain"]

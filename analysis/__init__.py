"""Statistics on fggp-repro run records: summaries, confidence intervals, paired tests, ranks,
claims audit, figures and tables. Never imports torch.

Public API (plain arrays or tidy frames in, named fields out):

* loading: :func:`load_runs`, :func:`load_histories`, :func:`load_layer_sparsity`,
  :func:`load_records`, :class:`RecordError`; :func:`classify` (which JSON files are run records),
  :func:`platform_columns` (the platform a record was made on, as the runs frame shows it); platforms per
  protocol in :mod:`analysis.platforms`. The record schema, the platform and method labels are the training
  core's torch-free :mod:`fggp_repro.spec`, the one definition the trainer, ``fggp-repro verify`` and
  docs/RECORD_SCHEMA.md share
* statistics: :func:`summarize`, :func:`t_interval`, :func:`holm`, :func:`paired_test`,
  :func:`welch_test`, :func:`compare`, :func:`average_ranks`, :func:`friedman`,
  :func:`iman_davenport`, :func:`friedman_chi2_from_ranks`, :func:`nemenyi_cd`, :func:`cd_cliques`,
  :func:`bootstrap_ci`, :func:`probability_of_improvement`, :func:`aggregate_scores` and
  :func:`pooled_effects` (whole seeds resampled), :func:`t_power`, :func:`min_detectable_difference`,
  :func:`seeds_needed`
* claims: :func:`audit`, :func:`load_claims`, :func:`decide` and :func:`explain` (:mod:`analysis.claims`:
  records -> arrays -> decide -> explain); the decision rules on arrays in :mod:`analysis.decisions`, the one
  ranking in :mod:`analysis.ranking`, their calibration by simulation in :mod:`analysis.calibration`
* command line: :func:`analysis.cli.figures_main`, :func:`analysis.cli.audit_main`,
  :func:`analysis.cli.plan_main`, :func:`analysis.cli.calibrate_main`
* outputs: :data:`analysis.registry.REGISTRY` (figures and tables register on
  :func:`analysis.registry.all_outputs`; matplotlib is imported only then)
"""

from .bootstrap import (
    BootstrapResult,
    ImprovementResult,
    aggregate_scores,
    bootstrap_ci,
    pooled_effects,
    probability_of_improvement,
)
from .claims import audit, decide, explain, load_claims
from .errors import RecordError
from .power import min_detectable_difference, seeds_needed, t_power
from .ranks import (
    AverageRanks,
    FriedmanResult,
    IDResult,
    average_ranks,
    cd_cliques,
    friedman,
    friedman_chi2_from_ranks,
    iman_davenport,
    nemenyi_cd,
    setting_means,
)
from .records import (
    PLATFORM_COLUMNS,
    RUN_COLUMNS,
    RUN_KEYS,
    SCHEMA,
    SETTING_KEYS,
    Records,
    classify,
    load_histories,
    load_layer_sparsity,
    load_records,
    load_runs,
    platform_columns,
)
from .stats import MeanCI, PairedComparison, compare, holm, paired_test, summarize, t_interval, welch_test

__all__ = [
    "RecordError", "Records", "SCHEMA", "SETTING_KEYS", "RUN_KEYS", "RUN_COLUMNS", "PLATFORM_COLUMNS",
    "load_runs", "load_histories", "load_layer_sparsity", "load_records", "classify", "platform_columns",
    "MeanCI", "PairedComparison", "t_interval", "summarize", "holm", "paired_test", "welch_test", "compare",
    "AverageRanks", "FriedmanResult", "IDResult", "average_ranks", "setting_means", "friedman", "iman_davenport",
    "friedman_chi2_from_ranks", "nemenyi_cd", "cd_cliques",
    "BootstrapResult", "ImprovementResult", "bootstrap_ci", "probability_of_improvement", "aggregate_scores",
    "pooled_effects", "audit", "decide", "explain", "load_claims", "t_power", "min_detectable_difference",
    "seeds_needed",
]

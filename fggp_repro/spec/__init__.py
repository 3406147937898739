"""The specification layer: the contracts of fggp-repro, in the standard library alone (no torch, numpy or pandas).

- :mod:`.config`: the run configuration (five groups of fields, their defaults = the paper protocol, validation,
  presets) and the run id;
- :mod:`.record`: the run record, field by field (:data:`~.record.FIELDS`), :func:`~.record.validate`;
- :mod:`.platform`: the platform of a record (what must agree for two runs to be bit-identical);
- :mod:`.methods`: method variants and their labels (``annealed:r0=0.01``);
- :mod:`.exits`: the exit codes of ``fggp-repro``;
- :mod:`.files`: files written whole or not at all, output folders checked before a run.

The training core builds on them; the analysis package may import them (it never imports torch).
"""

from .config import PER_RUN_FIELDS, Config, ConfigError, UserError, run_id
from .exits import EXIT_DIVERGED, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_STOPPED, EXIT_TERMINATED, EXIT_USAGE
from .files import OutputError, atomic_write_bytes, check_writable, file_mode, unwritable
from .methods import METHOD_VARIANT_FIELDS, VARIANT_FIELDS, method_label
from .platform import PLATFORM, PLATFORM_FIELDS, platform_key, platform_of
from .record import FIELDS, RUN_KEY, SCHEMA, SCHEMA_PREFIX, SETTING_KEY, STATUSES, TOP_LEVEL, RecordInvalid, validate

__all__ = [
    "Config", "ConfigError", "UserError", "run_id", "PER_RUN_FIELDS",
    "EXIT_DIVERGED", "EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_STOPPED", "EXIT_TERMINATED", "EXIT_USAGE",
    "OutputError", "atomic_write_bytes", "check_writable", "file_mode", "unwritable",
    "METHOD_VARIANT_FIELDS", "VARIANT_FIELDS", "method_label",
    "PLATFORM", "PLATFORM_FIELDS", "platform_key", "platform_of",
    "FIELDS", "RUN_KEY", "SCHEMA", "SCHEMA_PREFIX", "SETTING_KEY", "STATUSES", "TOP_LEVEL", "RecordInvalid",
    "validate",
]

"""Pruning methods as records and tables name them: variants and labels.

A run of a method whose variant fields (:data:`VARIANT_FIELDS_OF`) differ from the
protocol's values (the config defaults) is a distinct alternative, labelled ``method:field=value`` (e.g.
``annealed:r0=0.01``), the syntax of ``grid --methods``, and never pooled with the method at its protocol values.
"""

from __future__ import annotations

from .config import PruningConfig

DENSE = "dense"

#: method -> the pruning fields whose values make a run of it a variant (the rate of a fixed-rate rule, the
#: cosine annealing of an annealed one)
VARIANT_FIELDS_OF: dict[str, tuple[str, ...]] = {
    "fggp": ("rate",),
    "mf-fixed": ("rate",),
    "annealed": ("r0", "r_min"),
    "gf-annealed": ("r0", "r_min"),
    "granet": ("r0", "r_min"),
}

#: every field a variant may set (``grid --methods annealed:r0=0.01``)
VARIANT_FIELDS: tuple[str, ...] = ("r0", "rate", "r_min")

_PROTOCOL = PruningConfig()

#: method -> ((field, the protocol's value), ...): the values a run is labelled against
METHOD_VARIANT_FIELDS: dict[str, tuple[tuple[str, float], ...]] = {
    method: tuple((f, getattr(_PROTOCOL, f)) for f in fields) for method, fields in VARIANT_FIELDS_OF.items()
}

def method_label(method: str, pruning: dict | None) -> str:
    """``method`` plus ``:field=value`` for each of its variant fields that ``pruning`` (a record's
    ``config.pruning``) sets to another value than the protocol's; ``method`` itself when there is no config
    (records of older tools) or it keeps every protocol value."""
    if not pruning:
        return method
    label = method
    for field, default in METHOD_VARIANT_FIELDS.get(method, ()):
        v = pruning.get(field, default)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and float(v) != default:
            label += f":{field}={float(v):g}"
    return label

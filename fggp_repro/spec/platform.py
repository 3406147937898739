"""The platform of a run record: what must agree for two strict runs of one config to be bit-identical.

Each field is read from the record as :data:`PLATFORM` says, for records of every version (a field a record
predates is ``None``: not compared). Precision and strict mode are part of the run id; the others are not: they say
how a run executed, not what it computes, so records of one run id made on different platforms differ in their
numbers.
"""

from __future__ import annotations

import re

#: (field, where a record holds it, what it is), in the order every platform is shown
PLATFORM: tuple[tuple[str, str, str], ...] = (
    ("torch", "`provenance.torch`", "the torch version"),
    ("device", "`provenance.device_model`; older records: `provenance.device` without its thread count",
     "the device model (a CPU's clock left out: it says nothing about its kernels)"),
    ("cpu_isa", "`provenance.cpu_capability`", "the CPU instruction set torch dispatches to"),
    ("onednn_isa", "`provenance.onednn_isa`", "the instruction set oneDNN runs at (`run.cpu_isa` caps it)"),
    ("threads", "`provenance.torch_threads`; older records: `config.run.threads`",
     "the torch thread count (it changes results on the CPU)"),
    ("precision", "`config.run.precision` (fp32 when absent)", "fp32 or bf16 autocast"),
    ("strict", "`provenance.deterministic`", "deterministic algorithms on or off"),
    ("channels_last", "`config.run.channels_last`", "the memory format of the model and batches"),
)

#: The fields that define a platform: two strict runs of one config agree bit for bit when these agree.
PLATFORM_FIELDS: tuple[str, ...] = tuple(name for name, _, _ in PLATFORM)

# "Intel(R) Xeon(R) Processor @ 2.50GHz": the clock in a CPU's model name says nothing about its kernels
_CLOCK = re.compile(r"\s*@\s*[0-9.]+\s*[GM]Hz")


def _table(record: dict, key: str) -> dict:
    value = record.get(key)
    return value if isinstance(value, dict) else {}


def platform_of(record: dict) -> dict:
    """The platform a record was made on, as :data:`PLATFORM_FIELDS` (``None`` where the record does not say).

    ``device`` is the device model without the thread count (older records hold it only inside
    ``provenance.device``, as ``cpu (<model>, <n> threads)``); ``threads`` is the torch thread count the run used;
    ``precision`` comes from the config (fp32 for records older than the field). Never raises."""
    prov = _table(record, "provenance")
    run = _table(_table(record, "config"), "run")
    device = prov.get("device_model")
    if device is None:
        device = prov.get("device")
        if isinstance(device, str) and device.startswith("cpu (") and device.endswith(" threads)") and ", " in device:
            device = device[: device.rindex(", ")] + ")"
    threads = prov.get("torch_threads")
    if threads is None:
        threads = run.get("threads") or None
    return {"torch": prov.get("torch"), "device": _CLOCK.sub("", device) if isinstance(device, str) else device,
            "cpu_isa": prov.get("cpu_capability"), "onednn_isa": prov.get("onednn_isa"), "threads": threads,
            "precision": run.get("precision", "fp32"), "strict": prov.get("deterministic"),
            "channels_last": run.get("channels_last")}


def platform_key(record: dict) -> tuple:
    """What must agree for two runs of one config to be bit-identical (:data:`PLATFORM_FIELDS`, in order)."""
    p = platform_of(record)
    return tuple(p[k] for k in PLATFORM_FIELDS)

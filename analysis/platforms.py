"""The platforms the runs of a protocol were made on.

A platform is the eight fields that decide whether two strict runs of one config agree bit for bit
(:data:`analysis.records.PLATFORM_COLUMNS`, the spec's ``PLATFORM_FIELDS``: torch version, device model, CPU
instruction set, oneDNN instruction-set level, torch thread count, precision, strict mode, memory format;
docs/RECORD_SCHEMA.md). Records made on many machines merge into one results
folder, so the runs of one setting may come from several platforms. They are still analysed together -- they
are runs of the same protocol, and on another platform a run drifts like a new seed -- but ``figures`` and
``audit`` say so: :func:`platform_note` is the one line they print per protocol, :func:`platform_table` the
rows of the ``platforms`` table.
"""

from __future__ import annotations

import pandas as pd

from .records import PLATFORM_COLUMNS, SETTING_KEYS, UNKNOWN, setting_label

__all__ = ["platform_table", "platform_label", "platform_note", "mixed_settings", "memory_format",
           "PLATFORM_TABLE_COLUMNS"]

PLATFORM_TABLE_COLUMNS = ["platform", *PLATFORM_COLUMNS, "runs", "completed", "diverged", "settings"]


def platform_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per platform among ``runs`` (one protocol's rows of ``load_runs``): ``platform`` (P1, P2, ...
    by decreasing run count, ties in the order of the fields), the eight platform fields, and the runs,
    completed runs, diverged runs and settings (dataset, arch, target sparsity, start) made on it."""
    if runs.empty:
        return pd.DataFrame(columns=PLATFORM_TABLE_COLUMNS)
    cols = list(PLATFORM_COLUMNS)
    g = runs.groupby(cols, sort=True)
    t = pd.DataFrame({
        "runs": g.size(),
        "completed": g["status"].agg(lambda s: int((s == "completed").sum())),
        "diverged": g["status"].agg(lambda s: int((s == "diverged").sum())),
        "settings": runs[cols + list(SETTING_KEYS)].drop_duplicates().groupby(cols, sort=True).size(),
    }).reset_index()
    t = t.sort_values(["runs", *cols], ascending=[False] + [True] * len(cols), kind="mergesort").reset_index(drop=True)
    t.insert(0, "platform", [f"P{i + 1}" for i in range(len(t))])
    for c in ("runs", "completed", "diverged", "settings"):
        t[c] = t[c].astype(int)
    return t[PLATFORM_TABLE_COLUMNS]


def memory_format(channels_last) -> str:
    """``channels_last``, ``contiguous`` or ``unknown``: the memory format of a platform's ``channels_last`` column
    (``true``, ``false`` or ``unknown`` for records made before the field existed)."""
    return {"true": "channels_last", "false": "contiguous"}.get(str(channels_last), UNKNOWN)


def platform_label(row) -> str:
    """``torch 2.15.0+cu132, device cpu (AMD EPYC), CPU ISA AVX512, oneDNN ISA AVX512_CORE_BF16, 1 thread, bf16,
    strict on, channels_last``: one platform (a row of :func:`platform_table` or a dict of the eight fields);
    ``oneDNN ISA unknown`` and ``memory format unknown`` for records made before those were recorded."""
    threads = str(row["threads"])
    if threads == UNKNOWN:
        th = "threads unknown"
    else:
        th = f"{threads} thread" + ("" if threads == "1" else "s")
    strict = {"true": "strict on", "false": "strict off"}.get(str(row["strict"]), "strict unknown")
    precision = str(row["precision"]) if str(row["precision"]) != UNKNOWN else "precision unknown"
    memory = memory_format(row.get("channels_last", UNKNOWN))
    memory = "memory format unknown" if memory == UNKNOWN else memory
    return (f"torch {row['torch']}, device {row['device']}, CPU ISA {row['cpu_isa']}, oneDNN ISA "
            f"{row.get('onednn_isa', UNKNOWN)}, {th}, {precision}, {strict}, {memory}")


def mixed_settings(runs: pd.DataFrame) -> list[tuple[tuple, dict[str, int]]]:
    """The settings (dataset, arch, target sparsity, start, protocol) whose runs were made on more than one
    platform, sorted, each with its run count per platform name (P1, P2, ... of :func:`platform_table`)."""
    if runs.empty:
        return []
    table = platform_table(runs)
    name = {tuple(r[c] for c in PLATFORM_COLUMNS): r["platform"] for r in table.to_dict("records")}
    out = []
    keys = list(SETTING_KEYS)
    order = ["protocol", "dataset", "arch", "initial_density", "target_sparsity"]
    settings = runs[keys].drop_duplicates().sort_values(order, ascending=[True, True, True, False, True],
                                                        kind="mergesort")
    for key in settings.itertuples(index=False, name=None):
        sel = runs
        for k, v in zip(keys, key):
            sel = sel[sel[k] == v]
        counts = sel.groupby(list(PLATFORM_COLUMNS), sort=True).size()
        if len(counts) > 1:
            per = {name[k]: int(n) for k, n in counts.items()}
            out.append((key, dict(sorted(per.items(), key=lambda kv: int(kv[0][1:])))))
    return out


def _n_runs(n: int) -> str:
    return f"{n} run" + ("" if n == 1 else "s")


def platform_note(runs: pd.DataFrame) -> str:
    """One line: how many platforms the runs (of one protocol) span, and which, with their run counts; with
    several, how many settings mix them. E.g. ``platforms: 1 -- torch ..., device ..., ... (185 runs)``."""
    t = platform_table(runs)
    if t.empty:
        return "platforms: none (no runs)"
    if len(t) == 1:
        r = t.iloc[0]
        return f"platforms: 1 — {platform_label(r)} ({_n_runs(int(r['runs']))})"
    listed = "; ".join(f"{r['platform']} {platform_label(r)} ({_n_runs(int(r['runs']))})"
                       for r in t.to_dict("records"))
    n_settings = len(runs[list(SETTING_KEYS)].drop_duplicates())
    n_mixed = len(mixed_settings(runs))
    return (f"platforms: {len(t)}, analysed together within a setting (across platforms a run drifts like a new seed) "
            f"— {listed}; settings with runs from more than one platform: {n_mixed} of {n_settings}")


def mixed_settings_note(runs: pd.DataFrame) -> str:
    """One sentence naming the settings whose runs come from more than one platform (for the table's notes)."""
    mixed = mixed_settings(runs)
    n_settings = len(runs[list(SETTING_KEYS)].drop_duplicates()) if not runs.empty else 0
    if not mixed:
        return f"Settings with runs from more than one platform: none of {n_settings}."
    parts = "; ".join(f"{setting_label(*key[:4])} ({', '.join(f'{p} {n}' for p, n in per.items())})"
                      for key, per in mixed)
    return f"Settings with runs from more than one platform: {len(mixed)} of {n_settings} — {parts}."

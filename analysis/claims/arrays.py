"""Records -> arrays: one protocol's (or one study's) completed runs as (settings, methods, seeds) arrays, the
form :func:`analysis.claims.decide` judges and the calibration simulates."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..records import COLLAPSED_AT, DENSE, SETTING_KEYS, method_order

__all__ = ["Arrays", "build_arrays", "setting_order"]


@dataclass
class Arrays:
    """Completed runs as arrays, seeds aligned by key (NaN = no completed run).

    ``Y`` and ``dense`` may carry leading axes (simulated replicates); everything else describes the design."""

    methods: list  #: M methods, the claimed one first
    settings: list  #: S setting key tuples (dataset, arch, target_sparsity, initial_density, protocol)
    seeds: np.ndarray  #: K seed numbers
    Y: np.ndarray  #: (..., S, M, K) final test accuracy [%]
    dense: np.ndarray  #: (..., S, K) the dense reference of each setting's dataset/arch/protocol
    has_dense: np.ndarray  #: (S,) dense runs (any status) exist for the setting's dataset/arch/protocol
    #: (S,) settings of one protocol whose runs cover the same seeds (a start, as planned) share a label: their
    #: seeds are resampled together, other groups' apart
    groups: np.ndarray

    def has(self, method: str) -> bool:
        """Whether ``method`` has a completed run in some setting (the reference: some dense run)."""
        if method == DENSE:
            return bool(np.isfinite(self.dense).any())
        return method in self.methods and bool(np.isfinite(self.values(method)).any())

    def values(self, method: str) -> np.ndarray:
        """(..., S, K) runs of ``method`` (``dense``: the reference of each setting)."""
        if method == DENSE:
            return self.dense
        return self.Y[..., :, self.methods.index(method), :]

    @property
    def protocols(self) -> list[str]:
        return sorted({k[4] for k in self.settings})

    def collapsed(self, method: str) -> np.ndarray:
        """(..., S, K) runs of ``method`` at chance level (final accuracy <= 11 %)."""
        v = self.values(method)
        return np.isfinite(v) & (v <= COLLAPSED_AT)


def setting_order(keys) -> list[tuple]:
    """Setting keys sorted by the records' sort keys: protocol, dataset, arch, initial density, target sparsity."""
    return sorted(set(map(tuple, keys)), key=lambda k: (k[4], k[0], k[1], k[3], k[2]))


def build_arrays(df: pd.DataFrame, method: str, reference: str = DENSE, metric: str = "test_acc") -> Arrays | None:
    """Arrays of one protocol's (or study's) records over the settings where ``method`` has runs; None when it
    has none. Runs of different protocols never share a setting (the protocol is part of the key)."""
    if method not in set(df["method"]):
        return None
    settings = setting_order(df.loc[df["method"] == method, list(SETTING_KEYS)].itertuples(index=False, name=None))
    others = [m for m in method_order(df["method"].unique()) if m not in (method, reference)]
    methods = [method] + others
    done = df[(df["status"] == "completed") & np.isfinite(df[metric].astype(float))]
    seeds = np.array(sorted(set(df["seed"].astype(int))), dtype=np.int64)
    kpos = {int(k): i for i, k in enumerate(seeds)}
    spos = {k: i for i, k in enumerate(settings)}
    mpos = {m: i for i, m in enumerate(methods)}
    Y = np.full((len(settings), len(methods), len(seeds)), np.nan)
    sp = done[done["method"].isin(methods)]
    for r in sp[list(SETTING_KEYS) + ["method", "seed", metric]].itertuples(index=False, name=None):
        si = spos.get(tuple(r[:5]))
        if si is not None:
            Y[si, mpos[r[5]], kpos[int(r[6])]] = float(r[7])
    dense = np.full((len(settings), len(seeds)), np.nan)
    ref_any = set(map(tuple, df.loc[df["method"] == reference, ["dataset", "arch", "protocol"]]
                      .itertuples(index=False, name=None)))
    has_dense = np.array([(k[0], k[1], k[4]) in ref_any for k in settings], dtype=bool)
    ref = done[done["method"] == reference]
    for r in ref[["dataset", "arch", "protocol", "seed", metric]].itertuples(index=False, name=None):
        for si, k in enumerate(settings):
            if (k[0], k[1], k[4]) == tuple(r[:3]):
                dense[si, kpos[int(r[3])]] = float(r[4])
    # settings whose runs cover the same seeds (a protocol's start, as planned) are resampled together
    have = [tuple(np.flatnonzero(np.isfinite(Y[i]).any(axis=0))) for i in range(len(settings))]
    keys = [(k[4], h) for k, h in zip(settings, have)]
    labels = {g: i for i, g in enumerate(sorted(set(keys)))}
    groups = np.array([labels[g] for g in keys], dtype=np.int64)
    return Arrays(methods, settings, seeds, Y, dense, has_dense, groups)

"""Average ranks across settings, the Friedman / Iman-Davenport tests, the Nemenyi critical
difference and the cliques of a critical-difference diagram (Demšar 2006, JMLR 7:1-30).

Each setting is a block; within it the compared methods are ranked by their seed-mean
(1 = best, ties share the average rank). Only settings where every compared method has at least
one completed run enter; the others are listed in ``settings_excluded``. Dense runs are the
reference, not a competitor, and are never ranked.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats as st

from .records import DENSE, SETTING_KEYS, SORT_KEYS, method_order

__all__ = [
    "AverageRanks", "FriedmanResult", "IDResult", "average_ranks", "friedman", "iman_davenport",
    "friedman_chi2_from_ranks", "nemenyi_cd", "cd_cliques", "setting_means",
]


def setting_means(df: pd.DataFrame, metric: str = "test_acc", methods: Sequence[str] | None = None) -> pd.DataFrame:
    """Seed-mean of ``metric`` over completed runs: a settings x methods table (MultiIndex rows by
    the setting keys, sorted; columns in display order). Missing cells are NaN."""
    if metric not in df.columns:
        raise ValueError(f"metric {metric!r} is not a column of the frame")
    d = df[(df["status"] == "completed") & (df["method"] != DENSE)]
    if methods is not None:
        methods = list(dict.fromkeys(methods))
        if DENSE in methods:
            raise ValueError("dense is the reference, not a competitor within a sparsity setting; it is not ranked")
        present = set(df["method"])
        missing = [m for m in methods if m not in present]
        if missing:
            raise ValueError(f"methods without runs: {', '.join(missing)}; present: {', '.join(sorted(present))}")
        d = d[d["method"].isin(methods)]
    else:
        methods = method_order(m for m in df["method"].unique() if m != DENSE)
    d = d[np.isfinite(d[metric].astype(float))]
    settings = (df.loc[df["method"].isin(methods), list(SETTING_KEYS)].drop_duplicates()
                .sort_values([k for k in SORT_KEYS if k in SETTING_KEYS], kind="mergesort"))
    idx = pd.MultiIndex.from_frame(settings)
    if d.empty:
        return pd.DataFrame(np.nan, index=idx, columns=pd.Index(methods, name="method"))
    means = d.groupby(list(SETTING_KEYS) + ["method"])[metric].mean().unstack("method")
    means = means.reindex(index=idx, columns=pd.Index(methods, name="method"))
    return means


@dataclass(frozen=True)
class AverageRanks:
    """Result of :func:`average_ranks`."""

    ranks: pd.Series  #: method -> average rank (1 = best), sorted best first
    per_setting: pd.DataFrame  #: settings used x methods: the rank in each setting
    means: pd.DataFrame  #: settings used x methods: the seed-mean that was ranked
    settings_used: list  #: setting key tuples (dataset, arch, target_sparsity, initial_density, protocol)
    settings_excluded: list  #: setting key tuples left out because a method had no completed run
    missing: dict = field(default_factory=dict)  #: excluded setting -> methods lacking results
    higher_is_better: bool = True

    @property
    def methods(self) -> list[str]:
        return list(self.ranks.index)

    @property
    def n_settings(self) -> int:
        return len(self.settings_used)


def average_ranks(df: pd.DataFrame, metric: str = "test_acc", higher_is_better: bool = True,
                  methods: Sequence[str] | None = None) -> AverageRanks:
    """Mean over settings of each method's rank by seed-mean (1 = best, ties share the average
    rank). ``methods`` defaults to every non-dense method present; only settings where all of
    them have a completed run are used, the rest are reported in ``settings_excluded``."""
    means = setting_means(df, metric, methods)
    complete = means.notna().all(axis=1).to_numpy()
    used = means[complete]
    excluded = means[~complete]
    missing = {key: [m for m in means.columns if pd.isna(row[m])] for key, row in excluded.iterrows()}
    vals = used.to_numpy(float)
    if vals.size:
        r = st.rankdata(-vals if higher_is_better else vals, method="average", axis=1)
    else:
        r = np.empty((0, means.shape[1]))
    per = pd.DataFrame(r, index=used.index, columns=used.columns)
    avg = per.mean(axis=0) if len(per) else pd.Series(np.nan, index=used.columns)
    order = sorted(avg.index, key=lambda m: (np.inf if np.isnan(avg[m]) else avg[m], m))
    avg = avg.reindex(order).rename("average_rank")
    avg.index.name = "method"
    return AverageRanks(
        ranks=avg, per_setting=per, means=used,
        settings_used=[tuple(k) for k in used.index], settings_excluded=[tuple(k) for k in excluded.index],
        missing={tuple(k): v for k, v in missing.items()}, higher_is_better=higher_is_better,
    )


# --------------------------------------------------------------------------------------------
# Friedman


@dataclass(frozen=True)
class IDResult:
    """Iman-Davenport F: (N-1) chi2 / (N(k-1) - chi2) ~ F(k-1, (k-1)(N-1))."""

    statistic: float
    pvalue: float
    df_num: int
    df_den: int


def iman_davenport(chi2: float, k: int, n_blocks: int) -> IDResult:
    """Iman-Davenport correction of Friedman's chi-square (less conservative; Demšar 2006 eq. 3).
    Perfect agreement (chi2 = N(k-1)) gives F = inf and p = 0."""
    df1, df2 = k - 1, (k - 1) * (n_blocks - 1)
    if not np.isfinite(chi2) or k < 2 or n_blocks < 2:
        return IDResult(math.nan, math.nan, df1, df2)
    den = n_blocks * (k - 1) - chi2
    if den <= 1e-12 * max(1.0, n_blocks * (k - 1)):
        return IDResult(math.inf, 0.0, df1, df2)
    f = (n_blocks - 1) * chi2 / den
    return IDResult(float(f), float(st.f.sf(f, df1, df2)), df1, df2)


def friedman_chi2_from_ranks(mean_ranks: Sequence[float], n_blocks: int) -> float:
    """Friedman's chi-square from average ranks, without tie correction (Demšar 2006 eq. 2):
    12N / (k(k+1)) * (sum R_j^2 - k(k+1)^2 / 4). For data without ties it equals
    ``scipy.stats.friedmanchisquare``; with ties SciPy divides by a tie correction."""
    r = np.asarray(mean_ranks, dtype=float)
    k = r.size
    return float(12.0 * n_blocks / (k * (k + 1)) * (np.sum(r ** 2) - k * (k + 1) ** 2 / 4.0))


@dataclass(frozen=True)
class FriedmanResult:
    """Friedman test over settings (blocks) x methods (treatments)."""

    statistic: float  #: chi-square, tie-corrected (= scipy.stats.friedmanchisquare)
    pvalue: float  #: chi-square(k-1) upper tail
    iman_davenport: float  #: F statistic
    iman_davenport_pvalue: float
    k: int  #: methods compared
    n_blocks: int  #: settings used
    average_ranks: pd.Series
    settings_excluded: list


def friedman(df: pd.DataFrame, metric: str = "test_acc", methods: Sequence[str] | None = None,
             higher_is_better: bool = True) -> FriedmanResult:
    """Friedman test of equal average ranks across settings, on the seed-means of each method.

    The chi-square and its p come from ``scipy.stats.friedmanchisquare`` (tie-corrected); the
    Iman-Davenport F is computed from it. NaN when fewer than 3 methods (SciPy's minimum) or
    2 settings remain, or when every setting is a complete tie.
    """
    ar = average_ranks(df, metric, higher_is_better, methods)
    k, n = ar.means.shape[1], ar.means.shape[0]
    chi2 = p = math.nan
    if k >= 3 and n >= 2:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            res = st.friedmanchisquare(*[ar.means[m].to_numpy(float) for m in ar.means.columns])
        chi2, p = float(res.statistic), float(res.pvalue)
    idr = iman_davenport(chi2, k, n)
    return FriedmanResult(chi2, p, idr.statistic, idr.pvalue, k, n, ar.ranks, ar.settings_excluded)


# --------------------------------------------------------------------------------------------
# Nemenyi critical difference and CD-diagram cliques


@lru_cache(maxsize=256)
def _q_alpha(k: int, alpha: float) -> float:
    return float(st.studentized_range.ppf(1.0 - alpha, k, np.inf))


def nemenyi_cd(k: int, n_blocks: int, alpha: float = 0.05) -> float:
    """Nemenyi critical difference of average ranks: q_alpha / sqrt(2) * sqrt(k(k+1) / (6N)),
    with q_alpha the studentized range quantile ``scipy.stats.studentized_range.ppf(1 - alpha, k, inf)``
    (no hand-typed table). Two methods differ significantly when their average ranks differ by at
    least CD.

    >>> round(nemenyi_cd(5, 12), 3)
    1.761
    """
    if k < 2:
        raise ValueError(f"need at least 2 methods, got k={k}")
    if n_blocks < 1:
        raise ValueError(f"need at least 1 block, got N={n_blocks}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    return _q_alpha(int(k), float(alpha)) / math.sqrt(2.0) * math.sqrt(k * (k + 1) / (6.0 * n_blocks))


def cd_cliques(ranks: Mapping[str, float] | pd.Series, cd: float) -> list[tuple[str, ...]]:
    """Groups of methods joined by a bar in a critical-difference diagram.

    A group is a run of methods, consecutive in rank order, whose average ranks differ (max - min)
    by less than ``cd`` — no pair inside it is significantly different. Only maximal groups are
    returned: none is contained in another (the crossbar bug of several CD-diagram tools is to draw
    such sub-cliques as extra bars), and single methods are not groups. Methods are ordered by
    (rank, name); the groups come best first, each listing its methods best first.
    """
    items = sorted(((float(v), str(k)) for k, v in dict(ranks).items()), key=lambda t: (t[0], t[1]))
    if any(math.isnan(v) for v, _ in items):
        raise ValueError("ranks must not be NaN")
    r = [v for v, _ in items]
    names = [n for _, n in items]
    out: list[tuple[str, ...]] = []
    last_end = -1
    j = 0
    for i in range(len(r)):
        j = max(j, i)
        while j + 1 < len(r) and r[j + 1] - r[i] < cd:
            j += 1
        # [i, j] is the longest run starting at i; it is maximal unless the run starting at i-1
        # already reached j (then it contains this one).
        if j > last_end and j > i:
            out.append(tuple(names[i:j + 1]))
        last_end = max(last_end, j)
    return out

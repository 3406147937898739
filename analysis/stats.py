"""Per-setting summaries, confidence intervals and paired significance tests.

Conventions
-----------
* Only completed runs enter statistics; diverged runs are counted (``diverged`` columns).
* A *setting* is (dataset, arch, target_sparsity, initial_density, protocol). Dense runs
  (method ``"dense"``) are the per-(dataset, arch, protocol) reference: compared against a sparse
  method, the dense runs of the same dataset/arch/protocol are matched to every one of its settings.
* Pairing is by seed key (an inner join on ``seed``), never by row order.
* Intervals are Student-t intervals: with 3-5 seeds a percentile bootstrap covers the truth far
  less often than its nominal rate, a t interval does not.
* Distributions and tests come from ``scipy.stats``; only what SciPy lacks (Holm, the
  bookkeeping) is written here.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as st

from .records import DENSE, REFERENCE_KEYS, SETTING_KEYS, SORT_KEYS

__all__ = [
    "MeanCI", "PairedComparison", "t_interval", "summarize", "holm", "paired_test", "welch_test", "compare",
    "signed_rank_permutation_p", "signed_rank_p",
]


@contextlib.contextmanager
def _quiet():
    """SciPy warns on degenerate input (zero variance, tiny n); those cases are handled explicitly."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield


def _finite(x) -> np.ndarray:
    a = np.asarray(x, dtype=float).ravel()
    return a[np.isfinite(a)]


# --------------------------------------------------------------------------------------------
# one sample


@dataclass(frozen=True)
class MeanCI:
    """Mean of a sample with its Student-t confidence interval."""

    n: int
    mean: float
    std: float  #: sample standard deviation (ddof = 1)
    sem: float  #: std / sqrt(n)
    ci_low: float
    ci_high: float
    confidence: float


def t_interval(x, confidence: float = 0.95) -> MeanCI:
    """Student-t interval for the mean of ``x`` (non-finite values are dropped).

    n = 0 gives all-NaN fields; n = 1 gives the mean with NaN std, sem and bounds (one value
    carries no spread), never an error.
    """
    _check_confidence(confidence)
    a = _finite(x)
    n = a.size
    if n == 0:
        return MeanCI(0, math.nan, math.nan, math.nan, math.nan, math.nan, confidence)
    mean = float(a.mean())
    if n == 1:
        return MeanCI(1, mean, math.nan, math.nan, math.nan, math.nan, confidence)
    std = float(a.std(ddof=1))
    sem = std / math.sqrt(n)
    half = float(st.t.ppf(0.5 + confidence / 2.0, n - 1)) * sem
    return MeanCI(n, mean, std, sem, mean - half, mean + half, confidence)


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def _check_metric(df: pd.DataFrame, metric: str) -> None:
    if metric not in df.columns:
        raise ValueError(f"metric {metric!r} is not a column of the frame ({', '.join(map(str, df.columns))})")


def _exact_mean(v: pd.Series) -> float:
    """Mean of the non-NaN values from their exactly rounded sum (math.fsum): the same bits whatever the row
    order. pandas' grouped mean sums in an order that depends on the other groups of the frame, so a mean on a
    rounding tie (77.895 of twelve two-decimal accuracies) printed 77.90 or 77.89 as unrelated records came and
    went."""
    x = v.dropna().to_numpy(dtype=float)
    return math.fsum(x) / x.size if x.size else float("nan")


def _exact_std(v: pd.Series) -> float:
    """Sample standard deviation (ddof 1) from exactly rounded sums about :func:`_exact_mean`: order-free."""
    x = v.dropna().to_numpy(dtype=float)
    if x.size < 2:
        return float("nan")
    return math.sqrt(math.fsum((x - _exact_mean(v)) ** 2) / (x.size - 1))


def summarize(df: pd.DataFrame, metric: str = "test_acc", confidence: float = 0.95) -> pd.DataFrame:
    """Per (setting, method): n, mean, std (ddof 1), sem, ci_low, ci_high (Student t), plus
    ``diverged`` (diverged runs, excluded) and ``missing`` (completed runs without a value of
    ``metric``, e.g. a null ``best_test_acc_after_pruning``).

    Units are those of ``metric`` (accuracies in percent). Means and sds come from exactly rounded sums
    (math.fsum), so they do not depend on row order or on the other groups. Rows are sorted by keys; a group whose
    runs all diverged appears with n = 0 and NaN statistics, so nothing disappears silently.
    """
    _check_metric(df, metric)
    _check_confidence(confidence)
    keys = list(SETTING_KEYS) + ["method"]
    out_cols = keys + ["n", "mean", "std", "sem", "ci_low", "ci_high", "diverged", "missing"]
    if df.empty:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in out_cols})
    d = df.assign(_done=df["status"].eq("completed"),
                  _div=df["status"].eq("diverged"))
    d["_val"] = d[metric].where(d["_done"]).astype(float)
    d["_has"] = d["_val"].notna()
    d["_miss"] = d["_done"] & ~d["_has"]
    g = d.groupby(keys, sort=True, dropna=False)
    out = pd.DataFrame({
        "n": g["_has"].sum().astype(np.int64),
        "mean": g["_val"].agg(_exact_mean),
        "std": g["_val"].agg(_exact_std),
        "diverged": g["_div"].sum().astype(np.int64),
        "missing": g["_miss"].sum().astype(np.int64),
    }).reset_index()
    n = out["n"].to_numpy()
    sem = out["std"].to_numpy() / np.sqrt(np.where(n > 0, n, np.nan))
    with _quiet():
        crit = st.t.ppf(0.5 + confidence / 2.0, np.where(n > 1, n - 1, np.nan))
    half = crit * sem
    out["sem"] = np.where(n > 1, sem, np.nan)
    out["std"] = np.where(n > 1, out["std"], np.nan)
    out["ci_low"] = np.where(n > 1, out["mean"] - half, np.nan)
    out["ci_high"] = np.where(n > 1, out["mean"] + half, np.nan)
    out = out[out_cols]
    return out.sort_values([k for k in SORT_KEYS if k in out.columns], kind="mergesort").reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# multiplicity


def holm(pvalues):
    """Holm step-down adjusted p-values.

    Sorted ascending, p_(i) is adjusted to max_{j<=i} min(1, (m - j + 1) p_(j)): monotone in the
    raw order and capped at 1. NaN entries stay NaN and do not count: m is the number of non-NaN
    p-values. Returns the same shape; a ``pandas.Series`` keeps its index.

    >>> holm([0.01, float("nan"), 0.04, 0.03])
    array([0.03,  nan, 0.06, 0.06])
    """
    index = pvalues.index if isinstance(pvalues, pd.Series) else None
    p = np.asarray(pvalues, dtype=float)
    shape = p.shape
    p = p.ravel()
    if np.any((p < 0) | (p > 1)):
        raise ValueError("p-values must lie in [0, 1]")
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    m = ok.size
    if m:
        order = ok[np.argsort(p[ok], kind="mergesort")]
        adj = np.minimum(1.0, (m - np.arange(m)) * p[order])
        out[order] = np.maximum.accumulate(adj)
    out = out.reshape(shape)
    if index is not None:
        return pd.Series(out, index=index, name=getattr(pvalues, "name", None))
    return out


# --------------------------------------------------------------------------------------------
# two samples


@dataclass(frozen=True)
class PairedComparison:
    """Paired comparison of x against y on matched units (differences d = x - y)."""

    n_pairs: int
    mean_diff: float  #: mean of d (units of the data)
    ci_low: float  #: Student-t interval of the mean difference
    ci_high: float
    p_ttest: float  #: paired t-test, two-sided (scipy.stats.ttest_rel)
    p_wilcoxon: float  #: Wilcoxon signed-rank, two-sided (scipy.stats.wilcoxon); NaN when undefined
    wilcoxon_method: str  #: "exact", "exact-permutation", "normal-approx" or "undefined"
    effect_size: float  #: Cohen's d_z = mean(d) / std(d, ddof=1); NaN when n < 2 or std(d) = 0


def paired_test(x, y, confidence: float = 0.95) -> PairedComparison:
    """Paired comparison of two equally long arrays already matched element by element.

    * t: ``scipy.stats.ttest_rel`` (two-sided), NaN when n < 2 or when all differences are equal
      (no spread: the t statistic is undefined or infinite).
    * Wilcoxon signed-rank: ``scipy.stats.wilcoxon`` with zeros dropped (``zero_method="wilcox"``).
      It is exact where possible: SciPy's exact null distribution when there are no ties or zeros
      (n <= 50), an exhaustive (hence exact) sign-flip permutation test when there are ties or
      zeros and n <= 13 (:func:`signed_rank_permutation_p`, SciPy's permutation result computed
      as one matrix product), SciPy's normal approximation (tie- and continuity-corrected) beyond. NaN when it is
      undefined: n < 2 or every difference zero. With n pairs the smallest two-sided exact p is 2 / 2^n
      (0.25 for 3 seeds, 0.0625 for 5): few seeds cannot reach p < 0.05.
    * effect size: Cohen's d_z, the mean difference over the standard deviation of the
      differences (ddof 1) — the standardized effect of a paired design, not Cohen's d of two
      independent groups.
    """
    _check_confidence(confidence)
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"paired samples must have the same length, got {x.size} and {y.size}")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    d = x - y
    n = d.size
    ci = t_interval(d, confidence)
    p_t = p_w = dz = math.nan
    w_method = "undefined"
    if n >= 2:
        sd = float(d.std(ddof=1))
        if sd > 0:
            with _quiet():
                p_t = float(st.ttest_rel(x, y).pvalue)
            dz = float(d.mean()) / sd
        nz = d[d != 0]
        if nz.size >= 1:
            absd = np.abs(nz)
            has_ties = np.unique(absd).size < absd.size
            has_zeros = nz.size < n
            if not (has_ties or has_zeros) and n <= 50:
                w_method = "exact"
            elif n <= 13:
                w_method = "exact-permutation"
            else:
                w_method = "normal-approx"
            if w_method == "exact-permutation":
                p_w = signed_rank_permutation_p(d)
            else:
                with _quiet():
                    # Named explicitly (not method="auto") so the variant does not depend on the
                    # SciPy version.
                    p_w = float(st.wilcoxon(d, zero_method="wilcox",
                                            method="exact" if w_method == "exact" else "asymptotic").pvalue)
    return PairedComparison(n, ci.mean, ci.ci_low, ci.ci_high, p_t, p_w, w_method, dz)


def signed_rank_permutation_p(d) -> float:
    """Two-sided p of the Wilcoxon signed-rank test by exhaustive enumeration of all 2^n sign
    patterns of the non-zero differences (average ranks for ties, zeros dropped): exact with ties.

    The same p as ``scipy.stats.wilcoxon(d, method=scipy.stats.PermutationMethod())`` for
    n <= 13, which SciPy computes with one Python call per pattern (~0.4 s for n = 10, ~3 s for
    n = 13); here it is one matrix product. For n > 20 use the normal approximation instead.
    """
    d = np.asarray(d, dtype=float).ravel()
    d = d[d != 0]
    n = d.size
    if n == 0:
        return math.nan
    if n > 20:
        raise ValueError(f"exhaustive enumeration of 2^{n} sign patterns is too large")
    r = st.rankdata(np.abs(d))
    signs = (np.arange(2 ** n)[:, None] >> np.arange(n)) & 1
    null = signs @ r  # the statistic R+ under every sign pattern
    obs = r[d > 0].sum()
    mu = r.sum() / 2.0
    tol = 1e-9 * max(1.0, mu)
    return float(min(1.0, np.mean(np.abs(null - mu) >= abs(obs - mu) - tol)))


def signed_rank_p(d, alternative: str = "two-sided") -> float:
    """p of the Wilcoxon signed-rank test of the differences ``d`` (zeros dropped, average ranks for
    ties), for ``alternative`` "two-sided", "greater" (location > 0) or "less".

    Up to 13 non-zero differences the null distribution is enumerated over all 2^n sign patterns
    (exact, with or without ties); beyond, SciPy's exact distribution when there are no ties and
    n <= 50, else its normal approximation. NaN when no difference is non-zero.
    """
    if alternative not in ("two-sided", "greater", "less"):
        raise ValueError(f"alternative must be 'two-sided', 'greater' or 'less', got {alternative!r}")
    d = np.asarray(d, dtype=float).ravel()
    d = d[np.isfinite(d) & (d != 0)]
    n = d.size
    if n == 0:
        return math.nan
    if n <= 13:
        r = st.rankdata(np.abs(d))
        signs = (np.arange(2 ** n)[:, None] >> np.arange(n)) & 1
        null = signs @ r
        obs = r[d > 0].sum()
        tol = 1e-9 * max(1.0, r.sum())
        if alternative == "greater":
            return float(np.mean(null >= obs - tol))
        if alternative == "less":
            return float(np.mean(null <= obs + tol))
        mu = r.sum() / 2.0
        return float(min(1.0, np.mean(np.abs(null - mu) >= abs(obs - mu) - tol)))
    absd = np.abs(d)
    exact = np.unique(absd).size == absd.size and n <= 50
    with _quiet():
        return float(st.wilcoxon(d, zero_method="wilcox", alternative=alternative,
                                 method="exact" if exact else "asymptotic").pvalue)


def welch_test(x, y, alternative: str = "two-sided") -> float:
    """p-value of Welch's unpaired t-test (``scipy.stats.ttest_ind(equal_var=False)``).

    ``alternative="greater"`` tests mean(x) > mean(y). NaN when either sample has fewer than two
    finite values or both have zero variance.
    """
    a, b = _finite(x), _finite(y)
    if a.size < 2 or b.size < 2 or (a.std() == 0 and b.std() == 0):
        return math.nan
    with _quiet():
        return float(st.ttest_ind(a, b, equal_var=False, alternative=alternative).pvalue)


# --------------------------------------------------------------------------------------------
# frames


def method_values(df: pd.DataFrame, method: str, metric: str, settings: pd.DataFrame | None = None) -> pd.DataFrame:
    """Completed values of ``method`` as (setting keys, seed, value); for ``method == "dense"`` the
    dense runs are broadcast to every setting in ``settings`` of the same dataset/arch/protocol."""
    d = df[(df["method"] == method) & (df["status"] == "completed")]
    d = d[list(SETTING_KEYS) + ["seed", metric]].rename(columns={metric: "value"})
    d = d[np.isfinite(d["value"].astype(float))]
    if method == DENSE:
        if settings is None:
            raise ValueError("dense runs need the sparse settings to be matched to")
        ref = d.drop(columns=["target_sparsity", "initial_density"])
        d = settings.merge(ref, on=list(REFERENCE_KEYS), how="inner")
    return d


def _settings_of(df: pd.DataFrame, method: str) -> pd.DataFrame:
    return df.loc[df["method"] == method, list(SETTING_KEYS)].drop_duplicates()


def _diverged_counts(df: pd.DataFrame, method: str, settings: pd.DataFrame) -> pd.Series:
    d = df[(df["method"] == method) & (df["status"] == "diverged")]
    if method == DENSE:
        ref = d.groupby(list(REFERENCE_KEYS)).size().rename("c").reset_index()
        m = settings.merge(ref, on=list(REFERENCE_KEYS), how="left")
    else:
        cnt = d.groupby(list(SETTING_KEYS)).size().rename("c").reset_index()
        m = settings.merge(cnt, on=list(SETTING_KEYS), how="left")
    return m["c"].fillna(0).astype(np.int64)


def _check_unique(df: pd.DataFrame) -> None:
    keys = list(SETTING_KEYS) + ["method", "seed"]
    dup = df.duplicated(keys, keep=False)
    if dup.any():
        first = df.loc[dup, keys].iloc[0].to_dict()
        raise ValueError(f"two rows share one (setting, method, seed): {first}; pairing by seed needs unique keys")


COMPARE_COLUMNS = list(SETTING_KEYS) + [
    "method", "baseline", "n_method", "n_baseline", "n_pairs", "mean_method", "mean_baseline",
    "mean_diff", "ci_low", "ci_high", "p_ttest", "p_wilcoxon", "wilcoxon_method", "p_welch",
    "effect_size", "p_holm", "diverged_method", "diverged_baseline",
]


def compare(df: pd.DataFrame, method: str, baseline: str, metric: str = "test_acc",
            confidence: float = 0.95, family: tuple[str, ...] = ("protocol",)) -> pd.DataFrame:
    """``method`` against ``baseline`` in every setting where either has runs.

    Columns (one row per setting, sorted by keys):

    * ``n_method``, ``n_baseline``: completed runs of each; ``mean_method``, ``mean_baseline``
      their means (all completed runs, paired or not).
    * ``n_pairs``: seeds present for both (pairing is an inner join on the seed key, never row
      order); ``mean_diff`` = mean over pairs of (method - baseline) in the metric's units
      (percentage points for accuracies), ``ci_low``/``ci_high`` its Student-t interval.
    * ``p_ttest``: paired t-test, two-sided; ``p_wilcoxon``: Wilcoxon signed-rank, two-sided,
      exact where possible, NaN when undefined (n_pairs < 2 or all differences zero), with the
      variant used in ``wilcoxon_method`` (see :func:`paired_test`); ``p_welch``: Welch's unpaired
      t-test on all completed runs, two-sided.
    * ``effect_size``: Cohen's d_z of the paired differences (mean / sd, ddof 1).
    * ``p_holm``: Holm-adjusted ``p_ttest`` across the settings of one family (by default one
      protocol: the settings a claim is judged over); NaN p-values stay NaN and do not count.
    * ``diverged_method``, ``diverged_baseline``: diverged runs, excluded from all of the above.

    When ``baseline`` (or ``method``) is ``"dense"``, its runs of the same dataset/arch/protocol
    serve every sparse setting.
    """
    _check_metric(df, metric)
    _check_confidence(confidence)
    if method == baseline:
        raise ValueError("method and baseline must differ")
    if method == DENSE and baseline == DENSE:
        raise ValueError("dense against dense is not a comparison")
    present = set(df["method"])
    for m in (method, baseline):
        if m not in present:
            raise ValueError(f"method {m!r} has no runs; methods present: {', '.join(sorted(present))}")
    _check_unique(df)

    sparse = [m for m in (method, baseline) if m != DENSE]
    settings = pd.concat([_settings_of(df, m) for m in sparse]).drop_duplicates()
    settings = settings.sort_values([k for k in SORT_KEYS if k in settings.columns], kind="mergesort")
    settings = settings.reset_index(drop=True)

    a = method_values(df, method, metric, settings)
    b = method_values(df, baseline, metric, settings)
    ga = {k: g for k, g in a.groupby(list(SETTING_KEYS), sort=False)}
    gb = {k: g for k, g in b.groupby(list(SETTING_KEYS), sort=False)}
    empty = pd.DataFrame({"seed": pd.Series(dtype=np.int64), "value": pd.Series(dtype=float)})

    rows = []
    for key in settings.itertuples(index=False, name=None):
        xa = ga.get(key, empty)[["seed", "value"]]
        xb = gb.get(key, empty)[["seed", "value"]]
        pairs = xa.merge(xb, on="seed", suffixes=("_a", "_b"), how="inner").sort_values("seed")
        pc = paired_test(pairs["value_a"].to_numpy(), pairs["value_b"].to_numpy(), confidence)
        va, vb = xa["value"].to_numpy(float), xb["value"].to_numpy(float)
        rows.append(dict(
            zip(SETTING_KEYS, key),
            method=method, baseline=baseline,
            n_method=int(va.size), n_baseline=int(vb.size), n_pairs=pc.n_pairs,
            mean_method=float(va.mean()) if va.size else math.nan,
            mean_baseline=float(vb.mean()) if vb.size else math.nan,
            mean_diff=pc.mean_diff, ci_low=pc.ci_low, ci_high=pc.ci_high,
            p_ttest=pc.p_ttest, p_wilcoxon=pc.p_wilcoxon, wilcoxon_method=pc.wilcoxon_method,
            p_welch=welch_test(va, vb), effect_size=pc.effect_size,
        ))
    out = pd.DataFrame(rows, columns=[c for c in COMPARE_COLUMNS if c not in
                                      ("p_holm", "diverged_method", "diverged_baseline")])
    out["p_holm"] = holm_by(out, "p_ttest", family)
    out["diverged_method"] = _diverged_counts(df, method, settings).to_numpy()
    out["diverged_baseline"] = _diverged_counts(df, baseline, settings).to_numpy()
    return out[COMPARE_COLUMNS]


def holm_by(df: pd.DataFrame, column: str, family: tuple[str, ...] = ("protocol",)) -> np.ndarray:
    """Holm-adjust ``df[column]`` separately within each group of ``family`` columns (one family of
    tests per group); an empty ``family`` adjusts over all rows."""
    out = np.full(len(df), np.nan)
    if not len(df):
        return out
    if not family:
        return holm(df[column].to_numpy(float))
    pos = np.arange(len(df))
    for _, idx in pd.Series(pos).groupby([df[c].to_numpy() for c in family], sort=True):
        i = idx.to_numpy()
        out[i] = holm(df[column].to_numpy(float)[i])
    return out

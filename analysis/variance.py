"""Seeds by source: how much of a cell's seed-to-seed spread comes from the initial network, how much from the
data order, and what that means for pairing and for the seeds a comparison needs.

A crossed design runs every pair (init seed i, order seed o), i = 1..I, o = 1..O, once per cell (a setting and a
method). Its results follow the two-way random-effects model

    y_io = mu + a_i + b_o + e_io,    a_i ~ N(0, s2_init), b_o ~ N(0, s2_order), e_io ~ N(0, s2_resid),

where e_io holds the init x order interaction together with everything else (with one run per pair the two cannot
be told apart). The estimates are the ANOVA (method-of-moments) ones, which for a balanced design are also the
REML ones when they are positive:

    MS_init  = O * sum_i (ybar_i. - ybar..)^2 / (I - 1)                 E = s2_resid + O * s2_init
    MS_order = I * sum_o (ybar_.o - ybar..)^2 / (O - 1)                 E = s2_resid + I * s2_order
    MS_resid = sum (y - ybar_i. - ybar_.o + ybar..)^2 / ((I-1)(O-1))    E = s2_resid

s2_init = (MS_init - MS_resid) / O, s2_order = (MS_order - MS_resid) / I (a negative estimate is reported as 0 and
flagged), s2_resid = MS_resid. Intervals: s2_resid from the chi-square distribution of its sum of squares
(exact); s2_init and s2_order by the modified large-sample method for a difference of two mean squares (Ting,
Burdick, Graybill, Jeyaratnam and Lu 1990; Burdick and Graybill 1992, section 3.3), whose coverage is checked by
simulation in tests/analysis_tests/test_variance.py.

Pairing: two methods run on the same (init, order) pairs share a_i and b_o as far as the methods respond alike
to them. The correlation of their results across the pairs, and the ratio var(y_A - y_B) / (var(y_A) + var(y_B)),
say how much pairing on the seed buys: a comparison paired on seeds needs that ratio times the seeds an unpaired
one needs for the same power.

Platform: a run whose init and order seeds agree is the run of that seed, so a design's diagonal can share its
run id with a run recorded elsewhere on another platform (other CPU kernels). The differences d between such twins
size the drift a platform switch causes on the same scale: sum(d^2) / (2 n), the variance it adds to one run, with
its exact chi-square interval, set beside the residual variance of the twins' cells. The residual holds the init x
order interaction (what a pair of seeds fixes beyond their two effects) and the run's own noise; a switch that
re-draws the noise and keeps what the seeds fix adds the noise part alone: the residual variance if the interaction
is nil, less otherwise. A systematic shift between the platforms adds half its square.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["Component", "Decomposition", "Switch", "Twin", "decompose", "design_markdown", "mls_interval", "pairing",
           "platform_switch", "read_design"]


@dataclass(frozen=True)
class Component:
    """One variance component: its estimate (truncated at 0), the raw ANOVA value and its interval."""

    name: str
    estimate: float
    raw: float  # the method-of-moments value before truncation (negative: the component is not seen here)
    low: float
    high: float

    @property
    def truncated(self) -> bool:
        return self.raw < 0


@dataclass(frozen=True)
class Decomposition:
    n_init: int
    n_order: int
    mean: float
    ms_init: float
    ms_order: float
    ms_resid: float
    init: Component
    order: Component
    resid: Component
    level: float

    @property
    def total(self) -> float:
        return self.init.estimate + self.order.estimate + self.resid.estimate

    def share(self, name: str) -> float:
        """The component's share of the total variance of one run (NaN when the total is 0)."""
        total = self.total
        return getattr(self, name).estimate / total if total > 0 else float("nan")


def _grid(y) -> np.ndarray:
    y = np.asarray(y, dtype=float)
    if y.ndim != 2 or min(y.shape) < 2:
        raise ValueError(f"a crossed design needs at least 2 init seeds x 2 order seeds, got shape {y.shape}")
    if not np.isfinite(y).all():
        raise ValueError("a crossed design needs a finite result for every (init seed, order seed) pair")
    return y


def mls_interval(ms1: float, df1: int, ms2: float, df2: int, c: float, level: float = 0.95) -> tuple[float, float]:
    """Interval for ``theta = c * (E[ms1] - E[ms2])`` (a variance component from two independent mean squares on
    ``df1`` and ``df2`` degrees of freedom) by the modified large-sample method; the ends are clipped at 0."""
    a = (1 - level) / 2
    g1 = 1 - df1 / stats.chi2.ppf(1 - a, df1)
    h1 = df1 / stats.chi2.ppf(a, df1) - 1
    g2 = 1 - df2 / stats.chi2.ppf(1 - a, df2)
    h2 = df2 / stats.chi2.ppf(a, df2) - 1
    f_hi = stats.f.ppf(1 - a, df1, df2)
    f_lo = stats.f.ppf(a, df1, df2)
    g12 = ((f_hi - 1) ** 2 - g1 ** 2 * f_hi ** 2 - h2 ** 2) / f_hi
    h12 = ((1 - f_lo) ** 2 - h1 ** 2 * f_lo ** 2 - g2 ** 2) / f_lo
    theta = ms1 - ms2
    low = theta - math.sqrt(max(0.0, g1 ** 2 * ms1 ** 2 + h2 ** 2 * ms2 ** 2 + g12 * ms1 * ms2))
    high = theta + math.sqrt(max(0.0, h1 ** 2 * ms1 ** 2 + g2 ** 2 * ms2 ** 2 + h12 * ms1 * ms2))
    return max(0.0, c * low), max(0.0, c * high)


def decompose(y, level: float = 0.95) -> Decomposition:
    """The variance components of one cell's crossed results ``y[i, o]`` (init seed i, order seed o)."""
    y = _grid(y)
    n_i, n_o = y.shape
    grand = y.mean()
    row, col = y.mean(axis=1), y.mean(axis=0)
    df_i, df_o, df_e = n_i - 1, n_o - 1, (n_i - 1) * (n_o - 1)
    ms_i = n_o * float(((row - grand) ** 2).sum()) / df_i
    ms_o = n_i * float(((col - grand) ** 2).sum()) / df_o
    ss_e = float(((y - row[:, None] - col[None, :] + grand) ** 2).sum())
    ms_e = ss_e / df_e
    a = (1 - level) / 2
    resid = Component("resid", ms_e, ms_e, ss_e / stats.chi2.ppf(1 - a, df_e), ss_e / stats.chi2.ppf(a, df_e))
    comps = []
    for name, ms, df, c in (("init", ms_i, df_i, 1 / n_o), ("order", ms_o, df_o, 1 / n_i)):
        raw = c * (ms - ms_e)
        low, high = mls_interval(ms, df, ms_e, df_e, c, level)
        comps.append(Component(name, max(raw, 0.0), raw, low, high))
    return Decomposition(n_i, n_o, float(grand), ms_i, ms_o, ms_e, comps[0], comps[1], resid, level)


@dataclass(frozen=True)
class Pairing:
    n: int  # (init, order) pairs both methods ran
    correlation: float
    corr_low: float
    corr_high: float
    var_ratio: float  # var(a - b) / (var(a) + var(b)): paired seeds needed / unpaired seeds needed


def pairing(a, b, level: float = 0.95) -> Pairing:
    """How alike two methods' results on the same (init, order) pairs are: their correlation (Fisher-z interval)
    and the variance ratio of the paired difference to the unpaired one."""
    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if a.shape != b.shape or len(a) < 4:
        raise ValueError("pairing needs the two methods' results on the same 4 or more (init, order) pairs")
    va, vb = a.var(ddof=1), b.var(ddof=1)
    r = float(np.corrcoef(a, b)[0, 1]) if va > 0 and vb > 0 else float("nan")
    if math.isfinite(r) and abs(r) < 1:
        z, se = math.atanh(r), 1 / math.sqrt(len(a) - 3)
        q = stats.norm.ppf(0.5 + level / 2)
        lo, hi = math.tanh(z - q * se), math.tanh(z + q * se)
    else:
        lo = hi = r
    ratio = float(np.var(a - b, ddof=1) / (va + vb)) if va + vb > 0 else float("nan")
    return Pairing(len(a), r, lo, hi, ratio)


# ---- records of a crossed design ---------------------------------------------------------------------------

CELL_KEYS = ("dataset", "arch", "target_sparsity", "initial_density", "method")


def crossed_runs(results: str, protocol: str) -> list[dict]:
    """(cell keys, init seed, order seed, final test accuracy, run id, platform) of every completed record of
    ``protocol`` under ``results`` (``**/raw/**/*.json``): :func:`read_design`'s rows."""
    return read_design(results, protocol)[0]


@dataclass(frozen=True)
class Twin:
    """A run of the design recorded again, with the same run id (the same config), on another platform."""

    cell: tuple
    init_seed: int
    order_seed: int
    run_id: str
    test_acc: float  # the design's record
    other_acc: float  # the other record
    other_protocol: str
    differs: tuple  # (platform field, value here, value there) for each platform field in which they differ
    same_weights: bool

    @property
    def difference(self) -> float:
        """here - there, in points."""
        return self.test_acc - self.other_acc


def read_design(results: str, protocol: str) -> tuple[list[dict], list[Twin]]:
    """The completed records of a crossed design, and its runs recorded again on another platform.

    Rows: (cell keys, init seed, order seed, final test accuracy, run id, platform) of every completed record of
    ``protocol`` under ``results`` (``**/raw/**/*.json``); a record that predates the init and order seeds has both
    equal to its seed. Twins: for each row, every completed record of another protocol under ``results`` with the
    same run id whose platform (:func:`analysis.records.platform_columns`) differs in a field both records state;
    a run whose init and order seeds agree is the run of that seed, so a design's diagonal can meet the runs of an
    ordinary grid of the same config. Records are read as every command of the analysis reads them
    (:func:`analysis.records.read_record`): a JSON file that is not a run record is no part of either, a damaged one
    raises :class:`analysis.RecordError`."""
    from pathlib import Path

    from fggp_repro.spec import method_label

    from .records import UNKNOWN, NotARecord, platform_columns, read_record

    rows, others = [], {}
    for f in sorted(Path(results).glob("**/raw/**/*.json")):
        try:
            rec = read_record(f)
        except NotARecord:
            continue
        s = rec["setting"]
        if rec["status"] != "completed":
            continue
        acc = float(rec["metrics"]["test_acc"])
        if s["protocol"] != protocol:
            others.setdefault(rec["run_id"], []).append(
                (s["protocol"], platform_columns(rec), acc, rec.get("weights_sha256")))
            continue
        seed = s["seed"]
        rows.append({"dataset": s["dataset"], "arch": s["arch"], "target_sparsity": s["target_sparsity"],
                     "initial_density": s["initial_density"],
                     "method": method_label(s["method"], rec["config"].get("pruning")),
                     "seed": seed, "init_seed": s.get("init_seed", seed), "order_seed": s.get("order_seed", seed),
                     "test_acc": acc, "run_id": rec["run_id"], "platform": platform_columns(rec),
                     "weights_sha256": rec.get("weights_sha256")})
    twins = []
    for r in rows:
        for other_protocol, platform, acc, weights in others.get(r["run_id"], []):
            differs = tuple((k, v, platform[k]) for k, v in r["platform"].items() if platform[k] != v)
            if not any(UNKNOWN not in (here, there) for _, here, there in differs):
                continue  # the same platform, or one the records do not tell apart
            twins.append(Twin(tuple(r[k] for k in CELL_KEYS), r["init_seed"], r["order_seed"], r["run_id"],
                              r["test_acc"], acc, other_protocol, differs,
                              weights is not None and weights == r["weights_sha256"]))
    return rows, twins


@dataclass(frozen=True)
class Switch:
    """What a platform switch does to one run: from the differences d = here - there of runs of one config on
    two platforms."""

    n: int
    mean_difference: float
    variance: float  # sum(d^2) / (2 n)
    low: float
    high: float


def platform_switch(differences, level: float = 0.95) -> Switch:
    """The variance a platform switch adds to one run's result, from the differences ``d`` between runs of one
    config (same init and order seeds) on two platforms: ``sum(d^2) / (2 n)``, with the exact chi-square interval
    on ``n`` degrees of freedom. If a switch re-draws the run's noise around what its init and order seeds fix ("on
    another platform a run drifts like a new seed"), ``d ~ N(0, 2 s2)`` and the estimate is unbiased for ``s2``, the
    noise part of the cells' residual variance (all of it when the init x order interaction is nil); a systematic
    shift ``m`` between the platforms adds ``m^2 / 2`` to it (the mean difference is reported for that)."""
    d = np.asarray(differences, dtype=float).ravel()
    if len(d) < 1 or not np.isfinite(d).all():
        raise ValueError("a platform switch needs one or more finite differences")
    half_ss = float((d ** 2).sum()) / 2
    a = (1 - level) / 2
    n = len(d)
    return Switch(n, float(d.mean()), half_ss / n, half_ss / stats.chi2.ppf(1 - a, n), half_ss / stats.chi2.ppf(a, n))


def _pairs_by_cell(rows: list[dict]) -> dict[tuple, dict[tuple, float]]:
    """{cell: {(init seed, order seed): final test accuracy}}."""
    by_cell: dict[tuple, dict[tuple, float]] = {}
    for r in rows:
        by_cell.setdefault(tuple(r[k] for k in CELL_KEYS), {})[(r["init_seed"], r["order_seed"])] = r["test_acc"]
    return by_cell


def largest_grid(pairs) -> tuple[list, list] | None:
    """The largest complete crossed sub-design of a set of (init, order) pairs: (init seeds, order seeds) with every
    pair present, at least 2 x 2, most pairs first, then most init seeds, then the smallest seeds; None if there is
    none. Exact by trying every subset of the init seeds (or of the order seeds, when fewer) with the seeds of the
    other kind they all share; beyond 12 seeds of both kinds, greedy (the seed missing most pairs dropped first),
    which may miss the largest part, or every part (None), of a design with many holes."""
    pairs = set(pairs)
    inits = sorted({i for i, _ in pairs})
    orders = sorted({o for _, o in pairs})
    if min(len(inits), len(orders)) > 12:
        rows, cols = list(inits), list(orders)
        while len(rows) >= 2 and len(cols) >= 2 and not all((i, o) in pairs for i in rows for o in cols):
            miss = [(sum((i, o) not in pairs for o in cols), 0, i) for i in rows]
            miss += [(sum((i, o) not in pairs for i in rows), 1, o) for o in cols]
            _, kind, seed = max(miss, key=lambda m: (m[0], -m[1], m[2]))
            (rows if kind == 0 else cols).remove(seed)
        return (rows, cols) if len(rows) >= 2 and len(cols) >= 2 else None
    flip = len(orders) < len(inits)
    side, other = (orders, inits) if flip else (inits, orders)
    with_ = {a: {b for b in other if ((b, a) if flip else (a, b)) in pairs} for a in side}
    best, best_key = None, None
    for mask in range(1, 1 << len(side)):
        chosen = [a for k, a in enumerate(side) if mask >> k & 1]
        if len(chosen) < 2:
            continue
        shared = sorted(set.intersection(*(with_[a] for a in chosen)))
        if len(shared) < 2:
            continue
        i_seeds, o_seeds = (shared, chosen) if flip else (chosen, shared)
        key = (-len(i_seeds) * len(o_seeds), -len(i_seeds), i_seeds, o_seeds)
        if best_key is None or key < best_key:
            best, best_key = (i_seeds, o_seeds), key
    return best


def cell_grids(rows: list[dict]) -> dict[tuple, tuple[list, list, np.ndarray]]:
    """{cell: (init seeds, order seeds, y[i, o])}: each cell on its largest complete crossed sub-design
    (:func:`largest_grid`: every pair of its init and order seeds has a run, at least 2 x 2), so that a design
    still being run is decomposed on what is complete so far; cells without a complete 2 x 2 are left out."""
    out = {}
    for cell, ys in _pairs_by_cell(rows).items():
        grid = largest_grid(ys)
        if grid is not None:
            inits, orders = grid
            out[cell] = (inits, orders, np.array([[ys[(i, o)] for o in orders] for i in inits]))
    return out


def _cell_label(cell: tuple) -> str:
    dataset, arch, sp, dens, method = cell
    start = "dense start" if dens == 1.0 else f"{round(100 * (1 - dens))}%-sparse start"
    where = "dense" if method == "dense" else f"{100 * sp:g}%, {start}"
    return f"{arch} {where}: {method}"


def _method_pairs(rows: list[dict]):
    """(setting key, method a, method b, y_a, y_b) for every two methods of one setting and start (dense, the
    reference of every setting of its network, included) over the (init, order) pairs both ran, when there are at
    least 4 of them; y_a and y_b in the order of the pairs. In display order."""
    by_cell = _pairs_by_cell(rows)
    by_setting: dict[tuple, dict[str, dict]] = {}
    for cell, ys in by_cell.items():
        if cell[4] != "dense":
            by_setting.setdefault(cell[:4], {})[cell[4]] = ys
    for key, methods in by_setting.items():
        dense = by_cell.get((key[0], key[1], 0.0, 1.0, "dense"))
        if dense is not None:
            methods["dense"] = dense
    for key, methods in sorted(by_setting.items(), key=lambda kv: _cell_label(kv[0] + ("",))):
        names = sorted(methods)
        for ai, a in enumerate(names):
            for b in names[ai + 1:]:
                shared = sorted(set(methods[a]) & set(methods[b]))
                if len(shared) >= 4:
                    yield (key, a, b, np.array([methods[a][p] for p in shared]),
                           np.array([methods[b][p] for p in shared]))


def report_lines(rows: list[dict], level: float = 0.95, effect: float = 0.5, twins=()) -> list[str]:
    """The variance table (one row per cell, on its largest complete crossed sub-design: :func:`cell_grids`), the
    pairing table (every two methods of one setting and start on the 4 or more (init, order) pairs both ran) and,
    when some of the design's runs were recorded again on another platform (``twins``, :func:`read_design`), the
    table of those and what a platform switch adds to one run (:func:`platform_switch`), as Markdown."""
    from .power import seeds_needed

    grids = cell_grids(rows)
    if not grids:
        return ["no cell has a complete crossed design of at least 2 x 2 (2 init seeds, each with the same 2 order "
                "seeds)"]
    pct = f"{100 * level:g}%"
    out = [f"| cell | init x order | mean (%) | sd of one run | init: variance [{pct}] | order: variance [{pct}] | "
           f"residual: variance [{pct}] | share init / order / residual |",
           "|---|---|---|---|---|---|---|---|"]
    for cell, (inits, orders, y) in sorted(grids.items(), key=lambda kv: _cell_label(kv[0])):
        d = decompose(y, level)

        def comp(c):
            flag = " (estimate < 0: 0)" if c.truncated else ""
            return f"{c.estimate:.3f} [{c.low:.3f}, {c.high:.3f}]{flag}"

        shares = " / ".join(f"{d.share(n):.2f}" for n in ("init", "order", "resid"))
        out.append(f"| {_cell_label(cell)} | {len(inits)} x {len(orders)} | {d.mean:.2f} | {math.sqrt(d.total):.2f} | "
                   f"{comp(d.init)} | {comp(d.order)} | {comp(d.resid)} | {shares} |")
    out += ["", f"| setting | methods | pairs | correlation [{pct}] | var(a - b) / (var a + var b) | "
                f"seeds for {effect:g} pp at 80 % power: paired / unpaired |",
            "|---|---|---|---|---|---|"]
    for key, a, b, ya, yb in _method_pairs(rows):
        p = pairing(ya, yb, level)
        sd_paired = float(np.std(ya.ravel() - yb.ravel(), ddof=1))
        sd_unpaired = math.sqrt(float(np.var(ya, ddof=1) + np.var(yb, ddof=1)))
        n_p, n_u = (seeds_needed(effect, sd) for sd in (sd_paired, sd_unpaired))
        out.append(f"| {_cell_label(key + ('',)).rsplit(':', 1)[0]} | {a} vs {b} | {p.n} | "
                   f"{p.correlation:+.2f} [{p.corr_low:+.2f}, {p.corr_high:+.2f}] | {p.var_ratio:.2f} | "
                   f"{_count(n_p)} / {_count(n_u)} |")
    out += ["", "Seeds: the paired t-test's count from the sd of the seed-paired differences (paired) and from "
                "sqrt(var a + var b) (unpaired: each method on seeds of its own), over the crossed pairs."]
    if twins:
        out += [""] + _twin_lines(twins, grids, level)
    return out


_PLATFORM_NAMES = {"cpu_isa": "CPU ISA", "onednn_isa": "oneDNN ISA", "channels_last": "channels_last"}


def _twin_lines(twins, grids: dict, level: float) -> list[str]:
    """The runs of the design recorded again on another platform, and the variance a platform switch adds."""
    pct = f"{100 * level:g}%"
    out = ["| cell | init, order seed | run | here (%) | other record (%) | here - other (pp) | platform: here / other "
           "| weights |", "|---|---|---|---|---|---|---|---|"]
    for t in sorted(twins, key=lambda t: (_cell_label(t.cell), t.init_seed, t.order_seed, t.other_protocol)):
        where = "; ".join(f"{_PLATFORM_NAMES.get(k, k)} {a} / {b}" for k, a, b in t.differs)
        out.append(f"| {_cell_label(t.cell)} | {t.init_seed}, {t.order_seed} | `{t.run_id}` | {t.test_acc:.2f} | "
                   f"{t.other_acc:.2f} (`{t.other_protocol}`) | {t.difference:+.2f} | {where} | "
                   f"{'identical' if t.same_weights else 'differ'} |")
    sw = platform_switch([t.difference for t in twins], level)
    resid = []
    for cell in sorted({t.cell for t in twins}, key=_cell_label):
        if cell in grids:
            r = decompose(grids[cell][2], level).resid
            resid.append(f"{_cell_label(cell)} {r.estimate:.3f} [{r.low:.3f}, {r.high:.3f}]")
        else:
            resid.append(f"{_cell_label(cell)} not estimated yet (no complete 2 x 2)")
    out += ["", f"Platform switch, over {sw.n} run(s) of the design recorded again on another platform with the same "
                f"run id: mean difference {sw.mean_difference:+.2f} pp; variance added to one run, sum(d^2) / (2 n), "
                f"{sw.variance:.3f} [{sw.low:.3f}, {sw.high:.3f}] ({pct}, chi-square on {sw.n} df). If a switch "
                f"re-draws a run's noise and keeps what its init and order seeds fix, this estimates the noise part "
                f"of the residual: all of it when the init x order interaction is nil, less otherwise (a shift "
                f"between the platforms adds to it). The residual variance of the twins' cells: "
                + "; ".join(resid) + "."]
    return out


def _design(rows: list[dict]) -> tuple[list, list, dict[tuple, dict[tuple, float]], list[tuple]]:
    """(the design's init seeds, its order seeds, :func:`_pairs_by_cell`, the cells that ran every pair of them)."""
    inits = sorted({r["init_seed"] for r in rows})
    orders = sorted({r["order_seed"] for r in rows})
    by_cell = _pairs_by_cell(rows)
    complete = [c for c, ys in by_cell.items() if len(ys) == len(inits) * len(orders)]
    return inits, orders, by_cell, complete


def crossed_summary(protocol: str, rows: list[dict]) -> tuple[str, int, int, int]:
    """(protocol, completed runs, cells that ran every pair of the design's init and order seeds so far, cells)
    for the results-at-a-glance line."""
    _, _, by_cell, complete = _design(rows)
    return protocol, len(rows), len(complete), len(by_cell)


def _seed_list(seeds) -> str:
    seeds = sorted(seeds)
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}-{seeds[-1]}"
    return ", ".join(str(x) for x in seeds)


def design_markdown(protocol: str, runs, rows: list[dict], level: float = 0.95, effect: float = 0.5,
                    twins=()) -> str:
    """``variance.md`` of a crossed design for ``fggp-repro figures``: what was run (preset, network, platforms,
    which cells are complete), :func:`report_lines`' tables, and what they say about pairing on the seed.

    ``runs`` is the design's frame of :data:`analysis.records.RUN_COLUMNS` (every status), ``rows`` its completed
    runs and ``twins`` its runs recorded again on another platform, as :func:`read_design` reads them."""
    import pandas as pd

    from .formatting import scale_parts
    from .platforms import platform_note
    from .report import DOCS, _preset_text, _runs_text, _table

    L = [f"# Crossed design `{protocol}`: seeds by source", "",
         "Written by `fggp-repro figures` from the run records; `fggp-repro variance --protocol "
         f"{protocol}` prints the same tables. A crossed design runs every pair of an init seed (initial weights, "
         "the ERK mask of a sparse start) and an order seed (data order and augmentation) once per cell; its runs "
         "share seeds, so no audit or table of this folder's other protocols uses them. The model, the estimators "
         f"and their checked coverage: [docs/running.md]({DOCS}/running.md#seeds-and-crossed-designs).", ""]
    inits, orders, by_cell, complete = _design(rows)
    grids = cell_grids(rows)

    def where(c):
        if c not in grids:
            return "in no table: no complete 2 x 2 yet"
        return f"in the tables on init seeds {_seed_list(grids[c][0])} x order seeds {_seed_list(grids[c][1])}"

    incomplete = [f"{_cell_label(c)} ({len(ys)} of the design's {len(inits) * len(orders)} pairs so far; {where(c)})"
                  for c, ys in sorted(by_cell.items(), key=lambda kv: _cell_label(kv[0])) if c not in complete]
    facts = [("preset", _preset_text(runs))]
    no_dense = pd.DataFrame({"method": [], "dataset": [], "arch": [], "n": []})  # the scale only, no dense line
    facts += [("network and data", clause) for _, _, clause, _ in scale_parts(runs, no_dense)]
    facts += [("seeds", f"init seeds {_seed_list(inits)} x order seeds {_seed_list(orders)}, run seed "
                        f"{_seed_list({r['seed'] for r in rows})}" if rows else "no completed runs"),
              ("cells", f"{len(by_cell)}: {len(complete)} with every init seed crossed with every order seed"
                        + (f"; incomplete: {'; '.join(incomplete)}" if incomplete else "")),
              ("runs", _runs_text(runs)),
              ("platforms", platform_note(runs).removeprefix("platforms: "))]
    L += _table(facts) + [""]
    L += report_lines(rows, level, effect, twins)
    if grids:
        L += ["", "## What the design says", ""] + _reading(rows, grids, level, effect, twins)
    return "\n".join(L) + "\n"


def _reading(rows: list[dict], grids: dict, level: float, effect: float, twins=()) -> list[str]:
    """Sentences computed from the tables: where the spread comes from (``grids``, the cells' complete crossed
    designs), what pairing buys (the methods' shared seed pairs in ``rows``), and how a platform switch compares
    with a new draw of the residual (``twins``)."""
    pct = f"{100 * level:g} %"
    decs = {c: decompose(y, level) for c, (_, _, y) in grids.items()}
    out = []
    for name, what in (("init", "the init seed"), ("order", "the order seed"), ("resid", "the residual")):
        shares = [d.share(name) for d in decs.values() if math.isfinite(d.share(name))]
        if shares:
            out.append(f"- Share of one run's variance from {what}: {_span(shares)} over {len(shares)} cell(s).")
    pos = neg = zero = 0
    ratios = []
    for _, _, _, ya, yb in _method_pairs(rows):
        p = pairing(ya, yb, level)
        if not math.isfinite(p.correlation):
            continue
        ratios.append(p.var_ratio)
        if p.corr_low > 0:
            pos += 1
        elif p.corr_high < 0:
            neg += 1
        else:
            zero += 1
    n = pos + neg + zero
    if n:
        out.append(f"- Method pairs run on the same seeds: {n}. Correlation of their results across the seed pairs, "
                   f"{pct} interval above 0 in {pos}, below 0 in {neg}, including 0 in {zero}. "
                   f"var(a - b) / (var a + var b): {_span(ratios)}; below 1, a comparison "
                   f"paired on the seed (as the audit's paired tests are) needs that fraction of the seeds an unpaired "
                   f"one needs for {effect:g} points; near or above 1, pairing buys nothing, and the paired tests stay "
                   f"valid at the power of unpaired ones.")
    resid = [decs[c].resid.estimate for c in {t.cell for t in twins} if c in decs]
    if twins and resid:
        sw = platform_switch([t.difference for t in twins], level)
        above, below = sum(r > sw.high for r in resid), sum(r < sw.low for r in resid)
        if above == len(resid):
            where = ("lies below all of them: a switch moved these runs less than a new draw of the residual would "
                     "(the residual holds an init x order interaction that a switch keeps, or a switch re-draws only "
                     "part of the noise)")
        elif below == len(resid):
            where = ("lies above all of them: a switch moved these runs more than a new draw of the residual would "
                     "(a shift between the platforms adds half its square; mean difference "
                     f"{sw.mean_difference:+.2f} pp)")
        elif above == below == 0:
            where = ("includes all of them: these runs drift across platforms as a new draw of the residual would "
                     "move them, as far as they can tell")
        else:
            where = "includes some of them"
        out.append(f"- The same run on another platform: {sw.n} run(s). The variance a platform switch adds to one "
                   f"run, {sw.variance:.3f} [{sw.low:.3f}, {sw.high:.3f}] ({pct}), set beside the residual variance "
                   f"of their cells ({_span(resid, 3)}): its interval {where}.")
    return out


def _span(values, digits: int = 2) -> str:
    lo, hi = f"{min(values):.{digits}f}", f"{max(values):.{digits}f}"
    return lo if lo == hi else f"{lo} to {hi}"


def _count(n: float) -> str:
    return f"{int(n)}" if math.isfinite(n) else ("n/a" if math.isnan(n) else "more than 100,000")


def main(argv: list[str] | None = None) -> int:
    """``fggp-repro variance``: the seed-source decomposition of a crossed design's records."""
    import argparse
    import sys

    from .cli import _Parser
    from .errors import RecordError

    ap = _Parser(prog="fggp-repro variance", description=(
        "Seeds by source: for each cell (setting and method) whose records cross init seeds with order seeds\n"
        "(grid --init-seeds A --order-seeds B --protocol LABEL), the variance of one run's final accuracy split\n"
        "into init, data order and residual (two-way random effects, ANOVA estimates, modified large-sample\n"
        "intervals), and for every two methods of a setting how alike seeds make them (correlation) and what\n"
        "pairing on seeds saves (seeds a paired and an unpaired comparison need for --effect at 80 % power).\n"
        "Runs of the design recorded again under --results on another platform (the same run id, e.g. a diagonal\n"
        "run init = order = k and a plain run of seed k) size a platform switch on the same scale."),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", default="results", help="results folder (default: results)")
    ap.add_argument("--protocol", required=True, help="the crossed design's protocol label")
    ap.add_argument("--level", type=float, default=0.95, help="interval coverage (default: 0.95)")
    ap.add_argument("--effect", type=float, default=0.5, help="effect to plan seeds for, in points (default: 0.5)")
    ap.add_argument("--out", metavar="FILE", help="also write the tables to FILE (Markdown)")
    try:
        args = ap.parse_args(argv)
    except SystemExit as e:  # --help (0) or a usage error (2, one line): return, do not exit the caller
        return int(e.code) if isinstance(e.code, int) else 2
    if not 0 < args.level < 1:
        print(f"fggp-repro variance: error: --level must be in (0, 1), got {args.level}", file=sys.stderr)
        return 2
    if not (math.isfinite(args.effect) and args.effect > 0):
        print(f"fggp-repro variance: error: --effect must be a positive number of points, got {args.effect}",
              file=sys.stderr)
        return 2
    try:
        rows, twins = read_design(args.results, args.protocol)
    except RecordError as e:
        print(f"fggp-repro variance: error: {e}", file=sys.stderr)
        return 2
    if not rows:
        print(f"fggp-repro variance: error: no completed record of protocol '{args.protocol}' under {args.results}: "
              "run a crossed design first (fggp-repro grid ... --init-seeds 0-2 --order-seeds 0-2 --protocol LABEL)",
              file=sys.stderr)
        return 2
    cells: dict[tuple, int] = {}
    for r in rows:
        cells[tuple(r[k] for k in CELL_KEYS)] = cells.get(tuple(r[k] for k in CELL_KEYS), 0) + 1
    if max(cells.values()) > 1 and all(r["init_seed"] == r["seed"] == r["order_seed"] for r in rows):
        print(f"fggp-repro variance: error: protocol '{args.protocol}' is not a crossed design: none of its "
              f"{len(rows)} records has an init or order seed of its own; give the label of a crossed design "
              "(fggp-repro grid ... --init-seeds 0-2 --order-seeds 0-2 --protocol LABEL)", file=sys.stderr)
        return 2
    lines = report_lines(rows, args.level, args.effect, twins)
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.out:
        from fggp_repro.spec import OutputError, atomic_write_bytes

        try:
            atomic_write_bytes(args.out, text.encode())
        except OutputError as e:
            print(f"fggp-repro variance: error: --out: {e}", file=sys.stderr)
            return 2
    return 0

"""Calibration of the claims audit by simulation.

Records are simulated from a variance-components model of final test accuracy,

    y[setting, method, seed] = mu[setting, method] + a[seed] + b[setting, seed] + e[setting, method, seed],

with a seed effect ``a`` shared by every setting and method (one seed drives every run: the same
initialisation and data order), a seed-by-setting effect ``b`` shared by the methods of a setting,
and run noise ``e`` (Gaussian, or Student-t with ``tail_df`` degrees of freedom scaled to the same sd:
heavy tails); the dense reference is one more "setting" with its own ``b``. A sparse run collapses to
chance level (10 %) with probability ``collapse_rate``, independently. The default standard deviations
are those :func:`fit_components` estimates from the committed ``mini`` records (``python -m analysis
calibrate --fit mini`` prints them); ``--fit P --design`` simulates protocol P's own design with its
fitted components, collapse rate and heavy-tailed noise. A study's design (``--fit STUDY --design``) joins the
designs of its protocols (:func:`join_designs`): each protocol's settings are simulated with that protocol's own
components, seeds and dense reference, independently of the other protocols' (the same seed number of two
protocols is two different runs), and judged together, as the audit judges the study.

Each scenario fixes the true differences; every replicate is judged by :func:`analysis.claims.decide`,
the very function the audit calls, on arrays with a leading replicate axis, and the rates of each verdict
are counted. ``tests/analysis_tests/test_calibration.py`` asserts them; ``python -m analysis calibrate``
prints them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import decisions as D
from .claims import Arrays, decide, load_claims
from .records import COLLAPSED_AT, DENSE, SETTING_KEYS

__all__ = ["MINI_COMPONENTS", "METHODS", "TAIL_DF", "Scenario", "SCENARIOS", "design_scenarios", "simulate",
           "arrays_of", "decide_arrays", "calibrate", "calibrate_looks", "fit_components", "fit_shortfall",
           "setting_noise", "planted", "join_designs"]

#: Standard deviations (accuracy points) fitted to the committed mini records by :func:`fit_components`
#: (seed 2.22, seed x setting 1.68, noise 1.90 over the 5 non-random methods), rounded. No collapses, Gaussian.
MINI_COMPONENTS = {"seed": 2.2, "setting_seed": 1.7, "noise": 1.9}
#: The methods of a simulated grid (the claimed one first): those of the cpu protocol.
METHODS = ("fggp", "annealed", "annealed:r0=0.01", "gf-annealed", "mf-fixed", "gmp", "random")
#: Where a collapsed run ends: at chance level on CIFAR-10's 10 classes.
CHANCE = 10.0
#: Degrees of freedom of the heavy-tailed (Student-t) run noise of a protocol's design calibration: a model
#: choice (a t with 5 degrees of freedom has an excess kurtosis of 6), not a fit.
TAIL_DF = 5


@dataclass(frozen=True)
class Scenario:
    """True differences of one simulated design, in units of the smallest effect of interest delta."""

    name: str
    description: str
    n_seeds: int
    #: (S, A) advantage of fggp over each other method (``methods[1:]``), in delta units (positive = fggp better)
    advantage: np.ndarray = field(repr=False)
    #: (S,) advantage of fggp over dense, in delta units
    over_dense: np.ndarray = field(repr=False)
    #: (S,) seeds of each setting, the largest being ``n_seeds``; None: ``n_seeds`` everywhere. A setting with
    #: fewer seeds has no runs (NaN) beyond its count, dense reference included, as in a grid whose starts were
    #: planned with different seeds (the cpu protocol: 12 seeds at the dense start, 5 at the sparse one).
    seeds_by_setting: tuple | None = None
    #: the methods, the claimed one first (default :data:`METHODS`, cut to 1 + A)
    methods: tuple | None = None
    #: the collapse rate of the components multiplied by this
    collapse_scale: float = 1.0
    #: (S,) the protocol of each setting, for a study's design (protocols joined): each protocol's settings are
    #: simulated with its own components (``components`` is then {protocol: components}) and resampled within
    #: its own starts. None: one protocol, the components those of every setting.
    protocols: tuple | None = None
    #: (S, 1 + A) True where a setting has no runs of a method (a study joining protocols whose methods differ:
    #: the audit has no runs of a method in the settings of a protocol without it). None: every method everywhere.
    absent: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self):
        k = self.seeds_by_setting
        if k is not None:
            k = tuple(int(x) for x in k)
            if len(k) != self.n_settings or min(k) < 2 or max(k) != self.n_seeds:
                raise ValueError(f"scenario {self.name}: seeds_by_setting {k} must give each of its "
                                 f"{self.n_settings} settings at least 2 seeds, the most being n_seeds "
                                 f"({self.n_seeds})")
            object.__setattr__(self, "seeds_by_setting", k)
        methods = tuple(self.methods or METHODS[:1 + self.n_alternatives])
        if len(methods) != 1 + self.n_alternatives:
            raise ValueError(f"scenario {self.name}: {len(methods)} methods for 1 + {self.n_alternatives} columns")
        object.__setattr__(self, "methods", methods)
        if self.protocols is not None:
            p = tuple(str(x) for x in self.protocols)
            if len(p) != self.n_settings:
                raise ValueError(f"scenario {self.name}: {len(p)} protocols for {self.n_settings} settings")
            object.__setattr__(self, "protocols", p)
        if self.absent is not None:
            a = np.asarray(self.absent, dtype=bool)
            if a.shape != (self.n_settings, len(methods)) or a[:, 0].any():
                raise ValueError(f"scenario {self.name}: absent must mark (settings, methods) = "
                                 f"({self.n_settings}, {len(methods)}) cells, never the claimed method")
            object.__setattr__(self, "absent", a)

    @property
    def n_settings(self) -> int:
        return self.advantage.shape[0]

    @property
    def n_alternatives(self) -> int:
        return self.advantage.shape[1]


def planted(methods, k: float, floor: float = 4.0) -> np.ndarray:
    """(A,) advantages of fggp (``methods[0]``) over the other methods when FGGP's two mechanisms both add k
    delta: the order effect (gradient-first over magnitude-first) and the rate effect (fixed over annealed),
    additively: mf-fixed and gf-annealed k below fggp, annealed (either r0) 2k, any other published method k,
    random at least ``floor`` delta below. Then every claim is true with a smallest true margin of k delta."""
    out = []
    for m in methods[1:]:
        base = m.split(":")[0]
        out.append({"mf-fixed": k, "gf-annealed": k, "annealed": 2 * k, "random": max(k, floor)}.get(base, k))
    return np.array(out, dtype=float)


def _scenarios(S: int = 6) -> dict[str, Scenario]:
    A = len(METHODS) - 1
    ia = METHODS.index("annealed") - 1
    zero = np.zeros((S, A))
    lf1 = np.full((S, A), 10.0)
    lf1[S // 2:, ia] = 0.0  # tied with one alternative in half the settings: "most" is false, barely
    lf3 = np.full((S, A), 10.0)
    lf3[:, ia] = 0.0  # tied with one alternative, far ahead of the others
    within = np.full((S, A), 2.0)
    within[:, ia] = 0.25  # within delta / 4 of one alternative
    behind = np.zeros((S, A))
    behind[:, ia] = -4.0  # one alternative ahead of fggp
    eff = np.tile(planted(METHODS, 2.0), (S, 1))
    return {s.name: s for s in [
        Scenario("null", "no difference anywhere (mini-like: 5 seeds)", 5, zero, np.zeros(S)),
        Scenario("null-30", "no difference anywhere, 30 seeds", 30, zero, np.zeros(S)),
        Scenario("lf-claim1", "least favourable for claim 1: fggp 10 delta ahead of every alternative, except "
                              "annealed, which it ties with in half the settings (30 seeds)", 30, lf1, np.zeros(S)),
        Scenario("lf-claim3", "least favourable for claim 3: fggp tied with annealed, 10 delta ahead of the others "
                              "(5 seeds)", 5, lf3, np.zeros(S)),
        Scenario("effect", "order and rate effects of 2 delta each (planted): fggp at least 2 delta ahead of every "
                           "method and of dense, everywhere (150 seeds)", 150, eff, np.full(S, 2.0)),
        Scenario("within", "fggp within delta / 4 of annealed (+delta / 4) and of dense (+delta / 4), 2 delta ahead "
                           "of the others (150 seeds)", 150, within, np.full(S, 0.25)),
        Scenario("within-600", "the same with 600 seeds: enough to show the sub-delta lead", 600, within,
                 np.full(S, 0.25)),
        Scenario("behind-claim3", "annealed better than fggp by 4 delta everywhere, the others equal to fggp and "
                                  "dense (5 seeds): claim 3 is false", 5, behind, np.zeros(S)),
    ]}


SCENARIOS: dict[str, Scenario] = _scenarios()


def design_scenarios(S: int, A: int | None = None, K: int = 5, seeds_by_setting=None, methods=None,
                     protocols=None, absent=None) -> dict[str, Scenario]:
    """Scenarios at one protocol's own design (S settings, ``methods`` (the claimed one first; default
    :data:`METHODS`, or its first 1 + A), K seeds, or ``seeds_by_setting``, S counts whose largest is K), or at a
    study's (``protocols``, ``absent``: :func:`join_designs`):

    * ``null``: every method and dense equal;
    * ``effect-1`` / ``effect-2``: order and rate effects of delta / 2 delta each (:func:`planted`): every claim
      true with a smallest margin of 1 / 2 delta, everywhere;
    * ``sub-delta``: the same at delta / 2: every lead real but below delta;
    * ``collapses``: ``effect-2`` with five times the collapse rate;
    * ``fggp-only``: fggp 2 delta ahead of every other method and of dense, the three other cells of the 2 x 2
      equal: the order and rate claims are false (each holds at one level of the other factor only: an
      interaction of 2 delta), claims 1-3 true;
    * ``behind-1``: annealed better than fggp by delta everywhere, the others and dense equal to fggp (claims 1
      and 3 false)."""
    methods = tuple(methods or (METHODS if A is None else METHODS[:1 + A]))
    A = len(methods) - 1
    k = tuple(int(x) for x in seeds_by_setting) if seeds_by_setting is not None else None
    seeds = f"{K} seeds" if k is None or len(set(k)) == 1 else f"{'/'.join(map(str, k))} seeds by setting"
    behind = np.zeros((S, A))
    if "annealed" in methods[1:]:
        behind[:, methods.index("annealed") - 1] = -1.0
    else:
        behind[:, 0] = -1.0
    only = np.full((S, A), 2.0)
    for i, m in enumerate(methods[1:]):
        if m.split(":")[0] == "random":
            only[:, i] = 4.0

    def eff(x):
        return np.tile(planted(methods, x), (S, 1))

    sc = lambda *a, **kw: Scenario(*a, seeds_by_setting=k, methods=methods, protocols=protocols,  # noqa: E731
                                   absent=absent, **kw)
    return {s.name: s for s in [
        sc("null", f"no difference anywhere ({seeds})", K, np.zeros((S, A)), np.zeros(S)),
        sc("effect-1", f"order and rate effects of delta each: fggp at least delta ahead of every method and of "
                       f"dense, everywhere ({seeds})", K, eff(1.0), np.full(S, 1.0)),
        sc("effect-2", f"order and rate effects of 2 delta each: fggp at least 2 delta ahead of every method and "
                       f"of dense, everywhere ({seeds})", K, eff(2.0), np.full(S, 2.0)),
        sc("sub-delta", f"order and rate effects of delta / 2 each: every lead real but below delta ({seeds})", K,
           eff(0.5), np.full(S, 0.5)),
        sc("collapses", f"effect-2 with five times the collapse rate ({seeds})", K, eff(2.0), np.full(S, 2.0),
           collapse_scale=5.0),
        sc("fggp-only", f"fggp 2 delta ahead of every method and of dense, the other three cells of the 2 x 2 equal: "
                        f"order and rate matter only together ({seeds})", K, only, np.full(S, 2.0)),
        sc("behind-1", f"annealed better than fggp by delta everywhere, the others and dense equal to fggp ({seeds})",
           K, behind, np.zeros(S)),
    ]}


def _noise(rng, shape, sd, tail_df):
    """Run noise of standard deviation ``sd``: Gaussian, or Student-t with ``tail_df`` (> 2) degrees of freedom
    scaled to that sd."""
    if not tail_df:
        return rng.normal(0.0, 1.0, shape) * sd
    nu = float(tail_df)
    return rng.standard_t(nu, shape) * math.sqrt((nu - 2.0) / nu) * sd


def simulate(scn: Scenario, n_replicates: int, rng: np.random.Generator, delta: float = 0.5,
             components: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Replicates of a scenario: Y (R, S, 1 + A, K) with fggp at method index 0, and the dense
    reference D (R, S, K) (one dense run per seed, the same for every setting).

    ``components``: {"seed", "setting_seed", "noise"} standard deviations (default :data:`MINI_COMPONENTS`);
    with "noise_by_setting" (S values) the sparse runs of each setting get that setting's noise, and the dense
    runs the pooled "noise"; "tail_df": Student-t run noise with that many degrees of freedom (heavy tails);
    "collapse_rate": the probability that a sparse run ends at chance level (:data:`CHANCE`), times the
    scenario's ``collapse_scale``.

    A study's scenario (``scn.protocols``) takes {protocol: components}: each protocol's settings are simulated
    as that protocol's own grid (its seed effects, its dense reference), one protocol after the other."""
    if scn.protocols is not None:
        return _simulate_joined(scn, n_replicates, rng, delta, components)
    c = components or MINI_COMPONENTS
    R, S, A, K = n_replicates, scn.n_settings, scn.n_alternatives, scn.n_seeds
    tail = c.get("tail_df")
    # One level for every setting: setting means cancel in paired differences and within-setting ranks,
    # and a common level lets the dense reference be one run per seed, as in the records.
    base = np.full(S, 70.0)
    mu = np.empty((S, 1 + A))
    mu[:, 0] = base
    mu[:, 1:] = base[:, None] - scn.advantage * delta
    a = rng.normal(0.0, c["seed"], (R, 1, 1, K))
    b = rng.normal(0.0, c["setting_seed"], (R, S, 1, K))
    if c.get("noise_by_setting") is not None:
        ns = np.asarray(c["noise_by_setting"], dtype=float)
        if ns.shape != (S,):
            raise ValueError(f"noise_by_setting has {ns.size} values for {S} settings")
        e = _noise(rng, (R, S, 1 + A, K), 1.0, tail) * ns[None, :, None, None]
    else:
        e = _noise(rng, (R, S, 1 + A, K), c["noise"], tail)
    Y = mu[None, :, :, None] + a + b + e
    # dense: its own "setting" of the variance model; its mean puts fggp - dense at the scenario's
    # advantage (one dense mean, as one dense run per seed, when the advantage is the same everywhere)
    bd = rng.normal(0.0, c["setting_seed"], (R, 1, K))
    ed = _noise(rng, (R, 1, K), c["noise"], tail)
    dense_mu = base - scn.over_dense * delta
    Dref = dense_mu[None, :, None] + a[:, 0] + bd + ed
    rate = float(c.get("collapse_rate", 0.0)) * scn.collapse_scale
    if rate > 0:
        Y = np.where(rng.uniform(size=Y.shape) < min(rate, 1.0), CHANCE, Y)
    # no simulated run that did not collapse may look like one (the model's noise is unbounded)
    Y = np.where((Y != CHANCE) & (Y <= COLLAPSED_AT), COLLAPSED_AT + 0.01, Y)
    if scn.seeds_by_setting is not None:  # the runs a setting does not have: seeds beyond its count
        absent = np.arange(K)[None, :] >= np.asarray(scn.seeds_by_setting)[:, None]  # (S, K)
        Y[:, absent[:, None, :].repeat(1 + A, axis=1)] = np.nan
        Dref[:, absent] = np.nan
    if scn.absent is not None:  # the methods a setting has no runs of
        Y[:, scn.absent, :] = np.nan
    return Y, Dref


def _simulate_joined(scn: Scenario, n_replicates: int, rng: np.random.Generator, delta: float, components):
    """:func:`simulate` of a study's scenario: each protocol's settings with that protocol's components, as a grid
    of its own (seed effects, seed x setting effects and dense reference drawn for it alone), its runs beyond its
    seed count absent."""
    R, S, M, K = n_replicates, scn.n_settings, 1 + scn.n_alternatives, scn.n_seeds
    labels = np.array(scn.protocols)
    missing = [p for p in dict.fromkeys(scn.protocols) if p not in (components or {})]
    if missing:
        raise ValueError(f"scenario {scn.name}: no components for protocol(s) {', '.join(missing)}; a study's "
                         f"scenario takes {{protocol: components}}")
    Y = np.full((R, S, M, K), np.nan)
    Dref = np.full((R, S, K), np.nan)
    for p in dict.fromkeys(scn.protocols):
        idx = np.flatnonzero(labels == p)
        k = None if scn.seeds_by_setting is None else tuple(scn.seeds_by_setting[i] for i in idx)
        kp = K if k is None else max(k)
        part = Scenario(f"{scn.name} ({p})", scn.description, kp, scn.advantage[idx], scn.over_dense[idx], k,
                        scn.methods, scn.collapse_scale,
                        absent=None if scn.absent is None else scn.absent[idx])
        Y[:, idx, :, :kp], Dref[:, idx, :kp] = simulate(part, R, rng, delta, components[p])
    return Y, Dref


def join_designs(parts) -> dict:
    """A study's design from its protocols' designs: ``parts``, one (protocol, settings, methods, K, components,
    seeds_by_setting) per protocol in the study's order (``methods`` the claimed one first; ``seeds_by_setting``
    None: K in every setting). The settings are those of every protocol, in that order, each with its protocol's
    seeds and components; the methods are the claimed one and every other method of any protocol (the audit's
    arrays of the study), a method absent from the settings of a protocol without runs of it.

    Returns {"S", "methods", "K", "components" ({protocol: components}), "seeds_by_setting" (None when every
    setting has K), "protocols" ((S,) labels), "absent" ((S, M) mask, None when every protocol has every
    method)}."""
    from .records import method_order

    parts = list(parts)
    claimed = parts[0][2][0]
    if any(m[0] != claimed for _, _, m, _, _, _ in parts):
        raise ValueError("the protocols of a study must share the claimed method (the first of each methods)")
    methods = [claimed] + method_order({x for _, _, m, _, _, _ in parts for x in m[1:]})
    counts, labels, absent = [], [], []
    for p, S, m, K, _, k in parts:
        counts += list(k) if k is not None else [int(K)] * int(S)
        labels += [p] * int(S)
        absent += [[x not in m for x in methods]] * int(S)
    absent = np.array(absent, dtype=bool)
    return {"S": len(labels), "methods": methods, "K": max(counts),
            "components": {p: c for p, _, _, _, c, _ in parts},
            "seeds_by_setting": None if len(set(counts)) == 1 else tuple(counts), "protocols": tuple(labels),
            "absent": absent if absent.any() else None}


def arrays_of(Y: np.ndarray, Dref: np.ndarray, methods=None, seeds_by_setting=None, protocols=None) -> Arrays:
    """Simulated replicates as :class:`analysis.claims.Arrays` (leading replicate axis): the settings are
    named ("sim", "sim", i, start, "sim"), a start per distinct seed count (the most seeds: the dense start),
    and the seeds of each start are resampled together, as the audit does with a protocol's starts.

    ``protocols`` ((S,) labels, a study's design): the settings are named ("sim", "sim", i, start, protocol), a
    start per protocol and seed count, and the seeds of each are resampled together, apart from every other
    protocol's, as the audit of a study does."""
    S, M, K = Y.shape[-3:]
    methods = list(methods or METHODS[:M])
    counts = tuple(seeds_by_setting) if seeds_by_setting is not None else (K,) * S
    if protocols is not None:
        labels = [str(p) for p in protocols]
        orders = {p: sorted({c for q, c in zip(labels, counts) if q == p}, reverse=True) for p in labels}
        dens = [1.0 if c == orders[p][0] else 0.5 / (1 + orders[p].index(c)) for p, c in zip(labels, counts)]
        settings = [("sim", "sim", float(i), d, p) for i, (d, p) in enumerate(zip(dens, labels))]
        keys = sorted(set(zip(labels, counts)))
        groups = np.array([keys.index(g) for g in zip(labels, counts)], dtype=np.int64)
        return Arrays(methods, settings, np.arange(K), Y, Dref, np.ones(S, bool), groups)
    order = sorted(set(counts), reverse=True)
    dens = [1.0 if c == order[0] else 0.5 / (1 + order.index(c)) for c in counts]
    settings = [("sim", "sim", float(i), d, "sim") for i, d in enumerate(dens)]
    groups = np.array([order.index(c) for c in counts], dtype=np.int64)
    return Arrays(methods, settings, np.arange(K), Y, Dref, np.ones(S, bool), groups)


def decide_arrays(Y: np.ndarray, Dref: np.ndarray, cfg: dict | None = None, *, rng: np.random.Generator | None = None,
                  n_resamples: int | None = None, methods=None, seeds_by_setting=None, protocols=None,
                  results: bool = False):
    """Verdict codes (:data:`analysis.decisions.VERDICT_NAMES`) of every claim for every replicate, from
    :func:`analysis.claims.decide` (the audit's own) with the packaged claims.toml (or ``cfg``, a loaded claims
    dict): {claim id: (R,) codes}; with ``results`` the ClaimResults themselves (their ``small`` flags mark
    "supported, by less than delta").

    Y: (R, S, 1 + A, K), fggp first, methods named by ``methods`` (default :data:`METHODS`); Dref: (R, S, K).
    NaN is a run the grid does not have. ``protocols``: a study's design (:func:`arrays_of`)."""
    cfg = cfg or load_claims()
    res = decide(arrays_of(Y, Dref, methods, seeds_by_setting, protocols), cfg["claims"], rng=rng,
                 n_resamples=n_resamples)
    return res if results else {cid: r.verdict for cid, r in res.items()}


def calibrate(scenarios=None, n_replicates: int = 1000, seed: int = 0, n_resamples: int = 1000,
              components: dict | None = None, cfg: dict | None = None) -> pd.DataFrame:
    """Rates of each verdict per scenario and claim, with their binomial standard errors.

    Columns: scenario, seeds, replicates, claim, supported, supported_small (the share read "supported, by less
    than delta points"), refuted, inconclusive (rates), se_supported, se_refuted (binomial standard errors
    sqrt(p (1 - p) / R))."""
    cfg = cfg or load_claims()
    delta = float(cfg["defaults"]["delta"])
    rows = []
    names = list(scenarios or SCENARIOS)
    for i, name in enumerate(names):
        scn = SCENARIOS[name] if isinstance(name, str) else name
        rng = np.random.default_rng([seed, i])
        Y, Dref = simulate(scn, n_replicates, rng, delta, components)
        res = decide_arrays(Y, Dref, cfg, rng=rng, n_resamples=n_resamples, methods=scn.methods,
                            seeds_by_setting=scn.seeds_by_setting, protocols=scn.protocols, results=True)
        for cid, r in res.items():
            codes = r.verdict
            rates = [float(np.mean(codes == k)) for k in range(3)]
            rows.append(dict(scenario=scn.name, seeds=scn.n_seeds, replicates=n_replicates, claim=cid,
                             supported=rates[0], supported_small=float(np.mean(r.small)), refuted=rates[1],
                             inconclusive=rates[2],
                             se_supported=math.sqrt(rates[0] * (1 - rates[0]) / n_replicates),
                             se_refuted=math.sqrt(rates[1] * (1 - rates[1]) / n_replicates)))
    return pd.DataFrame(rows)


def calibrate_looks(scenarios, looks, n_replicates: int = 1000, seed: int = 0, n_resamples: int = 1000,
                    components: dict | None = None, cfg: dict | None = None) -> pd.DataFrame:
    """What looking at a growing grid after every batch of seeds does to the verdicts' error rates.

    Each replicate of a scenario is simulated once with ``max(looks)`` seeds and judged on its first ``k``
    seeds for every ``k`` in ``looks`` (the grid as it stood when seed k - 1 was complete), with the audit's
    own rules (:func:`decide_arrays`). Per scenario and claim: the rate of each verdict at the last look
    (``final_*``, as :func:`calibrate` at that many seeds) and the rate of replicates in which **some** look
    said supported (``any_supported``) or refuted (``any_refuted``): the error rate of a reader who takes
    whichever look first says something. Columns: scenario, looks (text), replicates, claim, final_supported,
    final_refuted, any_supported, any_refuted, se_any_supported, se_any_refuted (binomial standard errors)."""
    looks = sorted({int(k) for k in looks})
    if not looks or looks[0] < 2:
        raise ValueError(f"looks must be seed counts >= 2, got {looks}")
    for scn in scenarios:
        if not isinstance(scn, str) and scn.seeds_by_setting is not None:
            raise ValueError(f"scenario {scn.name} plans different seeds per setting; looks at growing seed counts "
                             f"are simulated only for one count in every setting")
    cfg = cfg or load_claims()
    delta = float(cfg["defaults"]["delta"])
    K = looks[-1]
    rows = []
    for i, name in enumerate(list(scenarios)):
        scn = SCENARIOS[name] if isinstance(name, str) else name
        scn = Scenario(scn.name, scn.description, K, scn.advantage, scn.over_dense, methods=scn.methods,
                       collapse_scale=scn.collapse_scale, protocols=scn.protocols, absent=scn.absent)
        rng = np.random.default_rng([seed, i])
        Y, Dref = simulate(scn, n_replicates, rng, delta, components)
        codes = [decide_arrays(Y[..., :k], Dref[..., :k], cfg, rng=rng, n_resamples=n_resamples, methods=scn.methods,
                               protocols=scn.protocols)
                 for k in looks]
        for cid in codes[-1]:
            per_look = np.stack([c[cid] for c in codes])  # (looks, R)
            final = per_look[-1]
            any_s = float(np.mean((per_look == D.SUPPORTED).any(axis=0)))
            any_r = float(np.mean((per_look == D.REFUTED).any(axis=0)))
            rows.append(dict(scenario=scn.name, looks=f"{looks[0]}-{K}" if looks == list(range(looks[0], K + 1))
                             else ",".join(map(str, looks)), replicates=n_replicates, claim=cid,
                             final_supported=float(np.mean(final == D.SUPPORTED)),
                             final_refuted=float(np.mean(final == D.REFUTED)), any_supported=any_s,
                             any_refuted=any_r,
                             se_any_supported=math.sqrt(any_s * (1 - any_s) / n_replicates),
                             se_any_refuted=math.sqrt(any_r * (1 - any_r) / n_replicates)))
    return pd.DataFrame(rows)


def fit_components(df: pd.DataFrame, exclude=("random",)) -> dict:
    """Method-of-moments estimates of the model's standard deviations from one protocol's completed
    sparse runs (settings x methods x seeds; ``exclude`` drops methods whose noise differs in kind, e.g.
    random pruning's collapses).

    Balanced two-way ANOVA of the residuals r = y - cell mean: noise from the method-by-seed interaction
    within settings, seed-by-setting from the setting-by-seed means (less noise / M), seed from the seed means
    (less the other two), over the largest block of settings x seeds in which every method has a run (a seed
    still running, or a setting missing a seed, drops out, whichever keeps more data). Runs at chance level
    (``collapsed``) are left out: one such run's 60-point drop is no draw of the model's noise, and with it the
    fit would describe that run, not the spread (its seed or its setting then leaves the block). Returns
    {"seed", "setting_seed", "noise", "settings", "methods", "seeds", "collapsed_left_out", "noise_by_setting",
    "collapse_rate"}: ``collapse_rate`` is the share of the completed sparse runs (``exclude`` too) at chance level,
    the rate at which the design calibration draws collapses.

    ``noise_by_setting`` is :func:`setting_noise` of the same runs: each setting's own noise. The model's one
    ``noise`` assumes they are equal; they need not be (a sparser network may vary more)."""
    every = df[(df["status"] == "completed") & (df["method"] != DENSE)]
    n_coll_all = int(every["collapsed"].astype(bool).sum()) if "collapsed" in every else 0
    d = every[~every["method"].isin(list(exclude))]
    collapsed = d["collapsed"].astype(bool) if "collapsed" in d else pd.Series(False, index=d.index)
    d = d[~collapsed]
    piv = d.pivot_table(index=list(SETTING_KEYS), columns=["method", "seed"], values="test_acc")
    methods = sorted(set(piv.columns.get_level_values(0)))
    seeds = sorted(set(piv.columns.get_level_values(1)))
    cube = np.stack([piv.reindex(columns=pd.MultiIndex.from_product([[m], seeds]))[m].to_numpy(float)
                     for m in methods], axis=1)  # (S, M, K)
    # the balanced block of settings x seeds, every method present, with the most noise degrees of freedom
    block = _largest_block(np.isfinite(cube).all(axis=1),  # (S, K): every method has a run
                           lambda s, k: s * (len(methods) - 1) * (k - 1) if s >= 2 and k >= 2 else 0)
    cube = cube[block[0]][:, :, block[1]] if block else cube[:0, :, :0]
    S, M, K = cube.shape
    if S < 2 or M < 2 or K < 2:
        raise ValueError("need at least 2 complete settings, methods and seeds to fit the variance components")
    by_setting = setting_noise(d, exclude=())
    r = cube - cube.mean(axis=2, keepdims=True)
    b = r.mean(axis=1, keepdims=True)
    e = r - b
    a = b.mean(axis=0, keepdims=True)
    var_e = float((e ** 2).sum() / (S * (M - 1) * (K - 1)))
    var_b = float(((b - a) ** 2).sum() / ((S - 1) * (K - 1))) - var_e / M
    var_a = float((a ** 2).sum() / (K - 1)) - max(var_b, 0.0) / S - var_e / (M * S)
    return {"seed": math.sqrt(max(var_a, 0.0)), "setting_seed": math.sqrt(max(var_b, 0.0)),
            "noise": math.sqrt(var_e), "settings": S, "methods": M, "seeds": K,
            "collapsed_left_out": int(collapsed.sum()), "noise_by_setting": by_setting,
            "collapse_rate": n_coll_all / len(every) if len(every) else 0.0}


def fit_shortfall(df: pd.DataFrame, exclude=("random",)) -> str:
    """What one protocol's records lack for :func:`fit_components` (the runs it fits: completed sparse runs not at
    chance level, ``exclude`` left out), in words, e.g. "1 setting"; "" when they lack nothing of what is counted
    here (2 settings, 2 methods, a setting with 2 seeds at which every method has a run)."""
    every = df[(df["status"] == "completed") & (df["method"] != DENSE)]
    d = every[~every["method"].isin(list(exclude))]
    if "collapsed" in d:
        d = d[~d["collapsed"].astype(bool)]
    methods = sorted(set(d["method"]))
    settings = d.groupby(list(SETTING_KEYS)) if len(d) else None
    n_set = settings.ngroups if settings is not None else 0
    # per setting, the seeds at which every method of the protocol has a run
    seeds = max((int((g.groupby("seed")["method"].nunique() == len(methods)).sum()) for _, g in settings),
                default=0) if settings is not None else 0
    lacks = []
    if n_set < 2:
        lacks.append(f"{n_set} setting{'s' if n_set != 1 else ''}")
    if len(methods) < 2:
        lacks.append(f"{len(methods)} method{'s' if len(methods) != 1 else ''}")
    if seeds < 2:
        lacks.append(f"at most {seeds} seed{'s' if seeds != 1 else ''} with a run of every method in a setting")
    return " and ".join(lacks)


def _largest_block(have: np.ndarray, dof) -> tuple[np.ndarray, np.ndarray] | None:
    """(rows, columns) masks of the largest all-present block of a presence matrix ``have`` (rows x seeds): for
    each row's set T of present columns, the rows present on all of T; the block with the largest
    ``dof(n_rows, n_columns)`` > 0 wins, ties going the same way every time (a fixed order). None if none.
    A seed still running, or lost to a run at chance level, thus costs its column or its row, whichever keeps
    more of the data."""
    best, dof_best = None, 0
    for t in sorted({tuple(h) for h in have}, reverse=True):
        cols = np.array(t, dtype=bool)
        rows = have[:, cols].all(axis=1)
        d = dof(int(rows.sum()), int(cols.sum()))
        if d > dof_best:
            best, dof_best = (rows, cols), d
    return best


def setting_noise(df: pd.DataFrame, exclude=("random",)) -> dict:
    """Each setting's own noise sd (accuracy points), {setting key: sd}: the method-by-seed interaction of its
    completed sparse runs (dense, ``exclude`` and runs at chance level left out) over the largest complete block
    of methods x seeds there, so that a method one seed behind, or a seed lost to a run at chance level, costs
    that block a column, not the setting. NaN with fewer than 2 methods or seeds in every block."""
    d = df[(df["status"] == "completed") & (df["method"] != DENSE) & ~df["method"].isin(list(exclude))]
    if "collapsed" in d:
        d = d[~d["collapsed"].astype(bool)]
    piv = d.pivot_table(index=list(SETTING_KEYS), columns=["method", "seed"], values="test_acc")
    methods = sorted(set(piv.columns.get_level_values(0)))
    seeds = sorted(set(piv.columns.get_level_values(1)))
    by_setting = {}
    for key, row in piv.iterrows():
        sub = np.stack([row[m].reindex(seeds).to_numpy(float) for m in methods])  # (M, K), NaN = no run
        block = _largest_block(np.isfinite(sub), lambda m, k: (m - 1) * (k - 1))  # interaction degrees of freedom
        if block is None:
            by_setting[key] = math.nan
            continue
        best = sub[np.ix_(*block)]
        inter = best - best.mean(axis=0, keepdims=True) - best.mean(axis=1, keepdims=True) + best.mean()
        by_setting[key] = math.sqrt(float((inter ** 2).sum() / ((best.shape[0] - 1) * (best.shape[1] - 1))))
    return by_setting

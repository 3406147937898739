"""How fast the analysis package turns a full results folder into every figure and table.

Generates 1,000 synthetic run records (schema fggp-repro/run-record/v1: 2 archs x 3 target
sparsities x 2 starts x 8 methods x 10 seeds, plus 20 dense runs per arch; 160-epoch histories,
per-layer sparsity) in a temp folder, then times

* loading every record (``analysis.load_records``),
* ``fggp-repro figures`` end to end (``analysis.cli.figures_main``: load, statistics, claims audit,
  every figure and table),
* a 10,000-resample stratified bootstrap (``analysis.bootstrap_ci``) against a naive bootstrap
  with one Python iteration per resample, measured in the same run, as a ratio.

Run: ``.venv/bin/python benchmarks/analysis_speed.py``. Target: figures under 30 s on two cores.
Not a timed test: it prints the numbers.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis import bootstrap_ci, load_records  # noqa: E402
from analysis.cli import figures_main  # noqa: E402

METHODS = {"fggp": 0.6, "annealed": 0.3, "gf-annealed": 0.4, "mf-fixed": 0.35, "gmp": 0.0, "gmp-mt": 0.05,
           "granet": 0.45, "random": -2.0}
ARCHS = {"vgg19": (93.5, 16), "resnet50": (94.5, 53)}
EPOCHS = 160


def _rng(*parts):
    return np.random.default_rng(zlib.crc32("|".join(map(str, parts)).encode()))


def record(arch, method, target, start, seed, acc):
    rid = f"{arch}-{method}-{zlib.crc32(f'{target}{start}{seed}'.encode()):08x}"
    r = _rng(rid)
    n_layers = ARCHS[arch][1]
    ep = np.arange(1, EPOCHS + 1)
    frac = ep / EPOCHS
    test_curve = np.round(acc * (0.6 + 0.4 * frac) + r.normal(0, 0.3, EPOCHS), 2)
    sp = np.round(target * np.minimum(1.0, frac / 0.8), 4)
    return {
        "schema": "fggp-repro/run-record/v1", "run_id": rid, "status": "completed",
        "config": {"data": {"dataset": "cifar10"}, "model": {"arch": arch}, "pruning": {"method": method},
                   "training": {"epochs": EPOCHS}, "run": {"seed": seed}},
        "setting": {"dataset": "cifar10", "arch": arch, "method": method, "target_sparsity": target,
                    "initial_density": start, "seed": seed, "protocol": "paper"},
        "metrics": {"test_acc": acc, "best_test_acc_after_pruning": round(acc + 0.2, 2), "final_train_loss": 0.01,
                    "sparsity": target, "prunable_sparsity": target},
        "per_layer_sparsity": {f"layer{i}.weight": float(np.clip(target + r.normal(0, 0.03), 0, 1))
                               for i in range(n_layers)},
        "weights_sha256": "0" * 64,
        "history": [{"epoch": int(e), "lr": 0.1, "train_loss": 1.0, "train_acc": 90.0, "test_acc": float(t),
                     "sparsity": float(s)} for e, t, s in zip(ep, test_curve, sp)],
        "pruning_events": [], "divergence": None,
        "provenance": {"git_commit": "bench", "device": "cpu", "deterministic": True},
    }


def generate(root: Path) -> int:
    n = 0
    for arch, (base, _) in ARCHS.items():
        for target in (0.9, 0.95, 0.98):
            for start in (1.0, 0.5):
                for method, eff in METHODS.items():
                    for seed in range(10):
                        acc = round(base - 20 * (target - 0.9) - 0.2 * (start < 1) + eff
                                    + _rng(arch, method, target, start, seed).normal(0, 0.2), 2)
                        n += _write(root, record(arch, method, target, start, seed, acc))
        for seed in range(20):
            acc = round(base + 0.5 + _rng(arch, "dense", seed).normal(0, 0.2), 2)
            rec = record(arch, "dense", 0.0, 1.0, seed, acc)
            n += _write(root, rec)
    return n


def _write(root: Path, rec: dict) -> int:
    s = rec["setting"]
    p = root / "raw" / s["dataset"] / s["arch"] / s["method"] / f"{rec['run_id']}.json"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(rec))
    return 1


def naive_stratified_bootstrap(values, strata, n_resamples, seed):
    """Reference: one Python iteration per resample (and per stratum)."""
    rng = np.random.default_rng(seed)
    groups = [np.sort(values[strata == s]) for s in np.unique(strata)]
    dist = np.empty(n_resamples)
    for b in range(n_resamples):
        dist[b] = np.mean([g[rng.integers(0, g.size, g.size)].mean() for g in groups])
    return np.quantile(dist, [0.025, 0.975])


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "results"
        t = time.perf_counter()
        n = generate(root)
        gen = time.perf_counter() - t
        size = sum(p.stat().st_size for p in root.rglob("*.json")) / 1e6
        print(f"generated {n} records ({size:.1f} MB, {EPOCHS}-epoch histories) in {gen:.1f} s")

        t = time.perf_counter()
        rec = load_records(root)
        load = time.perf_counter() - t
        print(f"load_records: {load:.2f} s ({len(rec.runs)} runs, {len(rec.histories)} history rows, "
              f"{len(rec.layer_sparsity)} layer rows)")

        out = Path(tmp) / "paper_figures"
        buf = io.StringIO()
        t = time.perf_counter()
        with contextlib.redirect_stdout(buf):
            rc = figures_main(["--results", str(root), "--out", str(out)])
        figs = time.perf_counter() - t
        files = sorted(p.name for p in out.rglob("*") if p.is_file())
        print(f"figures_main (load + stats + audit + {len(files)} files): {figs:.2f} s, exit {rc} "
              f"[target < 30 s] {'OK' if figs < 30 and rc == 0 else 'SLOW'}")

        # per-output breakdown (same process, warm caches)
        from analysis.registry import Context, SkipOutput, all_outputs

        ctx = Context(protocol="paper", runs=rec.runs, histories=rec.histories, layer_sparsity=rec.layer_sparsity)
        parts = []
        for name, o in all_outputs().items():
            t = time.perf_counter()
            try:
                o.func(ctx, Path(tmp) / "breakdown")
            except SkipOutput as e:  # an output with nothing to draw here (e.g. no record carries diagnostics)
                parts.append(f"{name} skipped ({e})")
                continue
            parts.append(f"{name} {time.perf_counter() - t:.2f}")
        print("  per output (s): " + ", ".join(parts))

    # bootstrap: 12 settings x 10 seeds, 10,000 resamples, stratified
    rng = np.random.default_rng(0)
    values = rng.normal(93, 0.3, 120)
    strata = np.repeat(np.arange(12), 10)
    B = 10_000
    t = time.perf_counter()
    res = bootstrap_ci(values, strata=strata, n_resamples=B, seed=1)
    vec = time.perf_counter() - t
    t = time.perf_counter()
    lo, hi = naive_stratified_bootstrap(values, strata, B, seed=1)
    naive = time.perf_counter() - t
    print(f"bootstrap_ci, {B} resamples, 12 strata x 10: vectorised {vec * 1e3:.1f} ms, naive loop "
          f"{naive * 1e3:.0f} ms, ratio {naive / vec:.0f}x; CI [{res.ci_low:.4f}, {res.ci_high:.4f}] vs naive "
          f"[{lo:.4f}, {hi:.4f}]")
    x = rng.normal(93, 0.3, 120)
    t = time.perf_counter()
    bootstrap_ci(x, n_resamples=B, seed=2)
    vec1 = time.perf_counter() - t
    t = time.perf_counter()
    r2 = np.random.default_rng(2)
    xs = np.sort(x)
    np.quantile([xs[r2.integers(0, xs.size, xs.size)].mean() for _ in range(B)], [0.025, 0.975])
    naive1 = time.perf_counter() - t
    print(f"bootstrap_ci, {B} resamples, n=120 unstratified: vectorised {vec1 * 1e3:.1f} ms, naive loop "
          f"{naive1 * 1e3:.0f} ms, ratio {naive1 / vec1:.0f}x")


if __name__ == "__main__":
    main()

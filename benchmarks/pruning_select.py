"""Timing of one global pruning selection on a VGG-19-sized pool (20 M weights, ~50 % active).

Usage:  python benchmarks/pruning_select.py [--n 20000000] [--repeat 3] [--device cpu|cuda] [--threads N]

Prints the best-of-``repeat`` wall time of ``prune_mask("fggp", ...)``, ``prune_mask("annealed", ...)``,
``prune_mask("gmp", ...)`` and, as a reference, of ``torch.sort`` on the same 20 M-entry array.
"""

from __future__ import annotations

import argparse
import time

import torch

from fggp_repro.pruning import EventContext, cubic_density, prune_mask


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def best_time(fn, repeat: int, device: str) -> float:
    best = float("inf")
    for _ in range(repeat):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: leave as is)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    gen = torch.Generator().manual_seed(0)
    n = args.n
    w_abs = torch.randn(n, generator=gen).abs_().to(args.device)
    g_abs = (torch.randn(n, generator=gen).abs_() * 1e-3).to(args.device)
    active = (torch.rand(n, generator=gen) < 0.5).to(args.device)
    n_active = int(active.sum())
    # a mid-schedule event of a dense -> 10 % run at 50 % density: the step from d(t) to d(t + interval)
    t_end, interval = 100_000, 2_000
    d_now, d_next = 0.5, None
    t = 0
    while cubic_density(t, t_end, 1.0, 0.1) > d_now:
        t += interval
    d_next = cubic_density(t + interval, t_end, 1.0, 0.1)
    n_prune = n_active - int(round(d_next * n))
    n_prune = max(1, min(n_prune, n_active))
    ctx = EventContext(t=t, t_total=int(t_end / 0.8))

    print(f"torch {torch.__version__}, device {args.device}, threads {torch.get_num_threads()}")
    print(f"entries {n:,}, active {n_active:,}, n_prune {n_prune:,}, annealed rate r(t) {ctx.rate():.4f}")

    masks = {}

    def sel(method):
        def fn():
            masks[method] = prune_mask(method, w_abs, g_abs, active, n_prune, ctx)

        return fn

    t_sort = best_time(lambda: torch.sort(w_abs), args.repeat, args.device)
    print(f"torch.sort (reference)      {t_sort:8.3f} s")
    for method in ("fggp", "annealed", "gmp"):
        tm = best_time(sel(method), args.repeat, args.device)
        ok = int(masks[method].sum()) == n_prune and not bool((masks[method] & ~active).any())
        print(f"prune_mask({method!r:11})    {tm:8.3f} s   ({tm / t_sort:.2f} x sort)   exact count: {ok}")


if __name__ == "__main__":
    main()

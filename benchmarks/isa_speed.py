"""Training-step time in each oneDNN instruction-set mode (native, portable), interleaved in one run.

oneDNN fixes its instruction set once per process, so every measurement is a process of its own: it builds
the preset's network, takes ``--warmup`` training steps of the project's ``train_step`` on one synthetic batch,
then times ``--steps`` more by the CPU time of the process (``time.process_time``: all threads; robust to other
load on the machine). Modes alternate, ``--repeat`` times each; the table gives the median per mode and the
ratio portable / native. Where the CPU's own level is the portable cap (an AMD EPYC with avx512_bf16), both
modes run the same kernels and the ratio is 1 up to noise; on a CPU with AMX it is the price of portability.

    python benchmarks/isa_speed.py [--preset cpu] [--threads 1] [--steps 30] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

from fggp_repro.provenance import cpu_model

CHILD = r"""
import json, sys, time, torch
from fggp_repro import config as C, isa, trainer as T
preset, mode, threads, steps, warmup = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
isa.apply(mode)
torch.set_num_threads(threads)
cfg = C.load(preset=preset, overrides={"pruning": {"method": "fggp", "update_interval": 10**9},
                                       "run": {"cpu_isa": mode}})
dev = torch.device("cpu")
model = T.build_model(cfg, dev)
opt = T.make_optimizer(model, cfg.training)
pruner = T.make_pruner(cfg)
pruner.setup(model, opt, 10**9, 0)
crit = torch.nn.CrossEntropyLoss()
bs = cfg.training.batch_size
x = torch.randn(bs, 3, 32, 32).contiguous(memory_format=torch.channels_last)
y = torch.randint(0, 10, (bs,))
for i in range(warmup):
    T.train_step(model, x, y, crit, opt, pruner, i + 1, cfg.run.precision)
t0 = time.process_time()
for i in range(steps):
    T.train_step(model, x, y, crit, opt, pruner, warmup + i + 1, cfg.run.precision)
print(json.dumps({"ms": 1000 * (time.process_time() - t0) / steps, "level": isa.effective()}))
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    times = {"native": [], "portable": []}
    levels = {}
    for _ in range(args.repeat):
        for mode in times:
            out = subprocess.run([sys.executable, "-c", CHILD, args.preset, mode, str(args.threads), str(args.steps),
                                  str(args.warmup)], capture_output=True, text=True, check=True).stdout
            res = json.loads(out.strip().splitlines()[-1])
            times[mode].append(res["ms"])
            levels[mode] = res["level"]
    print(f"cpu: {cpu_model()}; preset {args.preset}; {args.threads} thread(s); {args.steps} timed steps after "
          f"{args.warmup}; {args.repeat} processes a mode, interleaved; CPU ms a step (median)")
    print("| mode | oneDNN level | CPU ms a step | runs |")
    print("|---|---|---|---|")
    for mode, ts in times.items():
        print(f"| {mode} | {levels[mode]} | {statistics.median(ts):.1f} | {', '.join(f'{t:.1f}' for t in ts)} |")
    print(f"portable / native: {statistics.median(times['portable']) / statistics.median(times['native']):.3f}")


if __name__ == "__main__":
    main()

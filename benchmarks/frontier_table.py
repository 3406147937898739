"""The accuracy/cost frontier a CPU preset was chosen from: one row per committed frontier record.

Each record is a dense seed-0 run of a CPU preset (`cpu`: protocol `cpu-frontier`; `cpu-resnet`: protocol
`cpu-resnet-frontier`) with the width, the epoch count (the lr milestones at 50 % and 75 % of the run, the pruning
interval keeping 50 events) or the batch size changed, trained with one thread while another run shared the
two cores, as in the grid. The cost is the run's CPU time (`provenance.cpu_seconds`, all threads of the process);
records made before that field existed show wall seconds x threads instead, marked "(wall)": on a shared machine
that overstates the CPU a run used.

    python benchmarks/frontier_table.py [--protocol cpu-resnet-frontier] [results/frontier]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def rows(root: str, protocol: str) -> list[dict]:
    out = []
    for p in sorted(Path(root).rglob("*.json")):
        r = json.loads(p.read_text())
        if r.get("setting", {}).get("protocol") != protocol:
            continue
        c, prov = r["config"], r["provenance"]
        threads = prov.get("torch_threads") or c["run"]["threads"]
        cpu = prov.get("cpu_seconds")
        out.append({"arch": c["model"]["arch"], "width": c["model"]["width"], "epochs": c["training"]["epochs"],
                    "batch": c["training"]["batch_size"], "milestones": c["training"]["milestones"],
                    "acc": r["metrics"]["test_acc"], "wall": prov["wall_seconds"], "threads": threads,
                    "cpu_min": (cpu if cpu is not None else prov["wall_seconds"] * threads) / 60,
                    "from_wall": cpu is None, "device": prov.get("device_model") or prov["device"],
                    "precision": c["run"].get("precision", "fp32"), "run_id": r["run_id"]})
    return sorted(out, key=lambda x: (x["arch"], x["width"], x["batch"], x["epochs"]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", nargs="?", default="results/frontier")
    ap.add_argument("--protocol", default="cpu-frontier", help="cpu-frontier (default) or cpu-resnet-frontier")
    args = ap.parse_args(argv)
    found = rows(args.root, args.protocol)
    if not found:
        print(f"no {args.protocol} records under {args.root}", file=sys.stderr)
        return 2
    print("| arch | width | batch | epochs | lr milestones | dense test acc. (%) | CPU-min per run | wall s | run id |")
    print("|---|---|---|---|---|---|---|---|---|")
    for x in found:
        cost = f"{x['cpu_min']:.1f}" + (" (wall)" if x["from_wall"] else "")
        print(f"| {x['arch']} | {x['width']:g} | {x['batch']} | {x['epochs']} | {','.join(map(str, x['milestones']))} "
              f"| {x['acc']:.2f} | {cost} | {x['wall']:.0f} | `{x['run_id']}` |")
    devices = "; ".join(sorted({x["device"] for x in found}))
    precisions = ", ".join(sorted({x["precision"] for x in found}))
    threads = ", ".join(sorted({str(x["threads"]) for x in found}))
    print(f"\nDevice: {devices}; {threads} thread(s); {precisions}; seed 0, cifar10-jpeg.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

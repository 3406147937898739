"""The accuracy/cost frontier the `cpu` preset was chosen from: one row per committed `cpu-frontier` record.

Each record is a dense VGG-19 run of the `cpu` preset with only the epoch count (and the lr milestones, at 50 % and
75 % of the run) changed, trained with one thread while another run shared the two cores. CPU-minutes per run =
wall seconds x threads / 60 (what a run costs in the grid, which runs two one-thread runs at a time).

    python benchmarks/frontier_table.py [results/frontier]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(root: str = "results/frontier") -> int:
    rows = []
    for p in sorted(Path(root).rglob("*.json")):
        r = json.loads(p.read_text())
        if r.get("setting", {}).get("protocol") != "cpu-frontier":
            continue
        c, prov = r["config"], r["provenance"]
        threads = prov.get("torch_threads") or c["run"]["threads"]
        rows.append((c["training"]["epochs"], c["training"]["milestones"], r["metrics"]["test_acc"],
                     prov["wall_seconds"], threads, prov["device"], r["run_id"]))
    if not rows:
        print(f"no cpu-frontier records under {root}", file=sys.stderr)
        return 2
    print("| epochs | lr milestones | dense test acc. (%) | wall s | threads | CPU-min per run | run id |")
    print("|---|---|---|---|---|---|---|")
    for ep, ms, acc, wall, th, _, rid in sorted(rows):
        print(f"| {ep} | {','.join(map(str, ms))} | {acc:.2f} | {wall:.0f} | {th} | {wall * th / 60:.1f} | `{rid}` |")
    print(f"\nDevice: {'; '.join(sorted({r[5] for r in rows}))}. Seed 0, cifar10-jpeg, width 1/4, batch 128, bf16.")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))

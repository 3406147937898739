"""What a run of a protocol cost: ``provenance.wall_seconds`` of its completed records, per start.

The figures the docs quote for the cost of a grid's runs (the `cpu` grid runs two one-thread runs at a time
on two cores, so a run's wall time is its CPU time).

    python benchmarks/run_cost.py [protocol] [results]      # default: cpu results
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path


def main(protocol: str = "cpu", root: str = "results") -> int:
    walls: dict[str, list[float]] = {}
    for p in sorted(Path(root).glob("raw/*/*/*/*.json")):
        r = json.loads(p.read_text())
        s = r.get("setting", {})
        if r.get("status") != "completed" or s.get("protocol") != protocol:
            continue
        start = "dense start" if s["initial_density"] == 1.0 else f"{1 - s['initial_density']:.0%}-sparse start"
        walls.setdefault(start, []).append(float(r["provenance"]["wall_seconds"]))
    if not walls:
        print(f"no completed {protocol} records under {root}/raw", file=sys.stderr)
        return 2
    every = [x for w in walls.values() for x in w]
    for label, w in [*sorted(walls.items()), ("all", every)]:
        print(f"{protocol} {label}: {len(w)} runs, wall seconds min {min(w):.0f}, median {statistics.median(w):.0f}, "
              f"max {max(w):.0f}, sum {sum(w) / 3600:.1f} h")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))

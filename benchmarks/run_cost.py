"""What a run of a protocol cost: ``provenance.wall_seconds`` of its completed records, per start, and
``provenance.cpu_seconds`` where the records state it (the CPU time of the run's process, across resumes: the cost
on a machine that other work shares, where wall time also counts the waiting).

The figures the docs quote for the cost of a grid's runs.

    python benchmarks/run_cost.py [protocol] [results]      # default: cpu results
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path


def main(protocol: str = "cpu", root: str = "results") -> int:
    walls: dict[str, list[float]] = {}
    cpus: dict[str, list[float]] = {}
    for p in sorted(Path(root).glob("raw/*/*/*/*.json")):
        r = json.loads(p.read_text())
        s = r.get("setting", {})
        if r.get("status") != "completed" or s.get("protocol") != protocol:
            continue
        start = "dense start" if s["initial_density"] == 1.0 else f"{1 - s['initial_density']:.0%}-sparse start"
        walls.setdefault(start, []).append(float(r["provenance"]["wall_seconds"]))
        if r["provenance"].get("cpu_seconds") is not None:
            cpus.setdefault(start, []).append(float(r["provenance"]["cpu_seconds"]))
    if not walls:
        print(f"no completed {protocol} records under {root}/raw", file=sys.stderr)
        return 2
    for what, by_start in (("wall", walls), ("CPU", cpus)):
        every = [x for w in by_start.values() for x in w]
        for label, w in ([*sorted(by_start.items()), ("all", every)] if every else []):
            print(f"{protocol} {label}: {len(w)} runs, {what} seconds min {min(w):.0f}, median "
                  f"{statistics.median(w):.0f}, max {max(w):.0f}, sum {sum(w) / 3600:.1f} h")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))

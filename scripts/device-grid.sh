#!/usr/bin/env bash
# One job on a GPU machine: unpack the dataset, run a grid with a deadline inside the job's time limit, pack
# every finished record into one archive under $OUT.
#
#   FGGP_SOURCE_COMMIT=<commit> bash scripts/device-grid.sh PRESET JOB_MINUTES [fggp-repro grid flags...]
#
# Runs the project from the checkout (PYTHONPATH=., nothing installed). Data: the tarball at
# $DATA_TARBALL (default .data/cifar10-jpeg.tar.gz), unpacked once into .device/data; decoded images
# are cached in .device/cache, records and checkpoints kept in $RUNS (default .device/runs), so a
# later job on the same machine resumes the checkpointed runs. The grid's deadline is the job's
# limit less the set-up already spent and 20 s for packing (runs stop at their last epoch that ends
# before it). Pass --resume-only to the last job before the machine goes away: it finishes the runs in flight
# and starts none. The archive $OUT/records.tar.gz holds every record under $RUNS/raw (finished runs only: a
# record is written whole at the end of its run); the last grid output is in $OUT/grid.log.
#
# CPU_VERIFY="RECORD [RECORD...]" (committed CPU records) also reruns each with `fggp-repro verify` on this
# machine's CPU, one thread each, while the grid uses the GPU: the spread of a CPU protocol across CPU models.
# Each report (verify's lines and its exit status) goes to $OUT/verify-<run id>.txt. The job waits for them after
# packing the records, so give it the time (a `cpu` run takes several minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 2 ]; then
  echo "usage: scripts/device-grid.sh PRESET JOB_MINUTES [grid flags...]" >&2
  exit 2
fi
preset=$1
minutes=$2
shift 2
t0=$(date +%s)
tarball=${DATA_TARBALL:-.data/cifar10-jpeg.tar.gz}
runs=${RUNS:-.device/runs}
out=${OUT:?set OUT to the folder the archive goes to}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export FGGP_CACHE="$PWD/.device/cache"
mkdir -p .device "$runs" "$out"

dataset_flags=()
verify_flags=()
if [ -n "$tarball" ] && [ "$tarball" != none ]; then
  if [ ! -d .device/data/cifar10-jpeg ]; then
    [ -f "$tarball" ] || { echo "device-grid: data tarball $tarball not found (copy it there, or set DATA_TARBALL)" >&2; exit 2; }
    mkdir -p .device/data.tmp
    tar -xzf "$tarball" -C .device/data.tmp
    mv .device/data.tmp .device/data
  fi
  dataset_flags=(--dataset cifar10-jpeg --data-root "$PWD/.device/data/cifar10-jpeg")
  verify_flags=(--data-root "$PWD/.device/data/cifar10-jpeg")
  # decode the images once, before the runs start (they all read the cache)
  python -c "
import sys
from fggp_repro import data as D
from fggp_repro.spec import config as C
D.load(C.load(preset='$preset', overrides={'data': {'dataset': 'cifar10-jpeg', 'data_root': sys.argv[1]}}).data)
" "$PWD/.device/data/cifar10-jpeg"
fi

for rec in ${CPU_VERIFY:-}; do  # every path checked before any rerun starts
  [ -f "$rec" ] || { echo "device-grid: CPU_VERIFY record $rec not found (a path in the checkout)" >&2; exit 2; }
done
verify_pids=()
for rec in ${CPU_VERIFY:-}; do
  report="$out/verify-$(basename "$rec" .json).txt"
  ( set +e
    OMP_NUM_THREADS=1 python -m fggp_repro verify "$rec" "${verify_flags[@]}" --quiet
    echo "verify exit status: $?" ) > "$report" 2>&1 &
  verify_pids+=($!)
done

spent=$(( $(date +%s) - t0 ))
deadline=$(python -c "print(round(max(0.05, $minutes - 1 / 3 - $spent / 60.0), 3))")
echo "device-grid: set-up took ${spent}s; grid deadline ${deadline} min" | tee "$out/grid.log"
set +e
python -m fggp_repro grid --preset "$preset" --out "$runs" "${dataset_flags[@]}" --deadline "$deadline" "$@" \
  2>&1 | tee -a "$out/grid.log"
rc=${PIPESTATUS[0]}
set -e
if [ -d "$runs/raw" ]; then
  tar -czf "$out/records.tar.gz.tmp" -C "$runs" raw
  mv "$out/records.tar.gz.tmp" "$out/records.tar.gz"
  echo "device-grid: $(find "$runs/raw" -name '*.json' | wc -l) records in $out/records.tar.gz" | tee -a "$out/grid.log"
fi
for pid in "${verify_pids[@]}"; do
  wait "$pid" || true
done
exit "$rc"

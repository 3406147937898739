#!/usr/bin/env bash
# A first check on a GPU machine: one short strict run (VGG-19, full width, fggp at 90 %, 12 pruning events on
# a 10,000-image subset, 2 epochs), twice per precision, into $OUT/check; prints each weights_sha256 and
# wall time, so determinism on the device and the fp32 / bf16 speed are both shown.
#   FGGP_SOURCE_COMMIT=<commit> OUT=... bash scripts/device-check.sh [DATA_TARBALL]
set -euo pipefail
cd "$(dirname "$0")/.."
tarball=${1:-.data/cifar10-jpeg.tar.gz}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export FGGP_CACHE="$PWD/.device/cache"
if [ ! -d .device/data/cifar10-jpeg ]; then
  mkdir -p .device/data.tmp
  tar -xzf "$tarball" -C .device/data.tmp
  mv .device/data.tmp .device/data
fi
for prec in fp32 bf16; do
  for rep in a b; do
    python -m fggp_repro train --preset paper-short --dataset cifar10-jpeg --data-root "$PWD/.device/data/cifar10-jpeg" \
      --train-subset 10000 --epochs 2 --milestones 1 --update-interval 20 --method fggp --sparsity 0.9 \
      --precision "$prec" --quiet --out "$OUT/check/$prec-$rep"
  done
done
python - "$OUT/check" <<'PY'
import json, sys, pathlib
for p in sorted(pathlib.Path(sys.argv[1]).rglob("*.json")):
    r = json.loads(p.read_text())
    print(p.parts[-6], r["weights_sha256"][:16], r["metrics"]["test_acc"], r["provenance"]["wall_seconds"], r["provenance"]["device"])
PY

"""How large a saved model (``--save-model``) is, against ``torch.save`` of the same network's dense state_dict.

A model file holds, per pruned layer, a bit a weight for the mask, a bit a pruned weight for the sign of its zero
(-0.0 and 0.0 hash differently, and the file reloads to the record's ``weights_sha256``) and the surviving values;
every other tensor as it is. Its size depends on the network and the sparsity only, not on training, so each row
comes from a short run of the real path (``fggp-repro train --save-model``: FGGP to the target sparsity, a few
hundred synthetic images, 3 epochs, in a temporary folder) and the file it leaves. The target sparsity counts all
weights, biases and BatchNorm included, as the records do (the authors' count); the masks' sparsity is that of the
pruned layers alone, a little higher.

    python benchmarks/model_size.py                       # the CPU presets' networks (cpu, cpu-resnet)
    python benchmarks/model_size.py --paper               # and the paper's full-width VGG-19 and ResNet-50
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
from pathlib import Path

import torch

NETWORKS = {  # label: (preset, extra train flags)
    "cpu (vgg19, width 1/4)": ("cpu", []),
    "cpu-resnet (resnet50-6n2, width 1/4)": ("cpu-resnet", []),
}
PAPER = {
    "paper vgg19": ("paper", ["--arch", "vgg19"]),
    "paper resnet50": ("paper", ["--arch", "resnet50"]),
}


def measure(preset: str, flags: list[str], sparsity: float, out: Path) -> dict:
    from fggp_repro import load_model
    from fggp_repro.cli import main as cli

    args = ["train", "--preset", preset, *flags, "--dataset", "synthetic", "--synthetic-train", "256",
            "--synthetic-test", "64", "--batch-size", "32", "--epochs", "3", "--milestones", "1,2",
            "--update-interval", "1", "--method", "fggp", "--sparsity", str(sparsity), "--seed", "0",
            "--threads", "1", "--precision", "fp32", "--quiet", "--save-model", "--out", str(out)]
    with contextlib.redirect_stdout(io.StringIO()):
        rc = cli(args)
    if rc != 0:
        raise SystemExit(f"model_size: `fggp-repro {' '.join(args)}` exited {rc}")
    record = sorted(out.glob("raw/**/*.json"), key=lambda p: p.stat().st_mtime)[-1]
    if json.loads(record.read_text())["status"] != "completed":
        raise SystemExit(f"model_size: the short run {record.name} did not complete")
    pt = record.with_suffix(".pt")
    model = load_model(pt)
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    prunable = sum(m.numel() for m in model.fggp_masks.values())
    kept = sum(int(m.sum()) for m in model.fggp_masks.values())
    return {"file": pt.stat().st_size, "dense": len(buf.getvalue()), "prunable": prunable,
            "reached": 1 - kept / prunable}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--paper", action="store_true", help="also the paper's full-width networks (about 2 min more)")
    ap.add_argument("--sparsities", default="0.9,0.98", help="comma-separated target sparsities")
    args = ap.parse_args(argv)
    nets = dict(NETWORKS, **(PAPER if args.paper else {}))
    print(f"torch {torch.__version__}; FGGP to each target sparsity, model file vs torch.save of the dense state_dict")
    print()
    print("| network | prunable weights | sparsity: target (all weights), of the masks | model file (bytes) | "
          "dense state_dict (bytes) | file / dense |")
    print("|---|---|---|---|---|---|")
    for label, (preset, flags) in nets.items():
        for s in (float(x) for x in args.sparsities.split(",")):
            with tempfile.TemporaryDirectory() as tmp:
                m = measure(preset, flags, s, Path(tmp))
            print(f"| {label} | {m['prunable']:,} | {s:g}, {m['reached']:.4f} | {m['file']:,} | {m['dense']:,} | "
                  f"{m['file'] / m['dense']:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The pruned network as one file: masks bit-packed, the surviving values, everything else as it is.

``save(path, ...)`` writes what a finished run leaves in memory; ``load_model(path)`` rebuilds the network
with the same ``weights_sha256`` as the run's record, and its masks. A pruned layer's weight is stored as its
mask (one bit a weight, :func:`numpy.packbits` order over the flattened weight), the values under the mask (in
the same order) and the sign of each pruned zero (one bit each: -0.0 and 0.0 hash differently); every other
parameter and buffer (biases, BatchNorm, layers never pruned) as a tensor.
The file holds only tensors, numbers and strings, so it loads with ``torch.load(weights_only=True)``.

Sparsity survives the reload: the returned module carries ``fggp_masks`` ({parameter name: bool mask}), which
:func:`apply_masks` re-applies after a step of one's own, and ``load_model(path, prune=True)`` instead
re-parametrises each pruned layer with ``torch.nn.utils.prune`` so that further training keeps the zeros.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from torch.nn.utils import prune as torch_prune

from . import models
from .engine import weights_sha256
from .spec import config as C
from .spec.files import atomic_write_bytes

FORMAT = "fggp-repro/model/v1"


class ModelFileError(C.UserError, RuntimeError):
    """A model file that cannot be read or does not match its record; the CLI prints one line and exits 2."""


def _pack(mask: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(np.packbits(mask.detach().cpu().numpy().reshape(-1).astype(np.uint8)))


def _unpack(bits: torch.Tensor, shape: list[int]) -> torch.Tensor:
    n = int(np.prod(shape))
    return torch.from_numpy(np.unpackbits(bits.numpy(), count=n).astype(bool)).reshape(shape)


def payload(model: nn.Module, masks: dict[str, torch.Tensor], cfg: C.Config, run_id: str, sha: str) -> dict:
    """The file's content: ``masks`` maps a parameter name to its boolean mask (pruned layers only)."""
    state = model.state_dict()
    masked, dense = {}, {}
    for name, t in state.items():
        t = t.detach().cpu()
        if name in masks:
            m = masks[name].detach().cpu().bool()
            # a pruned weight is 0.0 or -0.0 (a negative weight times a zero mask): one sign bit each keeps the bytes,
            # and so weights_sha256, exact
            masked[name] = {"shape": list(t.shape), "mask": _pack(m), "values": t[m].contiguous(),
                            "negative_zeros": _pack(torch.signbit(t[~m]))}
        else:
            dense[name] = t.contiguous()
    return {"format": FORMAT, "run_id": run_id, "weights_sha256": sha, "config": cfg.to_dict(),
            "masked": masked, "dense": dense}


def save(path: str | Path, model: nn.Module, masks: dict[str, torch.Tensor], cfg: C.Config, run_id: str) -> Path:
    """Write the model file (whole or not at all) and check that it reloads to the model's own weights_sha256."""
    path = Path(path)
    sha = weights_sha256(model)
    buf = io.BytesIO()
    torch.save(payload(model, masks, cfg, run_id, sha), buf)
    atomic_write_bytes(path, buf.getvalue())
    back = load_model(path)
    if weights_sha256(back) != sha:  # pragma: no cover (a defect of this module, not of the user's input)
        path.unlink(missing_ok=True)
        raise RuntimeError(f"{path}: the saved model does not reload to weights_sha256 {sha[:16]}")
    return path


def load_model(path: str | Path, *, prune: bool = False, device: str | torch.device = "cpu") -> nn.Module:
    """The network of a model file, in eval mode, with ``fggp_masks``, ``fggp_run_id`` and ``fggp_config`` set;
    ``prune=True``: each pruned layer re-parametrised by ``torch.nn.utils.prune.custom_from_mask``."""
    path = Path(path)
    not_ours = f"{path} is not a model file of fggp-repro ({FORMAT}): save one with `fggp-repro train --save-model`"
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # not tensors-only torch.save output (torch's own text suggests an unsafe load)
        raise ModelFileError(f"cannot read the model file {path}: it is not a model file of fggp-repro ({FORMAT}); "
                             "save one with `fggp-repro train --save-model`") from None
    except Exception as e:
        first = str(e).splitlines()[0].split(". ")[0] if str(e) else ""
        raise ModelFileError(f"cannot read the model file {path} ({type(e).__name__}: {first})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ModelFileError(not_ours)
    try:
        cfg = C.from_dict(data["config"])
        with torch.random.fork_rng(devices=[]):  # the layers' own draws are overwritten: leave the caller's RNG alone
            model = models.build(cfg.model.arch, cfg.model.width, weight_init="torch")
        state, masks = dict(data["dense"]), {}
        for name, item in data["masked"].items():
            m = _unpack(item["mask"], item["shape"])
            w = torch.zeros(item["shape"], dtype=item["values"].dtype)
            w[m] = item["values"]
            neg = _unpack(item["negative_zeros"], [int((~m).sum())])
            w[~m] = torch.where(neg, -0.0, 0.0).to(w.dtype)
            state[name], masks[name] = w, m
        model.load_state_dict(state)
    except C.ConfigError as e:
        raise ModelFileError(f"{path}: its config is not valid here ({e})") from None
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, RuntimeError) as e:
        what = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        raise ModelFileError(f"{path} is a damaged model file of fggp-repro ({what}); save it again with "
                             "`fggp-repro train --save-model`") from None
    model.to(device).eval()
    masks = {k: v.to(device) for k, v in masks.items()}
    model.fggp_masks, model.fggp_run_id, model.fggp_config = masks, data["run_id"], cfg
    if prune:
        modules = dict(model.named_modules())
        for name, m in masks.items():
            torch_prune.custom_from_mask(modules[name.rsplit(".", 1)[0]], "weight", m)
    return model


@torch.no_grad()
def apply_masks(model: nn.Module) -> None:
    """Zero the pruned weights again (after an optimizer step of one's own on a module from :func:`load_model`)."""
    params = dict(model.named_parameters())
    for name, m in model.fggp_masks.items():
        params[name].mul_(m.to(params[name].dtype))

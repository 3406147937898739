"""--save-model: the pruned network as a file that reloads to the run's hash, sparsity and accuracy."""

import json
import subprocess
import sys

import pytest
import torch

import fggp_repro
from fggp_repro import data as D
from fggp_repro import engine as E
from fggp_repro.engine import weights_sha256
from fggp_repro.spec import config as C


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    out = tmp_path_factory.mktemp("saved")
    res = subprocess.run([sys.executable, "-m", "fggp_repro", "train", "--preset", "smoke", "--method", "fggp",
                          "--seed", "3", "--threads", "1", "--quiet", "--save-model", "--out", str(out)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    rec_path = next(out.glob("raw/*/*/*/*.json"))
    return rec_path.with_suffix(".pt"), json.loads(rec_path.read_text())


def test_a_saved_model_reloads_to_the_records_hash_sparsity_and_accuracy(saved):
    path, rec = saved
    model = fggp_repro.load_model(path)
    assert weights_sha256(model) == rec["weights_sha256"] and model.fggp_run_id == rec["run_id"]
    per_layer = {name: int((~m).sum()) / m.numel() for name, m in model.fggp_masks.items()}
    assert per_layer == pytest.approx(rec["per_layer_sparsity"], abs=1e-12)
    assert E.measure_sparsity(model)["sparsity"] == rec["metrics"]["sparsity"]
    cfg = C.from_dict(rec["config"])
    ds = D.load(cfg.data)
    loader = D.DeviceLoader(ds.test_x, ds.test_y, torch.device("cpu"), cfg.run.channels_last)
    model = model.to(memory_format=torch.channels_last)
    assert E.evaluate(model, loader, cfg.training.eval_batch_size, cfg.run.precision) == rec["metrics"]["test_acc"]


def test_sparsity_survives_further_training(saved):
    path, _ = saved
    for prune in (False, True):
        model = fggp_repro.load_model(path, prune=prune).train()
        masks = {k: v.clone() for k, v in model.fggp_masks.items()}
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        model(torch.randn(8, 3, 32, 32)).sum().backward()
        opt.step()
        if not prune:
            fggp_repro.apply_masks(model)
        weights = {n: p for n, p in model.state_dict().items()}
        for name, m in masks.items():
            if prune:
                # the layer's own mask buffer (torch.nn.utils.prune) is the saved mask, and the weight it uses,
                # weight_orig * weight_mask, is zero wherever the mask says pruned
                base = name[:-len("weight")]
                assert torch.equal(weights[base + "weight_mask"], m.to(weights[base + "weight_mask"].dtype)), name
                w = weights[base + "weight_orig"] * weights[base + "weight_mask"]
            else:
                w = weights[name]
            assert int((w[~m] != 0).sum()) == 0, name


def test_the_file_is_compact_and_a_wrong_file_is_one_line(saved, tmp_path):
    path, rec = saved
    dense_bytes = 4 * sum(int(v) for v in [rec["weight_counts"]["denominator"]])
    assert path.stat().st_size < 0.5 * dense_bytes  # 90 % pruned: bits and survivors, not every weight
    bad = tmp_path / "x.pt"
    bad.write_bytes(b"not a model")
    with pytest.raises(C.UserError) as e:
        fggp_repro.load_model(bad)
    assert str(e.value) == (f"cannot read the model file {bad}: it is not a model file of fggp-repro "
                            "(fggp-repro/model/v1); save one with `fggp-repro train --save-model`")
    bad.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(C.UserError) as e:
        fggp_repro.load_model(bad)
    assert str(e.value) == (f"cannot read the model file {bad} (RuntimeError: PytorchStreamReader failed reading zip "
                            "archive: failed finding central directory)")
    good = torch.load(path, weights_only=True)
    torch.save({"format": good["format"], "run_id": good["run_id"]}, bad)
    with pytest.raises(C.UserError) as e:
        fggp_repro.load_model(bad)
    assert str(e.value) == (f"{bad} is a damaged model file of fggp-repro (KeyError: 'config'); save it again with "
                            "`fggp-repro train --save-model`")
    name = next(iter(good["masked"]))
    good["masked"][name]["values"] = good["masked"][name]["values"][:2]
    torch.save(good, bad)
    with pytest.raises(C.UserError, match=r"is a damaged model file of fggp-repro \(RuntimeError: shape mismatch"):
        fggp_repro.load_model(bad)
    torch.save({"format": "something else"}, bad)
    with pytest.raises(C.UserError, match="is not a model file of fggp-repro"):
        fggp_repro.load_model(bad)

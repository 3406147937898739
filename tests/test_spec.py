"""The specification layer (fggp_repro/spec/): torch-free, one definition of the record schema that the committed
records, the schema page and the writer all meet, platform and method labels, exit codes."""

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

import fggp_repro.config
from fggp_repro.spec import config as C
from fggp_repro.spec import doc, exits
from fggp_repro.spec.methods import METHOD_VARIANT_FIELDS, VARIANT_FIELDS, VARIANT_FIELDS_OF, method_label
from fggp_repro.spec.record import FIELDS, SETTING_KEY, TOP_LEVEL, RecordInvalid, assemble, setting, validate

REPO = Path(__file__).resolve().parent.parent
RECORDS = sorted(p for p in (REPO / "results").rglob("*.json") if "raw" in p.relative_to(REPO / "results").parts)
PROBES = sorted((REPO / "fggp_repro" / "probes").glob("*.json"))
MINI = REPO / "results/raw/cifar10-jpeg/vgg19/fggp/vgg19-fggp-e4c7a3df0ee66bb2.json"
REFERENCE = Path(__file__).parent / "reference" / "smoke-fggp-seed3-1thread.json"


def test_the_spec_imports_without_torch_numpy_or_the_rest_of_the_package():
    code = ("import sys, fggp_repro.spec, fggp_repro.spec.doc; "
            "print(sorted(m for m in sys.modules if m in ('torch', 'numpy', 'pandas') or "
            "(m.startswith('fggp_repro.') and not m.startswith('fggp_repro.spec'))))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "[]", res.stderr


def test_fggp_repro_config_is_the_spec_config_under_its_old_name():
    assert fggp_repro.config is C and fggp_repro.config.Config is C.Config


def test_every_committed_record_meets_the_schema():
    assert len(RECORDS) >= 191 and len(PROBES) == 6
    for path in RECORDS + PROBES:
        validate(json.loads(path.read_text()))


def test_a_record_made_today_has_every_field_in_the_schemas_order():
    rec = json.loads(REFERENCE.read_text())  # made by `fggp-repro train --preset smoke --method fggp --seed 3`
    rec["provenance"]["source"] = "checkout"  # the one field added since
    validate(rec, complete=True)
    assert list(rec) == list(TOP_LEVEL) == [
        "schema", "run_id", "status", "config", "setting", "metrics", "per_layer_sparsity", "weight_counts",
        "weights_sha256", "history", "pruning_events", "divergence", "diagnostics", "provenance"]
    assert [f.path for f in FIELDS if f.parent == "setting"] == [f"setting.{k}" for k in rec["setting"]]
    assert [f.path for f in FIELDS if f.parent == "history[]"] == [f"history[].{k}" for k in rec["history"][0]]


def _bad(rec, field, problem, **kw):
    with pytest.raises(RecordInvalid) as e:
        validate(rec, **kw)
    assert (e.value.field, e.value.problem) == (field, problem)


def test_validate_names_the_first_field_that_is_wrong():
    good = json.loads(MINI.read_text())  # made before diagnostics, device_model, data_sha256, setting.init_seed
    validate(good)
    _bad(good, "setting.init_seed", "missing", complete=True)
    _bad([good], "the record", "is a list, expected an object")
    for edit, field, problem in [
        (lambda r: r.pop("weight_counts"), "weight_counts", "missing"),
        (lambda r: r.update(schema="fggp-repro/run-record/v2"), "schema",
         "is 'fggp-repro/run-record/v2', expected 'fggp-repro/run-record/v1'"),
        (lambda r: r.update(status="done"), "status", "is 'done', expected 'completed' or 'diverged'"),
        (lambda r: r["metrics"].update(test_acc=None), "metrics.test_acc",
         "is null, which only the record of a diverged run may hold"),
        (lambda r: r["metrics"].update(sparsity=1.5), "metrics.sparsity", "= 1.5 is outside [0.0, 1.0] (fraction)"),
        (lambda r: r["metrics"].update(test_acc="37.55"), "metrics.test_acc",
         "is a string ('37.55'), expected a number"),
        (lambda r: r["weight_counts"].update(zero=3.0), "weight_counts.zero", "is a number (3.0), expected an integer"),
        (lambda r: r["setting"].update(seed=True), "setting.seed", "is a boolean (True), expected an integer"),
        (lambda r: r["history"][2].update(test_acc=101), "history[2].test_acc",
         "= 101 is outside [0.0, 100.0] (percent)"),
        (lambda r: r["history"].__setitem__(1, 7), "history[1]", "is a number, expected an object"),
        (lambda r: r["per_layer_sparsity"].update({"features.3.weight": -0.5}), "per_layer_sparsity.features.3.weight",
         "= -0.5 is outside [0.0, 1.0] (fraction)"),
        (lambda r: r["pruning_events"][0].pop("n_pruned"), "pruning_events[0].n_pruned", "missing"),
        (lambda r: r["provenance"].pop("deterministic"), "provenance.deterministic", "missing"),
        (lambda r: r.update(divergence={"epoch": 2, "iteration": 9, "reason": "nan"}), "divergence",
         "is not null, which only the record of a diverged run may hold"),
    ]:
        rec = copy.deepcopy(good)
        edit(rec)
        _bad(rec, field, problem)
    diverged = copy.deepcopy(good)
    diverged.update(status="diverged", divergence={"epoch": 2, "iteration": 9, "reason": "nan"})
    diverged["metrics"].update(test_acc=None, final_train_loss=None)
    validate(diverged)
    _bad(dict(diverged, divergence=None), "divergence", "is null, which only the record of a completed run may hold")


def test_complete_records_have_no_field_the_schema_does_not_name():
    rec = json.loads(REFERENCE.read_text())
    rec["provenance"]["source"] = "checkout"
    rec["metrics"]["top5"] = 99.0
    _bad(rec, "metrics.top5", "is not a field of the schema", complete=True)
    validate(rec)  # another tool's extra field is no defect of a record


def test_the_schema_page_is_generated_from_the_spec():
    page = (REPO / "docs" / "RECORD_SCHEMA.md").read_text()
    assert doc.blocks(page) == ["fields", "platform"]
    assert page == doc.render(page), "run: python -m fggp_repro.spec.doc docs/RECORD_SCHEMA.md"
    rows = [ln.split("|")[1].strip().strip("`") for ln in page.splitlines() if ln.startswith("| `")]
    assert rows == [f.path for f in FIELDS] + ["torch", "device", "cpu_isa", "onednn_isa", "threads", "precision",
                                                 "strict", "channels_last"]
    assert f"`({', '.join(SETTING_KEY)})`" in page


def test_assemble_orders_the_top_level_fields_and_refuses_a_missing_one():
    parts = {k: k for k in TOP_LEVEL if k != "schema"}
    rec = assemble(**dict(reversed(parts.items())))
    assert list(rec) == list(TOP_LEVEL) and rec["schema"] == "fggp-repro/run-record/v1" and rec["history"] == "history"
    del parts["diagnostics"]
    with pytest.raises(TypeError, match=r"missing \['diagnostics'\], unknown \[\]"):
        assemble(**parts)


def test_the_setting_of_a_config():
    cfg = C.load(preset="mini", overrides={"pruning": {"method": "granet", "sparsity": 0.95, "init": "sparse50"},
                                           "run": {"seed": 2, "order_seed": 7}})
    assert setting(cfg) == {"dataset": "cifar10-jpeg", "arch": "vgg19", "method": "granet", "target_sparsity": 0.95,
                            "initial_density": 0.5, "seed": 2, "init_seed": 2, "order_seed": 7, "protocol": "mini"}
    dense = C.load(overrides={"pruning": {"method": "dense", "sparsity": 0.95}})
    assert setting(dense)["target_sparsity"] == 0.0 and setting(dense)["initial_density"] == 1.0


def test_method_variants_are_labelled_against_the_protocols_values():
    assert METHOD_VARIANT_FIELDS == {"fggp": (("rate", 0.5),), "mf-fixed": (("rate", 0.5),),
                                     "annealed": (("r0", 0.5), ("r_min", 0.005)),
                                     "gf-annealed": (("r0", 0.5), ("r_min", 0.005)),
                                     "granet": (("r0", 0.5), ("r_min", 0.005))}
    assert set(VARIANT_FIELDS) == {f for fields in VARIANT_FIELDS_OF.values() for f in fields}
    assert method_label("annealed", {"r0": 0.01, "r_min": 0.005, "rate": 0.3}) == "annealed:r0=0.01"
    assert method_label("granet", {"r0": 0.25, "r_min": 0.001}) == "granet:r0=0.25:r_min=0.001"
    assert method_label("fggp", {"r0": 0.01, "rate": 0.5}) == "fggp"
    assert method_label("gmp", {"rate": 0.1}) == "gmp"
    assert method_label("annealed", None) == "annealed"


def test_the_fields_that_differ_between_the_runs_of_one_protocol():
    assert C.PER_RUN_FIELDS == (
        "data.dataset", "model.arch", "pruning.method", "pruning.sparsity", "pruning.init", "run.seed",
        "run.init_seed", "run.order_seed", "data.data_root", "data.download", "training.eval_batch_size",
        "training.checkpoint_every", "run.protocol", "run.device", "run.threads", "run.cpu_isa", "run.channels_last")


def test_exit_codes():
    # a diverged run (recorded as such) is not 1, the code of any uncaught crash, which the grid counts as failed
    assert (exits.EXIT_OK, exits.EXIT_DIVERGED, exits.EXIT_FAILED, exits.EXIT_USAGE, exits.EXIT_STOPPED,
            exits.EXIT_INTERRUPTED, exits.EXIT_BROKEN_PIPE, exits.EXIT_TERMINATED) == (0, 3, 1, 2, 75, 130, 141, 143)


def test_the_doc_command_says_one_line_for_a_missing_page(tmp_path):
    res = subprocess.run([sys.executable, "-m", "fggp_repro.spec.doc", str(tmp_path / "none.md")],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr == f"cannot update {tmp_path / 'none.md'} (No such file or directory)\n"

"""Loading run records: tidy frame, sorting by keys, diverged runs kept, one named error per defect."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from analysis import RUN_COLUMNS, RecordError, load_histories, load_layer_sparsity, load_records, load_runs
from fake_records import make_record, write_grid, write_record


def test_frame_columns_and_values(tmp_path):
    write_record(tmp_path, make_record(method="fggp", seed=1, test_acc=93.41, target_sparsity=0.95,
                                       initial_density=0.5, best_after=93.6))
    write_record(tmp_path, make_record(method="dense", seed=0, test_acc=94.0))
    df = load_runs(tmp_path)
    assert list(df.columns) == list(RUN_COLUMNS)
    assert len(df) == 2
    # sorted by keys: same protocol/dataset/arch; initial_density 0.5 sorts before 1.0
    row = df.iloc[0]
    assert (row["method"], row["seed"], row["target_sparsity"], row["initial_density"]) == ("fggp", 1, 0.95, 0.5)
    assert row["test_acc"] == 93.41 and row["best_test_acc_after_pruning"] == 93.6
    assert row["sparsity"] == 0.95 and row["status"] == "completed" and row["protocol"] == "paper"
    assert row["path"].endswith(".json")
    assert df["seed"].dtype == np.int64 and df["test_acc"].dtype == float


def test_empty_folder_gives_empty_frame(tmp_path):
    df = load_runs(tmp_path)
    assert df.empty and list(df.columns) == list(RUN_COLUMNS)


def test_missing_folder_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_runs(tmp_path / "nope")


def test_diverged_runs_are_kept_and_marked(tmp_path):
    write_record(tmp_path, make_record(seed=0, status="diverged"))
    write_record(tmp_path, make_record(seed=1, test_acc=92.0))
    df = load_runs(tmp_path)
    assert list(df["status"]) == ["diverged", "completed"]
    assert np.isnan(df["test_acc"].iloc[0])


def test_row_order_on_disk_never_matters(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    paths = write_grid(a, seeds=(0, 1), archs=("vgg19",), targets=(0.9, 0.98))
    # Same records under shuffled file names in b.
    rng = np.random.default_rng(3)
    names = rng.permutation(len(paths))
    for p, k in zip(paths, names):
        (b / f"sub{k % 3}").mkdir(parents=True, exist_ok=True)
        shutil.copy(p, b / f"sub{k % 3}" / f"r{k:04d}.json")
    da, db = load_runs(a).drop(columns="path"), load_runs(b).drop(columns="path")
    pd.testing.assert_frame_equal(da, db)


def _write_raw(tmp_path, text, name="bad.json"):
    p = tmp_path / "raw" / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


def test_bad_json(tmp_path):
    write_record(tmp_path, make_record())
    p = _write_raw(tmp_path, '{"schema": "fggp-repro/run-record/v1", ')
    with pytest.raises(RecordError, match="not valid JSON") as e:
        load_runs(tmp_path)
    assert e.value.path == str(p)
    assert "\n" not in str(e.value) and str(p) in str(e.value)


def test_wrong_schema(tmp_path):
    rec = make_record()
    rec["schema"] = "fggp-repro/run-record/v0"
    p = write_record(tmp_path, rec)
    with pytest.raises(RecordError) as e:
        load_runs(tmp_path)
    assert e.value.field == "schema" and e.value.path == str(p)
    assert "run-record/v0" in str(e.value)


@pytest.mark.parametrize("group,key", [("setting", "seed"), ("setting", "target_sparsity"), ("metrics", "test_acc"),
                                       ("metrics", "sparsity"), ("metrics", "best_test_acc_after_pruning"),
                                       (None, "status"), (None, "run_id"), (None, "setting")])
def test_missing_field(tmp_path, group, key):
    rec = make_record()
    if group is None:
        del rec[key]
        field = key
    else:
        del rec[group][key]
        field = f"{group}.{key}"
    p = write_record(tmp_path, rec, tmp_path / "r.json")
    with pytest.raises(RecordError) as e:
        load_runs(tmp_path)
    assert e.value.field == field and e.value.path == str(p)
    assert f"field '{field}'" in str(e.value)


@pytest.mark.parametrize("value", ["93.4", None, True, float("nan"), [93.4]])
def test_non_numeric_accuracy_of_completed_run(tmp_path, value):
    rec = make_record()
    rec["metrics"]["test_acc"] = value
    p = tmp_path / "r.json"
    p.write_text(json.dumps(rec))  # NaN written as the JSON extension NaN
    with pytest.raises(RecordError) as e:
        load_runs(tmp_path)
    assert e.value.field == "metrics.test_acc" and e.value.path == str(p)


def test_null_accuracy_of_diverged_run_is_fine(tmp_path):
    rec = make_record(status="diverged")
    assert rec["metrics"]["test_acc"] is None
    write_record(tmp_path, rec)
    assert load_runs(tmp_path)["status"].tolist() == ["diverged"]


def test_percent_out_of_range_and_bad_seed(tmp_path):
    rec = make_record(test_acc=130.0)
    write_record(tmp_path, rec)
    with pytest.raises(RecordError, match=r"metrics\.test_acc.*outside"):
        load_runs(tmp_path)
    rec = make_record(seed=0)
    rec["setting"]["seed"] = 1.5
    write_record(tmp_path, rec)
    with pytest.raises(RecordError, match="setting.seed"):
        load_runs(tmp_path)


def test_malformed_diagnostics_name_their_field(tmp_path):
    rec = make_record(seed=0)
    rec["diagnostics"] = {"dead_units": {"total": 3, "per_layer": {}}, "bn_recalibrated_test_acc": 101.0}
    write_record(tmp_path, rec)
    with pytest.raises(RecordError, match=r"diagnostics\.bn_recalibrated_test_acc.*outside"):
        load_runs(tmp_path)
    rec["diagnostics"] = {"dead_units": {"total": -1}, "bn_recalibrated_test_acc": None}
    write_record(tmp_path, rec)
    with pytest.raises(RecordError, match=r"diagnostics\.dead_units\.total"):
        load_runs(tmp_path)


def test_unknown_status(tmp_path):
    rec = make_record()
    rec["status"] = "running"
    write_record(tmp_path, rec)
    with pytest.raises(RecordError) as e:
        load_runs(tmp_path)
    assert e.value.field == "status"


def test_duplicate_run(tmp_path):
    first = write_record(tmp_path, make_record(seed=4, run_id="a"))
    second = write_record(tmp_path, make_record(seed=4, run_id="b", test_acc=91.0))
    with pytest.raises(RecordError, match="duplicate") as e:
        load_runs(tmp_path)
    # Files are read in sorted order: the second one is reported, naming the first.
    assert e.value.path == str(second) and str(first) in str(e.value)
    assert e.value.field == "setting"


def test_same_seed_other_protocol_is_not_a_duplicate(tmp_path):
    write_record(tmp_path, make_record(seed=4, protocol="paper"))
    write_record(tmp_path, make_record(seed=4, protocol="mini"))
    assert len(load_runs(tmp_path)) == 2


def test_histories_and_layers(tmp_path):
    write_record(tmp_path, make_record(method="fggp", seed=0, epochs=4, test_acc=90.0))
    write_record(tmp_path, make_record(method="gmp", seed=0, status="diverged", epochs=4))
    h = load_histories(tmp_path)
    assert list(h["method"]) == ["fggp"] * 4 + ["gmp"] * 2
    assert list(h["epoch"]) == [1, 2, 3, 4, 1, 2]
    assert h["test_acc"].iloc[3] == 90.0
    # the last epoch the diverged run finished, its second of 4: loss 2.0 * (1 - 2/4) + 0.05
    assert h["train_loss"].iloc[5] == 1.05
    ls = load_layer_sparsity(tmp_path)
    assert list(ls.loc[ls["method"] == "fggp", "layer"])[:2] == ["features.3.weight", "features.7.weight"]
    assert list(ls.loc[ls["method"] == "fggp", "layer_index"]) == list(range(6))
    rec = load_records(tmp_path)
    assert len(rec.runs) == 2 and len(rec.histories) == 6 and len(rec.layer_sparsity) == 12


def test_malformed_history_is_named(tmp_path):
    rec = make_record()
    rec["history"][1]["test_acc"] = "high"
    p = write_record(tmp_path, rec)
    # the record is checked whole (fggp_repro.spec.validate), whichever of its parts a loader reads
    for load in (load_histories, load_runs):
        with pytest.raises(RecordError) as e:
            load(tmp_path)
        assert str(e.value) == (f"{p}: field 'history[1].test_acc': is a string ('high'), expected a number "
                                f"(docs/RECORD_SCHEMA.md): remake the run, or move the file out of the results "
                                f"folder")


def test_method_order_puts_a_variant_after_its_method():
    from analysis.records import method_order

    assert method_order(["dense", "random", "annealed:r0=0.01", "fggp", "annealed", "mf-fixed:rate=0.3",
                         "mf-fixed"]) == ["fggp", "annealed", "annealed:r0=0.01", "mf-fixed", "mf-fixed:rate=0.3",
                                          "random", "dense"]


def test_two_annealed_rates_are_two_methods_not_a_duplicate(tmp_path):
    from fake_records import make_record, write_record

    a = make_record(method="annealed", run_id="a-05", test_acc=90.0)
    a["config"]["pruning"]["r0"] = 0.5
    b = make_record(method="annealed", run_id="a-001", test_acc=91.0)
    b["config"]["pruning"]["r0"] = 0.01
    write_record(tmp_path, a)
    write_record(tmp_path, b)
    df = load_runs(tmp_path)
    assert sorted(df["method"]) == ["annealed", "annealed:r0=0.01"]
    assert df.set_index("method").loc["annealed:r0=0.01", "test_acc"] == 91.0
    # the same rate twice is still a duplicate run
    c = make_record(method="annealed", run_id="a-001-again", test_acc=92.0)
    c["config"]["pruning"]["r0"] = 0.01
    write_record(tmp_path, c)
    with pytest.raises(RecordError, match="duplicate run"):
        load_runs(tmp_path)


def test_collapsed_and_scale_columns(tmp_path):
    write_record(tmp_path, make_record(method="random", seed=0, test_acc=10.0))
    write_record(tmp_path, make_record(method="random", seed=1, test_acc=11.5))
    write_record(tmp_path, make_record(method="random", seed=2, status="diverged"))
    df = load_runs(tmp_path).set_index("seed")
    assert list(df["collapsed"]) == [True, False, False]  # at or below 11 %, completed runs only
    assert df.loc[0, "epochs"] == 3 and df.loc[0, "width"] == 1.0 and np.isnan(df.loc[0, "train_images"])


def test_best_epoch_window_is_the_same_for_dense(tmp_path):
    # 4 epochs of 100 iterations: T_end = int(0.8 * 400) = 320, so the window is epoch 4 alone (iteration 400);
    # the dense record's own best_test_acc_after_pruning (every epoch) says 95.0, the window says 90.0.
    for method in ("dense", "fggp"):
        rec = make_record(method=method, seed=0, test_acc=90.0, epochs=4, best_after=95.0)
        for e, acc in zip(rec["history"], (60.0, 80.0, 95.0, 90.0)):
            e["test_acc"] = acc
        write_record(tmp_path, rec)
    df = load_runs(tmp_path).set_index("method")
    assert df.loc["dense", "best_test_acc_after_pruning"] == 95.0
    assert df.loc["dense", "best_test_acc_window"] == 90.0 and df.loc["fggp", "best_test_acc_window"] == 90.0
    assert df.loc["dense", "t_end"] == 320 and df.loc["dense", "iterations"] == 400
    # without a history: a pruned run keeps its recorded number, a dense run has none
    for method in ("dense", "fggp"):
        rec = make_record(method=method, seed=1, test_acc=90.0, best_after=92.5)
        rec["history"] = []
        write_record(tmp_path, rec)
    df = load_runs(tmp_path).query("seed == 1").set_index("method")
    assert np.isnan(df.loc["dense", "best_test_acc_window"]) and df.loc["fggp", "best_test_acc_window"] == 92.5
    # a history whose epochs do not say their iteration does not meet the schema
    rec = make_record(method="dense", seed=2, test_acc=90.0)
    for e in rec["history"]:
        del e["iteration"]
    write_record(tmp_path, rec)
    with pytest.raises(RecordError) as e:
        load_runs(tmp_path)
    assert e.value.field == "history[0].iteration" and e.value.message.startswith("missing (docs/RECORD_SCHEMA.md)")


def test_sweep_of_one_protocol_is_split_not_pooled(tmp_path):
    # two dense runs of one seed and protocol that differ in their config (epochs): not a duplicate, two variants
    for epochs in (8, 12):
        rec = make_record(method="dense", seed=0, protocol="cpu-frontier", epochs=epochs, run_id=f"d{epochs}",
                          test_acc=70.0 + epochs)
        rec["config"]["training"]["epochs"] = epochs
        write_record(tmp_path, rec)
    write_record(tmp_path, make_record(method="fggp", seed=0, protocol="mini"))
    df = load_runs(tmp_path)
    assert sorted(df["protocol"]) == ["cpu-frontier[epochs=12]", "cpu-frontier[epochs=8]", "mini"]
    assert df.set_index("protocol").loc["cpu-frontier[epochs=8]", "test_acc"] == 78.0
    # the same config twice is still a duplicate
    rec = make_record(method="dense", seed=0, protocol="cpu-frontier", epochs=8, run_id="d8-again")
    rec["config"]["training"]["epochs"] = 8
    write_record(tmp_path, rec)
    with pytest.raises(RecordError, match="duplicate run"):
        load_runs(tmp_path)


def test_preset_and_options_from_the_command():
    from analysis.records import options_of, preset_of

    def rec(command):
        return {"provenance": {"command": command}}

    assert preset_of(rec("fggp-repro train --preset cpu --method fggp --seed 3")) == "cpu"
    assert preset_of(rec("fggp-repro train --preset=mini --quiet")) == "mini"
    assert preset_of(rec("fggp-repro train ...")) == "unknown" and preset_of({}) == "unknown"
    # per-run options (setting, method, seed, where and how it runs) leave; what changes the preset stays
    assert options_of(rec("fggp-repro train --preset cpu --protocol cpu-fp32 --precision fp32 --method gmp "
                          "--sparsity 0.98 --init dense --seed 6 --threads 1 --data-root /x --out /y")) == \
        "--precision fp32"
    assert options_of(rec("fggp-repro train --preset cpu --epochs 10 --milestones 5,7 --quiet")) == \
        "--epochs 10 --milestones 5,7"
    assert options_of(rec("fggp-repro train --preset cpu --method fggp")) == ""


def test_the_schema_is_the_spec_s_and_the_analysis_adds_its_own_checks(tmp_path):
    def error(rec) -> str:
        p = write_record(tmp_path / str(len(list(tmp_path.iterdir()))), rec)
        with pytest.raises(RecordError) as e:
            load_runs(p.parent)
        assert e.value.path == str(p)
        return f"field '{e.value.field}': {e.value.message}"

    fix = "remake the run, or move the file out of the results folder"
    # a field every record holds, whatever its version (docs/RECORD_SCHEMA.md): stricter than reading only the
    # fields the statistics use
    rec = make_record()
    del rec["weight_counts"]
    assert error(rec) == f"field 'weight_counts': missing (docs/RECORD_SCHEMA.md): {fix}"
    rec = make_record(status="diverged")
    rec["divergence"] = None
    assert error(rec) == ("field 'divergence': is null, which only the record of a completed run may hold "
                          f"(docs/RECORD_SCHEMA.md): {fix}")
    # on top of the schema: names that become folders and rows, a dense run's setting
    rec = make_record()
    rec["setting"]["protocol"] = " "
    assert error(rec) == f"field 'setting.protocol': is an empty string: {fix}"
    rec = make_record(method="dense")
    rec["setting"]["target_sparsity"] = 0.9
    assert error(rec) == ("field 'setting.target_sparsity': a dense run must have target_sparsity 0.0 and "
                          f"initial_density 1.0: {fix}")
    # the fields a record made today has and older ones lack are not required
    rec = make_record()
    assert "diagnostics" not in rec and "init_seed" not in rec["setting"]
    rec["setting"].update(init_seed=0, order_seed=0)
    write_record(tmp_path / "ok", rec)
    assert len(load_runs(tmp_path / "ok")) == 1


@pytest.mark.parametrize("field,a,b,protocols", [
    # seeds of a crossed design: one run seed, two order seeds -- two variants, not a duplicate
    ("order_seed", -1, 1, ["paper[order_seed=-1]", "paper[order_seed=1]"]),
    # strict mode is part of the run id (another computation): two variants
    ("strict", True, False, ["paper[strict=False]", "paper[strict=True]"]),
    # the oneDNN cap is how a run executed, not what it computes (the spec's PER_RUN_FIELDS): the same run twice
    ("cpu_isa", "native", "portable", None),
])
def test_which_config_fields_tell_two_runs_of_one_seed_apart(tmp_path, field, a, b, protocols):
    for run_id, value in (("x", a), ("y", b)):
        rec = make_record(seed=3, run_id=run_id)
        rec["config"]["run"][field] = value
        write_record(tmp_path, rec)
    if protocols is None:
        with pytest.raises(RecordError, match="duplicate run: same .* and config as .*; keep one of the two"):
            load_runs(tmp_path)
    else:
        assert sorted(load_runs(tmp_path)["protocol"]) == protocols

"""The results folder of figures, audit and plan: which JSON files are run records (the others are skipped and
named, a damaged record stops the command), a path that does not exist, --results on all three, the platforms
of each protocol, and the mode of the files written."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pandas as pd
import pytest

from analysis import RecordError, classify, load_records, platform_columns
from analysis.cli import audit_main, figures_main, plan_main
from analysis.formatting import atomic_write_text
from analysis.platforms import platform_label, platform_note, platform_table
from analysis.records import NotARecord
from fake_records import make_record, write_grid, write_record

V1 = "fggp-repro/run-record/v1"
# an older record: no oneDNN level, the CPU's clock in its model name (not part of the platform)
INTEL = dict(device="cpu (Intel Xeon @ 2.50GHz, 1 threads)", cpu_capability="AVX512", torch_threads=1)
AMD = dict(device="cpu (AMD EPYC, 2 threads)", device_model="cpu (AMD EPYC)", cpu_capability="AVX2", torch_threads=2,
           onednn_isa="AVX2")

#: The stray files and the line each gets on stderr, in the order of their paths.
STRAYS = {
    "notes.json": ('{"note": "grid started"}',
                   'a JSON object without "schema" (a run record has "schema": "fggp-repro/run-record/v1")'),
    "raw/list.json": ("[1, 2]", 'a JSON list, not an object with "schema": "fggp-repro/run-record/v1"'),
    "raw/other.json": ('{"schema": "other-tool/v3"}',
                       "its \"schema\" is 'other-tool/v3', not fggp-repro/run-record/..."),
    "raw/text.json": ("hello", "not valid JSON, and it does not name the run-record schema fggp-repro/run-record/..."),
}


def _grid(root: Path) -> Path:
    """vgg19, targets 90 % and 95 %, dense start, fggp and gmp, seeds 0-2, dense seeds 0-2: 15 runs. Seed 2 of
    the 90 % setting (fggp and gmp: 2 runs) was made on an AMD CPU with 2 threads in channels_last, the other 13 on
    an Intel one with 1 thread (as older records say it: the thread count inside provenance.device; no memory
    format)."""
    paths = write_grid(root, methods=("fggp", "gmp"), archs=("vgg19",), targets=(0.9, 0.95), starts=(1.0,),
                       seeds=(0, 1, 2))
    for p in paths:
        rec = json.loads(p.read_text())
        amd = rec["setting"]["seed"] == 2 and rec["setting"]["target_sparsity"] == 0.9
        rec["provenance"].update(AMD if amd else INTEL)
        if amd:
            rec["config"]["run"].update(precision="fp32", channels_last=True)  # fp32: as a record without the field
        p.write_text(json.dumps(rec))
    return root


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    return _grid(tmp_path_factory.mktemp("clean"))


@pytest.fixture(scope="module")
def stray(tmp_path_factory, clean) -> Path:
    root = tmp_path_factory.mktemp("stray") / "r"
    shutil.copytree(clean, root)
    for name, (text, _) in STRAYS.items():
        (root / name).write_text(text)
    return root


def _notes(root: Path) -> str:
    return "".join(f"note: skipped {root / name}, not a run record: {why}\n" for name, (_, why) in STRAYS.items())


# ---------------------------------------------------------------------------------------------------------
# which files are run records


@pytest.mark.parametrize("name", list(STRAYS))
def test_classify_not_a_record(tmp_path, name):
    text, why = STRAYS[name]
    p = tmp_path / "x.json"
    p.write_text(text)
    with pytest.raises(NotARecord) as e:
        classify(p)
    assert str(e.value) == why


@pytest.mark.parametrize("raw,why", [
    (b'{"schema": 3}', "its \"schema\" is 3, not fggp-repro/run-record/..."),
    (b'{"schema": null, "run_id": "x"}', "its \"schema\" is None, not fggp-repro/run-record/..."),
    (b'"fggp"', 'a JSON string, not an object with "schema": "fggp-repro/run-record/v1"'),
    (b"\xff\xfe\xfa", "not valid JSON, and it does not name the run-record schema fggp-repro/run-record/..."),
    (b"", "not valid JSON, and it does not name the run-record schema fggp-repro/run-record/..."),
])
def test_classify_more_non_records(tmp_path, raw, why):
    p = tmp_path / "x.json"
    p.write_bytes(raw)
    with pytest.raises(NotARecord) as e:
        classify(p)
    assert str(e.value) == why


def test_classify_damaged_and_good_records(tmp_path):
    p = tmp_path / "x.json"
    p.write_text('{"schema": "fggp-repro/run-record/v1", ')
    with pytest.raises(RecordError) as e:
        classify(p)
    assert str(e.value) == (f"{p}: not valid JSON (Expecting property name enclosed in double quotes: line 1 column 40 "
                            f"(char 39)), yet it names the run-record schema fggp-repro/run-record/...: a damaged run "
                            f"record; remake the run, or move the file out of the results folder")
    rec = make_record()
    p.write_text(json.dumps(rec))
    assert classify(p) == rec
    rec["schema"] = "fggp-repro/run-record/v2"  # a run record of another version: classified as a record
    p.write_text(json.dumps(rec))
    assert classify(p)["schema"] == "fggp-repro/run-record/v2"


def test_load_records_lists_what_it_skipped(stray, clean):
    rec = load_records(stray, histories=False, layers=False)
    assert rec.skipped == tuple((str(stray / n), why) for n, (_, why) in STRAYS.items())
    assert len(rec.runs) == 15
    pd.testing.assert_frame_equal(rec.runs.drop(columns="path"),
                                  load_records(clean, histories=False, layers=False).runs.drop(columns="path"))
    assert load_records(clean).skipped == ()


def test_stray_files_are_skipped_and_named(stray, clean, tmp_path, capsys):
    # figures: the same outputs as without the strays; one note per stray on stderr
    assert figures_main(["--results", str(stray), "--out", str(tmp_path / "a"), "--only", "main_results",
                         "--only", "platforms"]) == 0
    out, err = capsys.readouterr()
    assert err == _notes(stray)
    assert figures_main(["--results", str(clean), "--out", str(tmp_path / "b"), "--only", "main_results",
                         "--only", "platforms"]) == 0
    out_clean, err_clean = capsys.readouterr()
    assert err_clean == ""
    assert out.replace(str(tmp_path / "a"), "OUT") == out_clean.replace(str(tmp_path / "b"), "OUT")
    for name in ("main_results.md", "main_results.csv", "platforms.md", "platforms.csv"):
        assert (tmp_path / "a" / "paper" / name).read_bytes() == (tmp_path / "b" / "paper" / name).read_bytes()
    # audit (text and --json) and plan: the same stdout as without them
    for main, extra in ((audit_main, []), (audit_main, ["--json"]), (plan_main, ["--effect", "1"])):
        assert main(["--results", str(stray), *extra]) == 0
        out, err = capsys.readouterr()
        assert err == _notes(stray)
        assert main(["--results", str(clean), *extra]) == 0
        assert capsys.readouterr() == (out, "")


def test_only_strays_is_nothing_yet(tmp_path, capsys):
    (tmp_path / "notes.json").write_text('{"note": 1}')
    assert audit_main(["--results", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert out == f"No run records under {tmp_path} (1 other JSON file skipped): nothing to audit yet.\n"
    assert err == (f"note: skipped {tmp_path / 'notes.json'}, not a run record: a JSON object without \"schema\" "
                   f"(a run record has \"schema\": \"fggp-repro/run-record/v1\")\n")


def test_one_file_that_is_not_a_record_is_an_error(tmp_path, capsys):
    p = tmp_path / "notes.json"
    p.write_text("[]")
    for main in (figures_main, audit_main, plan_main):
        assert main(["--results", str(p)]) == 2
        assert capsys.readouterr().err == (f"error: {p} is not a run record (a JSON list, not an object with "
                                           f"\"schema\": \"fggp-repro/run-record/v1\"); give the folder of run "
                                           f"records with --results DIR\n")


@pytest.mark.parametrize("case", ["truncated", "v2", "no run_id"])
def test_damaged_run_record_still_fails(clean, tmp_path, capsys, case):
    root = tmp_path / "r"
    shutil.copytree(clean, root)
    (root / "notes.json").write_text('{"note": 1}')  # skipped, but the damaged record below still stops everything
    bad = root / "raw" / "bad.json"
    if case == "truncated":
        bad.write_text('{"schema": "fggp-repro/run-record/v1", ')
        line = (f"error: {bad}: not valid JSON (Expecting property name enclosed in double quotes: line 1 column 40 "
                f"(char 39)), yet it names the run-record schema fggp-repro/run-record/...: a damaged run record; "
                f"remake the run, or move the file out of the results folder\n")
    elif case == "v2":
        rec = make_record(seed=9)
        rec["schema"] = "fggp-repro/run-record/v2"
        bad.write_text(json.dumps(rec))
        line = (f"error: {bad}: field 'schema': is 'fggp-repro/run-record/v2'; expected 'fggp-repro/run-record/v1' "
                f"(another version of the run-record schema than this analysis reads): move the file out of the "
                f"results folder\n")
    else:
        bad.write_text(json.dumps({"schema": V1, "status": "completed"}))
        line = (f"error: {bad}: field 'run_id': missing (docs/RECORD_SCHEMA.md): remake the run, or move the file "
                f"out of the results folder\n")
    for main, extra in ((figures_main, ["--out", str(tmp_path / "out")]), (audit_main, []),
                        (audit_main, ["--json"]), (plan_main, [])):
        assert main(["--results", str(root), *extra]) == 2
        assert capsys.readouterr() == ("", line)  # one line; the skip notes never come before the error
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------------------------
# the results path


def test_missing_results_folder_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    where = tmp_path.resolve()
    typo = (f"error: results folder not found: resluts ({where / 'resluts'}); check the path, or give the folder "
            f"of run records with --results DIR (default: results)\n")
    default = (f"error: results folder not found: results ({where / 'results'}); run the command from the "
               f"repository root (where results/ is), or give the folder of run records with --results DIR\n")
    absolute = (f"error: results folder not found: {where / 'gone'}; check the path, or give the folder of run "
                f"records with --results DIR (default: results)\n")
    for main in (figures_main, audit_main, plan_main):
        assert main(["--results", "resluts"]) == 2
        assert capsys.readouterr() == ("", typo)
        assert main([]) == 2
        assert capsys.readouterr() == ("", default)
        assert main(["--results", str(where / "gone")]) == 2
        assert capsys.readouterr() == ("", absolute)
    for main in (audit_main, plan_main):  # the positional form
        assert main(["resluts"]) == 2
        assert capsys.readouterr() == ("", typo)
    assert audit_main(["--json", "--results", "resluts"]) == 2
    assert capsys.readouterr() == ("", typo)
    assert not (tmp_path / "paper_figures").exists()


def test_empty_results_folder_is_nothing_yet(tmp_path, capsys):
    (tmp_path / "raw").mkdir()
    for main, verb in ((figures_main, "draw"), (audit_main, "audit"), (plan_main, "plan")):
        assert main(["--results", str(tmp_path), *(["--out", str(tmp_path / "o")] if verb == "draw" else [])]) == 0
        assert capsys.readouterr() == (f"No run records under {tmp_path}: nothing to {verb} yet.\n", "")


def test_results_option_on_all_three(clean, tmp_path, capsys):
    assert audit_main(["--results", str(clean)]) == 0
    by_option = capsys.readouterr()
    assert audit_main([str(clean)]) == 0
    assert capsys.readouterr() == by_option
    assert audit_main([str(clean), "--results", str(clean)]) == 0  # the same folder twice is fine
    assert capsys.readouterr() == by_option
    assert plan_main(["--results", str(clean), "--effect", "1"]) == 0
    by_option = capsys.readouterr()
    assert by_option.out.startswith("protocol paper: seeds needed")
    assert plan_main([str(clean), "--effect", "1"]) == 0
    assert capsys.readouterr() == by_option
    for main in (audit_main, plan_main):
        assert main([str(clean), "--results", str(tmp_path)]) == 2
        assert capsys.readouterr() == ("", f"error: two results folders given, {clean} and --results {tmp_path}; "
                                           f"give one, with --results DIR\n")
    # every help names --results DIR and the rule
    for main in (figures_main, audit_main, plan_main):
        assert main(["--help"]) == 0
        text = " ".join(capsys.readouterr().out.split())
        assert "--results DIR" in text and "(default: results)" in text
        assert 'whose "schema" starts with fggp-repro/run-record/' in text


# ---------------------------------------------------------------------------------------------------------
# platforms

TWO = ("platforms: 2, analysed together within a setting (across platforms a run drifts like a new seed) — "
       "P1 torch 2.4.0, device cpu (Intel Xeon), CPU ISA AVX512, oneDNN ISA unknown, 1 thread, fp32, strict on, "
       "memory format unknown (13 runs); P2 torch 2.4.0, device cpu (AMD EPYC), CPU ISA AVX2, oneDNN ISA AVX2, "
       "2 threads, fp32, strict on, channels_last (2 runs); "
       "settings with runs from more than one platform: 1 of 3")


def test_platform_columns_read_every_record_version():
    # the spec's platform (fggp_repro.spec.platform_of) as the runs frame holds it: strings, unknown where silent
    rec = make_record()
    assert platform_columns(rec) == dict(torch="2.4.0", device="cpu", cpu_isa="AVX512", onednn_isa="unknown",
                                         threads="1", precision="fp32", strict="true", channels_last="unknown")
    rec["provenance"].update(AMD)
    rec["config"]["run"].update(precision="bf16", channels_last=True)
    assert platform_columns(rec) == dict(torch="2.4.0", device="cpu (AMD EPYC)", cpu_isa="AVX2", onednn_isa="AVX2",
                                         threads="2", precision="bf16", strict="true", channels_last="true")
    clock = {**rec, "provenance": {**rec["provenance"], "device_model": "cpu (Intel(R) Xeon(R) Processor @ 2.50GHz)",
                                   "onednn_isa": "AVX512_CORE_BF16"}}
    assert (platform_columns(clock)["device"], platform_columns(clock)["onednn_isa"]) == (
        "cpu (Intel(R) Xeon(R) Processor)", "AVX512_CORE_BF16")
    del rec["provenance"]["device_model"]  # an older record: the model inside device, without its threads
    assert platform_columns(rec)["device"] == "cpu (AMD EPYC)"
    del rec["provenance"]["torch_threads"]
    rec["config"]["run"].update(threads=4.0, channels_last=False)  # the config's thread count when provenance lacks it
    rec["provenance"]["deterministic"] = False
    assert [platform_columns(rec)[k] for k in ("threads", "strict", "channels_last")] == ["4", "false", "false"]
    assert platform_columns({}) == dict(torch="unknown", device="unknown", cpu_isa="unknown", onednn_isa="unknown",
                                        threads="unknown", precision="fp32", strict="unknown",
                                        channels_last="unknown")
    gpu = make_record()
    gpu["provenance"].update(device="NVIDIA H100 80GB HBM3", torch_threads=2)
    assert platform_columns(gpu)["device"] == "NVIDIA H100 80GB HBM3"


def test_platform_table_and_note(clean):
    runs = load_records(clean, histories=False, layers=False).runs
    t = platform_table(runs)
    assert t.to_dict("records") == [
        dict(platform="P1", torch="2.4.0", device="cpu (Intel Xeon)", cpu_isa="AVX512", onednn_isa="unknown",
             threads="1", precision="fp32", strict="true", channels_last="unknown", runs=13, completed=13, diverged=0,
             settings=3),
        dict(platform="P2", torch="2.4.0", device="cpu (AMD EPYC)", cpu_isa="AVX2", onednn_isa="AVX2", threads="2",
             precision="fp32", strict="true", channels_last="true", runs=2, completed=2, diverged=0, settings=1),
    ]
    assert platform_note(runs) == TWO
    one = runs[runs["device"] == "cpu (Intel Xeon)"]
    assert platform_note(one) == ("platforms: 1 — torch 2.4.0, device cpu (Intel Xeon), CPU ISA AVX512, oneDNN ISA "
                                  "unknown, 1 thread, fp32, strict on, memory format unknown (13 runs)")
    contiguous = {**t.to_dict("records")[1], "channels_last": "false"}
    assert platform_label(contiguous) == ("torch 2.4.0, device cpu (AMD EPYC), CPU ISA AVX2, oneDNN ISA AVX2, "
                                          "2 threads, fp32, strict on, contiguous")


def test_figures_and_audit_report_platforms(clean, tmp_path, capsys):
    out = tmp_path / "o"
    assert figures_main(["--results", str(clean), "--out", str(out), "--only", "platforms"]) == 0
    log = capsys.readouterr().out
    assert log == (f"protocol paper: 15 runs (15 completed, 0 diverged) -> {out / 'paper'}\n  {TWO}\n"
                   f"  platforms: platforms.md, platforms.tex, platforms.csv\n")
    assert (out / "paper" / "platforms.csv").read_text() == (
        "protocol,platform,torch,device,cpu_isa,onednn_isa,threads,precision,strict,channels_last,runs,completed,"
        "diverged,settings\n"
        "paper,P1,2.4.0,cpu (Intel Xeon),AVX512,unknown,1,fp32,true,unknown,13,13,0,3\n"
        "paper,P2,2.4.0,cpu (AMD EPYC),AVX2,AVX2,2,fp32,true,true,2,2,0,1\n")
    md = (out / "paper" / "platforms.md").read_text().splitlines()
    assert md[:4] == [
        "| platform | torch | device | CPU ISA | oneDNN ISA | threads | precision | strict | memory format | runs "
        "| completed | diverged | settings |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        "| P1 | 2.4.0 | cpu (Intel Xeon) | AVX512 | unknown | 1 | fp32 | on | unknown | 13 | 13 | 0 | 3 |",
        "| P2 | 2.4.0 | cpu (AMD EPYC) | AVX2 | AVX2 | 2 | fp32 | on | channels_last | 2 | 2 | 0 | 1 |",
    ]
    assert "These runs span 2 platforms; within a setting they are analysed together" in md[5]
    assert md[-1] == ("Settings with runs from more than one platform: 1 of 3 — cifar10 vgg19 90% dense-start "
                      "(P1 4, P2 2).")
    assert audit_main(["--results", str(clean)]) == 0
    assert capsys.readouterr().out.splitlines()[1] == f"  {TWO}"
    assert audit_main(["--results", str(clean), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [d["platforms"] for d in data] == [platform_table(load_records(clean).runs).to_dict("records")] * 5
    assert data[0]["platforms"][1] == dict(platform="P2", torch="2.4.0", device="cpu (AMD EPYC)", cpu_isa="AVX2",
                                           onednn_isa="AVX2", threads="2", precision="fp32", strict="true",
                                           channels_last="true", runs=2, completed=2, diverged=0, settings=1)


def test_platforms_table_one_platform_and_dense_only(tmp_path, capsys):
    write_grid(tmp_path / "a", methods=("fggp",), archs=("vgg19",), targets=(0.9,), starts=(1.0,), seeds=(0, 1))
    assert figures_main(["--results", str(tmp_path / "a"), "--out", str(tmp_path / "o"), "--only", "platforms"]) == 0
    assert capsys.readouterr().out.splitlines()[1] == ("  platforms: 1 — torch 2.4.0, device cpu, CPU ISA AVX512, "
                                                       "oneDNN ISA unknown, 1 thread, fp32, strict on, memory format "
                                                       "unknown (4 runs)")
    md = (tmp_path / "o" / "paper" / "platforms.md").read_text()
    assert "Every run of this protocol was made on one platform." in md
    assert md.endswith("\nSettings with runs from more than one platform: none of 2.\n")
    for s in (0, 1):  # only dense runs: the table is skipped, like every other output
        write_record(tmp_path / "d", make_record(method="dense", seed=s))
    assert figures_main(["--results", str(tmp_path / "d"), "--out", str(tmp_path / "p"), "--only", "platforms"]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == [
        "  platforms: 1 — torch 2.4.0, device cpu, CPU ISA AVX512, oneDNN ISA unknown, 1 thread, fp32, strict on, "
        "memory format unknown (2 runs)",
        "  skip platforms: only dense runs, nothing to compare"]


# ---------------------------------------------------------------------------------------------------------
# file modes


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_outputs_are_written_with_the_umask(clean, tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        p = atomic_write_text(tmp_path / "t" / "x.md", "x\n")
        assert figures_main(["--results", str(clean), "--out", str(tmp_path / "o"), "--only", "platforms",
                             "--only", "cd_diagram"]) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(p.stat().st_mode) == mode
    files = sorted(f.name for f in (tmp_path / "o" / "paper").iterdir())
    assert files == ["cd_diagram.pdf", "cd_diagram.png", "platforms.csv", "platforms.md", "platforms.tex"]
    for f in (tmp_path / "o" / "paper").iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == mode, f


# ---------------------------------------------------------------------------------------------------------
# an output folder that cannot be written


def test_figures_refuses_an_unwritable_output_folder_before_reading(clean, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    for out, why in ((tmp_path / "afile", f"{tmp_path / 'afile'} is a file, not a folder"),
                     (tmp_path / "afile" / "sub", f"{tmp_path / 'afile'} is a file, not a folder")):
        assert figures_main(["--results", str(clean), "--out", str(out)]) == 2
        assert capsys.readouterr() == ("", f"error: cannot write the output folder {out} ({why}); "
                                           f"choose another --out\n")
    assert (tmp_path / "afile").read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]  # the probe left nothing


def test_figures_stops_in_one_line_when_a_write_fails(clean, tmp_path, capsys, monkeypatch):
    import errno

    from fggp_repro.spec import files

    real_replace = os.replace

    def replace(src, dst):  # the disk fills up when the diagnostics table is written (drawn after platforms)
        if Path(dst).name.startswith("diagnostics."):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_replace(src, dst)

    monkeypatch.setattr(files.os, "replace", replace)
    root, out = tmp_path / "r", tmp_path / "o"
    shutil.copytree(clean, root)
    rec = json.loads(next(root.rglob("*fggp*s0.json")).read_text())  # one record with diagnostics: a table to write
    rec["diagnostics"] = {"dead_units": {"total": 0, "per_layer": {}}, "bn_recalibrated_test_acc": None,
                          "bn_recalibration_batches": 0}
    write_record(root, rec)
    assert figures_main(["--results", str(root), "--out", str(out), "--only", "platforms", "--only",
                         "diagnostics"]) == 2
    got = capsys.readouterr()
    assert got.err == (f"error: diagnostics: cannot write {out / 'paper' / 'diagnostics.md'} (No space left on "
                       f"device); free space or choose another --out, and rerun; the files written before it are "
                       f"whole (each is replaced atomically)\n")
    assert "  platforms: platforms.md, platforms.tex, platforms.csv" in got.out.splitlines()
    # what was written before the failure is whole, and no temp file is left
    assert sorted(f.name for f in (out / "paper").iterdir()) == ["platforms.csv", "platforms.md", "platforms.tex"]

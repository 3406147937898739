"""The committed outputs are exactly what `fggp-repro figures` makes from the committed records: every table, every
protocol's report (REPORT.md), each crossed design's variance.md, the results-at-a-glance table
(paper_figures/README.md) and the README's block of it."""

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TABLE_SUFFIXES = (".md", ".csv", ".tex")


def _committed_protocols():
    base = REPO / "paper_figures"
    return sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """One run of the command on the committed records, as the repository runs it: into paper_figures/ beside a
    copy of README.md, whose results-at-a-glance block it rewrites."""
    from analysis.cli import figures_main

    root = tmp_path_factory.mktemp("fresh")
    shutil.copy(REPO / "README.md", root / "README.md")
    assert figures_main(["--results", str(REPO / "results"), "--out", str(root / "paper_figures"),
                         "--readme", str(root / "README.md")]) == 0
    return root


@pytest.mark.skipif(not _committed_protocols(), reason="no committed paper_figures/ yet")
def test_committed_tables_and_reports_regenerate_byte_for_byte(fresh):
    for protocol in _committed_protocols():
        committed = sorted(p for p in (REPO / "paper_figures" / protocol).iterdir() if p.suffix in TABLE_SUFFIXES)
        assert committed, f"no tables committed for {protocol}"
        # a protocol's folder has its REPORT.md; a crossed design of seeds (in no audit) has its variance.md only
        names = {p.name for p in committed}
        assert "REPORT.md" in names or names == {"variance.md"}, f"no REPORT.md for {protocol}"
        for table in committed:
            new = fresh / "paper_figures" / protocol / table.name
            assert new.is_file(), f"{protocol}/{table.name} is no longer produced"
            assert new.read_bytes() == table.read_bytes(), f"{protocol}/{table.name} differs from a fresh run"
    made = sorted(p.name for p in (fresh / "paper_figures").iterdir() if p.is_dir())
    assert made == _committed_protocols(), "the protocols drawn differ from the committed folders"


@pytest.mark.skipif(not _committed_protocols(), reason="no committed paper_figures/ yet")
def test_committed_glance_table_regenerates_byte_for_byte(fresh):
    committed = REPO / "paper_figures" / "README.md"
    assert committed.is_file(), "paper_figures/README.md is not committed"
    assert (fresh / "paper_figures" / "README.md").read_bytes() == committed.read_bytes(), \
        "paper_figures/README.md differs from a fresh run"


def test_readme_block_is_what_the_command_writes_now(fresh):
    """README.md's results-at-a-glance block is the one `fggp-repro figures --readme README.md` writes from the
    committed records (regenerate it with that command)."""
    assert (fresh / "README.md").read_text() == (REPO / "README.md").read_text(), \
        "README.md's results-at-a-glance block differs from what `fggp-repro figures --readme README.md` writes"

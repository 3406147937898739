"""The committed tables are exactly what `fggp-repro figures` makes from the committed records."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TABLE_SUFFIXES = (".md", ".csv", ".tex")


def _committed_protocols():
    base = REPO / "paper_figures"
    return sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []


@pytest.mark.skipif(not _committed_protocols(), reason="no committed paper_figures/ yet")
def test_committed_tables_regenerate_byte_for_byte(tmp_path):
    from analysis.cli import figures_main

    assert figures_main(["--results", str(REPO / "results"), "--out", str(tmp_path)]) == 0
    for protocol in _committed_protocols():
        committed = sorted(p for p in (REPO / "paper_figures" / protocol).iterdir() if p.suffix in TABLE_SUFFIXES)
        assert committed, f"no tables committed for {protocol}"
        for table in committed:
            fresh = tmp_path / protocol / table.name
            assert fresh.is_file(), f"{table.name} is no longer produced"
            assert fresh.read_bytes() == table.read_bytes(), f"{protocol}/{table.name} differs from a fresh run"

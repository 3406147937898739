"""The report of each protocol (REPORT.md), the results-at-a-glance table and the README block: every expected
number worked out by hand (or with scipy) from the records written here (fake_records.ACC and DENSE)."""

from __future__ import annotations

import math
import re

import pandas as pd
import pytest
from scipy import stats as st

from analysis.cli import figures_main
from fake_records import ACC, DENSE
from fake_records import write_small_grid as _write

START, END = "<!-- results-at-a-glance:start -->", "<!-- results-at-a-glance:end -->"


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    """The records of ACC and DENSE (protocol paper, with histories; protocol mini, the same numbers without),
    drawn into <root>/paper_figures with the README block of <root>/README.md."""
    root = tmp_path_factory.mktemp("report")
    _write(root / "results")
    _write(root / "results", "mini", history=False)
    (root / "README.md").write_text(f"# A project\n\nIntro.\n\n{START}\nold table\n{END}\n\n## Next\n")
    code = figures_main(["--results", str(root / "results"), "--out", str(root / "paper_figures"),
                         "--readme", str(root / "README.md")])
    assert code == 0
    return root


def _half_width(xs) -> float:
    """Half-width of the 95 % Student-t interval of the mean, with scipy."""
    n = len(xs)
    sd = pd.Series(xs).std(ddof=1)
    return st.t.ppf(0.975, n - 1) * sd / math.sqrt(n)


def test_report_holds_the_verdicts_the_main_table_the_collapses_and_the_figures(drawn):
    report = (drawn / "paper_figures" / "paper" / "REPORT.md").read_text()
    assert report.startswith("# Protocol `paper`: the paper's five claims on its runs\n")
    # the protocol: the preset and the option every command gave it, the scale, the runs
    assert "| preset | `paper` with `--precision fp32` in every run's command (30 runs) |" in report
    assert "| network and data | vgg19 full width, 3 epochs, all training images (cifar10) |" in report
    # dense 85.2 ± t(0.975, 2) * sd / sqrt(3), sd = sqrt((0.04 + 0.01 + 0.01) / 2)
    assert f"| dense reference | 85.20 ± {_half_width(DENSE):.2f} % (n = 3) |" in report
    assert "| settings | cifar10 vgg19 at 90/95/98% from dense-start (3 settings) |" in report
    assert "| runs | 30 records: 30 completed, 0 diverged; 1 of the completed at chance level" in report
    # the look: 3 complete seeds at the dense start of the 5 planned (analysis/claims.toml [plans.paper])
    assert "Look: interim. Complete seeds: dense-start 3 of 5 planned, 50%-sparse-start 0 of 5 planned" in report
    # the verdicts, by the rules of analysis/claims.toml: fggp leads gmp and random by 2 and 10 points at every
    # seed of every setting (the 98 % setting keeps 2 gmp pairs once the collapsed one is set aside: fewer than
    # min_seeds, so it counts neither way; 2 of 3 settings is a majority) -> claim 1 supported; fggp 5 to 8 points
    # below dense in all 3 settings -> claim 2 refuted; fggp first at every seed -> claim 3 supported; no ablation cells
    # -> claims 4 and 5 inconclusive
    verdicts = dict(re.findall(r"^\| \*\*([a-z-]+)\*\*: .*? \| \*\*([a-z ,0-9.]+)\*\* \|", report, re.M))
    assert verdicts == {"outperforms-alternatives": "supported", "surpasses-dense": "refuted",
                        "highest-ranking": "supported", "order-gradient-first": "inconclusive",
                        "rate-fixed-beats-annealed": "inconclusive"}
    # no ablation cells: the order and rate claims have no numbers, and their lines say so instead of ending blank
    numbers = dict(re.findall(r"^- \*\*([a-z-]+)\*\* \(.*?\): (.*)$", report, re.M))
    assert numbers["order-gradient-first"] == "no numbers: nothing to test yet (the verdict says why)"
    assert numbers["rate-fixed-beats-annealed"] == "no numbers: nothing to test yet (the verdict says why)"
    assert numbers["outperforms-alternatives"].startswith("fggp vs 2 methods over 3 settings")
    # the main table: fggp at 90 %: 80.2 ± t * 0.2 / sqrt(3); gmp at 98 % with its collapsed run in the mean:
    # (75 + 75.05 + 10) / 3 = 53.35
    assert f"**80.20 ± {_half_width(ACC[('fggp', 0.9)]):.2f} (n=3)**" in report
    assert f"53.35 ± {_half_width(ACC[('gmp', 0.98)]):.2f} (n=3, 1 collapsed†)" in report
    # the collapses: gmp 1 of 9 runs, exact 95 % interval [beta(0.025; 1, 9), beta(0.975; 2, 8)]
    lo, hi = st.beta.ppf(0.025, 1, 9), st.beta.ppf(0.975, 2, 8)
    assert f"| gmp | 9 | 1 | 11.1 % [{100 * lo:.1f}, {100 * hi:.1f}] | 9 | 0 : 1 |" in report
    assert report.count("Collapsed runs (final accuracy ≤ 11 %") == 1  # once, in its own section
    # the platform the records name (none names its oneDNN level or memory format: they predate both)
    assert "| P1 | 2.4.0 | cpu | AVX512 | unknown | 1 | fp32 | on | unknown | 30 | 30 | 0 | 4 |" in report
    # every figure embedded by a relative link to a file beside the report; every table linked
    figs = re.findall(r"!\[[^]]*\]\(([^)]+)\)", report)
    assert figs == ["accuracy_vs_sparsity.png", "cd_diagram.png", "rank_chart.png", "forest_fggp.png",
                    "training_curves.png", "layer_sparsity.png"]
    for link in figs + re.findall(r"\]\(([a-z_]+\.md)\)", report):
        assert (drawn / "paper_figures" / "paper" / link).is_file(), link
    # no absolute path, no time of day: the same records give the same bytes wherever they are
    assert str(drawn) not in report and "/somewhere" not in report
    assert not re.search(r"\d\d:\d\d|20\d\d-\d\d-\d\d", report)


def test_a_figure_that_is_not_drawn_says_why(drawn):
    report = (drawn / "paper_figures" / "mini" / "REPORT.md").read_text()
    assert "### Training curves\n\nNot drawn: no training histories in these records.\n" in report
    assert "training_curves.png" not in report


def test_glance_table_and_readme_block(drawn, capsys):
    glance = (drawn / "paper_figures" / "README.md").read_text()
    readme = (drawn / "README.md").read_text()
    assert readme.startswith(f"# A project\n\nIntro.\n\n{START}\n") and readme.endswith(f"\n{END}\n\n## Next\n")
    block = readme[readme.index(START) + len(START) + 1:readme.index(END)]
    rows = [ln for ln in block.splitlines() if ln.startswith("| `")]
    assert [r.split(" | ")[0] for r in rows] == ["| `mini`", "| `paper`"]
    paper = rows[1].strip("| ").split(" | ")
    assert paper == ["`paper`", "vgg19 full width, 3 epochs, all training images (cifar10); preset `paper` with "
                     "`--precision fp32`", "30 (1 at chance level)",
                     "interim (seeds: dense-start 3 of 5, 50%-sparse-start 0 of 5)",
                     "supported", "refuted", "supported", "inconclusive", "inconclusive",
                     "[REPORT.md](paper_figures/paper/REPORT.md)"]
    # the same table in paper_figures/README.md, its links relative to that folder
    assert block.replace("](paper_figures/", "](") in glance
    # the block covers every protocol: --readme refuses a partial run
    assert figures_main(["--results", str(drawn / "results"), "--out", str(drawn / "paper_figures"),
                         "--readme", str(drawn / "README.md"), "--only", "main_results"]) == 2
    assert capsys.readouterr().err == ("error: --readme writes the results-at-a-glance table of every protocol and "
                                       "study: drop --only and --protocol\n")


@pytest.mark.parametrize("text, why", [
    ("# no markers\n", f"it has no '{START}' line; it needs one of each"),
    (f"{END}\n{START}\n", f"its '{END}' comes before '{START}'"),
    (f"{START}\n{START}\n{END}\n", f"it has 2 '{START}' lines; it needs one of each"),
])
def test_readme_without_its_markers_is_one_line_and_exit_2(tmp_path, capsys, text, why):
    _write(tmp_path / "results", history=False)
    readme = tmp_path / "README.md"
    readme.write_text(text)
    assert figures_main(["--results", str(tmp_path / "results"), "--out", str(tmp_path / "o"),
                         "--readme", str(readme)]) == 2
    assert capsys.readouterr().err == f"error: --readme {readme}: {why} (the table goes between them)\n"
    assert readme.read_text() == text and not (tmp_path / "o").exists()
    assert figures_main(["--results", str(tmp_path / "results"), "--out", str(tmp_path / "o"),
                         "--readme", str(tmp_path / "nope.md")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot read --readme {tmp_path / 'nope.md'} (") and err.count("\n") == 1

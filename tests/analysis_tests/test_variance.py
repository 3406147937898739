"""Seeds by source: the two-way random-effects decomposition, its intervals, and what it says about pairing."""

import json

import numpy as np
import pytest
from scipy import stats

from analysis.variance import decompose, mls_interval, pairing
from fake_records import make_record, write_record


def test_decomposition_of_a_2x2_design_by_hand():
    # y[i, o]: grand mean 2.75; init means 1.5, 4 -> MS_init = 2 * (1.5625 + 1.5625) = 6.25; order means 2, 3.5 ->
    # MS_order = 2 * (0.5625 + 0.5625) = 2.25; residuals +-0.25 -> SS = 0.25 on 1 df
    d = decompose([[1.0, 2.0], [3.0, 5.0]])
    assert (d.mean, d.ms_init, d.ms_order, d.ms_resid) == (2.75, 6.25, 2.25, 0.25)
    assert (d.init.estimate, d.order.estimate, d.resid.estimate) == (3.0, 1.0, 0.25)
    assert d.total == 4.25 and d.share("init") == pytest.approx(3.0 / 4.25)
    # the residual's interval is exact: SS / chi2 quantiles on 1 df (scipy, not the code under test)
    assert d.resid.low == pytest.approx(0.25 / stats.chi2.ppf(0.975, 1))
    assert d.resid.high == pytest.approx(0.25 / stats.chi2.ppf(0.025, 1))


def test_a_component_below_the_noise_is_reported_as_zero_and_flagged():
    d = decompose([[1.0, 2.0], [2.0, 1.0]])  # init and order means all equal: MS_init = MS_order = 0 < MS_resid
    assert d.init.estimate == 0.0 and d.init.raw == -0.5 and d.init.truncated
    # the modified large-sample upper end: -1 + (1 - 1 / chi2(0.975, 1)) = -1 + 0.801 < 0, clipped at 0
    assert (d.init.low, d.init.high) == (0.0, 0.0)


def test_bad_designs_are_refused():
    with pytest.raises(ValueError, match="at least 2 init seeds x 2 order seeds"):
        decompose([[1.0, 2.0, 3.0]])
    with pytest.raises(ValueError, match="finite result for every"):
        decompose([[1.0, np.nan], [2.0, 3.0]])


def _simulate(rng, n_i, n_o, s_init, s_order, s_resid):
    return (rng.normal(0, s_init, (n_i, 1)) + rng.normal(0, s_order, (1, n_o))
            + rng.normal(0, s_resid, (n_i, n_o)) + 77.0)


def test_planted_components_are_recovered_on_a_large_design():
    rng = np.random.default_rng(1)
    est = np.array([[c.estimate for c in (d.init, d.order, d.resid)]
                    for d in (decompose(_simulate(rng, 30, 30, 0.4, 0.2, 0.3)) for _ in range(200))])
    # planted variances 0.16, 0.04, 0.09: the mean of the unbiased (before truncation) estimates lands on them
    assert est.mean(axis=0) == pytest.approx([0.16, 0.04, 0.09], abs=0.01)


@pytest.mark.parametrize("n_i, n_o, s_init, s_order", [(6, 6, 0.4, 0.2), (3, 3, 0.3, 0.3), (4, 8, 0.0, 0.3)])
def test_interval_coverage_by_simulation(n_i, n_o, s_init, s_order):
    rng = np.random.default_rng(7)
    reps, s_resid = 2000, 0.3
    hit = np.zeros(3)
    for _ in range(reps):
        d = decompose(_simulate(rng, n_i, n_o, s_init, s_order, s_resid))
        for k, (c, true) in enumerate(((d.init, s_init ** 2), (d.order, s_order ** 2), (d.resid, s_resid ** 2))):
            hit[k] += c.low <= true <= c.high
    cover = hit / reps
    # 95 % intervals: the residual's is exact (0.95 +- 3 se = 0.015), the modified large-sample ones are close to
    # their level and never far below it; a zero component is covered whenever the interval reaches 0
    assert abs(cover[2] - 0.95) < 0.015
    assert (cover[:2] >= 0.93).all() and (cover[:2] <= 0.995).all(), cover


def test_mls_interval_matches_the_exact_interval_when_the_second_mean_square_is_known():
    # with df2 -> infinity, ms2 is known and theta = c (ms1 - ms2) has the exact chi-square interval of ms1 shifted
    lo, hi = mls_interval(4.0, 5, 1.0, 10 ** 7, 1.0)
    assert lo == pytest.approx(4.0 * 5 / stats.chi2.ppf(0.975, 5) - 1.0, abs=1e-3)
    assert hi == pytest.approx(4.0 * 5 / stats.chi2.ppf(0.025, 5) - 1.0, abs=1e-3)


def test_pairing_of_two_methods_sharing_the_seeds():
    rng = np.random.default_rng(3)
    shared = _simulate(rng, 10, 10, 0.4, 0.3, 0.0)  # what both methods take from the seed
    a = shared + rng.normal(0, 0.1, shared.shape)
    b = shared + 0.5 + rng.normal(0, 0.1, shared.shape)
    p = pairing(a, b)
    # var(a - b) = 2 * 0.01 against var(a) + var(b) ~ 2 * (0.25 + 0.01): pairing needs a few per cent of the seeds
    assert p.n == 100 and p.correlation > 0.9 and p.corr_low < p.correlation < p.corr_high
    assert p.var_ratio == pytest.approx(np.var(a - b, ddof=1) / (np.var(a, ddof=1) + np.var(b, ddof=1)))
    assert p.var_ratio < 0.1
    independent = pairing(rng.normal(size=200), rng.normal(size=200))
    assert abs(independent.correlation) < 0.2 and independent.var_ratio == pytest.approx(1.0, abs=0.2)
    with pytest.raises(ValueError, match="same 4 or more"):
        pairing([1.0, 2.0], [1.0, 2.0])


def _write(folder, protocol, method, sparsity, init, order, acc, seed=0):
    rec = make_record(dataset="cifar10-jpeg", method=method, target_sparsity=sparsity, seed=seed, protocol=protocol,
                      test_acc=acc, run_id=f"vgg19-{method}-{protocol}-{sparsity}-{init}-{order}")
    rec["setting"].update(init_seed=init, order_seed=order)
    return write_record(folder, rec)


def test_the_variance_command_on_planted_records(tmp_path, capsys):
    from analysis.variance import main

    rng = np.random.default_rng(11)
    n = 8
    init_fx, order_fx = rng.normal(0, 0.5, n), rng.normal(0, 0.1, n)  # init matters, order little
    for i in range(n):
        for o in range(n):
            base = 75.0 + init_fx[i] + order_fx[o]
            _write(tmp_path, "cpu-crossed", "dense", 0.9, i, o, base + 3 + rng.normal(0, 0.05))
            _write(tmp_path, "cpu-crossed", "fggp", 0.9, i, o, base + rng.normal(0, 0.05))
            _write(tmp_path, "cpu-crossed", "annealed", 0.9, i, o, 74.0 + rng.normal(0, 0.5))  # seeds do not matter
    _write(tmp_path, "cpu", "fggp", 0.9, 0, 0, 10.0)  # another protocol: never part of the design
    out = tmp_path / "variance.md"
    assert main(["--results", str(tmp_path), "--protocol", "cpu-crossed", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert out.read_text() == text
    rows = {ln.split(" | ")[0].lstrip("| "): ln for ln in text.splitlines() if ln.startswith("| vgg19")}
    fggp = rows["vgg19 90%, dense start: fggp"].split(" | ")
    assert fggp[1] == "8 x 8"
    init_var = float(fggp[4].split(" [")[0])
    share_init = float(fggp[7].split(" / ")[0])
    # planted: the init effects' sample variance (about 0.25), order about 0.01, residual 0.0025
    assert init_var == pytest.approx(float(np.var(init_fx, ddof=1)), rel=0.1) and share_init > 0.8
    pairs = [ln for ln in text.splitlines() if "fggp vs" in ln or "vs fggp" in ln]
    dense_fggp = next(ln for ln in pairs if "dense vs fggp" in ln).split(" | ")
    assert float(dense_fggp[3].split(" [")[0]) > 0.9  # dense and fggp take the same init and order effects
    assert float(dense_fggp[4]) < 0.05  # pairing removes nearly all of the seed variance
    annealed_fggp = next(ln for ln in pairs if "annealed vs fggp" in ln).split(" | ")
    assert abs(float(annealed_fggp[3].split(" [")[0])) < 0.4 and float(annealed_fggp[4]) > 0.6


def test_the_variance_command_refuses_in_one_line(tmp_path, capsys):
    from analysis.variance import main

    assert main(["--results", str(tmp_path), "--protocol", "none"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fggp-repro variance: error: no completed record of protocol 'none'")
    assert main(["--results", str(tmp_path), "--protocol", "x", "--level", "1.5"]) == 2
    assert "--level must be in (0, 1)" in capsys.readouterr().err
    _write(tmp_path, "p", "fggp", 0.9, 0, 0, 70.0)
    assert main(["--results", str(tmp_path), "--protocol", "p"]) == 0
    assert capsys.readouterr().out.startswith("no cell has a complete crossed design")


def test_the_variance_command_reads_records_as_the_analysis_does(tmp_path, capsys):
    from analysis.variance import main

    for i in range(2):
        for o in range(2):
            _write(tmp_path, "p", "fggp", 0.9, i, o, 70.0 + i + 0.5 * o)
    (tmp_path / "raw" / "notes.json").write_text('{"note": "crossed design started"}')  # not a record: no part
    assert main(["--results", str(tmp_path), "--protocol", "p"]) == 0
    assert "| vgg19 90%, dense start: fggp | 2 x 2 | 70.75 |" in capsys.readouterr().out
    bad = _write(tmp_path, "p", "fggp", 0.9, 2, 2, 70.0)
    rec = json.loads(bad.read_text())
    del rec["weight_counts"]
    bad.write_text(json.dumps(rec))
    assert main(["--results", str(tmp_path), "--protocol", "p"]) == 2
    assert capsys.readouterr().err == (f"fggp-repro variance: error: {bad}: field 'weight_counts': missing "
                                       f"(docs/RECORD_SCHEMA.md): remake the run, or move the file out of the "
                                       f"results folder\n")
    bad.unlink()
    (tmp_path / "afile").write_text("x")
    assert main(["--results", str(tmp_path), "--protocol", "p", "--out", str(tmp_path / "afile" / "v.md")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"fggp-repro variance: error: --out: cannot write {tmp_path / 'afile' / 'v.md'} (")
    assert err.count("\n") == 1


def test_figures_and_audit_keep_a_crossed_design_apart(tmp_path, capsys):
    from analysis.cli import audit_main, figures_main
    from fake_records import write_small_grid

    write_small_grid(tmp_path, "paper", history=False)
    for i in range(2):
        for o in range(2):
            _write(tmp_path, "paper-crossed", "fggp", 0.9, i, o, 90.0 + i + 0.1 * o)
    out = tmp_path / "figs"
    assert figures_main(["--results", str(tmp_path), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "protocol paper-crossed: a crossed design of init and order seeds, not pooled or audited" in printed
    assert sorted(p.name for p in (out / "paper-crossed").iterdir()) == ["variance.md"]
    table = (out / "paper-crossed" / "variance.md").read_text()
    assert "| vgg19 90%, dense start: fggp | 2 x 2 | 90.55 |" in table  # mean of 90, 90.1, 91, 91.1
    assert (out / "paper" / "REPORT.md").is_file()
    assert not any(p.name.startswith("paper-crossed[") for p in out.iterdir())
    assert audit_main(["--results", str(tmp_path)]) == 0
    assert "paper-crossed" not in capsys.readouterr().out.split("\n", 1)[1]  # only the note line names it


def test_the_variance_command_refuses_a_protocol_that_is_not_a_crossed_design(tmp_path, capsys):
    from analysis.variance import main

    for s in range(3):  # a preset's grid: seeds 0-2, each its own init and order seed
        _write(tmp_path, "cpu", "fggp", 0.9, s, s, 70.0 + s, seed=s)
    assert main(["--results", str(tmp_path), "--protocol", "cpu"]) == 2
    assert capsys.readouterr().err == (
        "fggp-repro variance: error: protocol 'cpu' is not a crossed design: none of its 3 records has an init or "
        "order seed of its own; give the label of a crossed design (fggp-repro grid ... --init-seeds 0-2 "
        "--order-seeds 0-2 --protocol LABEL)\n")


def test_a_usage_error_of_the_variance_command_is_one_line(tmp_path, capsys):
    from fggp_repro.cli import main

    assert main(["variance", "--results", str(tmp_path)]) == 2
    assert capsys.readouterr().err == ("fggp-repro variance: error: the following arguments are required: --protocol "
                                       "(see --help)\n")
    assert main(["variance", "--protocol", "p", "--level", "x"]) == 2
    assert capsys.readouterr().err == ("fggp-repro variance: error: argument --level: invalid float value: 'x' "
                                       "(see --help)\n")


def test_figures_describes_a_crossed_design_and_reads_it(tmp_path, capsys):
    """variance.md of a hand-worked design. dense y[i][o] = [[70, 71], [72, 73]]: init means 70.5, 72.5, order
    means 71, 72, no residual; MS_init = 2 * (1 + 1) = 4, MS_order = 2 * (0.25 + 0.25) = 1, so s2_init = 4 / 2 = 2,
    s2_order = 0.5, shares 0.8 / 0.2 / 0. fggp at 90 % = [[60, 62], [61, 63]]: the mirror image, shares 0.2 / 0.8 / 0.
    Paired over the four seed pairs: deviations (-1.5, -0.5, 0.5, 1.5) and (-1.5, 0.5, -0.5, 1.5) give r = 4 / 5 = 0.8
    (Fisher interval over n - 3 = 1 includes 0); dense - fggp = (10, 9, 11, 10) has variance 2/3 against 5/3 + 5/3,
    a ratio of 0.2. annealed has one pair of four: incomplete, in no table."""
    from analysis.cli import figures_main
    from fake_records import write_small_grid

    write_small_grid(tmp_path, "paper", history=False)
    for (i, o), (y_dense, y_fggp) in {(0, 0): (70, 60), (0, 1): (71, 62), (1, 0): (72, 61), (1, 1): (73, 63)}.items():
        _write(tmp_path, "p-crossed", "dense", 0.0, i, o, float(y_dense))
        _write(tmp_path, "p-crossed", "fggp", 0.9, i, o, float(y_fggp))
    _write(tmp_path, "p-crossed", "annealed", 0.9, 0, 0, 55.0)
    out = tmp_path / "figs"
    assert figures_main(["--results", str(tmp_path), "--out", str(out)]) == 0
    text = (out / "p-crossed" / "variance.md").read_text()
    assert text.startswith("# Crossed design `p-crossed`: seeds by source\n")
    assert "| seeds | init seeds 0, 1 x order seeds 0, 1, run seed 0 |" in text
    assert ("| cells | 3: 2 with every init seed crossed with every order seed; incomplete: vgg19 90%, dense start: "
            "annealed (1 of the design's 4 pairs so far; in no table: no complete 2 x 2 yet) |") in text
    assert "| runs | 9 records: 9 completed, 0 diverged;" in text
    assert "| vgg19 dense: dense | 2 x 2 | 71.50 | 1.58 | 2.000 [" in text  # sd sqrt(2 + 0.5)
    assert "| vgg19 90%, dense start: fggp | 2 x 2 | 61.50 | 1.58 | 0.500 [" in text
    assert "| vgg19 90%, dense start | dense vs fggp | 4 | +0.80 [-0.70, +1.00] | 0.20 |" in text
    assert "- Share of one run's variance from the init seed: 0.20 to 0.80 over 2 cell(s)." in text
    assert "- Share of one run's variance from the residual: 0.00 over 2 cell(s)." in text
    assert ("- Method pairs run on the same seeds: 1. Correlation of their results across the seed pairs, 95 % "
            "interval above 0 in 0, below 0 in 0, including 0 in 1. var(a - b) / (var a + var b): 0.20;") in text
    glance = (out / "README.md").read_text()
    assert ("Crossed designs of init and order seeds (seeds by source; in no audit): `p-crossed` (9 completed runs, "
            "2 of 3 cells complete: [variance.md](p-crossed/variance.md)).") in glance
    # figures for the crossed design alone: its file, no error for a protocol that is in no audit
    capsys.readouterr()
    assert figures_main(["--results", str(tmp_path), "--out", str(tmp_path / "only"), "--protocol", "p-crossed"]) == 0
    assert (tmp_path / "only" / "p-crossed" / "variance.md").read_text() == text
    assert not (tmp_path / "only" / "paper").exists()


def test_the_largest_complete_sub_design_of_a_design_in_progress():
    from analysis.variance import largest_grid

    full = {(i, o) for i in range(3) for o in range(3)}
    assert largest_grid(full) == ([0, 1, 2], [0, 1, 2])
    # 3 x 3 without (2, 2): init 0-2 x order 0-1 and init 0-1 x order 0-2 both have 6 pairs; more init seeds wins
    assert largest_grid(full - {(2, 2)}) == ([0, 1, 2], [0, 1])
    # without (1, 1): order 0 and 2 on every init (6 pairs) beats init 0, 2 on every order (6 pairs, 2 inits)
    assert largest_grid(full - {(1, 1)}) == ([0, 1, 2], [0, 2])
    # 2 x 3 and one more pair: the 2 x 3 (6 pairs) beats the 3 x 2 with a hole
    assert largest_grid({(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (2, 0)}) == ([0, 1], [0, 1, 2])
    assert largest_grid({(0, 0), (0, 1), (1, 1), (2, 2)}) is None  # no 2 x 2 anywhere
    assert largest_grid({(5, 7), (5, 9), (8, 7), (8, 9), (8, 3)}) == ([5, 8], [7, 9])
    # more init seeds than order seeds: the search runs over the order seeds, same answer as the other way round
    wide = {(i, o) for i in range(5) for o in range(2)} | {(0, 2), (1, 2)}
    assert largest_grid(wide) == ([0, 1, 2, 3, 4], [0, 1])
    assert largest_grid({(o, i) for i, o in wide}) == ([0, 1], [0, 1, 2, 3, 4])
    # beyond 12 seeds of each kind: greedy. 14 x 14 without (0, 0), (0, 1), (0, 2): init 0 misses the most, goes
    assert largest_grid({(i, o) for i in range(14) for o in range(14)} - {(0, 0), (0, 1), (0, 2)}) == (
        list(range(1, 14)), list(range(14)))


def test_a_design_in_progress_is_decomposed_on_what_is_complete(tmp_path):
    """dense has run init 0-2 x order 0-1 and (0, 2), (1, 2): its largest complete part is init 0-2 x order 0-1
    (6 pairs; init 0-1 x order 0-2 also has 6, fewer init seeds). y = 70 + i + 0.5 o there: grand mean 71.25; init
    means 70.25, 71.25, 72.25 (MS_init = 2 * 2 / 2 = 2), order means 71, 71.5 (MS_order = 3 * 0.125 / 1 = 0.375), no
    residual, so s2_init = 1, s2_order = 0.125 and the sd of one run sqrt(1.125) = 1.06. fggp has init 0-1 x order
    0-1 and shares those 4 pairs with dense: y = 60 + i, whose correlation with dense's 70 + i + 0.5 o over them is
    1 / sqrt(1.25) = 0.894 (deviations (-0.5, -0.5, 0.5, 0.5) and (-0.75, -0.25, 0.25, 0.75))."""
    from analysis.cli import figures_main
    from analysis.variance import crossed_runs, crossed_summary

    for i, o in [(i, o) for i in range(3) for o in range(2)] + [(0, 2), (1, 2)]:
        _write(tmp_path, "p-crossed", "dense", 0.0, i, o, 70.0 + i + 0.5 * o)
    for i in range(2):
        for o in range(2):
            _write(tmp_path, "p-crossed", "fggp", 0.9, i, o, 60.0 + i)
    out = tmp_path / "figs"
    assert figures_main(["--results", str(tmp_path), "--out", str(out), "--protocol", "p-crossed"]) == 0
    text = (out / "p-crossed" / "variance.md").read_text()
    assert "| vgg19 dense: dense | 3 x 2 | 71.25 | 1.06 | 1.000 [" in text
    assert "| 0.125 [" in text
    assert "| vgg19 90%, dense start: fggp | 2 x 2 | 60.50 | 0.71 | 0.500 [" in text
    assert "| vgg19 90%, dense start | dense vs fggp | 4 | +0.89 [" in text
    assert ("| cells | 2: 0 with every init seed crossed with every order seed; incomplete: vgg19 90%, dense start: "
            "fggp (4 of the design's 9 pairs so far; in the tables on init seeds 0, 1 x order seeds 0, 1); vgg19 "
            "dense: dense (8 of the design's 9 pairs so far; in the tables on init seeds 0-2 x order seeds 0, 1) |"
            ) in text
    # the glance counts cells that ran every pair of the design's seeds so far (init 0-2 x order 0-2): none yet
    assert crossed_summary("p-crossed", crossed_runs(str(tmp_path), "p-crossed")) == ("p-crossed", 12, 0, 2)


def test_platform_switch_by_hand():
    """d = (0.3, -0.1, 0.2): sum(d^2) / 2 = 0.07 over n = 3, so 0.0233; interval 0.07 / chi2(0.975; 3) = 0.07 /
    9.348404 and 0.07 / chi2(0.025; 3) = 0.07 / 0.2157953 (scipy.stats.chi2.ppf)."""
    from analysis.variance import platform_switch

    s = platform_switch([0.3, -0.1, 0.2])
    assert s.n == 3 and s.mean_difference == pytest.approx(0.4 / 3)
    assert s.variance == pytest.approx(0.07 / 3)
    assert (s.low, s.high) == (pytest.approx(0.0074879095), pytest.approx(0.3243815117))
    with pytest.raises(ValueError, match="one or more finite"):
        platform_switch([])


def test_platform_switch_coverage_and_a_shift_by_simulation():
    """d ~ N(m, 2 s2) with s2 = 0.1 and n = 3: with no shift the interval covers s2 95 % of the time and the
    estimate is unbiased; a shift m = 0.5 adds m^2 / 2 = 0.125 to it (and the interval then covers s2 less often)."""
    from analysis.variance import platform_switch

    rng = np.random.default_rng(5)
    for m, mean, coverage in ((0.0, 0.1, (0.935, 0.965)), (0.5, 0.225, (0.0, 0.85))):
        hits, est = 0, []
        for _ in range(4000):
            s = platform_switch(rng.normal(m, np.sqrt(0.2), 3))
            hits += s.low <= 0.1 <= s.high
            est.append(s.variance)
        assert coverage[0] <= hits / 4000 <= coverage[1]
        assert np.mean(est) == pytest.approx(mean, rel=0.05)


def test_runs_recorded_again_on_another_platform(tmp_path, capsys):
    """fggp 98 % on init 0-1 x order 0-1: y = 60.0, 60.4 / 61.0, 61.0; grand 60.6, init means 60.2, 61.0, order
    means 60.5, 60.7, residuals -0.1, 0.1, 0.1, -0.1: residual variance 0.04 on 1 df, interval 0.04 / 5.0239 =
    0.008 and 0.04 / 0.000982 = 40.730. The diagonal runs (0, 0) and (1, 1) were recorded again by protocol
    p-check on an AVX2 machine at 60.3 and 60.8: d = -0.3 and +0.2, sum(d^2) / 2 = 0.065, variance 0.0325 (printed
    0.032: the differences of the stored accuracies fall just short of 0.3),
    interval 0.065 / 7.3778 = 0.009 and 0.065 / 0.050636 = 1.284, mean difference -0.05. A rerun of (0, 0) on the
    same platform, and one whose platform differs only in a field the design's records do not state, are no twins."""
    from analysis.cli import figures_main
    from analysis.variance import main, read_design

    for (i, o), acc in {(0, 0): 60.0, (0, 1): 60.4, (1, 0): 61.0, (1, 1): 61.0}.items():
        _write(tmp_path, "p-crossed", "fggp", 0.98, i, o, acc)

    def other(protocol, k, acc, **provenance):
        rec = make_record(dataset="cifar10-jpeg", method="fggp", target_sparsity=0.98, seed=k, protocol=protocol,
                          test_acc=acc, run_id=f"vgg19-fggp-p-crossed-0.98-{k}-{k}")
        rec["provenance"].update(provenance)
        write_record(tmp_path / protocol, rec)

    other("p-check", 0, 60.3, cpu_capability="AVX2")
    other("p-check", 1, 60.8, cpu_capability="AVX2", torch="2.5.0")
    other("p-rerun", 0, 60.0)  # the same platform: a rerun, not a twin
    other("p-onednn", 0, 59.0, onednn_isa="AVX512_CORE_BF16")  # the design's records do not state theirs
    rows, twins = read_design(str(tmp_path), "p-crossed")
    assert len(rows) == 4
    assert [(t.init_seed, t.order_seed, t.other_protocol) for t in twins] == [(0, 0, "p-check"), (1, 1, "p-check")]
    assert twins[0].differs == (("cpu_isa", "AVX512", "AVX2"),) and twins[0].same_weights
    assert twins[1].differs == (("torch", "2.4.0", "2.5.0"), ("cpu_isa", "AVX512", "AVX2"))

    assert main(["--results", str(tmp_path), "--protocol", "p-crossed"]) == 0
    text = capsys.readouterr().out
    assert "| vgg19 98%, dense start: fggp | 2 x 2 | 60.60 |" in text and "| 0.040 [0.008, 40.730] |" in text
    assert ("| vgg19 98%, dense start: fggp | 0, 0 | `vgg19-fggp-p-crossed-0.98-0-0` | 60.00 | 60.30 (`p-check`) | "
            "-0.30 | CPU ISA AVX512 / AVX2 | identical |") in text
    assert ("| 1, 1 | `vgg19-fggp-p-crossed-0.98-1-1` | 61.00 | 60.80 (`p-check`) | +0.20 | torch 2.4.0 / 2.5.0; "
            in text)
    assert ("over 2 run(s) of the design recorded again on another platform with the same run id: mean difference "
            "-0.05 pp; variance added to one run, sum(d^2) / (2 n), 0.032 [0.009, 1.284] (95%, chi-square on 2 df)"
            ) in text
    assert text.rstrip().endswith(
        "The residual variance of the twins' cells: vgg19 98%, dense start: fggp 0.040 [0.008, 40.730].")
    out = tmp_path / "figs"
    assert figures_main(["--results", str(tmp_path), "--out", str(out), "--protocol", "p-crossed"]) == 0
    md = (out / "p-crossed" / "variance.md").read_text()
    assert "0.032 [0.009, 1.284]" in md
    # the reading: the residual 0.040 lies inside the switch's interval
    assert ("- The same run on another platform: 2 run(s). The variance a platform switch adds to one run, 0.032 "
            "[0.009, 1.284] (95 %), set beside the residual variance of their cells (0.040): its interval includes "
            "all of them") in md


@pytest.mark.parametrize("diffs, says", [
    # sum(d^2) / 2 = 1e-6, interval [1e-6 / 7.3778, 1e-6 / 0.050636] = [1.4e-7, 2.0e-5]: below the residual 0.04
    ((0.001, -0.001), "lies below all of them: a switch moved these runs less than a new draw of the residual would"),
    # sum(d^2) / 2 = 9, interval [9 / 7.3778, 9 / 0.050636] = [1.22, 177.7]: above it
    ((3.0, -3.0), "lies above all of them: a switch moved these runs more than a new draw of the residual would"),
])
def test_the_reading_places_a_platform_switch_beside_the_residual(diffs, says):
    from analysis.variance import Twin, _reading, cell_grids

    cell = ("cifar10-jpeg", "vgg19", 0.98, 1.0, "fggp")
    ys = {(0, 0): 60.0, (0, 1): 60.4, (1, 0): 61.0, (1, 1): 61.0}  # residual variance 0.04 (worked out above)
    rows = [dict(zip(("dataset", "arch", "target_sparsity", "initial_density", "method"), cell), seed=0,
                 init_seed=i, order_seed=o, test_acc=y) for (i, o), y in ys.items()]
    twins = [Twin(cell, k, k, f"vgg19-fggp-{k}", ys[(k, k)], ys[(k, k)] - d, "p-check", (("cpu_isa", "A", "B"),),
                  False) for k, d in zip((0, 1), diffs)]
    text = "\n".join(_reading(rows, cell_grids(rows), 0.95, 0.5, twins))
    assert "set beside the residual variance of their cells (0.040): its interval " + says in text

"""What the figures show: the y-range of the accuracy figure, its off-scale runs and legend, the forest plot's
scales, the off-scale labels' layout; expected values worked out by hand from the records written here."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from fake_records import write_small_grid as _write


def _drawn_figure(monkeypatch, func, ctx):
    """Run a figure function and hand back its matplotlib figure (drawn, not saved)."""
    import analysis.figures as F

    got = {}

    def keep(fig, out_dir, name):
        fig.canvas.draw()
        got["fig"] = fig
        return []

    monkeypatch.setattr(F, "_save", keep)
    func(ctx, Path("unused"))
    return got["fig"]


def _context(root: Path, protocol: str = "paper"):
    from analysis.records import load_records
    from analysis.registry import Context

    r = load_records(root)
    sel = r.runs["protocol"] == protocol
    return Context(protocol=protocol, runs=r.runs[sel].reset_index(drop=True),
                   histories=r.histories[r.histories["protocol"] == protocol].reset_index(drop=True),
                   layer_sparsity=r.layer_sparsity[r.layer_sparsity["protocol"] == protocol].reset_index(drop=True),
                   n_resamples=200)


def test_accuracy_figure_scales_to_the_methods_and_marks_the_collapsed_run(tmp_path, monkeypatch):
    """The gmp run at 10 % neither stretches the axis nor disappears: the upper panel spans the sparse methods'
    77-80 % band (and dense at 85), random (67-70 %) has a panel of its own, and the collapsed run is a ▼ with
    '10.0 %' written above it. The legend lies inside the canvas."""
    import analysis.figures as F

    _write(tmp_path)
    fig = _drawn_figure(monkeypatch, F.accuracy_vs_sparsity, _context(tmp_path))
    top, floor = [ax for ax in fig.axes]
    assert top.get_ylim()[0] > 60 and top.get_ylim()[1] < 90  # not down to 10 %
    assert 60 < floor.get_ylim()[0] < 67 and 70.5 < floor.get_ylim()[1] < 75
    assert floor.get_ylabel() == "random:\nits own scale (%)"
    labels = [t.get_text() for t in top.texts]
    assert "10.0 %" in labels and "off scale" in labels
    renderer = fig.canvas.get_renderer()
    box = fig.legends[0].get_window_extent(renderer)
    assert box.x0 >= 0 and box.x1 <= fig.bbox.width and box.y1 <= fig.bbox.height
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["dense", "fggp", "gmp", "random", "run at chance level (off scale)"]


def test_forest_panels_have_their_own_scale(tmp_path, monkeypatch):
    """fggp - gmp is about 2 points, fggp - random about 10: each panel's range is its own, and the ±0.5 band
    takes a readable share of the gmp panel."""
    import analysis.figures as F

    _write(tmp_path)
    fig = _drawn_figure(monkeypatch, F.forest_fggp, _context(tmp_path))
    by_title = {ax.get_title(): ax.get_xlim() for ax in fig.axes if ax.get_title()}
    gmp, rnd = by_title["fggp − gmp"], by_title["fggp − random"]
    assert gmp[1] - gmp[0] < 6 and rnd[1] > 10
    assert 1.0 / (gmp[1] - gmp[0]) > 0.15  # the band of width 2 delta = 1 point


def test_forest_limits_clip_an_interval_far_wider_than_the_others():
    from analysis.figures import forest_limits

    # estimates 0.1 and -0.2, ends -0.5..0.7 and -0.9..0.5, delta 0.5: half-widths 0.6, 0.7, 0.6, 0.7 (median
    # 0.65, reach max(1, 1.3) = 1.3 beyond [-0.5, 0.5]): nothing clipped, [-0.9, 0.7] padded by 6 % of 1.6
    lo, hi = forest_limits([0.1, -0.2], [-0.5, -0.9], [0.7, 0.5], 0.5)
    assert lo == pytest.approx(-0.9 - 0.096) and hi == pytest.approx(0.7 + 0.096)
    # three estimates 0, intervals ±1, ±1, ±20: median half-width 1, reach 2: the range stops at ±2.5 (+ 6 % of 5)
    lo, hi = forest_limits([0, 0, 0], [-1, -1, -20], [1, 1, 20], 0.5)
    assert lo == pytest.approx(-2.8) and hi == pytest.approx(2.8)


def test_off_scale_labels_never_overlap():
    from analysis.figures import _off_scale_layout

    # markers at x 1.7 and 1.8 (0.1 apart, 1.08 x-units per inch): each label '10.x %' is (0.043 * 6 + 0.04)
    # * 1.08 = 0.32 units wide, so the second goes one line up; a third at 2.2 starts after the first ends (1.86)
    runs = pd.DataFrame({"method": ["a", "b", "c"], "target_sparsity": [0.98, 0.98, 0.99],
                         "test_acc": [10.2, 10.0, 9.9]})
    x = {("a", 0.98): 1.7, ("b", 0.98): 1.8, ("c", 0.99): 2.2}
    layout = _off_scale_layout(runs, lambda m, t: x[(m, t)], 1.08, (-0.6, 2.6))
    assert [(m, label, line) for _, m, label, _, line in layout] == [("a", "10.2 %", 0), ("b", "10.0 %", 1),
                                                                    ("c", "9.9 %", 0)]

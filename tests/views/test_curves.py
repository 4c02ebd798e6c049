"""Curves along each transform parameter: the outcome per value and per class computed from the records, the
planted breakpoint (0 dB) marked, and the breakpoints report section with its curves and tables."""

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from proactiv import views
from proactiv.analysis import analyze
from proactiv.analysis.runview import format_value
from proactiv.schema import RunSchema, input_spec, metric_units
from proactiv.store import open_run
from proactiv.views.curves import curve_panels, runs_curves_figure
from proactiv.views.sections import SectionContext, sections_of
from proactiv.views.style import ParamAxis


def _axis_traces(fig: go.Figure, name: str, xaxis: str = "x") -> list:
    return [t for t in fig.data if t.name == name and (t.xaxis or "x") == xaxis]


def test_curves_show_the_accuracy_of_each_value_and_compute_missing_analyses(run):
    assert not (run.path / "analysis" / "curves.parquet").exists()
    fig = views.curves(run.path)  # a path is enough; the curves are computed on first use
    assert isinstance(fig, go.Figure) and (run.path / "analysis" / "curves.parquet").exists()
    expected = run.records.groupby("noise.snr_db")["correct_t"].mean()
    (line,) = _axis_traces(fig, "accuracy")  # column 1: noise.snr_db (the grid's first column)
    assert list(line.x) == [format_value(v) for v in expected.index]
    assert np.allclose(line.y, expected.to_numpy())
    marks = [t for t in fig.data if t.name == "breakpoint" and (t.xaxis or "x") == "x"]
    assert [list(t.x) for t in marks] == [["0"]]  # accuracy collapses below 2.5 dB: it breaks at 0 dB


def test_class_curves_one_line_per_class(run):
    fig = views.curves(open_run(run.path), per="class")
    expected = run.records[run.records.label_name == "no"].groupby("noise.snr_db")["correct_t"].mean()
    (line,) = _axis_traces(fig, "no")
    assert np.allclose(line.y, expected.to_numpy())
    assert {t.name for t in fig.data} >= {"yes", "no", "up", "down"}
    with pytest.raises(ValueError, match="per='bogus': expected 'all', 'class' or 'quality'"):
        views.curves(run, per="bogus")


def test_the_breakpoints_section_draws_both_curves_and_lists_the_planted_breakpoint(run):
    analysis = analyze(run, steps=["curves", "breakpoints"])
    ctx = SectionContext(run)
    (section,) = [s for s in sections_of("breakpoints") if s.step == "breakpoints"]
    page = section.html(ctx)
    overall, per_class = ctx.figures  # a spectrogram run: no image-quality curves
    assert "Image quality" not in page and page.startswith("<h2>Breakpoints</h2><p>Curves along each")
    assert [list(t.x) for t in _axis_traces(overall, "breakpoint")] == [["0"]]
    assert {t.name for t in per_class.data} >= {"yes", "no", "up", "down", "breakpoint"}
    marginal, table = page.split("<h3>Breakpoints (others marginalised)</h3>")[1].split("<details>")
    bp = analysis.breakpoints
    # one row per marginal breakpoint, each on noise.snr_db (gain never breaks), at 0 dB overall
    assert marginal.count("<tr>") == (bp.condition == "").sum() == 4  # body rows (the head row is styled)
    assert marginal.count("<td>noise.snr_db</td>") == 4 and "gain.gain_db" not in marginal
    assert bp[(bp.condition == "") & (bp.scope == "all")].value.tolist() == [0]
    assert f"the other parameters ({(bp.condition != '').sum()})</summary>" in table


def test_one_row_per_metric_in_a_fixed_order_and_the_quality_lines_together():
    schema = RunSchema(target="label", input=input_spec("image", (1, 8, 8)), outcome="accuracy",
                       metrics=metric_units(["d_x", "loss_t", "psnr_t", "psnr_out_t", "ssim_t"]))  # fmt: skip
    rows = curve_panels(["ssim_t", "psnr_out_t", "d_x", "psnr_t", "loss_t", "accuracy", "flip_rate"], schema)
    assert [m for _, m in rows] == [["accuracy"], ["flip_rate"], ["loss_t"], ["d_x"], ["psnr_out_t", "psnr_t"],
                                    ["ssim_t"]]  # fmt: skip
    assert rows[0][0] == schema.outcome_label == "accuracy on xT" and rows[4][0] == "PSNR (dB)"


def test_several_runs_share_one_axis_per_parameter():
    axes = [ParamAxis("noise.snr_db", "noise.snr_db (dB)", ["0", "10", "∞"])]
    table = pd.DataFrame({"column": "noise.snr_db", "value": [np.inf, 0, 10], "accuracy": [0.9, 0.2, 0.8]})
    other = table.assign(accuracy=[1.0, 0.5, 0.9])
    fig = runs_curves_figure([("a", table), ("b", other)], axes, "accuracy", "accuracy")
    a, b = fig.data
    assert (a.name, b.name) == ("a", "b") and a.line.color != b.line.color
    assert list(a.x) == ["0", "10", "∞"] and list(a.y) == [0.2, 0.8, 0.9]  # sorted by value, ∞ last
    assert list(b.y) == [0.5, 0.9, 1.0]
    assert list(fig.layout.xaxis.categoryarray) == ["0", "10", "∞"]

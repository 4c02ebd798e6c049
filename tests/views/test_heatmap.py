"""Heatmaps: the mean outcome per pair of parameter values computed from the records (the planted collapse
below 2.5 dB SNR shows in every gain), one colour scale for several panels, and the report section (with the
output PSNR of image-to-image runs)."""

import numpy as np
import pandas as pd
import pytest

from proactiv import views
from proactiv.analysis.runview import PSNR_CAP_DB, format_value, open_view
from proactiv.testing import sweep_image_run
from proactiv.views.heatmap import HeatPanel, heatmap_figure
from proactiv.views.sections import SectionContext, sections


def _section(key: str):
    return next(s for s in sections() if s.key == key)


def test_heatmap_is_the_mean_outcome_per_pair_of_values(run):
    fig = views.heatmap(open_view(run.path), "noise.snr_db", "gain.gain_db")
    (heat,) = fig.data
    table = run.records.pivot_table(
        index="gain.gain_db", columns="noise.snr_db", values="correct_t", aggfunc="mean"
    )
    assert list(heat.x) == [format_value(v) for v in table.columns]
    assert np.allclose(np.asarray(heat.z, dtype=float), table.to_numpy())
    assert fig.layout.coloraxis.cmin == 0 and fig.layout.coloraxis.cmax == 1
    with pytest.raises(ValueError, match="unknown grid columns"):
        views.heatmap(run, "noise.snr_db", "nope")


def test_the_report_section_shows_the_collapse_below_2_5_db_at_every_gain(run):
    ctx = SectionContext(run)
    page = _section("heatmaps").html(ctx)
    assert page == "<h2>Accuracy on xT over pairs of parameters</h2><figure/>"
    (fig,) = ctx.figures
    (heat,) = fig.data  # the only pair of varying parameters, drawn without being asked for
    z = pd.DataFrame(np.asarray(heat.z, dtype=float), index=list(heat.y), columns=list(heat.x))
    low, high = z[["-5", "0"]], z[["5", "10", "20", "∞"]]
    assert low.to_numpy().max() < 0.5 < high.to_numpy().min()
    assert np.allclose(high, 20 / 24)  # above the breakpoint only voice v3 (4 of 24 instances) fails
    assert fig.layout.coloraxis.colorbar.title.text == "accuracy on xT"


def test_a_record_column_as_metric_and_unknown_ones_refused(run):
    fig = views.heatmap(run, "gain.gain_db", "noise.snr_db", metric="d_x")
    expected = run.records.pivot_table(index="noise.snr_db", columns="gain.gain_db", values="d_x")
    assert np.allclose(np.asarray(fig.data[0].z, dtype=float), expected.to_numpy())
    assert fig.layout.coloraxis.cmin is None  # not a fraction: the data's own range
    with pytest.raises(ValueError, match="unknown record column 'bogus'"):
        views.heatmap(run, metric="bogus")


def test_panels_share_one_scale_and_differences_are_centred_on_zero():
    table = pd.DataFrame({"a": [0, 0, 1, 1], "b": [0, 1, 0, 1], "m": [-0.2, 0.1, 0.4, np.inf]})
    fig = heatmap_figure([HeatPanel(table, "a", "b", "one"), HeatPanel(table.assign(m=0.0), "a", "b", "two")],
                         "Δ", diverging=True)  # fmt: skip
    assert len(fig.data) == 2 and {t.coloraxis for t in fig.data} == {"coloraxis"}
    scale = fig.layout.coloraxis
    assert scale.cmid == 0 and scale.cmin == -0.4 and scale.cmax == 0.4  # the largest finite |difference|
    assert [a.text for a in fig.layout.annotations] == ["one", "two"]
    empty = heatmap_figure([HeatPanel(table.iloc[:0], "a", "b")], "Δ")
    assert empty.layout.annotations[0].text == "no records to draw"


def test_image_to_image_runs_add_the_output_psnr(tmp_path):
    run = sweep_image_run(tmp_path / "den", n_instances=4, size=8)
    ctx = SectionContext(run)
    page = _section("heatmaps").html(ctx)
    assert page == "<h2>Within cutoff on xT (loss &lt; 0.001) over pairs of parameters</h2><figure/><figure/>"
    outcome, psnr = ctx.figures
    assert outcome.layout.coloraxis.cmax == 1 and psnr.layout.coloraxis.colorbar.title.text.startswith("PSNR")
    z = np.asarray(psnr.data[0].z, dtype=float)
    records = run.records.replace(np.inf, PSNR_CAP_DB).pivot_table(
        index="blur.sigma", columns="rotate.degrees", values="psnr_out_t"
    )
    assert np.allclose(z, records.to_numpy())
    assert z[0, 0] == PSNR_CAP_DB  # the identity point: the output is the target (infinite PSNR, capped)

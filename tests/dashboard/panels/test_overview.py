"""The overview panel: the run's summary, curves and heatmap over the filter, and its dropdowns per run."""

import pytest

from proactiv.dashboard import panels
from proactiv.dashboard.data import Filter, RunData


@pytest.fixture(scope="module")
def clean(data) -> dict:
    """A filter to the grid points above 15 dB SNR."""
    return {"points": [int(p) for p in data.per_point(Filter()).query("`noise.snr_db` > 15").point]}


def test_summary_and_overview(data):
    s = data.summary()
    assert s["records"] == 48 * 18 and s["clean_accuracy"] == 1.0
    assert s["statuses"] == {"converged": 48 * 18}  # how the projections ended, counted per status
    items = [div.children for div in panels.summary_children(data) if div.className == "kv"]
    shown = {key.children: value.children for key, value in items}
    assert shown["projections"] == "converged 864"
    curves, heat = panels.overview(data, None, None, None, None)
    assert len(curves.data) >= 6 and heat.data[0].type == "heatmap"
    names = {t.name for t in curves.data}
    assert "breakpoint" in names  # the planted SNR breakpoint is marked


def test_the_filter_restricts_curves_and_heatmap(data, clean):
    curves, heat = panels.overview(data, clean, "noise.snr_db", "gain.gain_db", "accuracy")
    snr = next(t for t in curves.data if t.name == "accuracy" and t.xaxis == "x")
    assert list(snr.x) == ["20", "∞"]  # only the clean points' SNR values
    every, _ = panels.overview(data, None, "noise.snr_db", "gain.gain_db", "accuracy")
    assert len(next(t for t in every.data if t.name == "accuracy" and t.xaxis == "x").x) == 6
    _, all_heat = panels.overview(data, None, "noise.snr_db", "gain.gain_db", "accuracy")
    assert list(heat.data[0].x) == ["20", "∞"]  # the same cells as unfiltered, the others left out
    assert (heat.data[0].z == all_heat.data[0].z[:, -2:]).all()


def test_unknown_choices_fall_back(data):
    _, heat = panels.overview(data, None, "../x", 3, "DROP TABLE")
    assert list(heat.data[0].x) == ["-5", "0", "5", "10", "20", "∞"] and list(heat.data[0].y) == [
        "-6",
        "0",
        "6",
    ]


def test_the_heatmap_dropdowns_follow_the_run(data, run_b):
    cols, rows, metrics, a, b, metric = panels.heat_choices(data)
    assert cols == rows == ["noise.snr_db", "gain.gain_db"] and "accuracy" in metrics
    assert (a, b, metric) == ("noise.snr_db", "gain.gain_db", metrics[0])


def test_callbacks_draw_the_picked_run_and_refuse_an_unknown_one(data, run_b, clean, callbacks_of):
    other = RunData(run_b)
    fn = callbacks_of("overview", [data, "a corrupt run", other])
    assert "model-b" in str(fn["summary.children"](2)) and "model-a" in str(fn["summary.children"](0))
    assert fn["heat-a.options"](2) == panels.heat_choices(other)
    curves, _ = fn["curves.figure"](0, clean, None, None, None)
    assert list(curves.data[0].x) == ["20", "∞"]
    for bad in (1, 3, "x"):  # a run that could not be opened, one past the end, not an index
        with pytest.raises(ValueError):
            fn["curves.figure"](bad, None, None, None, None)

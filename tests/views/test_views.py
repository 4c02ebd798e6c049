"""The public views on synthetic runs: each returns a plotly Figure holding the data it should show, computed
here independently from the records and arrays."""

import numpy as np
import plotly.graph_objects as go
import pytest

from proactiv import views
from proactiv.analysis.runview import format_value, open_view
from proactiv.store import open_run
from proactiv.testing import synthetic_grid, write_synthetic_run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return write_synthetic_run(tmp_path_factory.mktemp("views") / "spec", n_instances=24)


@pytest.fixture(scope="module")
def vector_run(tmp_path_factory):
    grid = synthetic_grid([float("inf"), 0], [0])
    return write_synthetic_run(tmp_path_factory.mktemp("views") / "vec", n_instances=8, shape=(64,), grid=grid,
                               bias_rows=(10, 20), input_kind="vector")  # fmt: skip


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


def test_embedding_coloured_by_metadata(run):
    fig = views.embedding(run, by="instance", colour="meta.voice")
    shown = [t for t in fig.data if t.visible]
    assert [t.name for t in shown] == ["v0", "v1", "v2", "v3"]
    from proactiv.analysis import load_analysis

    table = load_analysis(run).embedding_instances.set_index("instance")
    v3 = next(t for t in shown if t.name == "v3")
    assert np.allclose(v3.x, table.loc[list(v3.customdata), "x"]) and set(
        table.loc[list(v3.customdata), "meta.voice"]
    ) == {"v3"}
    assert len(fig.layout.updatemenus[0].buttons) > 1  # the other colourings, one menu away
    with pytest.raises(ValueError, match="colour="):
        views.embedding(run, colour="bogus")


def test_record_of_a_spectrogram_run_is_four_maps(run):
    arrays = run.arrays(instance=0, point=5)
    fig = views.record(run, 0, 5)
    assert [t.type for t in fig.data] == ["heatmap"] * 4
    assert np.allclose(np.asarray(fig.data[1].z, dtype=float), arrays["x_t"])
    assert np.allclose(np.asarray(fig.data[3].z, dtype=float), arrays["x_proj"] - arrays["x_t"], atol=1e-6)
    assert "instance 0 · grid point 5" in fig.layout.title.text


def test_record_of_a_vector_run_is_lines(vector_run):
    arrays = vector_run.arrays(instance=0, point=1)
    fig = views.record(vector_run, 0, 1)
    assert fig.data and all(t.type == "scatter" for t in fig.data)  # lines, no heatmap
    xt = next(t for t in fig.data if t.name == "xT (transformed)")
    assert np.allclose(xt.y, arrays["x_t"])


def test_bias_map_shows_the_planted_band(run, vector_run):
    fig = views.bias_map(run, class_name="yes")
    mean = np.asarray(fig.data[0].z, dtype=float)
    assert mean[10:14].mean() > 0.5 > np.abs(mean[20:]).mean()  # the planted shift in rows 10–14
    assert fig.data[0].zmin == -fig.data[0].zmax
    line = views.bias_map(vector_run, class_name="yes").data[0]
    assert line.type == "scatter" and np.asarray(line.y)[10:20].mean() > 0.5
    with pytest.raises(ValueError, match="no bias map"):
        views.bias_map(run, class_name="nope")


def test_embedding_names_missing_categories(run):
    """A metadata column with gaps (e.g. no word for silence clips) is a category of its own, not an error."""
    from proactiv.analysis import load_analysis
    from proactiv.views.embedding import Colouring, embedding_figure

    table = load_analysis(run).embedding_instances.copy()
    table["meta.voice"] = table["meta.voice"].where(table["instance"] % 2 == 0, None)
    fig = embedding_figure(table, "instance", [Colouring("meta.voice", "voice", True)])
    names = [t.name for t in fig.data]
    missing = next(t for t in fig.data if t.name == "(missing)")
    assert "(missing)" in names and all(int(i) % 2 == 1 for i in missing.customdata)

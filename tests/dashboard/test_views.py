"""The dashboard's callbacks as plain functions: filters, validation, every view, corrupt runs, serving."""

import json

import numpy as np
import pytest

from proactiv.dashboard import panels
from proactiv.dashboard.app import build_app
from proactiv.dashboard.data import Filter, RunData, open_runs
from proactiv.dashboard.serve import host_warning, url
from proactiv.views.audio import wav_data_uri


@pytest.fixture(scope="module")
def data(run_a) -> RunData:
    return RunData(run_a)


def test_filter_keeps_only_integers():
    flt = Filter.from_store(
        {"points": [3, 1, "1; DROP TABLE records", 2.0, True], "instances": None, "slice": "x"}
    )
    assert flt.points == (1, 2, 3) and flt.instances is None and flt.slice is None


def test_where_uses_the_runs_own_slice_clause(data):
    first = int(data.analysis.slices["slice"].iloc[0])
    clause = data.where(Filter(points=(0, 1), slice=first))
    assert "point IN (0,1)" in clause and data.analysis.slices["where"].iloc[0] in clause
    assert data.where(Filter(slice=999)) == "TRUE"


def test_summary_and_overview(data):
    s = data.summary()
    assert s["records"] == 48 * 18 and s["clean_accuracy"] == 1.0
    curves, heat = panels.overview(data, None, None, None, None)
    assert len(curves.data) >= 6 and heat.data[0].type == "heatmap"
    names = {t.name for t in curves.data}
    assert "breakpoint" in names  # the planted SNR breakpoint is marked


def test_marginal_accuracy_follows_the_planted_breakpoint(data):
    table = data.marginal("noise.snr_db", Filter())
    low = table[table.value < 2.5].accuracy.max()
    high = table[table.value > 2.5].accuracy.min()
    assert low < 0.4 < high


def test_selection_filters_slices_and_embeddings(data):
    every = panels.slices_rows(data, None)
    assert every and all("where" not in r for r in every)
    clean_points = [int(p) for p in data.per_point(Filter()).query("`noise.snr_db` > 15").point]
    store = panels.update_filter(
        "emb-points", None, {"points": [{"customdata": p} for p in clean_points]}, None, None, None
    )
    assert store["points"] == sorted(clean_points)
    chosen = panels.slices_rows(data, store)
    assert len(chosen) < len(every) or any(
        r["selected"] < a["selected"] for r, a in zip(chosen, every, strict=False)
    )
    points_fig, instances_fig = panels.embeddings(data, store, None, "accuracy")
    assert points_fig.data[0].type == "scattergl" and instances_fig.data[0].type == "scattergl"
    assert "Filtered to" in panels.filter_text(store)


def test_slice_click_toggles(data):
    rows = panels.slices_rows(data, None)
    store = panels.update_filter("slices", None, None, None, {"row": 0}, rows)
    assert store["slice"] == rows[0]["slice"]
    assert panels.update_filter("slices", store, None, None, {"row": 0}, rows)["slice"] is None
    assert panels.update_filter("clear", store, None, None, None, None) == panels.EMPTY_FILTER


def test_record_detail_validates_and_shows(data):
    rows = panels.kept_rows(data, None)
    chosen = panels.choose_record(data, "kept", {"row": 0}, rows, None, None)
    fig, facts = panels.record_detail(data, chosen)
    # a waveform is drawn as lines: x, xT, x̂T overlaid and the change x̂T − xT beside them, never a map
    assert [t.type for t in fig.data] == ["scatter"] * 4 and facts
    from proactiv.analysis import interim

    item = interim(data.run, chosen["instance"], chosen["point"])
    shown = {t.name: np.asarray(t.y) for t in fig.data}
    assert np.allclose(shown["xT (transformed)"], item.x_t) and np.allclose(
        shown["x̂T − xT"], item.diff, atol=1e-6
    )
    audio = panels.record_sound(data, chosen)
    assert (
        sum(
            type(c).__name__ == "Div" and "audio-" in json.dumps(c.to_plotly_json(), default=str)
            for c in audio
        )
        == 3
    )
    by_instance = panels.choose_record(
        data, "emb-instances", None, None, {"points": [{"customdata": 0}]}, None
    )
    assert by_instance["instance"] == 0 and data.is_kept(by_instance["instance"], by_instance["point"])
    by_point = panels.choose_record(
        data, "emb-points", None, None, None, None, {"points": [{"customdata": 5}]}
    )
    assert by_point["point"] == 5
    assert (
        panels.choose_record(data, "emb-points", None, None, None, None, {"points": [{"customdata": 999}]})
        is None
    )
    assert len(panels.record_detail(data, None)) == 2 and panels.record_sound(data, None) == []
    fig, _ = panels.record_detail(data, {"instance": 10**9, "point": 0})
    assert "no record" in fig.layout.annotations[0].text
    fig, _ = panels.record_detail(data, {"instance": "../../etc/passwd", "point": 0})
    assert "invalid" in fig.layout.annotations[0].text


def test_bias_view_and_compare(data, run_b):
    classes, values = panels.bias_options(data)
    fig = panels.bias_view(data, "yes", values[1]["value"])
    col, _, v = values[1]["value"].partition("=")
    expected = data.analysis.bias.mean("yes", where={col: float(v)})
    # a waveform's bias map is a line (mean change, then mean |change|), the planted shift in samples 1000–1400
    assert [t.type for t in fig.data] == ["scatter", "scatter"] and np.allclose(fig.data[0].y, expected)
    assert np.asarray(fig.data[0].y)[1000:1400].mean() > 0.5 > abs(np.asarray(fig.data[0].y)[:1000].mean())
    assert panels.bias_view(data, "nonsense", "bogus=1").data  # falls back, never raises
    curves, pair, heat = panels.compare([data, RunData(run_b)], "noise.snr_db", "gain.gain_db")
    assert len(pair.data) == 2 and heat.data[0].type == "heatmap" and np.nanmin(heat.data[0].z) < 0


def test_compare_per_grid_point_and_side_by_side(data, run_b):
    runs = [data, RunData(run_b)]
    fig, note = panels.compare_grid(runs)
    assert note == "All 18 grid points are in both runs." and np.isfinite(fig.data[0].z).sum() == 18
    # the second run fails below 7.5 dB SNR, the first below 2.5 dB: worse at 5 dB, equal in clean audio
    row = list(fig.data[0].y).index("5")
    assert all(v < 0 for v in fig.data[0].z[row])
    assert np.nanmax(np.abs(fig.data[0].z[list(fig.data[0].y).index("∞")])) == 0
    emb_a, emb_b, slices_a, slices_b = panels.compare_side(runs, "noise.snr_db")
    assert emb_a.data[0].type == "scattergl" and emb_b.data[0].type == "scattergl"
    colours = [{t.name: t.marker.color for t in f.data} for f in (emb_a, emb_b)]
    assert colours[0] == colours[1]  # a grid value has the same colour in both runs
    assert slices_a and slices_b and set(slices_a[0]) == set(panels.SLICE_COLUMNS)
    assert panels.compare_side(runs, "bogus")[0].data  # falls back to a valid colour
    assert "noise.snr_db" in panels.compare_colour_options(runs)


def test_grid_difference_matches_parameter_values_not_point_ids(tmp_path):
    from proactiv.testing import synthetic_grid, write_synthetic_run

    small = {"n_instances": 20, "shape": (8, 8), "bias_rows": (2, 4), "bad_voice": None}
    write_synthetic_run(
        tmp_path / "a", grid=synthetic_grid(snr_db=[np.inf, 10, 5, 0], gain_db=[0, 6]), **small
    )
    write_synthetic_run(tmp_path / "b", grid=synthetic_grid(snr_db=[0, 5, np.inf, 20], gain_db=[0, -6]),
                        seed=1, fail_below_snr=7.5, **small)  # fmt: skip
    a, b = RunData(tmp_path / "a", compute=False), RunData(tmp_path / "b", compute=False)
    # at 5 dB, gain 0: every record of run a is right (fails only below 2.5 dB), run b mostly wrong
    where = '"noise.snr_db" = 5 AND "gain.gain_db" = 0'
    acc_a = a.scalar(f"SELECT avg(correct_t::DOUBLE) FROM records WHERE {where}")
    acc_b = b.scalar(f"SELECT avg(correct_t::DOUBLE) FROM records WHERE {where}")
    assert acc_a == 1.0 and acc_b < 0.5
    table, note = panels.grid_difference(a, b, "accuracy")
    assert len(table) == 3 and "grids differ" in note and "5 only in a" in note  # 8 points each, 3 shared
    hit = table[(table["noise.snr_db"] == 5) & (table["gain.gain_db"] == 0)].iloc[0]
    assert hit["point_a"] != hit["point_b"]  # same parameters, different point ids
    assert hit["diff"] == pytest.approx(acc_b - acc_a)
    fig, shown = panels.compare_grid([a, b])
    heat = fig.data[0]
    assert list(heat.x) == ["0"] and list(heat.y) == ["0", "5", "∞"] and shown == note
    cell = heat.z[list(heat.y).index("5")][0]
    assert cell == pytest.approx(100 * (acc_b - acc_a)) and cell < 0
    assert heat.z[list(heat.y).index("∞")][0] == 0
    assert heat.zmid == 0 and heat.zmin == -heat.zmax and "percentage points" in heat.colorbar.title.text
    assert "point 4" in heat.text[1][0] and "point 2" in heat.text[1][0]


def test_run_options_follow_the_run(data):
    points, instances, cols, _, metrics, classes, values = panels.run_options(data)
    assert "noise.snr_db" in points and "label_name" in instances and "meta.voice" in instances
    assert "accuracy" in metrics and "yes" in classes and values[0]["value"] == ""


def test_run_index_is_validated(data):
    with pytest.raises(ValueError):
        panels.pick([data], 5)
    with pytest.raises(ValueError):
        panels.pick([data], "../x")


def test_corrupt_run_becomes_a_message(tmp_path, run_a):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "run.json").write_text("{ half written")
    opened = open_runs([bad, tmp_path / "missing"], compute=False)
    assert all(isinstance(r, str) for r in opened) and "corrupt" in opened[0]
    app = build_app(opened)
    text = json.dumps(app.layout.to_plotly_json(), default=str)
    assert "corrupt run header" in text and "Traceback" not in text


def test_serve_binds_locally_and_warns_otherwise():
    assert host_warning("127.0.0.1") is None
    assert "no authentication" in host_warning("0.0.0.0")
    assert url("0.0.0.0", 8050) == "http://127.0.0.1:8050/"


def test_wav_data_uri_is_a_wav():
    import base64

    uri = wav_data_uri(np.sin(np.linspace(0, 100, 1600)) * 3, 16000)
    raw = base64.b64decode(uri.split(",", 1)[1])
    assert uri.startswith("data:audio/wav;base64,") and raw[:4] == b"RIFF" and len(raw) == 44 + 3200


def test_missing_analysis_is_computed_on_first_open_with_progress(tmp_path):
    from proactiv.testing import write_synthetic_run

    write_synthetic_run(tmp_path / "fresh", n_instances=16, shape=(8, 8), bias_rows=(2, 4))
    seen = []
    data = RunData(tmp_path / "fresh", progress=lambda step, f: seen.append(step))
    assert {"curves", "slices", "embedding_points", "bias_maps"} <= set(seen)
    assert data.analysis.slices is not None and (tmp_path / "fresh" / "analysis" / "curves.parquet").exists()
    assert RunData(tmp_path / "fresh", progress=lambda step, f: seen.append("again")) and "again" not in seen

"""The compare panel: two runs' curves and heatmaps, their difference averaged and per grid point (matched on
parameter values), embeddings in shared colours and top slices; no tab with one run."""

import dash
import numpy as np
import pytest

from proactiv.dashboard import panels
from proactiv.dashboard.data import RunData
from proactiv.dashboard.panels import PanelContext
from proactiv.dashboard.panels.compare import layout


@pytest.fixture(scope="module")
def runs(run_a, run_b) -> list[RunData]:
    return [RunData(run_a), RunData(run_b)]


def test_no_tab_without_a_second_run(runs):
    assert layout(PanelContext((runs[0], "a corrupt run"))) is None
    assert layout(PanelContext(tuple(runs)))
    fig, note = panels.compare_grid(runs[:1])
    assert "two runs" in note or "two runs" in fig.layout.annotations[0].text


def test_the_difference_shows_where_the_second_run_breaks_earlier(runs, callbacks_of):
    fn = callbacks_of("compare", runs)
    _, pair, heat = fn["cmp-curves.figure"]("noise.snr_db", "gain.gain_db")
    assert len(pair.data) == 2 and heat.data[0].type == "heatmap" and np.nanmin(heat.data[0].z) < 0
    fig, note = fn["cmp-grid.figure"]("compare")
    assert note == "All 18 grid points are in both runs." and np.isfinite(fig.data[0].z).sum() == 18
    # the second run fails below 7.5 dB SNR, the first below 2.5 dB: worse at 5 dB, equal in clean audio
    row = list(fig.data[0].y).index("5")
    assert all(v < 0 for v in fig.data[0].z[row])
    assert np.nanmax(np.abs(fig.data[0].z[list(fig.data[0].y).index("∞")])) == 0
    assert fn["cmp-grid.figure"]("main") == (dash.no_update, dash.no_update)  # drawn when its tab is opened


def test_side_by_side_in_shared_colours(runs, callbacks_of):
    emb_a, emb_b, slices_a, slices_b = callbacks_of("compare", runs)["cmp-emb-a.figure"]("noise.snr_db")
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

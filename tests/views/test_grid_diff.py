"""The difference per grid point between two runs: each cell sits at its parameter values (not its point ids)
and holds the scaled difference of the two runs' metric computed here from their records; the hover names both
runs' points; the colours are centred on 0. (Matching the points and the note when grids differ are the compare
panel's, tested in tests/dashboard/panels/test_compare.py.)"""

import numpy as np
import pandas as pd
import pytest

from proactiv.testing import synthetic_grid, write_synthetic_run
from proactiv.views.grid_diff import grid_diff_figure

COLUMNS = ["noise.snr_db", "gain.gain_db"]


def _per_point(run) -> pd.DataFrame:
    return run.records.groupby(["point", *COLUMNS], as_index=False).agg(
        m=("correct_t", "mean"), n=("instance", "size")
    )


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """Run a breaks below 2.5 dB, run b below 7.5 dB, on grids listed in different orders that share 3 points."""
    path = tmp_path_factory.mktemp("diff")
    small = {"n_instances": 20, "shape": (8, 8), "bias_rows": (2, 4), "bad_voice": None}
    a = write_synthetic_run(
        path / "a", grid=synthetic_grid(snr_db=[np.inf, 10, 5, 0], gain_db=[0, 6]), **small
    )
    b = write_synthetic_run(path / "b", grid=synthetic_grid(snr_db=[0, 5, np.inf, 20], gain_db=[0, -6]), seed=1,
                            fail_below_snr=7.5, **small)  # fmt: skip
    both = _per_point(a).merge(_per_point(b), on=COLUMNS, suffixes=("_a", "_b"))
    return both.assign(diff=both.m_b - both.m_a)


def test_each_cell_is_the_difference_at_its_parameter_values(table):
    assert len(table) == 3 and (table.point_a != table.point_b).any()  # same values, other point ids
    fig = grid_diff_figure(
        table, COLUMNS, ["SNR (dB)", "gain (dB)"], ("a", "b"), "accuracy", 100.0, "Δ pp", "+.1f"
    )
    (heat,) = fig.data
    assert list(heat.x) == ["0"] and list(heat.y) == ["0", "5", "∞"]  # rows: SNR values; columns: the gains
    z = np.asarray(heat.z, dtype=float)
    for snr, diff in zip(table["noise.snr_db"], table["diff"], strict=True):
        assert z[list(heat.y).index({0.0: "0", 5.0: "5", np.inf: "∞"}[snr]), 0] == pytest.approx(100 * diff)
    assert z[list(heat.y).index("5"), 0] < -50  # at 5 dB run b has broken, run a has not
    assert z[list(heat.y).index("∞"), 0] == 0
    assert heat.zmid == 0 and heat.zmin == -heat.zmax == z.min()
    at5 = table[table["noise.snr_db"] == 5].iloc[0]
    hover = heat.text[list(heat.y).index("5")][0]
    assert f"a: accuracy {at5.m_a:.3f} (point {int(at5.point_a)}, n={int(at5.n_a)})" in hover
    assert f"b: accuracy {at5.m_b:.3f} (point {int(at5.point_b)}, n={int(at5.n_b)})" in hover
    assert "SNR (dB) = 5<br>gain (dB) = 0" in hover and "b − a" in heat.colorbar.title.text


def test_points_the_runs_do_not_share_stay_empty_and_one_parameter_is_one_row(table):
    extra = table[table["noise.snr_db"] == 5].assign(**{"gain.gain_db": 6.0, "diff": 0.25})
    heat = grid_diff_figure(
        pd.concat([table, extra]), COLUMNS, COLUMNS, ("a", "b"), "accuracy", 1.0, "Δ", ".2f"
    )
    z = np.asarray(heat.data[0].z, dtype=float)
    assert list(heat.data[0].x) == ["0", "6"] and z.shape == (3, 2)
    assert z[1, 1] == 0.25 and np.isnan(z[[0, 2], 1]).all()  # gain 6 only at 5 dB: the other cells stay empty
    one = table.drop(columns=["gain.gain_db"])
    heat = grid_diff_figure(one, ["noise.snr_db"], ["SNR"], ("a", "b"), "accuracy", 1.0, "Δ", ".2f").data[0]
    assert list(heat.y) == ["all"] and list(heat.x) == ["0", "5", "∞"]
    assert np.allclose(np.asarray(heat.z, dtype=float)[0], one.sort_values("noise.snr_db")["diff"])

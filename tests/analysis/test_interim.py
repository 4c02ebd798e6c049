"""Interim views of records (x, xT, x̂T, x̂T − xT, the record) and the pick of the worst kept records."""

import shutil

import numpy as np
import pandas as pd
import pytest

from proactiv.analysis.interim import interim, interims, worst_records
from proactiv.analysis.runview import open_view
from proactiv.testing import write_synthetic_run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """40 instances of 4 classes, two kept per class (instances 0-7); class 'yes' (instances 0 and 4) needs
    +1 in rows 10-13; voice v1 (instances 4-7) always fails, the others never (no SNR breakpoint)."""
    return write_synthetic_run(
        tmp_path_factory.mktemp("interim") / "run",
        n_instances=40,
        instances_per_unit=16,
        fail_below_snr=-100,
        bad_voice="v1",
    )


def test_diff_is_the_projected_minus_the_transformed_input(run):
    yes, no = interim(run, 0, 4), interim(run, 1, 4)
    assert np.array_equal(yes.diff, yes.x_proj - yes.x_t)
    # the planted shift: +1 in rows 10-13 of class 'yes' only (a reversed difference would read -1)
    assert yes.diff[10:14].mean() == pytest.approx(1.0, abs=0.02)
    assert abs(yes.diff[:10].mean()) < 0.02 and abs(no.diff[10:14].mean()) < 0.02


def test_the_view_holds_the_stored_inputs_and_the_record(run):
    view = interim(run, 5, 7)
    stored = run.arrays(5, 7)
    for name in ("x", "x_t", "x_proj"):
        assert np.array_equal(getattr(view, name), stored[name])
        assert getattr(view, name).shape == (40, 101)
    row = run.records.set_index(["instance", "point"]).loc[(5, 7)]
    assert (view.instance, view.point) == (5, 7)
    assert view.record["loss_t"] == pytest.approx(row.loss_t) and view.record["correct_t"] == row.correct_t
    assert {"pred_t", "pred_proj", "loss_t", "loss_proj", "noise.snr_db"} <= set(view.record)
    assert view.y is None and view.y_t is None  # a classifier run has no target tensors


def test_many_views_come_back_in_the_order_asked(run):
    pairs = pd.DataFrame({"instance": [6, 0, 3, 0], "point": [2, 9, 0, 1]})
    views = interims(open_view(run), pairs)
    assert [(v.instance, v.point) for v in views] == list(zip(pairs.instance, pairs.point, strict=True))
    for v in views:
        assert np.array_equal(v.x_t, run.arrays(v.instance, v.point)["x_t"])
        assert (v.record["instance"], v.record["point"]) == (v.instance, v.point)


def test_pairs_without_arrays_are_a_key_error_naming_the_keep_setting(run):
    with pytest.raises(KeyError, match=r"\(instance, point\) \[\(12, 0\)\] \(arrays.keep = 'sample'\)"):
        interim(run, 12, 0)
    with pytest.raises(KeyError, match=r"no arrays kept for \(instance, point\) \[\(39, 0\)\]"):
        interim(run, 39, 0)  # the last instance
    with pytest.raises(KeyError, match=r"\[\(9, 1\), \(10, 1\)\]"):
        interims(open_view(run), pd.DataFrame({"instance": [0, 9, 10], "point": [1, 1, 1]}))


def test_worst_records_put_failures_first_even_when_their_loss_is_lower(run, tmp_path):
    """Failures come first whatever the loss; then by loss_t; one record (the worst) per instance."""
    inverted = tmp_path / "inverted"
    shutil.copytree(run.path, inverted)
    for shard in (inverted / "records").glob("*.parquet"):  # failures now have the lowest losses
        rec = pd.read_parquet(shard)
        rec["loss_t"] = np.where(rec.correct_t, 5.0, 0.5) + rec.instance * 0.01 + rec.point * 0.001
        rec.to_parquet(shard, index=False)
    worst = worst_records(inverted, k=6)
    assert worst.instance.tolist() == [7, 6, 5, 4, 3, 2]  # the failing voice v1 first, despite its losses
    last = len(run.grid) - 1
    assert worst.point.tolist() == [last] * 6  # each instance's own worst point
    assert worst.loss_t.tolist() == pytest.approx(
        [0.5 + i * 0.01 + last * 0.001 for i in (7, 6, 5, 4)]
        + [5.0 + i * 0.01 + last * 0.001 for i in (3, 2)]
    )


def test_worst_records_only_come_from_kept_arrays_failures_first(run):
    worst = worst_records(run, k=100)
    assert sorted(worst.instance) == list(range(8))  # one per kept instance
    assert all(run.has_arrays(i, p) for i, p in zip(worst.instance, worst.point, strict=True))
    views = interims(open_view(run), worst)
    assert [v.record["correct_t"] for v in views] == [False] * 4 + [True] * 4  # voice v1 (instances 4-7)
    assert worst.loss_t[:4].is_monotonic_decreasing and worst.loss_t[4:].is_monotonic_decreasing
    assert len(worst_records(run, k=5)) == 5


def test_no_kept_arrays_means_no_gallery(tmp_path):
    run = write_synthetic_run(tmp_path / "bare", n_instances=8, keep_per_class=0)
    assert worst_records(run).empty

import math

import numpy as np
import pandas as pd
import pytest

from proactiv.analysis import breakpoints, curves
from proactiv.analysis.breakpoints import find_breakpoints
from proactiv.testing import write_synthetic_run


def test_planted_drop_is_the_breakpoint_overall_and_per_class(planted):
    table = breakpoints(planted)
    marginal = table[table.condition == ""]
    snr = marginal[marginal.column == "noise.snr_db"]
    assert set(snr.scope) == {"all", "yes", "no", "up", "down"}
    assert (snr.value == 0.0).all(), "accuracy collapses below 2.5 dB: the first broken SNR is 0 dB"
    assert (snr.previous == 5.0).all()
    assert (snr.reference_value == math.inf).all()
    overall = snr[snr.scope == "all"].iloc[0]
    assert overall.before == pytest.approx(overall.reference)  # 5 dB is as good as clean
    assert overall.after < 0.5 * overall.before
    assert overall.ci_low <= overall.after <= overall.ci_high


def test_a_parameter_that_never_breaks_gets_no_row(planted):
    table = breakpoints(planted)
    assert not (table.column == "gain.gain_db").any()


def test_breakpoints_within_each_value_of_the_others(planted):
    table = breakpoints(planted)
    within = table[(table.column == "noise.snr_db") & (table.scope == "all") & (table.condition != "")]
    assert sorted(within.condition) == ["gain.gain_db=-6", "gain.gain_db=0", "gain.gain_db=6"]
    assert (within.value == 0.0).all()
    assert breakpoints(planted, within_others=False).condition.eq("").all()


def test_marginal_curves_average_instances_first(planted):
    table = curves(planted)
    acc = table[
        (table.column == "noise.snr_db")
        & (table.scope == "all")
        & (table.condition == "")
        & (table.metric == "accuracy")
    ]
    assert list(acc.n.unique()) == [120]  # one sample per instance, not per record
    clean = acc[acc.value == math.inf].iloc[0]
    voices = planted.records.groupby("instance")["meta.voice"].first()
    assert clean["mean"] == pytest.approx((voices != "v3").mean())  # voice v3 always fails
    assert clean.ci_low < clean["mean"] < clean.ci_high
    assert set(table.metric) == {"accuracy", "flip_rate", "loss_t", "d_x"}


def _curve(values, accuracy, column="gain.gain_db"):
    return pd.DataFrame(
        {"transform": column.split(".")[0], "param": column.split(".")[1], "column": column, "scope": "all",
         "condition": "", "value": values, "metric": "accuracy", "mean": accuracy, "ci_low": accuracy,
         "ci_high": accuracy, "n": 10}
    )  # fmt: skip


def test_each_side_of_a_finite_identity_is_walked_outward():
    curve = _curve([-12, -6, 0, 6, 12], [0.9, 0.88, 0.9, 0.5, 0.2])
    table = find_breakpoints(curve, {"gain.gain_db": 0.0}, 0.8)
    assert table[["side", "value", "previous"]].values.tolist() == [["above", 6.0, 0.0]]


def test_a_drop_inside_its_confidence_interval_is_no_breakpoint():
    curve = _curve([0, -6], [0.2, 0.12])
    curve.loc[1, "ci_high"] = 0.25  # near chance: a wobble, not a break
    assert find_breakpoints(curve, {"gain.gain_db": 0.0}, 0.8).empty


def test_the_first_broken_value_not_the_largest_drop():
    # 0.9 -> 0.7 (first below 0.8 x 0.9 = 0.72) then 0.7 -> 0.1 (the largest single drop)
    curve = _curve([0, -6, -12, -18], [0.9, 0.85, 0.7, 0.1])
    table = find_breakpoints(curve, {"gain.gain_db": 0.0}, 0.8)
    assert table.value.tolist() == [-12.0]


def test_without_the_identity_the_mildest_value_is_the_reference():
    curve = _curve([10, 20, 30], [0.2, 0.8, 0.9], column="noise.snr_db")
    table = find_breakpoints(curve, {"noise.snr_db": math.inf}, 0.8)
    assert table.reference_value.tolist() == [30.0]
    assert table.value.tolist() == [10.0]


def test_threshold_must_be_a_fraction(planted):
    with pytest.raises(ValueError, match="threshold"):
        breakpoints(planted, threshold=1.5)


def test_runs_without_predictions_have_curves_but_no_breakpoints(tmp_path):
    run = write_synthetic_run(tmp_path / "i2i", n_instances=16, classifier=False)
    assert breakpoints(run).empty
    assert set(curves(run).metric) == {"loss_t", "d_x"}
    assert np.isfinite(curves(run)["mean"]).all()

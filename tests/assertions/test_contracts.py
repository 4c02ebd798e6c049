"""Contracts: each holds on a model that honours it and fails on one made to violate it, with a message naming
the transform value, the class and the figure; soft assertions rank the records that break a rule."""

import math

import pytest
import torch

from proactiv.analysis.runview import AnalysisError
from proactiv.assertions import (
    ContractResult,
    accuracy_at,
    breakpoint_beyond,
    invariant,
    keeps_clean_prediction,
    monotonic,
    moves_at_most,
    no_worse_than,
    soft,
)
from proactiv.testing import write_synthetic_run

from .conftest import CLASSES, Band, data, linear, sweep_model

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """Accuracy collapses below 2.5 dB SNR (noise.snr_db x gain.gain_db grid), voice v3 always fails."""
    return write_synthetic_run(tmp_path_factory.mktemp("syn") / "run", n_instances=40)


def test_accuracy_at_passes_the_robust_model_and_fails_the_broken_one(robust_run, broken_run):
    held = accuracy_at(robust_run, {"gain_db": -20}, at_least=0.8)
    assert held and held.measured == 1.0 and held.limit == 0.8
    failed = accuracy_at(broken_run, {"gain.gain_db": -20}, at_least=0.8, scope="each")
    assert not failed and failed.measured < 0.5
    assert "gain.gain_db=-20" in failed.message and "below the required 0.8" in failed.message
    assert f"{failed.measured:.3f}" in failed.message
    assert set(failed.details.scope) == {"all", *CLASSES}
    worst = failed.details.loc[failed.details.accuracy.idxmin(), "scope"]
    assert f"'{worst}'" in failed.message  # the class where it is worst


def test_result_works_in_a_plain_assert():
    result = ContractResult("accuracy_at", False, "accuracy at gain.gain_db=-20 is 0.300", 0.3, 0.8)
    with pytest.raises(AssertionError, match=r"gain\.gain_db=-20 is 0\.300"):
        assert result
    with pytest.raises(AssertionError, match="accuracy_at: accuracy at"):
        result.check()
    assert repr(result).startswith("FAIL accuracy_at") and not bool(result)


def test_a_partial_point_is_the_mean_over_the_other_parameters(synthetic):
    records = synthetic.records
    at_zero = accuracy_at(synthetic, {"snr_db": 0}, at_least=0.5)
    assert at_zero.measured == pytest.approx(records[records["noise.snr_db"] == 0].correct_t.mean())
    full = accuracy_at(synthetic, {"snr_db": 0, "gain_db": 6}, at_least=0.5)
    sel = (records["noise.snr_db"] == 0) & (records["gain.gain_db"] == 6)
    assert full.measured == pytest.approx(records[sel].correct_t.mean())
    assert "mean over" not in full.message and "mean over gain.gain_db" in at_zero.message
    clean = accuracy_at(synthetic, {"snr_db": math.inf}, at_least=0.5)
    assert "noise.snr_db=∞" in clean.message


def test_bad_points_and_scopes_are_named(synthetic):
    with pytest.raises(AnalysisError, match=r"noise.snr_db = 7 is not a value .* -5, 0, 5, 10, 20, ∞"):
        accuracy_at(synthetic, {"snr_db": 7}, at_least=0.5)
    with pytest.raises(AnalysisError, match=r"'speed' is not in the run's grid.*noise.snr_db, gain.gain_db"):
        accuracy_at(synthetic, {"speed": 1}, at_least=0.5)
    with pytest.raises(AnalysisError, match=r"scope 'maybe'.*yes, no, up, down"):
        monotonic(synthetic, "snr_db", scope="maybe")
    with pytest.raises(AnalysisError, match="is the identity"):
        breakpoint_beyond(synthetic, "snr_db", math.inf)


def test_monotonic_fails_where_accuracy_recovers_as_the_degradation_grows(robust_run, tmp_path):
    assert monotonic(robust_run, "gain")
    band = sweep_model(Band(), tmp_path / "band", gain_db=[0, -6, -20, -40])
    result = monotonic(band, "gain_db", tolerance=0.05)
    assert not result
    assert "at gain.gain_db=-20 to" in result.message and "at -40" in result.message
    assert result.measured > 0.3 and "> the tolerance 0.05" in result.message


def test_breakpoint_beyond_on_each_side_of_the_identity(robust_run, broken_run):
    assert breakpoint_beyond(robust_run, "gain_db", -20)  # never breaks
    assert breakpoint_beyond(broken_run, "gain_db", -6)  # holds at -6, breaks at -20: beyond -6
    failed = breakpoint_beyond(broken_run, "gain_db", -20)
    assert not failed and failed.measured == -20
    assert "breakpoint of gain.gain_db over all instances is at -20" in failed.message
    assert "not beyond -20 (below the identity 0)" in failed.message
    above = breakpoint_beyond(broken_run, "gain_db", 20)  # amplification is another side: no breakpoint there
    assert above and "no breakpoint above the identity" in above.message


def test_no_worse_than_a_baseline(robust_run, broken_run):
    assert no_worse_than(robust_run, robust_run, tolerance=0.0)
    worse = no_worse_than(broken_run, robust_run, tolerance=0.02)
    assert not worse and worse.measured > 0.5
    assert "gain.gain_db=-20" in worse.message and "baseline 1.000" in worse.message
    assert no_worse_than(robust_run, broken_run)  # better than the baseline is fine


def test_invariant_without_a_run():
    x, y = data()
    spec = {"type": "gain", "gain_db": [0]}
    held = invariant(linear(None), spec, [-20, -6, 20], x, max_flip_rate=0.0)
    assert held and held.measured == 0.0 and list(held.details.value) == [-20, -6, 20]
    broken = invariant(linear(1.0), spec, [-20, -6, 20], x, max_flip_rate=0.05, labels=y, class_names=CLASSES)
    assert not broken
    worst = broken.details.loc[broken.details.flip_rate.idxmax()]
    assert worst.value == -20 and "at gain.gain_db=-20" in broken.message
    assert (
        f"{worst.flip_rate:.1%}" in broken.message
        and f"class {worst.worst_class!r} flips most" in broken.message
    )
    assert worst.worst_class != "a"  # attenuated inputs drift to 'a', so the other classes flip
    with pytest.raises(ValueError, match="unknown transform 'loud'"):
        invariant(linear(None), {"type": "loud"}, [1], x)


def test_soft_assertions_rank_the_violating_records(synthetic):
    records = synthetic.records
    result = moves_at_most(synthetic, 0.05, top=5)
    assert result.passed and result.n_violations == int((records.d_x > 0.05).sum()) > 0
    assert len(result.violations) == 5
    assert list(result.violations.severity) == sorted(records.d_x[records.d_x > 0.05], reverse=True)[:5]
    top = result.violations.iloc[0]
    assert f"instance {top.instance}" in result.message and "d_x = " in result.message
    assert keeps_clean_prediction(synthetic).n_violations == 0
    upward = soft(synthetic, "loss_t >= 1", top=3)  # ranked by the smallest loss first
    assert list(upward.violations.severity) == sorted(-records.loss_t[records.loss_t < 1], reverse=True)[:3]
    with pytest.raises(AnalysisError, match=r'"dx" not found.*columns: instance, .*d_x'):
        soft(synthetic, "dx <= 3")

"""Contracts: each holds on a model that honours it and fails on one made to violate it, with a message naming
the transform value, the class and the figure; soft assertions rank the records that break a rule."""

import math

import pytest
import torch

from proactiv.analysis.runview import AnalysisError, open_view
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
from proactiv.testing import synthetic_grid, write_synthetic_run
from proactiv.transforms import Grid, get

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


# ------------------------------------------------------------------- no verdict from nothing checked
def _not_checked(result, *words):
    """``result`` is NOT CHECKED, fails a plain assert, and its reason holds each of ``words``."""
    assert result.status == "not checked" and not result.passed and not bool(result), repr(result)
    assert result.reason and all(w in result.reason for w in words), result.reason
    assert repr(result).startswith(f"NOT CHECKED {result.name}")
    with pytest.raises(AssertionError, match="not checked"):
        result.check()


class NeverB(torch.nn.Module):
    """The gain-invariant model, except that it never says 'b'."""

    def __init__(self):
        super().__init__()
        self.lin = linear(None)

    def forward(self, x):
        return self.lin(x) - 1000.0 * torch.tensor([0.0, 1.0, 0.0])


@pytest.fixture(scope="module")
def small_classes(tmp_path_factory):
    """3 instances per class, one of them (voice v3) always wrong: no class's interval can exclude a breakpoint."""
    return write_synthetic_run(
        tmp_path_factory.mktemp("small") / "run", n_instances=12, voices=("v0", "v1", "v3")
    )


def test_a_result_has_three_states():
    held = ContractResult("c", True, "fine")
    violated = ContractResult("c", False, "too low", 0.3, 0.8)
    assert (held.status, violated.status) == ("holds", "violated") and violated.reason is None
    unchecked = ContractResult.not_checked("c", "no records of class 'b'", limit=0.8)
    _not_checked(unchecked, "no records of class 'b'")
    assert unchecked.message == "not checked: no records of class 'b'" and unchecked.limit == 0.8
    with pytest.raises(AssertionError, match="no records of class 'b'"):
        assert unchecked
    with pytest.raises(ValueError, match="reason"):
        ContractResult("c", False, "?", status="not checked")


def test_breakpoint_beyond_the_swept_range_is_not_checked(synthetic, robust_run, broken_run):
    # the gain grid stops at -6 dB: nothing says what happens between -6 and -40
    _not_checked(
        breakpoint_beyond(synthetic, "gain", -40), "gain.gain_db=-40", "stops at -6", "all instances"
    )
    # no grid value between the identity 0 and -3 (the nearest below is -6): nothing was checked
    _not_checked(breakpoint_beyond(robust_run, "gain_db", -3), "gain.gain_db=-3", "no grid value", "-6")
    # a breakpoint inside the range already shows the contract false
    broken = breakpoint_beyond(broken_run, "gain_db", -40)
    assert broken.status == "violated" and "is at -20" in broken.message


def test_a_class_never_right_at_the_identity_is_not_checked(tmp_path):
    run = sweep_model(NeverB(), tmp_path / "never-b")
    _not_checked(
        breakpoint_beyond(run, "gain_db", -20, scope="b"), "'b'", "no correct record at the identity"
    )
    each = breakpoint_beyond(run, "gain_db", -20, scope="each")
    _not_checked(each, "'b'", "no correct record")
    assert "'a'" not in each.reason and "'c'" not in each.reason  # only the scopes that could not be checked
    assert breakpoint_beyond(run, "gain_db", -20).status == "holds"


def test_small_classes_cannot_break_so_they_are_not_checked(small_classes):
    each = breakpoint_beyond(small_classes, "snr_db", 5, scope="each")
    _not_checked(each, "'yes'", "'no'", "'up'", "'down'", "3 instances", "≤ 0")
    assert set(each.details.scope) == {"all", "yes", "no", "up", "down"}
    _not_checked(breakpoint_beyond(small_classes, "snr_db", 5, scope="up"), "noise.snr_db=5", "'up'")
    assert breakpoint_beyond(small_classes, "snr_db", 5).status == "holds"  # 12 instances: it can break
    assert breakpoint_beyond(small_classes, "snr_db", 0).status == "violated"  # and it does, at 0 dB


def test_a_scope_without_records_is_not_checked(tmp_path):
    run = write_synthetic_run(tmp_path / "run", n_instances=3)  # classes yes, no, up, down: no 'down' record
    _not_checked(accuracy_at(run, {"snr_db": 20}, at_least=0.5, scope="down"), "no records", "'down'")
    _not_checked(monotonic(run, "snr_db", scope="down"), "no records", "'down'")
    _not_checked(breakpoint_beyond(run, "snr_db", 5, scope="down"), "no records", "'down'")
    each = accuracy_at(run, {"snr_db": 20}, at_least=0.5, scope="each")
    _not_checked(each, "'down'")
    assert "'yes'" not in each.reason
    assert accuracy_at(run, {"snr_db": 20}, at_least=0.0, scope="yes").status == "holds"
    unfinished = open_view(run)  # a grid value without records yet, as in a run still sweeping
    unfinished.con.execute('DELETE FROM records WHERE "noise.snr_db" = 20')
    _not_checked(accuracy_at(unfinished, {"snr_db": 20}, at_least=0.5), "noise.snr_db=20", "no records")


def test_no_worse_than_compares_only_what_both_runs_swept(synthetic, tmp_path):
    grid = synthetic_grid(snr_db=[math.inf, 10, 0])
    fewer = write_synthetic_run(tmp_path / "fewer", n_instances=40, grid=grid)
    partial = no_worse_than(synthetic, fewer, tolerance=0.5)
    assert partial.status == "holds" and "9 of 18 grid points" in partial.message
    other = write_synthetic_run(tmp_path / "other", n_instances=40, grid=synthetic_grid(snr_db=[30, 15]))
    _not_checked(no_worse_than(synthetic, other), "share no grid point", "noise.snr_db")
    noise_only = Grid([get("noise", snr_db=[math.inf, 0])])  # the same values, without a gain column
    noise_only = write_synthetic_run(tmp_path / "noise", n_instances=40, grid=noise_only)
    _not_checked(no_worse_than(synthetic, noise_only), "share no grid point", "gain.gain_db in -6, 0, 6")
    two = write_synthetic_run(tmp_path / "two", n_instances=40, classes=("yes", "no"), grid=grid)
    each = no_worse_than(fewer, two, tolerance=0.5, scope="each")
    _not_checked(each, "'up'", "'down'")
    assert "'yes'" not in each.reason

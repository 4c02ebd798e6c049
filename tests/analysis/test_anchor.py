"""Anchors on a planted fault: a gate whose failure depends on gain alone, at a known threshold per instance, on
a grid that also varies noise the gate barely feels. The anchor must name gain alone and bracket the threshold;
the KL-LUCB machinery is checked on Bernoulli arms whose means are known."""

import numpy as np
import pytest

from proactiv.analysis.anchor import Condition, anchor
from proactiv.analysis.bandit import beta, kl_bernoulli, kl_lower, kl_lucb, kl_upper
from proactiv.testing.threshold import GAIN, NOISE, THRESHOLDS_DB, plant_threshold_run, point_of
from proactiv.whatif import Studio


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    run = plant_threshold_run(tmp_path_factory.mktemp("anchor") / "run")
    return run, Studio(run, device="cpu")


# ------------------------------------------------------------------------------------------ the bounds
def test_kl_bounds_invert_the_divergence():
    for p, q in [(0.5, 0.8), (0.9, 0.99), (0.1, 0.3)]:
        assert kl_upper(p, kl_bernoulli(p, q)) == pytest.approx(q, abs=1e-6)
        assert kl_lower(q, kl_bernoulli(q, p)) == pytest.approx(p, abs=1e-6)
    assert kl_upper(1.0, 0.1) == pytest.approx(1.0) and kl_lower(0.0, 0.1) == pytest.approx(0.0, abs=1e-9)
    assert kl_lower(1.0, np.log(20) / 60) == pytest.approx(0.05 ** (1 / 60), abs=1e-6)  # KL(1‖q) = −log q


def test_kl_bounds_hold_the_true_mean_as_often_as_promised():
    rng, p, n, delta = np.random.default_rng(0), 0.9, 100, 0.05
    means = rng.binomial(n, p, 4000) / n
    level = np.log(1 / delta) / n  # Chernoff: each side fails with probability at most delta
    assert np.mean(kl_upper(means, level) < p) <= delta
    assert np.mean(kl_lower(means, level) > p) <= delta
    width = kl_upper(0.9, level) - kl_lower(0.9, level)
    assert width < 0.15


def test_kl_lucb_finds_the_best_arms_of_known_bernoullis():
    means = np.array([0.2, 0.5, 0.6, 0.85, 0.95])
    rng = np.random.default_rng(1)
    n, hits = np.full(5, 10.0), rng.binomial(10, means).astype(float)

    def pull(arm, k):
        n[arm] += k
        hits[arm] += rng.binomial(k, means[arm])

    assert set(kl_lucb(pull, lambda: (n, hits), top=2, epsilon=0.05, batch=10)) == {3, 4}
    assert list(kl_lucb(pull, lambda: (n, hits), top=1, epsilon=0.05, batch=10)) == [4]
    assert n[0] < n[4]  # the plainly bad arm is hardly pulled
    assert beta(5, 10, 0.05) > beta(5, 1, 0.05) > 0


def test_conditions_read_as_people_say_them():
    open_up = Condition(NOISE, 10.0, 20.0, (-5.0, 20.0), (5.0, 15.0), None)
    assert open_up.text() == f"{NOISE} ≥ 10" and open_up.share == pytest.approx(0.4)
    assert open_up.contains(float("inf")) and open_up.contains(12.0) and not open_up.contains(5.0)
    both = Condition(GAIN, -3.0, 0.0, (-12.0, 6.0), (-4.8, -1.2), (-1.2, 2.4))
    assert both.text() == f"-3 ≤ {GAIN} ≤ 0" and not both.contains(float("inf"))


# ------------------------------------------------------------------------------------------ the studio
def test_batched_outcomes_match_the_studio_one_at_a_time(planted):
    run, studio = planted
    values = [{GAIN: g, NOISE: s} for g, s in [(-9.0, 40.0), (-7.1, 23.5), (-2.0, 31.0), (4.4, 20.0)]]
    right, score = studio.outcomes(0, values, batch=3)
    for v, r, p in zip(values, right, score, strict=True):
        seen = studio.transform(0, v)
        assert r == (seen.prediction == seen.desired) and p == pytest.approx(
            seen.output[seen.desired], abs=1e-6
        )
    assert list(right) == [False, False, True, True]


# ------------------------------------------------------------------------------------------ the planted fault
@pytest.mark.parametrize("instance", [0, 1])
def test_a_failing_record_is_anchored_on_gain_alone_below_its_threshold(planted, instance):
    run, studio = planted
    found = anchor(run, instance, point_of(run, -9.0), studio=studio)
    threshold = THRESHOLDS_DB[instance]
    assert found.fails and found.valid and found.precision >= 0.95
    assert found.columns == (GAIN,)  # the noise the gate barely feels is no condition
    (rule,) = found.conditions
    assert rule.below is None and rule.low == -12.0  # open downward: every lower gain fails too
    inner, outer = rule.above
    assert inner <= threshold <= outer  # the planted threshold lies in the rule's boundary interval
    assert found.coverage == pytest.approx((rule.high + 12.0) / 18.0)
    assert found.describe().startswith(f"fails whenever {GAIN} ≤ ")
    local = found.surrogate
    assert local.slopes[GAIN] * 18 > 10 * abs(local.slopes[NOISE]) * 20  # per span, gain dominates
    assert local.slopes[GAIN] > 0 and local.fidelity > 0.5


def test_a_passing_record_is_anchored_above_its_threshold(planted):
    run, studio = planted
    found = anchor(run, 1, point_of(run, 3.0, 20.0), studio=studio, surrogate_samples=0)
    assert not found.fails and found.valid and found.columns == (GAIN,)
    (rule,) = found.conditions
    assert rule.above is None and rule.below[0] <= THRESHOLDS_DB[1] <= rule.below[1]
    assert found.describe().startswith(f"passes whenever {GAIN} ≥ ")
    assert found.surrogate is None


def test_the_same_seed_gives_the_same_anchor(planted):
    run, studio = planted
    a, b = (anchor(run, 0, point_of(run, -12.0), studio=studio, surrogate_samples=0) for _ in range(2))
    assert a == b


def test_bad_requests_are_refused(planted):
    run, studio = planted
    with pytest.raises(ValueError, match="precision"):
        anchor(run, 0, 0, precision=1.2, studio=studio)
    with pytest.raises(ValueError, match="grid points 0 to 20"):
        anchor(run, 0, 21, studio=studio)
    with pytest.raises(ValueError, match="instance 5"):
        anchor(run, 5, 0, studio=studio)


def test_the_command_prints_the_anchor_and_names_a_bad_record(planted):
    from typer.testing import CliRunner

    from proactiv.cli import app

    run, _ = planted
    runner = CliRunner()
    done = runner.invoke(app, ["anchor", str(run.path), "0", str(point_of(run, -9.0)), "--device", "cpu"])
    assert done.exit_code == 0, done.output
    lines = done.output.splitlines()
    assert lines[0].startswith(f"fails whenever {GAIN} ≤ ") and lines[1].startswith("locally, score ≈")
    bad = runner.invoke(app, ["anchor", str(run.path), "5", "0", "--device", "cpu"])
    assert bad.exit_code == 2 and "instance 5" in bad.output

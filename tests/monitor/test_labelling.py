"""Choosing what to label, on pools whose right answer is known: every strategy spends its budget on distinct
inputs, random is reproducible, uncertainty picks a hand-set model's lowest margins, the assertion bandit spends
its labels on the assertion whose labels fix the model (not the one flagging noise), weak labels are the
majority over the copies, and pool scores come from a monitor's steps."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest

from proactiv.monitor.labelling import (
    STRATEGIES,
    AssertionBandit,
    PoolScores,
    majority,
    select,
    weak_labels,
)


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def random_pool(n: int = 300, seed: int = 0) -> PoolScores:
    """Posteriors over 3 classes, two assertions each flagging a third of the pool, three copies that mostly
    agree with the input."""
    rng = np.random.default_rng(seed)
    probs = softmax(rng.normal(size=(n, 3)) * 2)
    severity = rng.random((n, 2)) * (rng.random((n, 2)) < 0.33)
    decision = probs.argmax(1)
    copies = np.where(rng.random((n, 3)) < 0.8, decision[:, None], rng.integers(0, 3, (n, 3)))
    return PoolScores(probs, severity, ("a", "b"), np.column_stack([decision, copies]))


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_each_strategy_spends_its_budget_on_distinct_inputs(strategy):
    pool = random_pool()
    for budget in (1, 50, 120):
        chosen = select(strategy, pool, budget, seed=3, refit=lambda idx: pool)
        assert len(chosen.indices) == budget and len(set(chosen.indices.tolist())) == budget
        assert chosen.indices.min() >= 0 and chosen.indices.max() < len(pool)
        assert (chosen.labels is not None) == (strategy == "weak")


def test_random_is_reproducible_by_seed():
    pool = random_pool()
    first, again = select("random", pool, 40, seed=7).indices, select("random", pool, 40, seed=7).indices
    assert np.array_equal(first, again)
    assert not np.array_equal(first, select("random", pool, 40, seed=8).indices)


def test_uncertainty_picks_the_lowest_margins_of_a_hand_set_model():
    x = np.linspace(-3, 3, 61)  # a linear model: logits (x, -x); the margin grows with |x|
    probs = softmax(np.column_stack([x, -x]))
    pool = PoolScores(probs, np.zeros((61, 0)), (), probs.argmax(1)[:, None])
    chosen = select("uncertainty", pool, 11).indices
    assert set(chosen.tolist()) == set(np.argsort(np.abs(x))[:11].tolist())
    assert chosen[0] == 30  # x = 0: the model cannot tell
    entropy = select("uncertainty", pool, 11, measure="entropy").indices
    assert set(entropy.tolist()) == set(chosen.tolist())


class Planted:
    """A pool of 1000 with 300 errors of the model in 100 groups of 3 (an error and its like): labelling any
    member fixes its group. Assertion ``errors`` flags the errors not yet fixed; ``noise`` flags 150 inputs
    the model gets right, whatever it learns."""

    def __init__(self, errors_arm: int = 0):
        rng = np.random.default_rng(1)
        self.n, self.errors = 1000, rng.permutation(1000)[:300]
        self.group = {int(e): k // 3 for k, e in enumerate(self.errors)}
        rest = np.setdiff1d(np.arange(self.n), self.errors)
        self.noise = rng.choice(rest, 150, replace=False)
        self.noise_severity = rng.random(150) + 0.01
        self.error_severity = rng.random(300) + 0.01
        self.probs = softmax(rng.normal(size=(self.n, 3)))
        self.arm = errors_arm

    def scores(self, labelled: Sequence[int] = ()) -> PoolScores:
        fixed = {self.group[int(i)] for i in labelled if int(i) in self.group}
        severity = np.zeros((self.n, 2))
        live = np.array([self.group[int(e)] not in fixed for e in self.errors])
        severity[self.errors[live], self.arm] = self.error_severity[live]
        severity[self.noise, 1 - self.arm] = self.noise_severity
        names = ("errors", "noise") if self.arm == 0 else ("noise", "errors")
        return PoolScores(self.probs, severity, names, self.probs.argmax(1)[:, None])


@pytest.mark.parametrize("errors_arm", [0, 1])
def test_the_bandit_spends_its_labels_where_they_reduce_violations(errors_arm):
    planted = Planted(errors_arm)
    chosen = AssertionBandit(round_size=10, epsilon=0.1, seed=0).select(planted.scores(), 100, planted.scores)
    on_errors = np.isin(chosen.indices, planted.errors).mean()
    assert on_errors >= 0.8  # a spread of the 100 labels over both assertions would put half on the noise
    first, later = chosen.rounds[0], chosen.rounds[1:]
    assert first["why"] == "spread" and first["spent"] == {"errors": 5, "noise": 5}
    assert first["reward"]["errors"] > 0 and first["reward"]["noise"] == 0
    assert sum(r["arm"] == "errors" for r in later) >= 7
    assert all(r["arm"] == "errors" for r in later if r["why"] == "best")


def test_without_refit_the_bandit_spreads_every_round_most_severe_first():
    planted = Planted()
    chosen = AssertionBandit(round_size=10).select(planted.scores(), 40)
    assert all(r["why"] == "spread" for r in chosen.rounds)
    errors = chosen.indices[np.isin(chosen.indices, planted.errors)]
    assert len(errors) == 20
    order = np.argsort(-planted.error_severity)[:20]
    assert errors.tolist() == planted.errors[order].tolist()


def test_weak_labels_are_the_majority_over_the_copies_and_skip_inputs_without_one():
    versions = np.array([
        [0, 0, 0, 0],  # unanimous: 0
        [1, 2, 2, 2],  # the copies overrule the input: 2
        [1, 1, 1, 2],  # one copy disagrees: 1
        [0, 0, 1, 1],  # a tie: no majority
        [0, 1, 2, 3],  # no majority
        [3, 3, 3, 0],  # 3
    ])  # fmt: skip
    probs = np.full((6, 4), 0.25)
    pool = PoolScores(probs, np.zeros((6, 0)), (), versions)
    assert majority(versions).tolist() == [0, 2, 1, -1, -1, 3]
    weak = weak_labels(pool)
    assert weak.indices.tolist() == [1, 2, 5, 0]  # most disagreement first
    assert weak.labels.tolist() == [2, 1, 3, 0]
    assert weak_labels(pool, 2).indices.tolist() == [1, 2]


def test_pool_scores_from_monitor_steps_move_late_reports_back_and_concatenate():
    steps = pd.DataFrame({"step": range(4), "decision": [0, 1, 0, 0], "p.x": [0.9, 0.2, 0.8, 0.7],
                          "p.y": [0.1, 0.8, 0.2, 0.3], "copy.shift+10": [0, 1, 1, 0],
                          "a.flicker": [0.0, 0.0, 0.5, 0.0], "a.consistency": [0, 0, 1.0, 0]})  # fmt: skip
    pool = PoolScores.from_steps(steps, ["x", "y"], lags={"flicker": 1})
    assert pool.assertions == ("flicker", "consistency")
    assert pool.severity[:, 0].tolist() == [0.0, 0.5, 0.0, 0.0]  # the flicker was the step-1 decision
    assert pool.versions.tolist() == [[0, 0], [1, 1], [0, 1], [0, 0]]
    clips = PoolScores(
        np.full((2, 2), 0.5), np.array([[0.3], [0.0]]), ("consistency",), np.zeros((2, 2), int)
    )
    both = PoolScores.concat([pool, clips])
    assert both.assertions == ("flicker", "consistency") and len(both) == 6
    assert both.severity[4:].tolist() == [[0.0, 0.3], [0.0, 0.0]]  # a stream assertion holds on clips
    with pytest.raises(ValueError, match="no assertion 'refractory'"):
        PoolScores.from_steps(steps, ["x", "y"], lags={"refractory": 1})


def test_bad_requests_are_refused_by_name():
    pool = random_pool(20)
    with pytest.raises(ValueError, match="strategy 'active'"):
        select("active", pool, 5)
    with pytest.raises(ValueError, match="budget = 21"):
        select("random", pool, 21)
    with pytest.raises(ValueError, match="budget = 0"):
        select("uncertainty", pool, 0)
    with pytest.raises(ValueError, match="uncertainty measure 'var'"):
        select("uncertainty", pool, 5, measure="var")
    with pytest.raises(ValueError, match="epsilon"):
        AssertionBandit(epsilon=1.5)

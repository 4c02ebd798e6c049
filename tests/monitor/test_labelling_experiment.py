"""The labelling experiment's table: a row per strategy × budget × seed after the model as it was, the bandit's
refits reused as final models, the mean over seeds, and a bad plan refused before any work."""

from __future__ import annotations

import numpy as np
import pytest

from proactiv.monitor.labelling import STRATEGIES, PoolScores
from proactiv.monitor.labelling_experiment import experiment, summarise


def pool_of(n: int = 200) -> PoolScores:
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(3), n)
    severity = rng.random((n, 2)) * (rng.random((n, 2)) < 0.3)
    decision = probs.argmax(1)
    copies = np.where(rng.random((n, 3)) < 0.8, decision[:, None], rng.integers(0, 3, (n, 3)))
    return PoolScores(probs, severity, ("a", "b"), np.column_stack([decision, copies]))


def test_the_experiment_has_a_row_per_strategy_budget_and_seed():
    pool, truth = pool_of(200), np.random.default_rng(0).integers(0, 3, 200)
    tuned = []

    def finetune(indices, labels, seed):
        tuned.append((len(indices), seed))
        return {"labels": len(indices), "right": float(np.mean(labels == truth[indices]))}

    groups = np.array(["speech"] * 150 + ["clip"] * 50)
    table = experiment(pool, lambda idx: truth[idx], finetune, lambda model: pool,
                       lambda model: {"accuracy": 0.5 if model is None else 0.5 + model["right"] / 10},
                       budgets=(10, 20, 40), seeds=(0, 1), round_size=10, groups=groups, progress=False)  # fmt: skip
    body = table[table.strategy != "none"]
    assert len(body) == len(STRATEGIES) * 3 * 2
    assert not body.duplicated(["strategy", "budget", "seed"]).any()
    assert set(body.strategy) == set(STRATEGIES) and set(body.budget) == {10, 20, 40}
    assert (table[table.strategy == "none"].seed.tolist()) == [0, 1]
    assert (body[body.strategy == "weak"].human_labels == 0).all()
    assert (body[body.strategy == "random"].human_labels == body[body.strategy == "random"].budget).all()
    assert (body[body.strategy != "weak"].label_accuracy == 1.0).all()
    assert np.allclose(body["share.speech"] + body["share.clip"], 1.0)
    uncertain = body[(body.strategy == "uncertainty") & (body.budget == 20)].iloc[0]
    chosen = np.argsort(np.sort(pool.probs, 1)[:, -1] - np.sort(pool.probs, 1)[:, -2])[:20]
    assert uncertain.model_wrong == pytest.approx(np.mean(pool.decision[chosen] != truth[chosen]))
    assert uncertain["share.speech"] == pytest.approx(np.mean(chosen < 150))
    assert body[body.strategy == "assertions"].rounds.str.split().str.len().tolist() == [1, 2, 4] * 2
    # one fine-tuning per row, plus the bandit's refit on 30 labels per seed: its refits on 10 and 20 labels
    # are the final models of budgets 10 and 20 (cached)
    assert len(tuned) == len(body) + 2
    summary = summarise(table, ["accuracy"])
    assert len(summary) == 1 + len(STRATEGIES) * 3 and (summary.seeds == 2).all()


def test_a_bad_plan_is_refused_before_any_work():
    pool = pool_of(20)
    for plan, match in (({"strategies": ["nope"]}, "strategies"), ({"budgets": (0,)}, "budget = 0"),
                        ({"budgets": (21,)}, "budget = 21"), ({"seeds": ()}, "seeds is empty")):  # fmt: skip
        with pytest.raises(ValueError, match=match):
            experiment(pool, None, None, None, None, progress=False, **plan)

"""Measure the labelling strategies: each strategy × budget × seed selects from the pool, fine-tunes the model
on its selection and evaluates the result, one table row each (after the model as it was), so strategies of
:mod:`proactiv.monitor.labelling` can be compared on any model with any fine-tuning and any evaluation.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable, Sequence

import numpy as np
import pandas as pd

from proactiv.monitor.labelling import STRATEGIES, PoolScores, check_budget, select
from proactiv.progress import progress_bar

#: the strategies whose labels a person gives (``weak`` needs none)
HUMAN = ("random", "uncertainty", "assertions")


def check_plan(
    strategies: Sequence[str], budgets: Sequence[int], seeds: Sequence[int], pool: int | None = None
) -> None:
    """Refuse, naming it, a strategy that is not one, no budget or seed, or a budget beyond the pool."""
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown or not strategies:
        raise ValueError(f"strategies {list(strategies)}: expected some of {', '.join(STRATEGIES)}")
    if not seeds:
        raise ValueError("seeds is empty: give at least one seed")
    if not budgets:
        raise ValueError("budgets is empty: give at least one number of labels")
    for b in budgets:
        if pool is not None:
            check_budget(b, pool)
        elif isinstance(b, bool) or not isinstance(b, int | np.integer) or b < 1:
            raise ValueError(f"budget = {b!r}: expected a positive number of labels")


def experiment(
    scores: PoolScores,
    oracle: Callable[[np.ndarray], np.ndarray],
    finetune: Callable[[np.ndarray, np.ndarray, int], object],
    rescore: Callable[[object], PoolScores],
    evaluate: Callable[[object | None], dict[str, float]],
    *,
    strategies: Sequence[str] = STRATEGIES,
    budgets: Sequence[int] = (50, 100, 200),
    seeds: Sequence[int] = (0, 1),
    measure: str = "margin",
    round_size: int = 50,
    epsilon: float = 0.1,
    groups: np.ndarray | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Each strategy × budget × seed: select from the pool, fine-tune on the selection and evaluate; one row
    each (strategy, budget, seed, ``human_labels`` spent, ``selected``, ``label_accuracy`` of the labels
    trained on, ``model_wrong``: the share of the selection the model got wrong, ``share.<group>``: the share
    of it from each group of the pool when ``groups`` (one name per pool input) is given, ``rounds``: the
    assertion bandit's choice in each round, ``seconds``, then the metrics), after the model as it was
    (strategy ``none``, budget 0, one row per seed, evaluated once).

    ``oracle(indices)``: the true labels (a person; for weak labels only to report how right they were);
    ``finetune(indices, labels, seed)``: a fine-tuned copy of the model; ``rescore(model)``: the pool's scores
    under a model (the bandit's feedback); ``evaluate(model)``: its metrics (``None``: the model as it was).
    Fine-tunings are cached by selection, labels and seed, so the bandit's refit after a round is reused as
    the final model of the budget that ends there.
    """
    check_plan(strategies, budgets, seeds, len(scores))
    tuned: dict[Hashable, object] = {}

    def model_for(indices: np.ndarray, labels: np.ndarray, seed: int):
        key = (tuple(indices.tolist()), tuple(labels.tolist()), seed)
        if key not in tuned:
            tuned[key] = finetune(indices, labels, seed)
        return tuned[key]

    refits = (
        sum(math.ceil(b / round_size) - 1 for b in budgets) * len(seeds) if "assertions" in strategies else 0
    )
    names = [] if groups is None else list(dict.fromkeys(np.asarray(groups).tolist()))

    def describe(chosen, truth: np.ndarray) -> dict:
        """What was selected: how much of it the model got wrong, from which group, the bandit's arms."""
        out = {
            "model_wrong": float(np.mean(scores.decision[chosen.indices] != truth)) if len(truth) else np.nan
        }
        for g in names:
            out[f"share.{g}"] = (
                float(np.mean(np.asarray(groups)[chosen.indices] == g)) if len(truth) else np.nan
            )
        out["rounds"] = " ".join(r["arm"] or "spread" for r in chosen.rounds)
        return out

    rows = []
    with progress_bar("jobs", progress) as bar:
        task = bar.add_task("model as it was", total=1 + len(strategies) * len(budgets) * len(seeds) + refits)
        start = time.perf_counter()
        base = evaluate(None)
        rows += [{"strategy": "none", "budget": 0, "seed": s, "human_labels": 0, "selected": 0,
                  "label_accuracy": float("nan"), "seconds": time.perf_counter() - start, **base} for s in seeds]  # fmt: skip
        bar.advance(task)
        for seed in seeds:
            for strategy in strategies:
                for budget in budgets:
                    bar.update(task, description=f"{strategy} {budget} labels, seed {seed}")
                    start = time.perf_counter()

                    def refit(indices, seed=seed):
                        bar.update(
                            task, description=f"assertions: refit on {len(indices)} labels, seed {seed}"
                        )
                        out = rescore(model_for(indices, oracle(indices), seed))
                        bar.advance(task)
                        return out

                    chosen = select(strategy, scores, budget, seed=seed, refit=refit, measure=measure,
                                    round_size=round_size, epsilon=epsilon)  # fmt: skip
                    truth = oracle(chosen.indices)
                    labels = truth if chosen.labels is None else chosen.labels
                    metrics = evaluate(model_for(chosen.indices, labels, seed)) if len(labels) else base
                    rows.append({"strategy": strategy, "budget": budget, "seed": seed,
                                 "human_labels": len(labels) if strategy in HUMAN else 0, "selected": len(labels),
                                 "label_accuracy": float(np.mean(labels == truth)) if len(labels) else float("nan"),
                                 **describe(chosen, truth), "seconds": time.perf_counter() - start, **metrics})  # fmt: skip
                    bar.advance(task)
    return pd.DataFrame(rows)


def summarise(table: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """The experiment's table averaged over seeds: one row per strategy and budget, the mean of each metric
    and (``<metric>_sd``) its standard deviation over seeds."""
    groups = table.groupby(["strategy", "budget"], sort=False)
    out = groups[list(metrics)].mean()
    spread = groups[list(metrics)].std(ddof=0).add_suffix("_sd")
    return pd.concat([out, spread, groups.seed.nunique().rename("seeds")], axis=1).reset_index()

"""The ``--strategy`` options every task's ``train`` command shares (:mod:`proactiv.robust_training`), declared
once so ``proactiv kws train`` and ``proactiv digits train`` spell and check them alike."""

from __future__ import annotations

from typing import Annotated

import typer

from proactiv.cli_errors import fail
from proactiv.robust_training import STRATEGIES, TrainingStrategy

Strategy = Annotated[
    str,
    typer.Option(
        "--strategy",
        help=f"{' | '.join(STRATEGIES)}: the run's copies added (augment), PGD within ε on every batch "
        "(adversarial), or outputs kept close on x and the run's copies of x (consistency; needs --augment-from)",
    ),
]
Epsilon = Annotated[
    float | None,
    typer.Option("--epsilon", help="adversarial: the PGD budget in model-input units (default: the task's)"),
]
PgdSteps = Annotated[int, typer.Option("--pgd-steps", help="adversarial: PGD steps per batch")]
Norm = Annotated[str, typer.Option("--norm", help="adversarial: l2 | linf")]
Beta = Annotated[float, typer.Option("--beta", help="consistency: the weight of the KL term")]


def strategy_from(
    name: str,
    epsilon: float | None,
    steps: int,
    norm: str,
    beta: float,
    default_epsilon: float,
    has_plan: bool,
) -> TrainingStrategy:
    """The strategy the options name, or a one-line error naming the option and what it expects."""
    try:
        strategy = TrainingStrategy(name, default_epsilon if epsilon is None else epsilon, steps, norm, beta)
    except ValueError as err:
        fail(ValueError(f"--strategy {name}: {err}"))
    if strategy.needs_plan and not has_plan:
        fail(
            ValueError(
                f"--strategy {name} needs --augment-from RUN: the run's transforms it keeps outputs under"
            )
        )
    return strategy

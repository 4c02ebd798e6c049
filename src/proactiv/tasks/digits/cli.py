"""``proactiv digits train``: the digits CNN trained into a folder (cached), optionally with augmentation drawn
toward a run's worst slices (``--augment-from RUN``, :mod:`proactiv.augment_plan`); a config then names it with
``model: {path: DIR}``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from proactiv.cli_errors import fail
from proactiv.tasks.strategy_options import Beta, Epsilon, Norm, PgdSteps, Strategy, strategy_from

#: the adversarial strategy's default L2 budget: about the median radius the radius step finds on the digits demo
#: (0.93), so training defends the ball where half the demo's instances flip today
EPSILON = 1.0
#: the L2 budgets the trained model's PGD accuracy is measured at (``metrics.json``'s ``pgd``)
PGD_EPSILONS = (0.5, 1.0)

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Handwritten digits: the CNN.")


@app.command()
def train(
    out: Annotated[Path, typer.Option("--out", "-o", help="model folder: model.pt and metrics.json")],
    augment_from: Annotated[
        Path | None,
        typer.Option(
            "--augment-from", help="a run of a digits model: add digits augmented toward its worst slices"
        ),
    ] = None,
    epochs: Annotated[int, typer.Option(help="training epochs")] = 30,
    seed: Annotated[int, typer.Option()] = 0,
    image_size: Annotated[int, typer.Option(help="28 (MNIST layout) or 8 (native)")] = 28,
    force: Annotated[
        bool, typer.Option("--force", help="train again even if a matching model exists")
    ] = False,
    strategy: Strategy = "augment",
    epsilon: Epsilon = None,
    pgd_steps: PgdSteps = 5,
    norm: Norm = "l2",
    beta: Beta = 1.0,
) -> None:
    """Train the digits CNN; skipped when OUT already holds one trained with the same settings and plan."""
    import torch

    from proactiv.augment_plan import PLAN_FILE, plan_toward
    from proactiv.checkpoints import CheckpointWriter
    from proactiv.robust_training import pgd_accuracy, pgd_line
    from proactiv.store import RunError
    from proactiv.tasks.digits import CLASS_NAMES, digits_split
    from proactiv.tasks.digits.model import MODEL_FILE, save_digits_cnn, train_digits_cnn

    chosen = strategy_from(strategy, epsilon, pgd_steps, norm, beta, EPSILON, augment_from is not None)
    try:
        splits = digits_split(0, image_size)
        plan = plan_toward(augment_from) if augment_from is not None else None
    except (RunError, ValueError, OSError) as err:
        fail(ValueError(f"--augment-from {augment_from}: {err}" if augment_from else str(err)))
    key = {"epochs": epochs, "seed": seed, "image_size": image_size, "augment": plan.key() if plan else None,
           **({"strategy": chosen.key()} if chosen.key() else {})}  # fmt: skip
    key_file = out / "train_key.json"
    if (
        not force
        and (out / MODEL_FILE).exists()
        and key_file.exists()
        and json.loads(key_file.read_text()) == key
    ):
        typer.echo(f"model in {out} is up to date (trained with the same settings); --force to retrain")
        return
    x, y = splits["train"]
    n_clean, pairs = len(y), None
    if plan is not None:
        typer.echo(plan.describe())
        try:
            extra_x, extra_y, source = plan.apply(x, y, CLASS_NAMES)
        except ValueError as err:
            fail(ValueError(f"--augment-from {augment_from}: {err}"))
        if chosen.needs_plan:  # the copies feed the consistency term, beside their clean images
            pairs = (x[torch.as_tensor(source)], extra_x)
        else:
            x, y = torch.cat([x, extra_x]), torch.cat([y, extra_y])
    typer.echo(chosen.describe())
    training = {"kind": "digits", "split_seed": 0, "image_size": image_size}  # the clean digits come first
    started = time.perf_counter()
    model = train_digits_cnn(x, y, seed, epochs, len(CLASS_NAMES), strategy=chosen, pairs=pairs,
                             checkpoints=CheckpointWriter(out / "checkpoints", training))  # fmt: skip
    seconds = time.perf_counter() - started
    test_x, test_y = splits["test"]
    with torch.no_grad():
        accuracy = float((model(test_x).argmax(1) == test_y).float().mean())
    metrics = {"test": {"accuracy": accuracy, "n": len(test_y)}, "train_digits": n_clean,
               "augmented_digits": len(y) - n_clean, "epochs": epochs, "seed": seed, "image_size": image_size,
               "strategy": chosen.settings(), "train_seconds": seconds,
               "pgd": pgd_accuracy(model, test_x, test_y, PGD_EPSILONS, value_range=(0.0, 1.0))}  # fmt: skip
    save_digits_cnn(out, model, image_size, extra=metrics)
    chosen.save(out)
    if plan is not None:
        plan.save(out)
    else:  # a plan left by an earlier training would misdescribe this model
        (out / PLAN_FILE).unlink(missing_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    key_file.write_text(json.dumps(key))
    typer.echo(
        f"model written to {out / MODEL_FILE} ({n_clean} digits + {len(y) - n_clean} augmented, {seconds:.0f} s); "
        f"test accuracy {accuracy:.3f}, {pgd_line(metrics['pgd'])}; sweep it with `model: {{path: {out}}}`"
    )

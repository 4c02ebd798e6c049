"""``proactiv experiment``: experiments that train models to test a claim about what they learn; today
``non-robust`` (Ilyas et al. 2019, :mod:`proactiv.experiments.nonrobust`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from proactiv.cli_errors import fail

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Experiments that train models to test what they learn."
)
console = Console(soft_wrap=True)


@app.command("non-robust")
def non_robust_command(
    task: Annotated[str, typer.Option(help="the task whose data and models are used: digits")] = "digits",
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="folder for nonrobust.json (default experiments/non-robust-<task>)"),
    ] = None,
    eps: Annotated[float, typer.Option(help="the attack's budget: the largest change, in the norm")] = 2.0,
    steps: Annotated[int, typer.Option(help="PGD steps per image")] = 50,
    norm: Annotated[str, typer.Option(help="l2 | linf")] = "l2",
    step_size: Annotated[float | None, typer.Option(help="PGD step (default 2.5 eps / steps)")] = None,
    epochs: Annotated[int, typer.Option(help="training epochs of every model")] = 30,
    seed: Annotated[int, typer.Option(help="seeds the training, the random targets and the subsets")] = 0,
    image_size: Annotated[int, typer.Option(help="digits: 28 (MNIST layout) or 8 (native)")] = 28,
    max_train: Annotated[int | None, typer.Option(help="attack at most this many training images")] = None,
    max_test: Annotated[int | None, typer.Option(help="test on at most this many clean images")] = None,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda[:N]")] = "auto",
    progress: Annotated[bool, typer.Option(help="show progress bars")] = True,
) -> None:
    """Attack every training image toward t = (y + 1) mod K (and toward a random t) with PGD within EPS,
    relabel it t, train a fresh model on each set alone and test it on the clean test set; also the transfer
    rate of the attacks to a second architecture. Prints the figures with chance beside them and writes
    OUT/nonrobust.json."""
    from proactiv.experiments.nonrobust import RESULT_FILE, non_robust

    say = lambda m: console.print(m, highlight=False, markup=False)  # noqa: E731
    out = out or Path("experiments") / f"non-robust-{task}"
    try:
        result = non_robust(task, out, image_size, progress, device, say, eps=eps, steps=steps, norm=norm,
                            step_size=step_size, epochs=epochs, seed=seed, max_train=max_train,
                            max_test=max_test)  # fmt: skip
    except ValueError as err:
        fail(as_option(err))
    except OSError as err:
        fail(err)
    say(result.describe())
    say(f"figures written to {out / RESULT_FILE}")


def as_option(err: ValueError) -> ValueError:
    """A setting's error in the words of the command line: ``max_train=0: …`` → ``--max-train 0: …``."""
    name, eq, rest = str(err).partition("=")
    name = name.removeprefix("data.")
    if eq and name.isidentifier():
        return ValueError(f"--{name.replace('_', '-')} {rest}")
    return err

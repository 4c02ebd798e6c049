"""Training strategies against a model's fragility: what ``--strategy`` picks in ``proactiv kws train`` and
``proactiv digits train``.

- ``augment`` (the default): the training set gains the run's transformed copies (``--augment-from RUN``,
  :mod:`proactiv.augment_plan`), each trained on with its label; without a run, plain training.
- ``adversarial``: every batch is replaced by its PGD perturbation within ε in the model's input space (the
  features the model reads, what the radius step measures) and trained on with its label (Madry et al. 2018:
  minimise the loss at the worst point of the ball, found by PGD from a random start).
- ``consistency``: the clean cross-entropy plus β times the KL divergence between the outputs on an input and on
  the run's transformed copy of it (TRADES, Zhang et al. 2019, keeps the outputs on x and on its worst
  perturbation close; here the perturbations are the run's own transforms at the conditions of its worst
  slices, so the model learns to answer the same under them rather than to call them a class).

A strategy is a small frozen object with its settings: the trainers store :meth:`TrainingStrategy.to_dict` in
the model folder and :meth:`TrainingStrategy.key` in their cache key, so another strategy trains again.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from proactiv.attack import check_budget, pgd
from proactiv.io import write_json

#: the strategies, in the order the CLI lists them
STRATEGIES = ("augment", "adversarial", "consistency")
#: the file a trained model's folder keeps its strategy in
STRATEGY_FILE = "training_strategy.json"

Criterion = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class TrainingStrategy:
    """One strategy and its settings (``epsilon``, ``steps``, ``norm``: the adversarial budget, in model-input
    units; ``beta``: the weight of the consistency term). Settings another strategy does not use are ignored."""

    name: str = "augment"
    epsilon: float = 1.0
    steps: int = 3
    norm: str = "l2"
    beta: float = 1.0

    def __post_init__(self):
        if self.name not in STRATEGIES:
            raise ValueError(f"strategy {self.name!r}: expected one of {', '.join(STRATEGIES)}")
        if self.name == "adversarial":
            check_budget(self.epsilon, self.steps, self.norm)
        if self.name == "consistency" and not 0 < self.beta < math.inf:
            raise ValueError(f"beta={self.beta}: expected a finite number > 0 (the weight of the consistency term)")

    @property
    def needs_plan(self) -> bool:
        """Whether training needs a run's transformed copies (``--augment-from RUN``)."""
        return self.name == "consistency"

    def settings(self) -> dict:
        """The name and the settings this strategy uses."""
        used = {"augment": (), "adversarial": ("epsilon", "steps", "norm"), "consistency": ("beta",)}
        return {"name": self.name, **{k: getattr(self, k) for k in used[self.name]}}

    def key(self) -> dict | None:
        """Part of a training's cache key: None for plain ``augment``, so models trained before strategies
        existed keep their key."""
        return None if self.name == "augment" else self.settings()

    def describe(self) -> str:
        if self.name == "adversarial":
            return (f"adversarial training: each batch moved by PGD ({self.steps} steps, random start) within "
                    f"{self.norm.upper()} ε = {self.epsilon:g} of the model inputs")  # fmt: skip
        if self.name == "consistency":
            return f"consistency training: cross-entropy + {self.beta:g} × KL(outputs on x ‖ on the run's copy of x)"
        return "augmentation: the run's transformed copies (if any) added to the training set"

    def save(self, folder: str | os.PathLike) -> Path:
        """Write the strategy as ``FOLDER/training_strategy.json`` (a trained model says how it was trained)."""
        return write_json(Path(folder) / STRATEGY_FILE, {**asdict(self), "used": self.settings()})

    @classmethod
    def load(cls, folder: str | os.PathLike) -> TrainingStrategy:
        """The strategy a model folder was trained with (``augment`` when it names none)."""
        path = Path(folder) / STRATEGY_FILE
        if not path.exists():
            return cls()
        try:
            data = json.loads(path.read_text())
            data.pop("used", None)
            return cls(**data)
        except (json.JSONDecodeError, TypeError, ValueError) as err:
            raise ValueError(f"{path}: not a training strategy ({type(err).__name__}: {err})") from None

    # ------------------------------------------------------------------------------------------ training
    def loss(
        self,
        net: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        criterion: Criterion,
        pair: tuple[torch.Tensor, torch.Tensor] | None = None,
        generator: torch.Generator | None = None,
        value_range: tuple[float, float] | None = None,
    ) -> torch.Tensor:
        """The training loss of one batch of model inputs ``x`` with labels ``y`` under this strategy.
        ``pair``: (inputs, the run's transformed copies of them) for ``consistency``; ``generator``: the random
        start of the adversarial attack; ``value_range``: where the attacked inputs must stay. The attack runs with the network in eval mode (batch-norm statistics
        are not moved by the attack's own passes)."""
        if self.name == "adversarial":
            was_training = net.training
            net.eval()
            x = pgd(net, x, y, self.epsilon, self.steps, self.norm, start=generator, value_range=value_range)
            net.train(was_training)
        loss = criterion(net(x), y)
        if self.name == "consistency":
            if pair is None:
                raise ValueError("consistency training needs pairs of inputs and transformed copies")
            clean, moved = pair
            loss = loss + self.beta * consistency_divergence(net(clean), net(moved))
        return loss


def consistency_divergence(clean_logits: torch.Tensor, moved_logits: torch.Tensor) -> torch.Tensor:
    """KL(p(clean) ‖ p(moved)) averaged over the batch: how much the outputs change under the transform."""
    return F.kl_div(
        F.log_softmax(moved_logits, 1), F.log_softmax(clean_logits, 1), reduction="batchmean", log_target=True
    )


def pgd_accuracy(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    epsilons: tuple[float, ...],
    norm: str = "l2",
    steps: int = 10,
    batch: int = 256,
    value_range: tuple[float, float] | None = None,
) -> dict:
    """Accuracy of ``model`` on ``x`` after a PGD attack within each ε of ``epsilons`` (``steps`` steps from the
    clean point on the cross-entropy of the true label): the robust accuracy a strategy is measured by, as
    ``{"norm", "steps", "n", "accuracy": {"<ε>": share}}`` for a model's metrics."""
    model.eval()
    accuracy = {}
    for eps in epsilons:
        right = 0
        for xb, yb in zip(x.split(batch), y.split(batch), strict=True):
            moved = pgd(model, xb, yb, eps, steps, norm, value_range=value_range)
            with torch.no_grad():
                right += int((model(moved).argmax(1) == yb).sum())
        accuracy[f"{eps:g}"] = right / max(1, len(y))
    return {"norm": norm, "steps": steps, "n": len(y), "accuracy": accuracy}


def pgd_line(report: dict) -> str:
    """One line for people from :func:`pgd_accuracy`'s result."""
    figures = ", ".join(f"ε {eps}: {share:.3f}" for eps, share in report["accuracy"].items())
    return f"accuracy under {report['norm'].upper()} PGD ({report['steps']} steps): {figures}"

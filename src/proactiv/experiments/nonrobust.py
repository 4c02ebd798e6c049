"""The non-robust-features experiment (Ilyas et al. 2019, "Adversarial Examples Are Not Bugs, They Are Features").

A model trained normally is attacked: every training image is pushed by targeted PGD, within a small ε, toward
the class t = (y + 1) mod K, and relabelled t. To a person the images still show y; only the features the model
is sensitive to (and a person is not) now point at t. A fresh model trained on that set alone, then tested on the
untouched clean test set, scores above chance only if those non-robust features are real and predictive of y in
the clean data: the claim the experiment tests. The random-target variant draws t at random per image (never y),
so the robust features carry no information about the label at all. The transfer rate (how often a second,
differently shaped model trained normally takes the adversarial images for t) says whether the features belong
to the data rather than to one network.

Written here because no library runs the whole protocol: what the task must supply (data, the two architectures'
training) comes in an :class:`ExperimentParts`; :data:`TASKS` builds it for the tasks that have one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from proactiv.attack import check_budget, pgd
from proactiv.device import resolve_device
from proactiv.io import write_json
from proactiv.progress import progress_bar

#: the JSON file an experiment writes into its ``out`` folder
RESULT_FILE = "nonrobust.json"
#: images attacked (and evaluated) per batch
BATCH = 128

#: what each figure is, in the order printed (all are shares of images, with chance 1/K beside them)
FIGURES = {
    "source_clean_accuracy": "source model ({source}), accuracy on the clean test set",
    "attack_success_deterministic": "attack success on the source, t = (y + 1) mod K",
    "attack_success_random": "attack success on the source, t random",
    "deterministic_clean_accuracy": "model trained on the t = (y + 1) mod K set, clean test accuracy",
    "random_clean_accuracy": "model trained on the random-target set, clean test accuracy",
    "transfer_rate": "transfer: {second} trained normally takes the t = (y + 1) images for t",
    "second_clean_accuracy": "{second} trained normally, accuracy on the clean test set",
    "deterministic_predicts_shifted": "model trained on the t = (y + 1) set predicts y + 1 on clean test",
}

#: trains a fresh model: (images, labels, seed, progress) → a model in eval mode
Trainer = Callable[[torch.Tensor, torch.Tensor, int, bool], nn.Module]


@dataclass(frozen=True)
class NonRobustSettings:
    """The attack's budget and the training of the fresh models; validated here, once, naming the setting."""

    eps: float = 2.0
    steps: int = 50
    norm: str = "l2"
    step_size: float | None = None
    epochs: int = 30
    seed: int = 0
    max_train: int | None = None
    max_test: int | None = None

    def __post_init__(self):
        check_budget(self.eps, self.steps, self.norm)
        if self.step_size is not None and not self.step_size > 0:
            raise ValueError(f"step_size={self.step_size}: expected a number > 0 (or none: 2.5 eps / steps)")
        if self.epochs < 1:
            raise ValueError(f"epochs={self.epochs}: expected a whole number >= 1")
        for name in ("max_train", "max_test"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name}={value}: expected a whole number >= 1 (or none: every image)")


@dataclass
class ExperimentParts:
    """What the experiment needs from a task: a training and a clean test split (images and labels y), the
    class names, how to train the source architecture and a second, differently shaped one, and the valid
    input range the attack stays in."""

    train: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]
    class_names: list[str]
    train_model: Trainer
    train_second: Trainer
    source_name: str = "source"
    second_name: str = "second"
    value_range: tuple[float, float] | None = (0.0, 1.0)
    description: dict = field(default_factory=dict)


@dataclass
class NonRobustResult:
    """The figures (shares in [0, 1]) with chance beside them, the sizes of the changes, the settings and the
    seconds per phase; the relabelled sets themselves (``labels`` y of the attacked images, the targets and the
    moved images of both variants) for a closer look."""

    figures: dict[str, float]
    chance: float
    sizes: dict[str, float]
    settings: dict
    counts: dict[str, int]
    seconds: dict[str, float]
    description: dict
    labels: torch.Tensor
    deterministic_targets: torch.Tensor
    random_targets: torch.Tensor
    deterministic_images: torch.Tensor
    random_images: torch.Tensor

    def describe(self) -> str:
        """The figures as a table a person reads, chance beside each."""
        names = {"source": self.description.get("source", "source"), "second": self.description.get("second")}
        lines = [
            f"non-robust features on {self.description.get('task', 'the task')}: {self.counts['train']} training "
            f"images attacked ({self.settings['norm']} eps {self.settings['eps']:g}, {self.settings['steps']} steps),"
            f" {self.counts['test']} clean test images, K = {self.counts['classes']}"
        ]
        lines += [
            f"  {FIGURES[k].format(**names):<74} {v:6.3f}   (chance {self.chance:.3f})"
            for k, v in self.figures.items()
        ]
        lines.append(
            f"  median change L2 {self.sizes['change_l2_median']:.3g} (image L2 {self.sizes['image_l2_median']:.3g}),"
            f" median change Linf {self.sizes['change_linf_median']:.3g}; {sum(self.seconds.values()):.0f} s"
        )
        return "\n".join(lines)

    def to_json(self) -> dict:
        """What :meth:`save` writes: every figure with its meaning, chance, sizes, settings, counts, seconds."""
        names = {"source": self.description.get("source", "source"), "second": self.description.get("second")}
        return {
            "experiment": "non-robust features (Ilyas et al. 2019)",
            "description": self.description,
            "chance": self.chance,
            "figures": self.figures,
            "meaning": {k: FIGURES[k].format(**names) for k in self.figures},
            "sizes": self.sizes,
            "settings": self.settings,
            "counts": self.counts,
            "seconds": self.seconds,
            "torch": torch.__version__,
        }

    def save(self, out: str | Path) -> Path:
        """Write ``OUT/nonrobust.json`` (atomically; OUT is made when missing) and return its path."""
        Path(out).mkdir(parents=True, exist_ok=True)
        return write_json(Path(out) / RESULT_FILE, self.to_json())


def deterministic_targets(labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """t = (y + 1) mod K: every image gets the next class, never its own."""
    return (labels + 1) % n_classes


def random_targets(labels: torch.Tensor, n_classes: int, seed: int) -> torch.Tensor:
    """A class drawn uniformly per image among the K - 1 others (never y, so no clean label leaks in), from a
    generator seeded by ``seed``: the same labels and seed give the same targets."""
    gen = torch.Generator().manual_seed(int(seed))
    shift = torch.randint(1, n_classes, labels.shape, generator=gen)
    return (labels + shift) % n_classes


def predict(model: nn.Module, x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """The model's classes for ``x``, in batches, on the CPU."""
    with torch.no_grad():
        return torch.cat([model(b.to(device)).argmax(1).cpu() for b in x.split(BATCH)])


def relabelled_set(
    model: nn.Module,
    images: torch.Tensor,
    targets: torch.Tensor,
    settings: NonRobustSettings,
    value_range: tuple[float, float] | None,
    device: torch.device,
    progress: bool = True,
    what: str = "PGD toward t",
) -> torch.Tensor:
    """Every image moved toward its target by :func:`~proactiv.attack.pgd` (targeted), in batches
    (a bar with the ETA); the moved images on the CPU. Their labels are ``targets``, nothing else."""
    moved = []
    with progress_bar("images", progress) as bar:
        task = bar.add_task(what, total=len(images))
        for x, t in zip(images.split(BATCH), targets.split(BATCH), strict=True):
            z = pgd(model, x.to(device), t.to(device), settings.eps, settings.steps, settings.norm, targeted=True,
                    step_size=settings.step_size, value_range=value_range)
            moved.append(z.cpu())
            bar.advance(task, len(x))
    return torch.cat(moved)


def _subset(x: torch.Tensor, y: torch.Tensor, n: int | None, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """At most ``n`` images, a seeded draw kept in their original order (all when None)."""
    if n is None or n >= len(y):
        return x, y
    keep = torch.randperm(len(y), generator=torch.Generator().manual_seed(int(seed)))[:n].sort().values
    return x[keep], y[keep]


def non_robust_features(
    parts: ExperimentParts,
    settings: NonRobustSettings | None = None,
    progress: bool = True,
    device: str | torch.device = "auto",
    say: Callable[[str], None] = lambda _: None,
) -> NonRobustResult:
    """Run the experiment on ``parts`` (any task's data and trainers): train the source model, build the
    deterministic and the random-target relabelled sets with it, train a fresh model on each alone and test
    both on the clean test set, and measure how often the second architecture takes the adversarial images for
    their target. ``say`` hears one line per phase."""
    settings = settings or NonRobustSettings()
    device = resolve_device(device)
    k = len(parts.class_names)
    x, y = _subset(*parts.train, settings.max_train, settings.seed)
    test_x, test_y = _subset(*parts.test, settings.max_test, settings.seed + 1)
    seconds: dict[str, float] = {}
    began = time.perf_counter()

    def lap(phase: str) -> None:
        nonlocal began
        seconds[phase] = round(time.perf_counter() - began, 2)
        began = time.perf_counter()

    def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
        return float((predict(model.to(device), images, device) == labels).float().mean())

    say(f"training the source {parts.source_name} on {len(y)} clean images")
    source = parts.train_model(x, y, settings.seed, progress).to(device).eval()
    lap("train_source")
    det_t = deterministic_targets(y, k)
    rand_t = random_targets(y, k, settings.seed)
    say(f"attacking every training image ({settings.norm}, eps {settings.eps:g}, {settings.steps} steps)")
    det_x = relabelled_set(
        source, x, det_t, settings, parts.value_range, device, progress, "PGD toward (y+1) mod K"
    )
    rand_x = relabelled_set(
        source, x, rand_t, settings, parts.value_range, device, progress, "PGD toward random t"
    )
    lap("attack")
    say(f"training a fresh {parts.source_name} on each relabelled set alone")
    det_model = parts.train_model(det_x, det_t, settings.seed, progress)
    rand_model = parts.train_model(rand_x, rand_t, settings.seed, progress)
    lap("train_relabelled")
    say(f"training the second architecture ({parts.second_name}) on the clean images")
    second = parts.train_second(x, y, settings.seed, progress)
    lap("train_second")
    det_pred = predict(det_model.to(device).eval(), test_x, device)
    figures = {
        "source_clean_accuracy": accuracy(source, test_x, test_y),
        "attack_success_deterministic": accuracy(source, det_x, det_t),
        "attack_success_random": accuracy(source, rand_x, rand_t),
        "deterministic_clean_accuracy": float((det_pred == test_y).float().mean()),
        "random_clean_accuracy": accuracy(rand_model, test_x, test_y),
        "transfer_rate": accuracy(second, det_x, det_t),
        "second_clean_accuracy": accuracy(second, test_x, test_y),
        "deterministic_predicts_shifted": float(
            (det_pred == deterministic_targets(test_y, k)).float().mean()
        ),
    }
    change = det_x - x
    sizes = {
        "change_l2_median": float(change.flatten(1).norm(dim=1).median()),
        "change_linf_median": float(change.flatten(1).abs().amax(1).median()),
        "image_l2_median": float(x.flatten(1).norm(dim=1).median()),
    }
    lap("evaluate")
    description = {**parts.description, "source": parts.source_name, "second": parts.second_name}
    return NonRobustResult(
        figures={name: round(v, 4) for name, v in figures.items()},
        chance=1 / k,
        sizes={name: round(v, 4) for name, v in sizes.items()},
        settings=asdict(settings),
        counts={"train": len(y), "test": len(test_y), "classes": k},
        seconds=seconds,
        description=description,
        labels=y,
        deterministic_targets=det_t,
        random_targets=rand_t,
        deterministic_images=det_x,
        random_images=rand_x,
    )


def digits_parts(image_size: int = 28, epochs: int = 30) -> ExperimentParts:
    """The digits task's parts: its 70/30 split, the digits CNN as the source architecture and an MLP as the
    second."""
    from proactiv.tasks.digits import CLASS_NAMES, digits_split
    from proactiv.tasks.digits.mlp import train_digits_mlp
    from proactiv.tasks.digits.model import train_digits_cnn

    k = len(CLASS_NAMES)
    splits = digits_split(0, image_size)
    return ExperimentParts(
        train=splits["train"],
        test=splits["test"],
        class_names=CLASS_NAMES,
        train_model=lambda x, y, seed, progress: train_digits_cnn(x, y, seed, epochs, k, progress),
        train_second=lambda x, y, seed, progress: train_digits_mlp(x, y, seed, epochs, k, progress),
        source_name="CNN",
        second_name="MLP",
        value_range=(0.0, 1.0),
        description={"task": "digits", "split_seed": 0, "image_size": image_size},
    )


#: task name → its parts, built from (image_size, epochs)
TASKS: dict[str, Callable[..., ExperimentParts]] = {"digits": digits_parts}


def non_robust(
    task: str = "digits",
    out: str | Path | None = None,
    image_size: int = 28,
    progress: bool = True,
    device: str | torch.device = "auto",
    say: Callable[[str], None] = lambda _: None,
    **settings,
) -> NonRobustResult:
    """The experiment on a named task (``settings``: those of :class:`NonRobustSettings`); written to
    ``OUT/nonrobust.json`` when ``out`` is given.

    Examples
    --------
    >>> from proactiv.experiments import non_robust
    >>> result = non_robust("digits", image_size=8, eps=1.0, steps=5, epochs=2, max_train=200,
    ...                     max_test=100, progress=False)
    >>> sorted(result.figures)[:2]
    ['attack_success_deterministic', 'attack_success_random']
    """
    if task not in TASKS:
        raise ValueError(f"task={task!r}: expected one of {', '.join(TASKS)}")
    checked = NonRobustSettings(**settings)  # refused before any data is loaded
    device = resolve_device(device)
    if out is not None:  # a folder that cannot be made fails now, not after minutes of training
        Path(out).mkdir(parents=True, exist_ok=True)
    result = non_robust_features(TASKS[task](image_size, checked.epochs), checked, progress, device, say)
    if out is not None:
        result.save(out)
    return result

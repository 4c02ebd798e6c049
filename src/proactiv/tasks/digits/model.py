"""A small CNN for handwritten characters (digits, EMNIST letters), trained in seconds to minutes and cached."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from proactiv.checkpoints import CACHE_SUFFIX, FORMAT, CheckpointWriter
from proactiv.io import write_torch
from proactiv.progress import progress_bar
from proactiv.robust_training import TrainingStrategy
from proactiv.tasks.base import cache_dir


class DigitsCNN(nn.Module):
    """Two 3×3 convolutions and a linear read-out on (N, 1, S, S) images in [0, 1].

    At S = 28 both convolutions are followed by 2×2 pooling (→ 7×7, ~20 k parameters, ~1 M multiply-adds);
    at the native 8×8 of scikit-learn's digits only the second one is (→ 4×4, ~10 k parameters).
    """

    def __init__(self, n_classes: int = 10, image_size: int = 28):
        super().__init__()
        first_pool = image_size >= 16
        side = image_size // 4 if first_pool else image_size // 2
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2) if first_pool else nn.Identity(),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Linear(32 * side * side, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


def train_digits_cnn(
    images: torch.Tensor,
    labels: torch.Tensor,
    seed: int = 0,
    epochs: int = 30,
    n_classes: int | None = None,
    progress: bool = False,
    checkpoints: CheckpointWriter | None = None,
    strategy: TrainingStrategy | None = None,
    pairs: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> DigitsCNN:
    """Train with Adam on shuffled minibatches of 64; deterministic for a seed on the CPU. ``checkpoints``
    saves a few along the way (see :mod:`proactiv.checkpoints`); ``strategy`` and ``pairs``: see
    :func:`fit_digits`."""
    n = n_classes or int(labels.max()) + 1
    return fit_digits(lambda: DigitsCNN(n, images.shape[-1]), images, labels, seed, epochs, progress,
                      checkpoints, "the CNN", strategy, pairs)  # fmt: skip


def fit_digits(
    build: Callable[[], nn.Module],
    images: torch.Tensor,
    labels: torch.Tensor,
    seed: int,
    epochs: int,
    progress: bool,
    checkpoints: CheckpointWriter | None = None,
    what: str = "the model",
    strategy: TrainingStrategy | None = None,
    pairs: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> nn.Module:
    """The digits recipe for any network ``build()`` makes (after seeding, so its initial weights follow the
    seed too): Adam at 3e-3 on shuffled minibatches of 64, cross-entropy; returned in eval mode. ``strategy``
    (:mod:`proactiv.robust_training`; default plain training) decides each batch's loss, with images in [0, 1];
    ``pairs`` (images, their transformed copies) feed the consistency term, a random 64 of them per batch."""
    strategy = strategy or TrainingStrategy()
    if strategy.needs_plan and (pairs is None or len(pairs[0]) == 0):
        raise ValueError(f"{strategy.name} training needs transformed copies of training images (--augment-from RUN)")
    torch.manual_seed(seed)
    model = build()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(seed)
    with progress_bar("images", progress) as bar:
        task = bar.add_task(f"training {what}", total=epochs * images.shape[0])
        for epoch in range(epochs):
            for batch in torch.randperm(images.shape[0], generator=gen).split(64):
                opt.zero_grad()
                pair = None
                if strategy.needs_plan:
                    drawn = torch.randint(len(pairs[0]), (len(batch),), generator=gen)
                    pair = (pairs[0][drawn], pairs[1][drawn])
                loss = strategy.loss(model, images[batch], labels[batch], nn.functional.cross_entropy, pair, gen,
                                     value_range=(0.0, 1.0))  # fmt: skip
                loss.backward()
                opt.step()
                bar.advance(task, len(batch))
            if checkpoints is not None:
                checkpoints.epoch_done(epoch + 1, epochs, model, opt.param_groups[0]["lr"])
    if checkpoints is not None:
        checkpoints.finish(model)
    return model.eval()


#: what :func:`save_digits_cnn` writes (read back by :func:`load_digits_cnn`)
MODEL_FORMAT = "proactiv.digits-cnn/1"
MODEL_FILE = "model.pt"


def save_digits_cnn(
    folder: str | os.PathLike, model: DigitsCNN, image_size: int, extra: dict | None = None
) -> Path:
    """Write a trained CNN as ``FOLDER/model.pt`` (weights, class count, image size, ``extra`` facts), for a
    config's ``model: {path: FOLDER}``."""
    path = Path(folder) / MODEL_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": MODEL_FORMAT,
        "n_classes": model.head.out_features,
        "image_size": int(image_size),
        "state_dict": model.state_dict(),
        "extra": extra or {},
    }
    return write_torch(path, payload)


def load_digits_cnn(path: str | os.PathLike) -> DigitsCNN:
    """A CNN written by :func:`save_digits_cnn` (``path``: the file or its folder), in eval mode; errors name
    the file."""
    path = Path(path)
    path = path / MODEL_FILE if path.is_dir() else path
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: no such model file; train one with `proactiv digits train --out DIR`"
        )
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(data, dict) or data.get("format") != MODEL_FORMAT:
            got = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise ValueError(f"format {got!r}, expected {MODEL_FORMAT!r}")
        model = DigitsCNN(int(data["n_classes"]), int(data["image_size"]))
        model.load_state_dict(data["state_dict"])
    except Exception as err:  # torch raises many types for corrupt files
        raise ValueError(f"{path}: not a digits CNN of `proactiv digits train` ({err})") from None
    return model.eval()


def cached_model(name: str, make: callable, build: callable) -> nn.Module:
    """The model cached under ``name`` (a ``build()`` skeleton loaded with saved weights), else ``make()`` it.

    A corrupt or incompatible cache entry is trained again rather than trusted.
    """
    path = cache_file(name)
    if path.exists():
        model = build()
        try:
            model.load_state_dict(torch.load(path, weights_only=True))
            return model.eval()
        except (RuntimeError, OSError, EOFError):
            path.unlink(missing_ok=True)
    model = make()
    write_torch(path, model.state_dict())
    return model.eval()


def cache_file(name: str) -> Path:
    """Where the model cached under ``name`` keeps its weights (its checkpoints: the same name with
    :data:`~proactiv.checkpoints.CACHE_SUFFIX` instead of ``.pt``)."""
    return cache_dir() / f"{name}-torch{torch.__version__}.pt"


def training_key(images: torch.Tensor, labels: torch.Tensor, **settings) -> str:
    """A short fingerprint of training data and settings, for cache names."""
    h = hashlib.sha256(images.numpy().tobytes())
    h.update(labels.numpy().tobytes())
    h.update(repr(sorted(settings.items())).encode())
    return h.hexdigest()[:12]


def cached_digits_cnn(
    images: torch.Tensor,
    labels: torch.Tensor,
    seed: int = 0,
    epochs: int = 30,
    n_classes: int | None = None,
    progress: bool = False,
    training: dict | None = None,
) -> DigitsCNN:
    """The trained CNN for these images and settings, from the cache when it was trained before. A training
    here also saves checkpoints next to the cached weights; ``training`` says how to rebuild the training
    set for them (a spec of :mod:`proactiv.checkpoints`; None: they cannot say)."""
    n_classes = n_classes or int(labels.max()) + 1
    # the checkpoint format is part of the key: a model cached before checkpoints existed is trained again
    key = training_key(images, labels, seed=seed, epochs=epochs, n_classes=n_classes, checkpoints=FORMAT)
    name = f"digits-cnn-{images.shape[-1]}px-{key}"

    def make() -> DigitsCNN:
        writer = CheckpointWriter(cache_file(name).with_suffix(CACHE_SUFFIX), training)
        return train_digits_cnn(images, labels, seed, epochs, n_classes, progress, writer)

    return cached_model(name, make, lambda: DigitsCNN(n_classes, images.shape[-1]))

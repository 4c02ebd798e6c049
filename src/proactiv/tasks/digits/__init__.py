"""Image tasks on handwritten characters, with no download: scikit-learn's bundled digits (upsampled to the
28×28 MNIST/EMNIST layout) and a small CNN; an EMNIST loader for users who have the files; a denoising
autoencoder for the image-to-image example (:mod:`proactiv.tasks.digits.denoise`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from proactiv.checkpoints import TrainingSet
from proactiv.tasks.base import TaskData, pick_per_class
from proactiv.tasks.digits.emnist import load_emnist, read_idx
from proactiv.tasks.digits.model import DigitsCNN, cached_digits_cnn, train_digits_cnn

CLASS_NAMES = [str(d) for d in range(10)]
#: side of the box the digit fills inside a 28×28 image, as in MNIST (20×20 digit, 4-pixel margin)
MNIST_BOX = 20


def upsample(images: torch.Tensor, image_size: int) -> torch.Tensor:
    """8×8 digits → ``image_size``² with the MNIST layout: bilinear up to a centred box, a blank margin.

    The margin leaves room for rotation, translation and scaling to move the digit without cutting it.
    """
    if image_size == images.shape[-1]:
        return images
    box = round(image_size * MNIST_BOX / 28)
    big = F.interpolate(images, size=(box, box), mode="bilinear", align_corners=False).clamp(0, 1)
    lo = (image_size - box) // 2
    return F.pad(big, (lo, image_size - box - lo, lo, image_size - box - lo))


def digits_split(seed: int = 0, image_size: int = 28) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Images (N, 1, S, S) in [0, 1] and labels, split 70/30 stratified: ``{"train": …, "test": …}``.

    ``image_size`` 28 (default) upsamples to the MNIST layout; 8 keeps scikit-learn's native resolution.
    """
    if not 8 <= image_size <= 128:
        raise ValueError(f"data.image_size={image_size}: expected 8 (native) to 128 pixels")
    data = load_digits()
    x = upsample(torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0, image_size)
    y = torch.tensor(data.target, dtype=torch.long)
    idx_train, idx_test = train_test_split(
        torch.arange(len(y)).numpy(), test_size=0.3, random_state=seed, stratify=y.numpy()
    )
    return {"train": (x[idx_train], y[idx_train]), "test": (x[idx_test], y[idx_test])}


def load_task(
    instances_per_class: int | None = 5, seed: int = 0, split: str = "test", image_size: int = 28
) -> TaskData:
    """Model + instances for a sweep; the model is trained once (seconds) and cached."""
    splits = digits_split(0, image_size)
    if split not in splits:
        raise ValueError(f"data.split={split!r}: the digits task has splits {sorted(splits)}")
    model = cached_digits_cnn(
        *splits["train"], seed=0, training={"kind": "digits", "split_seed": 0, "image_size": image_size}
    )
    x, y = splits[split]
    chosen = pick_per_class(y, instances_per_class, seed)
    return TaskData(
        model=model,
        inputs=x[chosen],
        labels=y[chosen],
        class_names=CLASS_NAMES,
        metadata=None,
        projection_defaults={"clamp": (0.0, 1.0)},
        description={"task": "digits", "split": split, "image_size": image_size, "indices": chosen.tolist()},
        pixel_range=1.0,
        input_kind="image",
    )


def training_set(spec: dict, folder: Path) -> TrainingSet:
    """The digits a CNN was trained on (a ``digits`` training-set spec of :mod:`proactiv.checkpoints`: split
    seed and image size)."""
    x, y = digits_split(int(spec.get("split_seed", 0)), int(spec.get("image_size", 28)))["train"]
    return TrainingSet(y, pd.DataFrame(index=range(len(y))), lambda idx: x if idx is None else x[idx])


__all__ = [
    "CLASS_NAMES",
    "DigitsCNN",
    "cached_digits_cnn",
    "digits_split",
    "load_emnist",
    "load_task",
    "read_idx",
    "train_digits_cnn",
    "upsample",
]

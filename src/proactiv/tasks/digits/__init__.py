"""The toy task: scikit-learn's bundled 8×8 handwritten digits and a small CNN (no download needed)."""

from __future__ import annotations

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from proactiv.tasks.base import TaskData, pick_per_class
from proactiv.tasks.digits.model import DigitsCNN, cached_digits_cnn, train_digits_cnn

CLASS_NAMES = [str(d) for d in range(10)]


def digits_split(seed: int = 0) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Images (N, 1, 8, 8) in [0, 1] and labels, split 70/30 stratified: ``{"train": …, "test": …}``."""
    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(data.target, dtype=torch.long)
    idx_train, idx_test = train_test_split(
        torch.arange(len(y)).numpy(), test_size=0.3, random_state=seed, stratify=y.numpy()
    )
    return {"train": (x[idx_train], y[idx_train]), "test": (x[idx_test], y[idx_test])}


def load_task(instances_per_class: int | None = 5, seed: int = 0, split: str = "test") -> TaskData:
    """Model + instances for a sweep; the model is trained once and cached."""
    splits = digits_split(0)
    if split not in splits:
        raise ValueError(f"data.split={split!r}: the digits task has splits {sorted(splits)}")
    model = cached_digits_cnn(*splits["train"], seed=0)
    x, y = splits[split]
    chosen = pick_per_class(y, instances_per_class, seed)
    return TaskData(
        model=model,
        inputs=x[chosen],
        labels=y[chosen],
        class_names=CLASS_NAMES,
        metadata=None,
        projection_defaults={"clamp": None},
        description={"task": "digits", "split": split, "indices": chosen.tolist()},
    )


__all__ = ["CLASS_NAMES", "DigitsCNN", "cached_digits_cnn", "digits_split", "load_task", "train_digits_cnn"]

"""What every task uses: :class:`TaskData` and :func:`cache_dir` (from :mod:`proactiv.task_data`, where the
engine reads them too) and a seeded choice of instances per class."""

from __future__ import annotations

import torch

from proactiv.task_data import TaskData, cache_dir


def pick_per_class(labels: torch.Tensor, per_class: int | None, seed: int) -> torch.Tensor:
    """Indices of ``per_class`` instances of every class (all when None), chosen by a seeded shuffle, sorted."""
    if per_class is None:
        return torch.arange(labels.shape[0])
    gen = torch.Generator().manual_seed(int(seed))
    order = torch.randperm(labels.shape[0], generator=gen)
    chosen = [order[labels[order] == c][:per_class] for c in torch.unique(labels)]
    return torch.sort(torch.cat(chosen)).values


__all__ = ["TaskData", "cache_dir", "pick_per_class"]

"""Data sources: what ``pv.sweep`` reads a unit at a time instead of an inputs tensor (:mod:`.base`).

``pv.sweep(model, data, grid, out)`` takes as ``data`` tensors, a :class:`~proactiv.task_data.TaskData`, a
:class:`Source`, or a torch ``Dataset`` / ``IterableDataset`` (read as :class:`DatasetSource` with its defaults).
"""

from __future__ import annotations

from torch.utils.data import Dataset, IterableDataset

from proactiv.sources.base import Source
from proactiv.sources.torch_data import DatasetSource

__all__ = ["DatasetSource", "Source", "as_source", "from_dataset"]


def from_dataset(dataset, **options) -> DatasetSource:
    """A torch ``Dataset`` or ``IterableDataset`` as a source (see :class:`DatasetSource` for ``options``)."""
    return DatasetSource(dataset, **options)


def as_source(data) -> Source | None:
    """``data`` as a source when it is one or a torch dataset; None for anything else (tensors, TaskData)."""
    if isinstance(data, Source):
        return data
    if isinstance(data, (Dataset, IterableDataset)):
        return DatasetSource(data)
    return None

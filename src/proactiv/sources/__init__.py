"""Data sources: what ``pv.sweep`` reads a unit at a time instead of an inputs tensor (:mod:`.base`).

``pv.sweep(model, data, grid, out)`` takes as ``data`` tensors, a :class:`~proactiv.task_data.TaskData`, a
:class:`Source`, or a torch ``Dataset`` / ``IterableDataset`` (read as :class:`DatasetSource` with its defaults).
A folder of class folders (:func:`from_folder`), a table (:func:`from_table`) and a Hugging Face dataset
(:func:`from_hf`) are sources made by a function, which names what the data cannot say itself.
"""

from __future__ import annotations

import pandas as pd
from torch.utils.data import Dataset, IterableDataset

from proactiv.sources.base import Source
from proactiv.sources.folder import FolderSource
from proactiv.sources.hf import HFSource
from proactiv.sources.table import TableSource
from proactiv.sources.torch_data import DatasetSource

__all__ = [
    "DatasetSource",
    "FolderSource",
    "HFSource",
    "Source",
    "TableSource",
    "as_source",
    "from_dataset",
    "from_folder",
    "from_hf",
    "from_table",
]


def from_dataset(dataset, **options) -> DatasetSource:
    """A torch ``Dataset`` or ``IterableDataset`` as a source (see :class:`DatasetSource` for ``options``)."""
    return DatasetSource(dataset, **options)


def from_folder(root, **options) -> FolderSource:
    """Class folders of images or WAV clips (torchvision's ImageFolder layout, Speech Commands) as a source
    (see :class:`FolderSource` for ``options``)."""
    return FolderSource(root, **options)


def from_table(table, label: str, **options) -> TableSource:
    """A CSV / Parquet file or a DataFrame as a source of feature vectors (see :class:`TableSource`)."""
    return TableSource(table, label, **options)


def from_hf(dataset, input, label: str, **options) -> HFSource:
    """A Hugging Face dataset (in memory, a split of a DatasetDict, or saved to disk) as a source (see
    :class:`HFSource`); needs ``pip install 'proactiv[data]'``."""
    return HFSource(dataset, input, label, **options)


def as_source(data) -> Source | None:
    """``data`` as a source when it is one or a torch dataset; None for anything else (tensors, TaskData). A
    Hugging Face dataset or a DataFrame is refused with the function that reads it (it names its columns)."""
    if isinstance(data, Source):
        return data
    if isinstance(data, (Dataset, IterableDataset)):
        return DatasetSource(data)
    if type(data).__module__.split(".")[0] == "datasets":  # its rows do not say which column is the input
        raise TypeError(
            "data: a Hugging Face dataset is read by pv.sources.from_hf(dataset, input=COLUMN, label=COLUMN)"
        )
    if isinstance(data, pd.DataFrame):
        raise TypeError("data: a table is read by pv.sources.from_table(frame, label=COLUMN)")
    return None

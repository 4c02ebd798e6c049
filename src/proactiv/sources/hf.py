"""A Hugging Face ``datasets.Dataset`` as a source: an input column (images, audio, numbers) and a label column.

The dataset is one in memory, one split of a ``DatasetDict``, or one saved with ``save_to_disk`` (a path,
loaded by ``datasets.load_from_disk``: memory-mapped, so pickling it with the run keeps only its path). Image
and audio columns are read undecoded (``decode=False``) and decoded here as a folder's files are
(:mod:`proactiv.sources.media`): audio without ffmpeg or torchcodec, so WAV only. Rows are read by index a
block at a time, so a sweep holds no more decoded rows than a unit's.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from proactiv.extras import require
from proactiv.sources.base import Source
from proactiv.sources.media import Clips, Images, read_wav

#: rows decoded at a time during the scan
BLOCK = 64


class HFSource(Source):
    """The rows of a Hugging Face dataset.

    Parameters
    ----------
    dataset : a ``datasets.Dataset``, a ``DatasetDict`` (then ``split=``), or the path of one saved with
        ``save_to_disk``.
    input : the input column: an ``Image`` (inputs (C, H, W) in [0, 1]), an ``Audio`` (WAV: mono waveforms), or
        numbers (a value, a list or an array a row); or a list of numeric columns, read as one vector a row.
    label : the label column: a ``ClassLabel`` (its names are the class names), strings (classes, numbered in
        sorted order), integers (class indices), floats (regression targets, (1,) a row) or arrays (targets).
    metadata : columns kept as ``meta.*`` columns of the records.
    split : the split of a ``DatasetDict``.
    size, mode : images: as :class:`~proactiv.sources.folder.FolderSource`'s.
    sample_rate, seconds : audio: as :class:`~proactiv.sources.folder.FolderSource`'s (default rate: the
        ``Audio`` feature's, else the first clip's).
    """

    def __init__(self, dataset, input: str | Sequence[str], label: str, metadata: Sequence[str] = (),
                 split: str | None = None, size: int | tuple[int, int] | None = None, mode: str = "RGB",
                 sample_rate: int | None = None, seconds: float | None = None):  # fmt: skip
        super().__init__()
        datasets = require("datasets", "data", "reading a Hugging Face dataset")
        self.path, self.split, self.media = None, split, None
        self.input, self.label, self.metadata_columns = input, label, list(metadata)
        if isinstance(dataset, (str, os.PathLike)):
            self.path = Path(dataset).expanduser().resolve()
            if not self.path.exists():
                raise FileNotFoundError(
                    f"{dataset}: no such folder (expected a dataset saved with save_to_disk)"
                )
            dataset = datasets.load_from_disk(str(self.path))
        if isinstance(dataset, datasets.DatasetDict):
            if split not in dataset:
                raise ValueError(
                    f"{self.where(None)}: split={split!r}; the dataset's splits are {', '.join(dataset)}"
                )
            dataset = dataset[split]
        elif split is not None:
            raise ValueError(
                f"split={split!r}: the dataset is one split already (split= picks one of a DatasetDict)"
            )
        if not isinstance(dataset, datasets.Dataset):
            raise TypeError(
                f"dataset: expected a datasets.Dataset, a DatasetDict or a save_to_disk folder, got "
                f"{type(dataset).__name__} (a streamed dataset: load it without streaming=True)"
            )
        if len(dataset) == 0:
            raise ValueError(f"{self.where(None)}: the dataset has no rows")
        inputs = [input] if isinstance(input, str) else list(input)
        for column in [*inputs, label, *self.metadata_columns]:
            if column not in dataset.column_names:
                raise KeyError(
                    f"{self.where(None)}: no column {column!r} (columns: {', '.join(dataset.column_names)})"
                )
        feature = dataset.features[inputs[0]] if isinstance(input, str) else None
        if isinstance(feature, datasets.Image):
            self.media = Images(size, mode)
            dataset = dataset.cast_column(input, datasets.Image(decode=False))
        elif isinstance(feature, datasets.Audio):
            dataset = dataset.cast_column(input, datasets.Audio(decode=False))
            rate = (
                sample_rate
                or feature.sampling_rate
                or read_wav(_file(dataset[0][input]), f"row 0 of {input!r}")[1]
            )
            self.media = Clips(rate, seconds)
        elif not isinstance(input, str):
            self.input_kind = "vector"
        if self.media is not None:
            self.input_kind, self.pixel_range = self.media.input_kind, self.media.pixel_range
            self.sample_rate = self.media.sample_rate
        target = dataset.features[label]
        dtype = getattr(target, "dtype", "")
        #: how a label value becomes a label: "names" (strings: indices of the sorted names), "float" (a (1,)
        #: regression target) or "as is" (class indices, target arrays)
        self.label_rule = "as is"
        if dtype in ("string", "large_string"):
            self.label_rule = "names"
        elif dtype.startswith("float"):
            self.label_rule = "float"
        if isinstance(target, datasets.ClassLabel):
            self.class_names = list(target.names)
        elif self.label_rule == "names":
            self.class_names = sorted(dataset.unique(label))
        self.dataset = dataset.select_columns(list(dict.fromkeys([*inputs, label, *self.metadata_columns])))

    def describe(self) -> dict:
        place = {"path": str(self.path)} if self.path is not None else {"type": "Dataset"}
        return {"kind": "hugging face dataset", **place, "split": self.split, "input": self.input,
                "label": self.label, "metadata": self.metadata_columns,
                **(self.media.describe() if self.media is not None else {})}  # fmt: skip

    def known_length(self) -> int:
        return len(self.dataset)

    def _items(self, ids):
        ids = list(range(len(self.dataset))) if ids is None else list(ids)
        read = self.media.reader() if self.media is not None else None
        index = {n: i for i, n in enumerate(self.class_names)} if self.label_rule == "names" else None
        for start in range(0, len(ids), BLOCK):
            block = ids[start : start + BLOCK]
            rows = self.dataset[block]
            for j, i in enumerate(block):
                meta = {c: rows[c][j] for c in self.metadata_columns}
                yield i, self._input(rows, j, i, read), self._label(rows[self.label][j], index), meta

    def _input(self, rows: dict, j: int, i: int, read):
        if read is not None:
            return read(_file(rows[self.input][j]), f"{self.where(i)}, column {self.input!r}")
        if isinstance(self.input, str):
            return rows[self.input][j]
        values = [rows[c][j] for c in self.input]
        missing = [c for c, v in zip(self.input, values, strict=True) if v is None]
        if missing:
            raise ValueError(f"{self.where(i)}: column {missing[0]!r} has no value")
        return np.asarray(values, dtype=np.float32)

    def _label(self, value, index: dict | None):
        if value is None:
            return None  # the scan names the row
        if index is not None:
            return index[value]
        return np.asarray([value], dtype=np.float32) if self.label_rule == "float" else value


def _file(value: dict):
    """The bytes of an undecoded image or audio value, else its path."""
    return value["bytes"] if value.get("bytes") else value["path"]

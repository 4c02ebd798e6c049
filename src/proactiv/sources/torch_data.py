"""torch ``Dataset`` and ``IterableDataset`` as sources: the items the user's own loading code already yields.

An item is ``(input, label)``, ``(input, label, metadata dict)`` or a dict whose keys are named by ``input=``,
``label=`` and ``metadata=`` (defaults: the usual names, and every other key holding a scalar). A map-style
dataset is read by index, so a unit (or a Ray task) reads only its own rows; an iterable one is read in order,
and a request behind the last row read starts the iteration again (the sweep asks for blocks in order).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset

from proactiv.sources.base import Source

#: the keys a dict item's input and label go by when ``input=`` / ``label=`` are not given
INPUT_KEYS = ("input", "inputs", "x", "image", "img", "pixel_values", "audio", "waveform", "input_values")
LABEL_KEYS = ("label", "labels", "y", "target", "targets")


class DatasetSource(Source):
    """A torch ``Dataset`` (map-style: ``len`` and ``[i]``) or ``IterableDataset`` read item by item.

    Parameters
    ----------
    dataset : the dataset; its items as the module docstring says.
    input, label : the keys (dict items) or positions (tuple items) of the input and the label.
    metadata : the keys of dict items kept as ``meta.*`` columns (default: every other key holding a scalar).
    class_names, input_kind, sample_rate, pixel_range : what the sweep cannot tell from the items.
    """

    def __init__(self, dataset, input=None, label=None, metadata: Sequence[str] | None = None,
                 class_names: Sequence[str] | None = None, input_kind: str | None = None,
                 sample_rate: int | None = None, pixel_range: float | None = None):  # fmt: skip
        super().__init__()
        if not isinstance(dataset, (Dataset, IterableDataset)) and not hasattr(dataset, "__getitem__"):
            raise TypeError(
                f"data: expected a torch Dataset or IterableDataset, got {type(dataset).__name__}"
            )
        self.dataset, self.input, self.label = dataset, input, label
        self.metadata_keys = None if metadata is None else list(metadata)
        self.class_names = list(class_names) if class_names is not None else None
        self.input_kind, self.sample_rate, self.pixel_range = input_kind, sample_rate, pixel_range
        self.iterable = isinstance(dataset, IterableDataset)
        self._cursor: tuple[int, Iterator] | None = None

    def describe(self) -> dict:
        return {"kind": "iterable dataset" if self.iterable else "dataset", "type": type(self.dataset).__qualname__}

    def known_length(self) -> int | None:
        try:
            return len(self.dataset)
        except TypeError:  # an IterableDataset without __len__
            return None

    def _items(self, ids):
        if not self.iterable:
            for i in range(len(self.dataset)) if ids is None else ids:
                yield (i, *self._split(self.dataset[i], i))
            return
        if ids is None:
            for i, item in enumerate(self.dataset):
                yield (i, *self._split(item, i))
            return
        yield from self._in_order(ids)

    def _in_order(self, ids: Sequence[int]):
        """The rows ``ids`` (ascending) of an iterable dataset, going on from the last row read when it can."""
        if not ids:
            return
        if self._cursor is None or self._cursor[0] > ids[0]:
            self._cursor = (0, iter(self.dataset))
        position, stream = self._cursor
        wanted = iter(ids)
        nxt = next(wanted)
        for item in stream:
            i, position = position, position + 1
            self._cursor = (position, stream)
            if i == nxt:
                yield (i, *self._split(item, i))
                nxt = next(wanted, None)
                if nxt is None:
                    return

    def _split(self, item, i: int):
        """(input, label, metadata row) of one item."""
        if isinstance(item, dict):
            x = item[self._key(item, self.input, INPUT_KEYS, "input", i)]
            y = item[self._key(item, self.label, LABEL_KEYS, "label", i)]
            keys = self.metadata_keys
            if keys is None:
                used = {self._key(item, self.input, INPUT_KEYS, "input", i),
                        self._key(item, self.label, LABEL_KEYS, "label", i)}  # fmt: skip
                keys = [k for k, v in item.items() if k not in used and _scalar(v)]
            missing = [k for k in keys if k not in item]
            if missing:
                raise KeyError(f"{self.where(i)}: metadata key {missing[0]!r} not in the item (keys {list(item)})")
            return x, y, {k: _plain(item[k]) for k in keys}
        if isinstance(item, (tuple, list)):
            xi, yi = (self.input if self.input is not None else 0), (self.label if self.label is not None else 1)
            if len(item) < 2 or not isinstance(xi, int) or not isinstance(yi, int):
                raise ValueError(
                    f"{self.where(i)}: an item of {len(item)} values; expected (input, label[, metadata dict]) "
                    "or a dict (name its keys with input= and label=)"
                )
            meta = item[2] if len(item) > 2 and isinstance(item[2], dict) else {}
            return item[xi], item[yi], {k: _plain(v) for k, v in meta.items()}
        raise TypeError(
            f"{self.where(i)}: an item of type {type(item).__name__}; expected (input, label) or a dict"
        )

    def _key(self, item: dict, given, defaults: Sequence[str], what: str, i: int) -> str:
        if given is not None:
            if given not in item:
                raise KeyError(f"{self.where(i)}: {what}={given!r} is not a key of the item (keys {list(item)})")
            return given
        for key in defaults:
            if key in item:
                return key
        raise KeyError(f"{self.where(i)}: no {what} key among {list(item)}; name it with {what}=")

    def __getstate__(self):
        state = super().__getstate__()
        state["_cursor"] = None  # an iterator is not pickled: a copy starts reading from the first row
        return state


def _scalar(v) -> bool:
    """A value kept as a metadata column: a number, a string or a one-element tensor/array."""
    if isinstance(v, torch.Tensor):
        return v.numel() == 1
    if isinstance(v, np.ndarray):
        return v.size == 1
    return isinstance(v, (str, int, float, bool, np.generic))


def _plain(v):
    """A metadata value as a plain Python scalar."""
    if isinstance(v, torch.Tensor):
        return v.item() if v.numel() == 1 else v.tolist()
    if isinstance(v, (np.generic, np.ndarray)):
        return v.item() if np.size(v) == 1 else v.tolist()
    return v

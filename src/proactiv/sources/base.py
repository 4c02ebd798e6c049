"""A data source: instances a sweep reads a unit at a time, so its memory is bounded by the unit, not by N.

A :class:`Source` is what ``pv.sweep`` takes in place of an inputs tensor when the data does not fit in memory or
lives elsewhere (a torch ``Dataset``, a folder, a Hugging Face dataset, a table). It reads the rows a unit of work
names (:meth:`Source.read`), and once, before the sweep, scans every instance (:meth:`Source.scan`): that pass
collects the labels and metadata, checks that every input is finite and of one shape, and hashes the inputs the
way :func:`proactiv.fingerprint.data_hash` hashes a tensor, so a resumed run is checked against the same data. A
source is pickled with the run (``data.pt``) instead of its rows: analyses read the instances they need again.
"""

from __future__ import annotations

import abc
import hashlib
from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd
import torch

from proactiv.progress import progress_bar
from proactiv.sources.media import image_tensor


class Source(abc.ABC):
    """Instances read by row: ``len(source)``, ``source.read(ids)`` → float inputs (k, ...), ``source[ids]`` the
    same for any index (int, slice, list, array, tensor), and after :meth:`scan` the ``labels`` and ``metadata``
    of every instance. Subclasses say how items are read (:meth:`_items`) and may know their labels, metadata and
    hints (class names, input kind, sample rate, pixel range) without reading the inputs."""

    #: names of the classes (label i is class_names[i]), when the source knows them
    class_names: list[str] | None = None
    #: what the inputs are (see :class:`proactiv.schema.InputSpec`), when the source knows
    input_kind: str | None = None
    #: samples per second of audio inputs
    sample_rate: int | None = None
    #: span of valid pixel values of images (adds PSNR and SSIM)
    pixel_range: float | None = None

    def __init__(self):
        self._labels: torch.Tensor | None = None
        self._metadata: pd.DataFrame | None = None
        self._shape: tuple[int, ...] | None = None
        self._hasher = None
        #: the last block read (ids, inputs): the sweep reads an instance block once per block of grid points
        self._last: tuple[np.ndarray, torch.Tensor] | None = None

    # --- what a subclass provides -----------------------------------------------------------------------------
    @abc.abstractmethod
    def _items(self, ids: Sequence[int] | None) -> Iterator[tuple[int, torch.Tensor, object, dict]]:
        """``(id, input, label, metadata row)`` of the instances ``ids`` (ascending, unique), or of every instance
        in order when ``ids`` is None."""

    @abc.abstractmethod
    def describe(self) -> dict:
        """What the source is, as JSON (recorded in run.json's config): its kind and where it reads from."""

    def known_length(self) -> int | None:
        """N without reading the data, when the source knows it (None: only a scan counts it)."""
        return None

    # --- reading ----------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        n = self.known_length()
        if n is None:
            self.scan()
            n = len(self._labels)
        return n

    def read(self, ids) -> torch.Tensor:
        """The inputs of instances ``ids`` in the order given, stacked as float (k, ...)."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if self._last is not None and np.array_equal(self._last[0], ids):  # a unit's block at its next points
            return self._last[1]
        n = len(self)
        if ids.size and (ids.min() < 0 or ids.max() >= n):
            raise IndexError(f"{self.describe()['kind']} source: instance ids must be in 0..{n - 1}, got {ids.max()}")
        wanted = np.unique(ids)
        rows = {i: _as_input(x, self, i) for i, x, _, _ in self._items(wanted.tolist())}
        if len(rows) != len(wanted):
            missing = sorted(set(wanted.tolist()) - set(rows))[:5]
            raise IndexError(f"{self.describe()['kind']} source: instances {missing} could not be read")
        if not ids.size:
            return torch.empty((0, *self.shape[1:]))
        x = torch.stack([rows[int(i)] for i in ids])
        self._last = (ids, x)
        return x

    def __getitem__(self, index) -> torch.Tensor:
        if isinstance(index, slice):
            return self.read(np.arange(len(self))[index])
        if isinstance(index, (int, np.integer)):
            return self.read([int(index)])[0]
        if isinstance(index, torch.Tensor):
            index = index.cpu().numpy()
        return self.read(index)

    @property
    def shape(self) -> tuple[int, ...]:
        """(N, *one input's shape)."""
        if self._shape is None:
            self._shape = tuple(self.read([0]).shape[1:])
        return (len(self), *self._shape)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    # --- the scan ---------------------------------------------------------------------------------------------
    @property
    def labels(self) -> torch.Tensor:
        """Every instance's label: class indices (N,), 0/1 rows (N, L) or target tensors (N, ...)."""
        if self._labels is None:
            self.scan()
        return self._labels

    @property
    def metadata(self) -> pd.DataFrame | None:
        """One row per instance (the records' ``meta.*`` columns), or None."""
        if self._labels is None:
            self.scan()
        return self._metadata

    def scan(self, progress: bool = False) -> None:
        """Read every instance once: labels, metadata, one finite input shape, the inputs' hash. Done once."""
        if self._hasher is not None:
            return
        n = self.known_length()
        labels, rows, h, shape = [], [], None, None
        with progress_bar("instances", progress) as bar:
            task = bar.add_task("reading the data", total=n)
            for i, x, y, meta in self._items(None):
                x = _as_input(x, self, i)
                if shape is None:
                    shape = tuple(x.shape)
                    h = hashlib.sha256(f"{x.dtype}{(n if n is not None else '?', *shape)}".encode())
                elif tuple(x.shape) != shape:
                    raise ValueError(
                        f"{self.where(i)}: input of shape {tuple(x.shape)}, expected {shape} like instance 0 "
                        "(every input of a sweep has one shape: resize or crop them)"
                    )
                if not torch.isfinite(x).all():
                    raise ValueError(f"{self.where(i)}: the input contains NaN or Inf")
                h.update(memoryview(x.contiguous().view(torch.uint8).numpy()))  # no copy: a copy per row fragmented the heap (0.9 GB after 3 000 images)
                labels.append(_as_label(y, self, i))
                rows.append(meta)
                bar.advance(task, 1)
        if shape is None:
            raise ValueError(f"{self.where(None)}: no instances to sweep")
        try:
            stacked = np.stack(labels) if isinstance(labels[0], np.ndarray) else np.asarray(labels)
            self._labels = torch.as_tensor(stacked)
        except (TypeError, ValueError) as err:  # strings, or labels of several shapes
            raise ValueError(
                f"{self.where(None)}: labels must be class indices (int), 0/1 rows or target arrays of one shape; "
                f"got {labels[0]!r} for instance 0 ({err}); map class names to indices and pass class_names="
            ) from None
        self._metadata = pd.DataFrame(rows) if any(rows) else None
        self._shape, self._hasher = shape, h

    def input_hasher(self):
        """A copy of the sha256 over the inputs (header and bytes, as :func:`proactiv.fingerprint.data_hash`
        hashes an inputs tensor), for the data fingerprint to continue with the labels and metadata."""
        self.scan()
        return self._hasher.copy()

    def where(self, i: int | None) -> str:
        """How an error names instance ``i`` of this source (its kind and location)."""
        about = self.describe()
        place = about.get("path") or about.get("type") or about["kind"]
        return f"{about['kind']} source {place}" + (f", instance {i}" if i is not None else "")

    def __getstate__(self):
        # the hash state cannot be pickled and the last block is not kept; open handles are the subclass's to drop
        state = dict(self.__dict__)
        state["_hasher"], state["_last"] = None, None
        return state


def _as_input(x, source: Source, i: int) -> torch.Tensor:
    """One item's input as a float tensor; images read as PIL become (C, H, W) in [0, 1]."""
    if hasattr(x, "getbands"):  # a PIL image: HWC bytes → CHW floats
        x = image_tensor(x)
    try:
        t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{source.where(i)}: input of type {type(x).__name__} is not an array ({err})") from None
    if not (t.is_floating_point() or t.dtype in (torch.uint8, torch.int16, torch.int32, torch.int64)):
        raise TypeError(f"{source.where(i)}: input of dtype {t.dtype}, expected numbers")
    return t.detach().cpu().float()


def _as_label(y, source: Source, i: int):
    """One item's label as a Python number (a class index) or an array (a 0/1 row or a target tensor). Numbers
    are not kept as tensors: a small tensor kept per row pins the allocator's heap between the rows' freed inputs
    (3 GB after 6 000 images of 3×224×224, against 0.2 GB with numbers)."""
    if y is None:
        raise ValueError(f"{source.where(i)}: the item has no label")
    try:
        arr = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{source.where(i)}: label {y!r} is not a number or an array ({err})") from None
    if arr.dtype == object:
        raise TypeError(f"{source.where(i)}: label {y!r} is not a number or an array")
    return arr.item() if arr.ndim == 0 else arr

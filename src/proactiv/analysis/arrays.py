"""Bulk reading of the kept arrays (xT, x̂T, the clean inputs and, for image-to-image runs, the outputs
f(xT), f(x̂T)) of a run, one file read at a time.

``Run.arrays`` loads one record; analyses that pool many records (bias maps, galleries) read each
``arrays/part-<unit>.npz`` once instead. Only units with a completion marker count, as for the records.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from proactiv.analysis.runview import AnalysisError
from proactiv.store import Run


@dataclass
class KeptArrays:
    """Model inputs of kept records: ``x_t`` (transformed) and ``x_proj`` (projected), shape (N, *input);
    runs without predictions also keep the outputs ``y_t`` = f(xT) and ``y_proj`` = f(x̂T) (else None)."""

    instance: np.ndarray
    point: np.ndarray
    x_t: np.ndarray
    x_proj: np.ndarray
    y_t: np.ndarray | None = None
    y_proj: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.instance)


@contextmanager
def _opened(path: Path):
    """``np.load`` of one array file, with an error naming the file when it is damaged."""
    try:
        with np.load(path) as z:
            yield z
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise AnalysisError(f"{path}: cannot read this array file ({err})") from None


def array_files(run: Run) -> list[Path]:
    """The ``part-<unit>.npz`` files of completed units (the store decides what is complete)."""
    return run.array_files()


def kept_pairs(run: Run) -> pd.DataFrame:
    """(instance, point) of every kept record, reading only the id arrays of each file."""
    frames = []
    for f in array_files(run):
        with _opened(f) as z:
            frames.append(pd.DataFrame({"instance": z["instance"], "point": z["point"]}))
    if not frames:
        return pd.DataFrame({"instance": np.zeros(0, np.int64), "point": np.zeros(0, np.int64)})
    return pd.concat(frames, ignore_index=True)


def iter_arrays(
    run: Run, instances: Iterable[int] | None = None, points: Iterable[int] | None = None
) -> Iterator[KeptArrays]:
    """The kept records file by file, optionally only those of some instances and/or grid points."""
    inst = None if instances is None else np.asarray(list(instances), dtype=np.int64)
    pts = None if points is None else np.asarray(list(points), dtype=np.int64)
    for f in array_files(run):
        with _opened(f) as z:
            ids, point = z["instance"], z["point"]
            keep = np.ones(len(ids), dtype=bool)
            if inst is not None:
                keep &= np.isin(ids, inst)
            if pts is not None:
                keep &= np.isin(point, pts)
            if not keep.any():
                continue
            outputs = [z[k][keep] if k in z.files else None for k in ("y_t", "y_proj")]
            yield KeptArrays(ids[keep], point[keep], z["x_t"][keep], z["x_proj"][keep], *outputs)


def load_arrays(
    run: Run, instances: Iterable[int] | None = None, points: Iterable[int] | None = None
) -> KeptArrays | None:
    """All matching kept records in one :class:`KeptArrays` (None when nothing matches)."""
    parts = list(iter_arrays(run, instances, points))
    if not parts:
        return None

    def joined(key: str) -> np.ndarray | None:
        pieces = [getattr(p, key) for p in parts]
        return None if any(a is None for a in pieces) else np.concatenate(pieces)

    return KeptArrays(*(joined(k) for k in ("instance", "point", "x_t", "x_proj", "y_t", "y_proj")))


def clean_inputs(run: Run, instances: Iterable[int], key: str = "x") -> dict[int, np.ndarray]:
    """The clean model input (``key="x"``) or stored target tensor (``key="y"``, image-to-image runs) of
    each given instance that has one stored."""
    wanted = {int(i) for i in instances}
    out: dict[int, np.ndarray] = {}
    for f in run.clean_files():
        with _opened(f) as z:
            ids = z["instance"]
            rows = [r for r, i in enumerate(ids) if int(i) in wanted]
            if rows and key in z.files:
                x = z[key]
                out.update({int(ids[r]): x[r] for r in rows})
    return out


def input_shape(run: Run) -> tuple[int, ...] | None:
    """The shape of one model input (the store reads it from an array file's header)."""
    return run.input_shape()

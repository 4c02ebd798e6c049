"""A table as a source: one row per instance, feature columns as the input vector, a label column.

The table is a CSV (or tab-separated) file, a Parquet file, or a pandas DataFrame. The label column says what
the model is asked: strings (or booleans, or categories) are classes, numbered in the sorted order of their
names; integers are class indices; floats are a regression target, one value a row, shaped (1,) like the output
of ``nn.Linear(F, 1)``. A file is kept by its path and read again where the source is unpickled (an analysis
of the run), so the run does not copy it; a DataFrame is kept with the source (only its used columns).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from proactiv.sources.base import Source

READERS = {".csv": pd.read_csv, ".tsv": lambda p: pd.read_csv(p, sep="\t"), ".parquet": pd.read_parquet,
           ".pq": pd.read_parquet}  # fmt: skip


class TableSource(Source):
    """The rows of a table (see the module docstring for the label rule).

    Parameters
    ----------
    table : a CSV / TSV / Parquet path, or a pandas DataFrame.
    label : the label column.
    features : the input columns, in order (default: every numeric column but the label and metadata).
    metadata : columns kept as ``meta.*`` columns of the records.
    """

    input_kind = "vector"

    def __init__(self, table: str | os.PathLike | pd.DataFrame, label: str, features: Sequence[str] | None = None,
                 metadata: Sequence[str] = ()):  # fmt: skip
        super().__init__()
        self.path = None if isinstance(table, pd.DataFrame) else Path(table).expanduser().resolve()
        self.label, self.metadata_columns = label, list(metadata)
        self.features = list(features or [])
        frame = table if self.path is None else _read(self.path)
        for column in [label, *self.metadata_columns, *self.features]:
            if column not in frame.columns:
                raise KeyError(
                    f"{self.where(None)}: no column {column!r} (columns: {', '.join(map(str, frame))})"
                )
        if features is None:
            used = {label, *self.metadata_columns}
            self.features = [c for c in frame if c not in used and pd.api.types.is_numeric_dtype(frame[c])]
        if not self.features:
            raise ValueError(
                f"{self.where(None)}: no feature columns (by default every numeric column but the label and "
                "metadata); name the inputs with features="
            )
        column = frame[label]
        classes = column.dtype == object or isinstance(column.dtype, pd.CategoricalDtype)
        classes = classes or pd.api.types.is_string_dtype(column) or pd.api.types.is_bool_dtype(column)
        self.class_names = sorted(column.dropna().astype(str).unique()) if classes else None
        #: the DataFrame's used columns (a file is read again instead)
        self.frame = frame[[*self.features, label, *self.metadata_columns]] if self.path is None else None
        self._rows = self._columns(frame)

    def describe(self) -> dict:
        place = {"path": str(self.path)} if self.path is not None else {"type": "DataFrame"}
        return {"kind": "table", **place, "label": self.label, "features": self.features,
                "metadata": self.metadata_columns}  # fmt: skip

    def known_length(self) -> int:
        return len(self.rows()[0])

    def rows(self) -> tuple[np.ndarray, np.ndarray, list[dict]]:
        """Every row's inputs (N, F) float32, label (class index, or a (1,) float target) and metadata row."""
        if self._rows is None:
            self._rows = self._columns(self.frame if self.path is None else _read(self.path))
        return self._rows

    def _items(self, ids):
        inputs, labels, meta = self.rows()
        for i in range(len(inputs)) if ids is None else ids:
            yield i, inputs[i], labels[i], meta[i]

    def _columns(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list[dict]]:
        """The inputs, labels and metadata of ``frame``; a missing or non-numeric value is an error naming its
        column and row."""
        inputs = np.empty((len(frame), len(self.features)), dtype=np.float32)
        for j, name in enumerate(self.features):
            values = pd.to_numeric(frame[name], errors="coerce")
            bad = np.flatnonzero(values.isna().to_numpy())
            if bad.size:
                value = frame[name].iloc[bad[0]]
                problem = "a missing value" if pd.isna(value) else f"{value!r}, not a number"
                raise ValueError(f"{self.where(None)}: column {name!r}, row {bad[0]} (from 0): {problem}")
            inputs[:, j] = values.to_numpy(dtype=np.float32)
        column = frame[self.label]
        missing = np.flatnonzero(column.isna().to_numpy())
        if missing.size:
            raise ValueError(
                f"{self.where(None)}: label column {self.label!r}, row {missing[0]} (from 0): no label"
            )
        if self.class_names is not None:
            labels = column.astype(str).map({n: i for i, n in enumerate(self.class_names)}).to_numpy(np.int64)
        elif pd.api.types.is_integer_dtype(column):
            labels = column.to_numpy(np.int64)
        elif pd.api.types.is_float_dtype(column):
            labels = column.to_numpy(np.float32)[:, None]
        else:
            raise TypeError(f"{self.where(None)}: label column {self.label!r} of dtype {column.dtype}: expected "
                            "class names, class indices or float targets")  # fmt: skip
        meta = frame[self.metadata_columns].to_dict("records") if self.metadata_columns else [{}] * len(frame)
        return inputs, labels, meta

    def __getstate__(self):
        state = super().__getstate__()
        state["_rows"] = None  # read again from the file or the kept frame
        return state


def _read(path: Path) -> pd.DataFrame:
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise ValueError(
            f"{path}: a table is read from {', '.join(READERS)} files, not {path.suffix or 'this'}"
        )
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    return reader(path)

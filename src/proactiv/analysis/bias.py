"""Bias maps: per class and grid point, the mean of x̂T − xT over instances — what the model "wants to see".

A change every instance of a class needs in the same place (a band the model listens to, a patch it looks
at) survives the mean; instance-specific changes cancel. ``consistency`` = RMS of the mean map / mean RMS of
the single changes measures that: 1 when every instance moved the same way, near 0 when they cancel. Arrays
are kept only for a sample of instances (``arrays.keep``), so every map says how many instances it pools.
Runs without predictions pool per group instead (``RunView.group_column``, e.g. the digit a denoiser
restores: a mean over different digits would blur into nothing), or over all instances when there is none.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from proactiv.analysis.arrays import array_files, iter_arrays
from proactiv.analysis.runview import AnalysisError, RunView, open_view
from proactiv.analysis.steps import Step, register
from proactiv.io import write_npz
from proactiv.store import Run, write_parquet


def as_2d(a: np.ndarray) -> np.ndarray:
    """A model input as a 2-D map: (1, 8, 8) → (8, 8); (C, H, W) → channel mean; a vector → one row."""
    a = np.asarray(a)
    while a.ndim > 2 and a.shape[0] == 1:
        a = a[0]
    if a.ndim > 2:
        a = a.reshape(-1, *a.shape[-2:]).mean(0)
    return a.reshape(1, -1) if a.ndim < 2 else a


@dataclass
class BiasMaps:
    """Mean (signed and absolute) change x̂T − xT per class × grid point, with counts.

    ``mean_`` and ``abs_mean_`` have shape (classes, points, *input); ``count_`` (classes, points) records,
    ``instances_`` (classes,) distinct instances pooled, ``rms_sum_`` the summed RMS of single changes;
    ``group`` names what a class is ("class", "digit", "all").
    """

    classes: list[str]
    points: np.ndarray
    columns: list[str]
    point_values: np.ndarray  # (points, columns): grid values of each point
    mean_: np.ndarray
    abs_mean_: np.ndarray
    count_: np.ndarray
    instances_: np.ndarray
    rms_sum_: np.ndarray
    group: str = "class"

    # selection ------------------------------------------------------------------------------------
    def _select(self, class_name: str, point: int | Sequence[int] | None, where: dict | None):
        if class_name not in self.classes:
            raise KeyError(f"no bias map for class {class_name!r}; classes with kept arrays: {self.classes}")
        c = self.classes.index(class_name)
        chosen = np.ones(len(self.points), dtype=bool)
        if point is not None:
            wanted = np.atleast_1d(np.asarray(point, dtype=np.int64))
            missing = set(wanted.tolist()) - set(self.points.tolist())
            if missing:
                raise KeyError(f"no kept arrays at grid points {sorted(missing)}")
            chosen &= np.isin(self.points, wanted)
        for column, value in (where or {}).items():
            if column not in self.columns:
                raise KeyError(f"{column!r} is not a grid column; grid columns: {self.columns}")
            chosen &= self.point_values[:, self.columns.index(column)] == float(value)
        weights = self.count_[c] * chosen
        if weights.sum() == 0:
            raise KeyError(f"class {class_name!r} has no kept records at the selected points")
        return c, weights

    def _pool(self, maps: np.ndarray, c: int, weights: np.ndarray) -> np.ndarray:
        return np.tensordot(weights, maps[c], axes=(0, 0)) / weights.sum()

    def mean(
        self, class_name: str, point: int | Sequence[int] | None = None, where: dict | None = None
    ) -> np.ndarray:
        """Mean x̂T − xT of a class, shaped like one model input; all grid points pooled when ``point`` is
        None; ``where={"noise.snr_db": 0}`` pools the points with those grid values."""
        c, w = self._select(class_name, point, where)
        return self._pool(self.mean_, c, w)

    def abs_mean(
        self, class_name: str, point: int | Sequence[int] | None = None, where: dict | None = None
    ) -> np.ndarray:
        """Mean |x̂T − xT| of a class (how much the input moved, whatever the direction)."""
        c, w = self._select(class_name, point, where)
        return self._pool(self.abs_mean_, c, w)

    def profiles(
        self, class_name: str, point: int | Sequence[int] | None = None, where: dict | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Mean change along the second-to-last input axis (frequency of a spectrogram, rows of an image)
        and along the last axis (time, columns)."""
        m = as_2d(self.mean(class_name, point, where))
        return m.mean(axis=1), m.mean(axis=0)

    # ranking --------------------------------------------------------------------------------------
    def _row(self, c: int, weights: np.ndarray, column: str, value: float) -> dict:
        m = as_2d(self._pool(self.mean_, c, weights))
        peak = np.unravel_index(int(np.argmax(np.abs(m))), m.shape)
        strength = float(np.sqrt(np.mean(m**2)))
        spread = float((self.rms_sum_[c] * (weights > 0)).sum() / weights.sum())
        return {
            "class": self.classes[c],
            "column": column,
            "value": value,
            "instances": int(self.instances_[c]),
            "records": int(weights.sum()),
            "strength": strength,
            "consistency": strength / spread if spread > 0 else 0.0,
            "mean_abs": float(np.mean(as_2d(self._pool(self.abs_mean_, c, weights)))),
            "peak_row": int(peak[0]),
            "peak_column": int(peak[1]),
            "peak_value": float(m[peak]),
        }

    def _rank(self, rows: list[dict]) -> pd.DataFrame:
        table = pd.DataFrame(rows).sort_values("strength", ascending=False, ignore_index=True)
        table.insert(0, "rank", np.arange(1, len(table) + 1))
        return table

    @property
    def ranking(self) -> pd.DataFrame:
        """Class biases over all grid points, strongest first: ``strength`` is the RMS of the class's mean
        change (input units), ``consistency`` how alike its instances moved, ``peak_*`` where it is largest."""
        present = [c for c in range(len(self.classes)) if self.count_[c].sum()]
        rows = [self._row(c, self.count_[c].astype(float), "", np.nan) for c in present]
        return self._rank(rows).drop(columns=["column", "value"])

    @property
    def ranking_by_value(self) -> pd.DataFrame:
        """The same per class and transform value (the other transforms pooled)."""
        rows = []
        for j, column in enumerate(self.columns):
            levels = np.unique(self.point_values[:, j])
            for c in range(len(self.classes)):
                for value in levels if len(levels) > 1 else []:
                    weights = self.count_[c] * (self.point_values[:, j] == value)
                    if weights.sum():
                        rows.append(self._row(c, weights.astype(float), column, float(value)))
        return self._rank(rows)

    # storage --------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        write_npz(
            path,
            {
                "classes": np.asarray(self.classes, dtype=str),
                "points": self.points,
                "columns": np.asarray(self.columns, dtype=str),
                "point_values": self.point_values,
                "mean": self.mean_.astype(np.float32),
                "abs_mean": self.abs_mean_.astype(np.float32),
                "count": self.count_,
                "instances": self.instances_,
                "rms_sum": self.rms_sum_,
                "group": np.asarray(self.group),
            },
        )

    @classmethod
    def load(cls, path: str | os.PathLike) -> BiasMaps:
        with np.load(Path(path)) as z:
            return cls(
                [str(c) for c in z["classes"]],
                z["points"],
                [str(c) for c in z["columns"]],
                z["point_values"],
                z["mean"],
                z["abs_mean"],
                z["count"],
                z["instances"],
                z["rms_sum"],
                str(z["group"]) if "group" in z.files else "class",
            )


def bias_maps(
    run: Run | str | os.PathLike | RunView, progress: Callable[[float], None] | None = None
) -> BiasMaps:
    """Pool the kept arrays of a run into per-class, per-grid-point mean changes x̂T − xT.

    Reads each ``arrays/part-*.npz`` once. Raises :class:`AnalysisError` when the run kept no arrays.
    """
    view = run if isinstance(run, RunView) else open_view(run)
    files = array_files(view.run)
    if not files:
        raise AnalysisError(
            f"run {view.run.path} kept no arrays (arrays.keep = "
            f"{view.run.config.get('arrays', {}).get('keep')!r}); bias maps need x̂T and xT"
        )
    classes = view.classes
    index = {c: k for k, c in enumerate(classes)}
    class_of = {i: index.get(name, -1) for i, name in view.instance_classes().items()}
    points = np.arange(len(view.run.grid))
    sums = abs_sums = None
    count = np.zeros((len(classes), len(points)), dtype=np.int64)
    rms_sum = np.zeros((len(classes), len(points)))
    seen: list[set[int]] = [set() for _ in classes]
    for done, part in enumerate(iter_arrays(view.run), start=1):
        diff = part.x_proj.astype(np.float64) - part.x_t.astype(np.float64)
        if sums is None:
            sums = np.zeros((len(classes), len(points), *diff.shape[1:]))
            abs_sums = np.zeros_like(sums)
        cls = np.asarray([class_of.get(int(i), -1) for i in part.instance])
        rms = np.sqrt((diff.reshape(len(diff), -1) ** 2).mean(1))
        keys = np.unique(cls * len(points) + part.point)
        for key in keys[keys >= 0]:
            c, p = divmod(int(key), len(points))
            rows = (cls == c) & (part.point == p)
            sums[c, p] += diff[rows].sum(0)
            abs_sums[c, p] += np.abs(diff[rows]).sum(0)
            count[c, p] += int(rows.sum())
            rms_sum[c, p] += rms[rows].sum()
            seen[c].update(int(i) for i in part.instance[rows])
        if progress:
            progress(done / len(files))
    if sums is None:
        raise AnalysisError(f"run {view.run.path}: its kept arrays match no completed records")
    safe = np.maximum(count, 1).reshape(*count.shape, *([1] * (sums.ndim - 2)))
    has = count.sum(1) > 0
    values = np.asarray([[view.run.grid[int(p)].values[c] for c in view.grid_columns] for p in points])
    return BiasMaps(
        [c for c, h in zip(classes, has, strict=True) if h],
        points,
        view.grid_columns,
        values,
        (sums / safe)[has],
        (abs_sums / safe)[has],
        count[has],
        np.asarray([len(s) for s in seen])[has],
        rms_sum[has],
        view.group_title,
    )


class BiasMapsStep(Step):
    """Bias maps (:func:`bias_maps`), stored with their class ranking as a table beside them."""

    name = "bias_maps"
    title = "Bias maps"
    needs = frozenset({"records", "arrays"})
    files = ("bias_maps.npz", "bias_ranking.parquet")

    def compute(self, ctx, settings, progress):
        return bias_maps(ctx.view, progress=progress)

    def save(self, maps, folder):
        maps.save(folder / self.files[0])
        write_parquet(folder / self.files[1], maps.ranking)

    def load(self, folder):
        return BiasMaps.load(folder / self.files[0])

    def note(self, maps):
        pooled = ", ".join(f"{c}: {n}" for c, n in zip(maps.classes, maps.instances_, strict=True))
        per = "class" if maps.group in ("class", "all") else maps.group
        return f"instances pooled per {per} (arrays kept for a sample only): {pooled}"


register(BiasMapsStep())

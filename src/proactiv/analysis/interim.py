"""The interim view of one record: x, xT, x̂T and x̂T − xT with the predictions and losses before and after
projection — the closest look at what one transformation did and what the model needed instead. Image-to-
image runs add the outputs f(xT) and f(x̂T), to set beside the clean target."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from proactiv.analysis.arrays import clean_inputs, kept_pairs, load_arrays
from proactiv.analysis.runview import RunView, open_view, q
from proactiv.store import Run


@dataclass
class Interim:
    """One record's inputs (``x`` is None when the clean input was not stored), its outputs ``y_t``,
    ``y_proj`` and target ``y`` (image-to-image runs; else None) and its record row."""

    instance: int
    point: int
    x: np.ndarray | None
    x_t: np.ndarray
    x_proj: np.ndarray
    record: dict = field(default_factory=dict)
    y_t: np.ndarray | None = None
    y_proj: np.ndarray | None = None
    y: np.ndarray | None = None

    @property
    def diff(self) -> np.ndarray:
        """x̂T − xT: how the transformed input had to change."""
        return self.x_proj - self.x_t


def _record(view: RunView, pairs: pd.DataFrame) -> pd.DataFrame:
    with view.frames(wanted=pairs[["instance", "point"]]):
        return view.query("SELECT r.* FROM records r JOIN wanted USING (instance, point)")


def interim(run: Run | str | os.PathLike | RunView, instance: int, point: int) -> Interim:
    """x, xT, x̂T, x̂T − xT and the record of (instance, point); ``KeyError`` if its arrays were not kept."""
    view = run if isinstance(run, RunView) else open_view(run)
    return interims(view, pd.DataFrame({"instance": [int(instance)], "point": [int(point)]}))[0]


def interims(view: RunView, pairs: pd.DataFrame) -> list[Interim]:
    """Interim views of many records, reading each array file once."""
    kept = load_arrays(view.run, instances=pairs.instance.unique(), points=pairs.point.unique())
    found = (
        {}
        if kept is None
        else {(int(i), int(p)): k for k, (i, p) in enumerate(zip(kept.instance, kept.point, strict=True))}
    )
    missing = [
        (int(i), int(p))
        for i, p in zip(pairs.instance, pairs.point, strict=True)
        if (int(i), int(p)) not in found
    ]
    if missing:
        keep = view.run.config.get("arrays", {}).get("keep")
        raise KeyError(
            f"run {view.run.path}: no arrays kept for (instance, point) {missing[:3]} (arrays.keep = {keep!r})"
        )
    clean = clean_inputs(view.run, pairs.instance.unique())
    targets = clean_inputs(view.run, pairs.instance.unique(), key="y")
    rows = {(int(r["instance"]), int(r["point"])): r for r in _record(view, pairs).to_dict("records")}
    out = []
    for i, p in zip(pairs.instance.astype(int), pairs.point.astype(int), strict=True):
        k = found[(i, p)]
        outputs = [None if y is None else y[k] for y in (kept.y_t, kept.y_proj)]
        out.append(
            Interim(
                i,
                p,
                clean.get(i),
                kept.x_t[k],
                kept.x_proj[k],
                rows.get((i, p), {}),
                *outputs,
                targets.get(i),
            )
        )
    return out


def worst_records(
    run: Run | str | os.PathLike | RunView, k: int = 8, kept: bool = True, failing: bool = False
) -> pd.DataFrame:
    """The records the model got most wrong: failures (wrong class, or output outside the loss cutoff) first,
    then by ``loss_t``, one per instance; among the kept records (those with arrays: the report's gallery), or
    with ``kept=False`` among every record (analyses that rebuild the model need no arrays); with ``failing``,
    failures only."""
    view = run if isinstance(run, RunView) else open_view(run)
    pairs = kept_pairs(view.run) if kept else None
    if pairs is not None and pairs.empty:
        return pairs
    wrong = "(NOT correct_t)::INT" if view.correct_metric else "0"
    among = "records r JOIN kept USING (instance, point)" if kept else "records r"
    only = "AND wrong = 1" if failing else ""
    with view.frames(**({"kept": pairs} if kept else {})):
        return view.query(
            f"SELECT instance, point, {q('loss_t')} FROM ("
            f"  SELECT r.instance, r.point, r.loss_t, row_number() OVER ("
            f"    PARTITION BY r.instance ORDER BY {wrong} DESC, r.loss_t DESC, r.point) AS nth, {wrong} AS wrong"
            f"  FROM {among}) "
            f"WHERE nth = 1 {only} ORDER BY wrong DESC, loss_t DESC, instance LIMIT {int(k)}"
        )

"""Counterexamples: per top error slice and per class, the records the model got most confidently wrong (one
per instance), each beside two passing partners — the nearest passing record of the same instance (another grid point) and the
closest passing instance of the same class at the same grid point — so a user sees failing *and* passing
examples side by side.

- **wrong** is the error slices' own failure expression (by default ``NOT correct_t``: the run schema's outcome,
  a wrong class or an output outside the loss cutoff), so the slices and their counterexamples agree;
- **how confidently** is ``loss_t``, the loss toward the desired output on xT (cross-entropy: −log p(desired
  class); the records carry no probabilities) — the larger, the more confident the failure;
- **nearest passing grid point** of the same instance: Euclidean distance between grid points, each parameter
  scaled by the span of its swept values (an infinite value, e.g. a clean SNR, stands one largest grid gap
  beyond the finite ones);
- **closest passing instance** of the same class at the same point: RMS distance between the clean model
  inputs (the stored ones, else rebuilt from the run's task); a run that can do neither falls back to the
  distance between the two records' standardised difference vectors at that point (how they responded to the
  transform and to projection), and says so in ``same_class_basis``.

A failing record without a partner keeps NaN there with the reason in ``same_instance_reason`` /
``same_class_reason``: no partner is ever invented.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import duckdb
import numpy as np
import pandas as pd

from proactiv.analysis.arrays import clean_inputs, load_arrays
from proactiv.analysis.runview import DIFFERENCE_METRICS, AnalysisError, RunView, as_run, open_view, q
from proactiv.analysis.steps import StepContext, TableStep, get, register
from proactiv.store import Run
from proactiv.transforms import Grid

#: the counterexample table's columns (``predicted``, ``p_desired`` and the partners' ``predicted`` only in
#: classifier runs)
COLUMNS = [
    "slice", "conditions", "group", "rank", "instance", "point", "point_values", "loss_t", "predicted",
    "p_desired", "same_instance_point", "same_instance_point_values", "same_instance_loss_t",
    "same_instance_predicted", "same_instance_distance", "same_instance_reason", "same_class_instance",
    "same_class_loss_t", "same_class_predicted", "same_class_distance", "same_class_reason", "same_class_basis",
]  # fmt: skip
CLASSIFIER_ONLY = ("predicted", "p_desired", "same_instance_predicted", "same_class_predicted")
BASIS_STORED = "RMS distance of the clean model inputs"
BASIS_DIFFERENCES = "distance of the standardised difference vectors at the grid point"


def scaled_points(grid: Grid) -> np.ndarray:
    """Each grid point's parameter values (points × columns), each column scaled to [0, 1] by the span of its
    swept values; an infinite value stands one largest gap beyond the finite values (one unit when there is a
    single finite value); a column with one value is all zeros."""
    values = np.asarray([[p.values[c] for c in grid.columns] for p in grid], dtype=float).reshape(
        len(grid), -1
    )
    out = np.zeros_like(values)
    for j in range(values.shape[1]):
        col = values[:, j]
        finite = np.unique(col[np.isfinite(col)])
        if finite.size == 0:
            continue
        gap = float(np.diff(finite).max()) if finite.size > 1 else 1.0
        col = np.where(
            np.isposinf(col), finite.max() + gap, np.where(np.isneginf(col), finite.min() - gap, col)
        )
        span = col.max() - col.min()
        out[:, j] = (col - col.min()) / span if span > 0 else 0.0
    return out


def _records(view: RunView, top: pd.DataFrame, failure: str) -> pd.DataFrame:
    """Every record's ids, group, loss, failure flag, top-slice number (NaN outside them) and difference
    metrics (and the prediction, in classifier runs)."""
    case = " ".join(f"WHEN ({w}) THEN {int(s)}" for s, w in zip(top["slice"], top["where"], strict=True))
    extra = [m for m in DIFFERENCE_METRICS if view.schema.has(m) and m != "loss_t"]
    if view.classifier:
        extra.append("pred_t")
    cols = "".join(f", {q(c)}" for c in extra)
    try:
        return view.query(
            f"SELECT instance, point, loss_t{cols}, {view.group_sql or repr('all')} AS grp, "
            f"coalesce(({failure})::BOOLEAN, false) AS failing, "
            f"{f'CASE {case} END' if case else 'NULL'} AS slice FROM records"
        )
    except duckdb.Error as err:
        raise AnalysisError(
            f"run {view.run.path}: cannot select the failing records of the error slices (failure = {failure!r}, "
            f"slice clauses {list(top['where'])}): {err}"
        ) from None


def _clean_vectors(
    run: Run, instances: Iterable[int], rebuild: Callable[[], object] | None
) -> tuple[dict[int, np.ndarray] | None, str]:
    """The flattened clean model inputs of ``instances`` (stored, the rest rebuilt from the run's task) and the
    basis wording; (None, why) when some can be neither read nor rebuilt."""
    from proactiv.sweep import model_inputs

    wanted = sorted({int(i) for i in instances})
    vectors = {i: v.reshape(-1).astype(np.float64) for i, v in clean_inputs(run, wanted).items()}
    missing = [i for i in wanted if i not in vectors]
    if not missing:
        return vectors, f"{BASIS_STORED} (stored)"
    try:
        task = rebuild() if rebuild is not None else None
    except AnalysisError as err:
        return None, str(err)
    if task is None:
        return None, f"{len(missing)} clean inputs were not stored and the task is not rebuilt"
    seed = int(run.config.get("seed", 0) or 0)
    x = model_inputs(run.grid, task.frontend, task.inputs[missing], missing, seed)
    vectors.update({i: row.reshape(-1).double().numpy() for i, row in zip(missing, x.cpu(), strict=True)})
    source = "rebuilt from the run's task" if len(missing) == len(wanted) else "stored, the rest rebuilt"
    return vectors, f"{BASIS_STORED} ({source})"


def _difference_vectors(frame: pd.DataFrame) -> np.ndarray:
    """Each record's difference metrics, standardised over the run (a column without spread counts zero)."""
    cols = [c for c in DIFFERENCE_METRICS if c in frame]
    d = frame[cols].to_numpy(dtype=float)
    d = np.where(np.isfinite(d), d, np.nan)
    sd = np.nanstd(d, axis=0)
    z = (d - np.nanmean(d, axis=0)) / np.where(sd > 0, sd, 1.0)
    return np.nan_to_num(z)


def _nearest(distance: np.ndarray, loss: np.ndarray, ids: np.ndarray) -> int:
    """Index of the smallest distance; ties go to the smaller loss (the surer pass), then the smaller id."""
    return int(np.lexsort((ids, loss, np.round(distance, 9)))[0])


def counterexample_table(
    view: RunView,
    slices: pd.DataFrame,
    per_group: int = 3,
    n_slices: int = 3,
    rebuild: Callable[[], object] | None = None,
) -> pd.DataFrame:
    """The counterexamples of a run view (see the module docstring) for the top ``n_slices`` error slices with
    failures (of the ``slices`` step's table): one row per failing record, at most ``per_group`` per (slice,
    class) and one per instance (its most confident failure there), with both partners. ``rebuild()`` returns the run's task (for clean inputs that were not stored)
    or raises :class:`AnalysisError`."""
    if per_group < 1 or n_slices < 1:
        raise ValueError(f"per_group={per_group!r}, slices={n_slices!r}: expected whole numbers ≥ 1")
    run, schema = view.run, view.schema
    failure = slices.attrs.get("failure") or ("NOT correct_t" if view.correct_metric else None)
    if failure is None:
        raise AnalysisError(f"run {run.path} has no outcome (no labels, no loss cutoff): nothing is wrong")
    need = {"slice", "where", "errors", "conditions"} - set(slices.columns)
    if need:
        raise AnalysisError(f"the slices table lacks the columns {sorted(need)}; recompute the slices step")
    top = slices[slices["errors"] > 0].sort_values("slice").head(int(n_slices))
    frame = _records(view, top, failure)
    order = {name: k for k, name in enumerate(view.classes)}
    failing = frame[frame.failing & frame["slice"].notna()].assign(_order=lambda f: f.grp.map(order))
    failing = failing.sort_values(["slice", "_order", "loss_t", "instance", "point"],
                                  ascending=[True, True, False, True, True])  # fmt: skip
    failing = failing.drop_duplicates(
        ["slice", "grp", "instance"]
    )  # one record per instance: distinct examples
    failing = failing.groupby(["slice", "grp"], sort=False).head(int(per_group))
    passing = frame[~frame.failing]
    coords = scaled_points(run.grid)
    by_instance = {int(i): g for i, g in passing.groupby("instance")}
    by_point_group = {(int(p), str(g)): part for (p, g), part in passing.groupby(["point", "grp"])}
    if failing.empty:
        vectors, basis = {}, BASIS_STORED
    else:
        involved = frame.loc[frame.grp.isin(failing.grp.unique()), "instance"].unique()
        vectors, basis = _clean_vectors(run, involved, rebuild)
    if vectors is None:
        basis = f"{BASIS_DIFFERENCES} ({basis})"
        z = pd.DataFrame(
            _difference_vectors(frame), index=pd.MultiIndex.from_frame(frame[["instance", "point"]])
        )
    names = run.class_names or []

    def class_name(label) -> str:
        return names[int(label)] if 0 <= int(label) < len(names) else str(int(label))

    cross_entropy = (run.config.get("projection") or {}).get("loss") == "cross_entropy"
    conditions = dict(zip(top["slice"].astype(int), top["conditions"], strict=True))
    rows = []
    for (number, group), part in failing.groupby(["slice", "grp"], sort=False):
        for rank, r in enumerate(part.itertuples(index=False), start=1):
            i, p = int(r.instance), int(r.point)
            row = {"slice": int(number), "conditions": conditions[int(number)], "group": str(group),
                   "rank": rank, "instance": i, "point": p, "point_values": view.describe_point(p),
                   "loss_t": float(r.loss_t)}  # fmt: skip
            if view.classifier:
                row["predicted"] = class_name(r.pred_t)
                row["p_desired"] = math.exp(-float(r.loss_t)) if cross_entropy else math.nan
            mine = by_instance.get(i)
            if mine is None:
                row["same_instance_reason"] = f"instance {i} passes at no grid point"
            else:
                pts = mine.point.to_numpy()
                d = np.linalg.norm(coords[pts] - coords[p], axis=1)
                k = _nearest(d, mine.loss_t.to_numpy(), pts)
                best = mine.iloc[k]
                row.update(same_instance_point=int(best.point), same_instance_distance=float(d[k]),
                           same_instance_point_values=view.describe_point(int(best.point)),
                           same_instance_loss_t=float(best.loss_t), same_instance_reason="")  # fmt: skip
                if view.classifier:
                    row["same_instance_predicted"] = class_name(best.pred_t)
            mates = by_point_group.get((p, str(group)))
            if mates is None:
                what = f"{view.group_title} {group}" if view.group_sql else "the run"
                row["same_class_reason"] = f"no other instance of {what} passes at this grid point"
            else:
                ids = mates.instance.to_numpy()
                if vectors is not None:
                    d = np.sqrt(((np.stack([vectors[int(c)] for c in ids]) - vectors[i]) ** 2).mean(1))
                else:
                    d = np.linalg.norm(z.loc[[(int(c), p) for c in ids]].to_numpy() - z.loc[[(i, p)]].to_numpy(),
                                       axis=1)  # fmt: skip
                k = _nearest(d, mates.loss_t.to_numpy(), ids)
                best = mates.iloc[k]
                row.update(same_class_instance=int(best.instance), same_class_distance=float(d[k]),
                           same_class_loss_t=float(best.loss_t), same_class_reason="")  # fmt: skip
                if view.classifier:
                    row["same_class_predicted"] = class_name(best.pred_t)
            row["same_class_basis"] = basis
            rows.append(row)
    columns = [c for c in COLUMNS if view.classifier or c not in CLASSIFIER_ONLY]
    table = pd.DataFrame(rows, columns=columns)
    for c in ("same_instance_point", "same_class_instance"):
        table[c] = table[c].astype("Int64")
    for c in ("loss_t", "same_instance_loss_t", "same_instance_distance", "same_class_loss_t",
              "same_class_distance", *(["p_desired"] if view.classifier else [])):  # fmt: skip
        table[c] = table[c].astype(float)
    table.attrs.update(failure=failure, basis=basis, cutoff=schema.cutoff)
    return table


def counterexamples(
    run: Run | str,
    per_group: int = 3,
    slices: int = 3,
    slice_table: pd.DataFrame | None = None,
    rebuild: bool = True,
) -> pd.DataFrame:
    """Per top error slice and class, the most confidently wrong records with the nearest passing record of the
    same instance and the closest passing instance of the same class (see the module docstring).

    ``slice_table``: the error slices to use (default: the stored ``slices`` result, else computed now and not
    stored); ``rebuild``: rebuild the run's task for clean inputs that were not stored (else the difference
    vectors stand in)."""
    from proactiv.analysis.pipeline import load_analysis
    from proactiv.analysis.slices import error_slices
    from proactiv.analysis.steps import registered

    run = as_run(run)
    view = open_view(run)
    stored = load_analysis(run)
    view.attach([s.instance_columns(stored[s.name]) for s in registered() if stored[s.name] is not None])
    table = slice_table if slice_table is not None else stored["slices"]
    if table is None:
        table = error_slices(view)
    task = StepContext(run, view=view).task if rebuild else None
    return counterexample_table(view, table, per_group, slices, task)


def transformed_inputs(
    run: Run, pairs: Iterable[tuple[int, int]], rebuild: Callable[[], object] | None = None
) -> tuple[dict[tuple[int, int], np.ndarray], str]:
    """xT of each (instance, point): the kept array, else rebuilt with the run's task and the sweep's own path
    and seeds (:func:`proactiv.sweep.model_inputs`); and why some are missing ("" when none is)."""
    from proactiv.sweep import model_inputs

    wanted = {(int(i), int(p)) for i, p in pairs}
    out: dict[tuple[int, int], np.ndarray] = {}
    if not wanted:
        return out, ""
    kept = load_arrays(run, {i for i, _ in wanted}, {p for _, p in wanted})
    if kept is not None:
        for k, key in enumerate(zip(kept.instance.tolist(), kept.point.tolist(), strict=True)):
            if key in wanted:
                out[key] = kept.x_t[k]
    missing = sorted(wanted - set(out))
    if not missing:
        return out, ""
    try:
        task = rebuild() if rebuild is not None else None
    except AnalysisError as err:
        return out, f"{len(missing)} inputs were not kept and cannot be rebuilt: {err}"
    if task is None:
        return out, f"{len(missing)} inputs were not kept (arrays.keep) and the task is not rebuilt"
    seed = int(run.config.get("seed", 0) or 0)
    for point in sorted({p for _, p in missing}):
        ids = [i for i, p in missing if p == point]
        x = model_inputs(run.grid, task.frontend, task.inputs[ids], ids, seed, point=point)
        out.update({(i, point): row.numpy() for i, row in zip(ids, x.cpu(), strict=True)})
    return out, ""


def gallery_pairs(row) -> dict[str, tuple[int, int] | None]:
    """The (instance, point) of a counterexample row's failing record and of its two partners (None: none)."""
    i, p = int(row["instance"]), int(row["point"])
    other, mate = row.get("same_instance_point"), row.get("same_class_instance")
    return {
        "failing": (i, p),
        "same_instance": None if pd.isna(other) else (i, int(other)),
        "same_class": None if pd.isna(mate) else (int(mate), p),
    }


class CounterexamplesStep(TableStep):
    """Counterexamples per top error slice and class (:func:`counterexample_table`)."""

    name = "counterexamples"
    title = "Counterexamples: failing and passing records side by side"
    command = "counterexamples"
    settings = {"per_group": 3, "slices": 3}
    after = ("slices",)
    uses = ("instance_breakpoints",)
    files = ("counterexamples.parquet",)

    def compute(self, ctx, settings, progress):
        ctx.view.attach([get(n).instance_columns(ctx.results[n]) for n in self.uses if ctx.results.get(n)])
        return counterexample_table(ctx.view, ctx.results["slices"], settings["per_group"], settings["slices"],
                                    ctx.task)  # fmt: skip

    def note(self, table):
        if table.empty:
            return "no failing records in the error slices"
        alone = int(table.same_instance_distance.isna().sum())
        lonely = int(table.same_class_distance.isna().sum())
        return (
            f"{len(table)} failing records ({table.attrs.get('failure', 'NOT correct_t')}) in "
            f"{table['slice'].nunique()} slices × {table.group.nunique()} classes, most confident first (largest "
            f"loss toward the desired output on xT); same-instance partner: the nearest passing grid point "
            f"(parameters scaled by their swept span), none for {alone}; same-class partner at the same point by "
            f"{table.same_class_basis.iloc[0]}, none for {lonely}"
        )


register(CounterexamplesStep())

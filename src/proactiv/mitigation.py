"""Mitigation: retrain with augmentation drawn toward where a run found the model failing.

From a run, an :class:`AugmentPlan` lists the *conditions* (transform parameter values) to train under, each
with a weight:

- the grid points of the run's worst error slices (:func:`proactiv.analysis.slices.error_slices`, stored or
  computed), weighted by how many failures each point holds inside those slices — the slices are ranked by
  failures, so the worst slice weighs most;
- when the run's per-instance breakpoints are stored (:mod:`proactiv.analysis.instance_breakpoints`), the
  breakpoint values themselves, off the grid (:data:`BREAKPOINT_SHARE` of the weight): where the instances of
  those slices first flip, between the identity and the grid values where they fail.

:class:`AugmentPlan` and applying it live in :mod:`proactiv.augment_plan`, where the tasks' trainings read them
(planning reads a run's analyses, a floor above the tasks). :func:`compare` measures a retrained model's run
against the run it was trained toward.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd

from proactiv.analysis.instance_breakpoints import held_values
from proactiv.analysis.pipeline import read_manifest
from proactiv.analysis.runview import AnalysisError, RunView, as_run, open_view
from proactiv.analysis.slices import error_slices
from proactiv.analysis.steps import get
from proactiv.augment_plan import PLAN_FILE, SHARE, AugmentPlan, Condition
from proactiv.store import Run

#: how many of the worst slices (those failing more often than the run as a whole) the plan draws from
N_SLICES = 3
#: the share of the plan's weight on per-instance breakpoint values, when the run has them
BREAKPOINT_SHARE = 0.25


# ---------------------------------------------------------------------------------------------- from a run
def _stored(run: Run, name: str):
    """A step's stored result when it was computed from the run's current records, else None."""
    entry = read_manifest(run)["steps"].get(name)
    if not entry or entry.get("records") != run.fingerprint() or not entry.get("files"):
        return None
    folder = run.analysis_dir
    if not all((folder / f).exists() for f in entry["files"]):
        return None
    return get(name).load(folder)


def worst_slices(run: Run | str | os.PathLike) -> tuple[pd.DataFrame, RunView, object]:
    """The run's error slices (stored when fresh, else computed: no model needed), the view their ``where``
    clauses are written for (per-instance breakpoint columns attached when stored), and the stored per-instance
    breakpoints (None without them)."""
    run = as_run(run)
    if not run.schema.classifier:
        raise AnalysisError(
            f"run {run.path}: its target is a {run.schema.target}, not a class label; retraining toward its "
            "slices needs a classifier's run"
        )
    view = open_view(run)
    ibp = _stored(run, "instance_breakpoints")
    if ibp is not None:
        view.attach([get("instance_breakpoints").instance_columns(ibp)])
    table = _stored(run, "slices")
    if table is None:
        table = error_slices(view)
    return table, view, ibp


def slice_records(view: RunView, where: str) -> pd.DataFrame:
    """``instance``, ``point`` and ``failure`` (NOT correct_t) of the records a slice's WHERE clause selects."""
    return view.query(
        f"SELECT instance, point, NOT coalesce(correct_t, false) AS failure FROM records WHERE {where} "
        "ORDER BY instance, point"
    )


def augmentation_plan(
    run: Run | str | os.PathLike,
    n_slices: int = N_SLICES,
    share: float = SHARE,
    breakpoint_share: float = BREAKPOINT_SHARE,
    seed: int = 0,
) -> AugmentPlan:
    """The plan to retrain toward ``run``'s worst slices (and its per-instance breakpoints, when stored).

    ``n_slices``: how many of the slices failing more often than the whole run to draw from (ranked by
    failures); ``share``: augmented examples per training example; ``breakpoint_share``: the weight on
    breakpoint values; ``seed``: decides which examples get which condition and the transforms' draws.
    """
    if not (math.isfinite(share) and share > 0):
        raise ValueError(f"share={share!r}: expected augmented examples per training example > 0")
    if not 0 <= breakpoint_share < 1:
        raise ValueError(f"breakpoint_share={breakpoint_share!r}: expected a fraction in [0, 1)")
    run = as_run(run)
    table, view, ibp = worst_slices(run)
    overall = float(view.query("SELECT avg((NOT coalesce(correct_t, false))::INT) AS r FROM records").r[0])
    if overall == 0:
        raise AnalysisError(f"run {run.path}: the model fails on no record; nothing to retrain toward")
    chosen = table[table.error_rate > overall].head(int(n_slices))
    if chosen.empty:
        chosen = table.head(1)
    identity = {t.column: t.param.identity for t in run.grid.transforms}
    failures = []
    for s in chosen.itertuples():
        recs = slice_records(view, s.where)
        failures.append(recs[recs.failure].assign(slice=int(s.slice)))
    failing = pd.concat(failures, ignore_index=True)
    counts = failing.groupby(["slice", "point"]).size().rename("n").reset_index()
    conditions: list[Condition] = []
    bp = _breakpoint_conditions(run, ibp, failing.instance.unique()) if ibp is not None else []
    grid_weight = 1.0 - (breakpoint_share if bp else 0.0)
    total = counts.n.sum()
    for row in counts.itertuples():
        values = {c: float(v) for c, v in run.grid[int(row.point)].values.items() if v != identity[c]}
        if values:
            conditions.append(Condition(values, grid_weight * row.n / total, f"slice {row.slice}"))
    conditions += [Condition(c.values, breakpoint_share * c.weight, c.source) for c in bp]
    if not conditions:
        raise AnalysisError(
            f"run {run.path}: its worst slices fail only at the identity (no transform applied); augmentation "
            "cannot target them"
        )
    scale = sum(c.weight for c in conditions)
    conditions = [Condition(c.values, c.weight / scale, c.source) for c in conditions]
    per_slice = counts.groupby("slice").n.sum() / total * grid_weight / scale
    slices = [
        {
            "slice": int(s.slice),
            "conditions": s.conditions,
            "where": s.where,
            "size": int(s.size),
            "errors": int(s.errors),
            "error_rate": float(s.error_rate),
            "weight": float(per_slice.get(int(s.slice), 0.0)),
        }
        for s in chosen.itertuples()
    ]
    why = (
        f"the {len(slices)} worst error slice(s) of the run (failing more often than its {overall:.0%} overall), "
        "each grid point weighted by the failures it holds there"
        + (f"; {breakpoint_share:.0%} at the per-instance breakpoints of their instances" if bp else "")
        + f". {share:g} augmented copy per clean example, drawn uniformly so no condition predicts a class; "
        "the clean examples all stay"
    )
    return AugmentPlan(
        run=str(run.path),
        fingerprint=run.fingerprint(),
        model=run.fingerprints.get("model"),
        grid=run.grid.spec(),
        class_names=list(run.class_names) if run.class_names is not None else None,
        input_shape=list(run.schema.input.shape),
        frontend=run.schema.frontend,
        slices=slices,
        conditions=conditions,
        share=float(share),
        seed=int(seed),
        why=why,
    )


def _breakpoint_conditions(run: Run, ibp, instances: np.ndarray) -> list[Condition]:
    """Equal-weight conditions at the per-instance breakpoints of ``instances`` (held values as the analysis
    held them), summing to 1; [] when none of them flips."""
    settings = read_manifest(run)["steps"]["instance_breakpoints"].get("settings", {})
    held = held_values(run, settings.get("held"))
    t = ibp.table
    hits = t[t.instance.isin(instances) & t.breakpoint.notna() & ~t.flipped_at_identity]
    if hits.empty:
        return []
    identity = {g.column: g.param.identity for g in run.grid.transforms}
    found: dict[tuple, float] = {}
    for row in hits.itertuples():
        values = {**held, row.column: float(row.breakpoint)}
        key = tuple(sorted((c, v) for c, v in values.items() if v != identity[c]))
        found[key] = found.get(key, 0.0) + 1.0 / len(hits)
    return [Condition(dict(k), w, "breakpoint") for k, w in found.items()]


# ---------------------------------------------------------------------------------------------- measuring
def compare(
    before: Run | str | os.PathLike, after: Run | str | os.PathLike, n_slices: int = 1
) -> pd.DataFrame:
    """Accuracy of two runs of the same instances and grid (a model and its retrained version): on each of
    ``before``'s ``n_slices`` worst slices (the same records in both runs), at the identity grid point (clean),
    and over the whole grid. One row per measure: ``measure``, ``records``, ``before``, ``after``, ``change``."""
    before, after = as_run(before), as_run(after)
    if before.grid.spec() != after.grid.spec():
        raise ValueError(
            f"runs {before.path} and {after.path} swept different grids; compare needs the same one"
        )
    if before.fingerprints.get("data") != after.fingerprints.get("data"):
        raise ValueError(
            f"runs {before.path} and {after.path} swept different instances (data fingerprints "
            f"{before.fingerprints.get('data')} and {after.fingerprints.get('data')}); compare needs the same ones"
        )
    table, view, _ = worst_slices(before)
    correct = after.records.set_index(["instance", "point"]).correct_t
    rows = []
    for s in table.head(int(n_slices)).itertuples():
        recs = slice_records(view, s.where)
        keys = pd.MultiIndex.from_frame(recs[["instance", "point"]])
        now = correct.reindex(keys)
        if now.isna().any():
            raise ValueError(f"run {after.path} lacks {int(now.isna().sum())} records of slice {s.slice}")
        rows.append((f"slice {s.slice}: {s.conditions}", len(recs), 1 - recs.failure.mean(), now.mean()))
    identity = before.grid.identity_point()
    for name, run_filter in (("clean (identity point)", identity), ("whole grid", None)):
        if name.startswith("clean") and identity is None:
            continue
        pair = []
        for run in (before, after):
            recs = run.records
            recs = recs[recs.point == run_filter] if run_filter is not None else recs
            pair.append((len(recs), recs.correct_t.mean()))
        rows.append((name, pair[0][0], pair[0][1], pair[1][1]))
    out = pd.DataFrame(rows, columns=["measure", "records", "before", "after"])
    out["change"] = out["after"] - out["before"]
    return out


__all__ = [
    "BREAKPOINT_SHARE",
    "N_SLICES",
    "PLAN_FILE",
    "SHARE",
    "AugmentPlan",
    "Condition",
    "augmentation_plan",
    "compare",
    "slice_records",
    "worst_slices",
]

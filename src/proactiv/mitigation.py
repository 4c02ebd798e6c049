"""Mitigation: retrain with augmentation drawn toward where a run found the model failing.

From a run, an :class:`AugmentPlan` lists the *conditions* (transform parameter values) to train under, each
with a weight:

- the grid points of the run's worst error slices (:func:`proactiv.analysis.slices.error_slices`, stored or
  computed), weighted by how many failures each point holds inside those slices — the slices are ranked by
  failures, so the worst slice weighs most;
- when the run's per-instance breakpoints are stored (:mod:`proactiv.analysis.instance_breakpoints`), the
  breakpoint values themselves, off the grid (:data:`BREAKPOINT_SHARE` of the weight): where the instances of
  those slices first flip, between the identity and the grid values where they fail.

:meth:`AugmentPlan.apply` draws ``share × N`` training examples uniformly (so a condition tells nothing about
the class: drawing a slice's failing classes only would teach the model that noise means that class) and
transforms each with the run's own transforms (:meth:`proactiv.transforms.Grid.apply_values`, seeded), so the
training sees exactly the conditions the sweep measured. The augmented examples are *added* to the clean ones,
which stay, so clean accuracy has every clean example to hold on to. :func:`compare` measures a retrained
model's run against the run it was trained toward.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from proactiv.analysis.instance_breakpoints import held_values
from proactiv.analysis.pipeline import read_manifest
from proactiv.analysis.runview import AnalysisError, RunView, as_run, open_view
from proactiv.analysis.slices import error_slices
from proactiv.analysis.steps import get
from proactiv.schema import build_frontend
from proactiv.store import Run, write_json
from proactiv.transforms import Grid

#: the file a trained model's folder keeps its plan in (what the model was trained toward)
PLAN_FILE = "augment_plan.json"
#: augmented examples per clean training example: a third of what the training sees is then augmented, enough
#: to move the worst slices while every clean example stays in the training set
SHARE = 0.5
#: how many of the worst slices (those failing more often than the run as a whole) the plan draws from
N_SLICES = 3
#: the share of the plan's weight on per-instance breakpoint values, when the run has them
BREAKPOINT_SHARE = 0.25


@dataclass(frozen=True)
class Condition:
    """One condition to train under: transform column → value (columns left out stay at their identity),
    its weight (share of the augmented examples) and where it comes from (``slice 1``, ``breakpoint``)."""

    values: dict[str, float]
    weight: float
    source: str


@dataclass
class AugmentPlan:
    """Which transforms at which values a retraining adds, and why (see the module docstring)."""

    run: str
    fingerprint: str
    model: str | None
    grid: list[dict]
    class_names: list[str] | None
    input_shape: list[int]
    frontend: dict | None
    slices: list[dict]
    conditions: list[Condition]
    share: float = SHARE
    seed: int = 0
    why: str = ""
    _grid: Grid | None = field(default=None, repr=False, compare=False)

    @property
    def transform_grid(self) -> Grid:
        if self._grid is None:
            self._grid = Grid.from_spec(self.grid)
        return self._grid

    # ------------------------------------------------------------------------------------------ storage
    def to_dict(self) -> dict:
        out = asdict(self)
        out.pop("_grid")
        return out

    @classmethod
    def from_dict(cls, data: dict) -> AugmentPlan:
        data = dict(data)
        data["conditions"] = [Condition(**c) for c in data["conditions"]]
        return cls(**data)

    def save(self, folder: str | os.PathLike) -> Path:
        """Write the plan as ``FOLDER/augment_plan.json`` (a trained model says what it was trained toward)."""
        return write_json(Path(folder) / PLAN_FILE, self.to_dict())

    @classmethod
    def load(cls, folder: str | os.PathLike) -> AugmentPlan:
        path = Path(folder)
        path = path / PLAN_FILE if path.is_dir() else path
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
            raise ValueError(f"{path}: not an augmentation plan ({type(err).__name__}: {err})") from None

    def key(self) -> str:
        """A digest of the plan (the run's records and model, the conditions, share and seed): part of a
        training's cache key, so another run or plan trains again."""
        text = json.dumps(self.to_dict(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    # ------------------------------------------------------------------------------------------ applying
    def check(self, inputs: torch.Tensor, class_names: list[str] | None = None) -> None:
        """Refuse training inputs this plan cannot act on, naming the problem: another task's classes, raw inputs
        that do not become the run's model inputs, or a transform that fails on them."""
        where = f"augmentation plan from run {self.run}"
        if class_names is not None and self.class_names is not None and list(class_names) != self.class_names:
            raise ValueError(
                f"{where}: the run's classes {self.class_names} differ from the training's {list(class_names)}; "
                "the run is of another task"
            )
        if inputs.dim() < 2 or len(inputs) == 0:
            raise ValueError(f"{where}: expected a batch of training inputs, got shape {tuple(inputs.shape)}")
        frontend = build_frontend(self.frontend)
        sample = inputs[:2].float()
        with torch.no_grad():
            seen = frontend(sample) if frontend is not None else sample
        if list(seen.shape[1:]) != self.input_shape:
            through = " through the run's frontend" if frontend is not None else ""
            raise ValueError(
                f"{where}: training inputs of shape {tuple(inputs.shape[1:])} become model inputs of shape "
                f"{tuple(seen.shape[1:])}{through}, the run's are {tuple(self.input_shape)}; the run is of "
                "another task"
            )
        grid = self.transform_grid
        for t in grid.transforms:
            used = [c.values[t.column] for c in self.conditions if t.column in c.values]
            if not used:
                continue
            if frontend is not None and t.domain == "feature":
                raise ValueError(
                    f"{where}: {t.column} acts on the model inputs after the frontend (domain feature), but the "
                    "training is given raw inputs; sweep without feature-domain transforms to retrain toward it"
                )
            try:
                out = grid.apply_values(sample, [0, 1], {t.column: used[0]}, self.seed, stage="input")
                if frontend is None:
                    out = grid.apply_values(out, [0, 1], {t.column: used[0]}, self.seed, stage="feature")
            except (RuntimeError, ValueError, IndexError, TypeError) as err:
                raise ValueError(
                    f"{where}: {t.column} = {used[0]:g} cannot act on training inputs of shape "
                    f"{tuple(inputs.shape[1:])} ({t.domain} transform: {err})"
                ) from None
            if out.shape != sample.shape or not torch.isfinite(out).all():
                raise ValueError(
                    f"{where}: {t.column} = {used[0]:g} turns training inputs of shape {tuple(sample.shape[1:])} "
                    f"into {tuple(out.shape[1:])}" + ("" if torch.isfinite(out).all() else " with NaN/Inf")
                )

    def apply(
        self,
        inputs: torch.Tensor,
        labels: torch.Tensor,
        class_names: list[str] | None = None,
        batch: int = 256,
    ) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        """The augmented examples for raw training ``inputs``: ``round(share × N)`` of them, each a uniformly
        drawn example under a condition drawn by weight, transformed by the run's transforms (random draws
        seeded by the plan's seed and the augmented example's position). Returns the inputs, their labels and
        the index of the training example each came from."""
        self.check(inputs, class_names)
        n = round(self.share * len(inputs))
        if n == 0 or not self.conditions:
            return inputs[:0], labels[:0], np.zeros(0, dtype=int)
        rng = np.random.default_rng(self.seed)
        source = rng.choice(len(inputs), size=n, replace=n > len(inputs))
        weights = np.asarray([c.weight for c in self.conditions], dtype=float)
        which = rng.choice(len(self.conditions), size=n, p=weights / weights.sum())
        grid, frontend = self.transform_grid, build_frontend(self.frontend)
        out = torch.empty((n, *inputs.shape[1:]), dtype=inputs.dtype)
        for c in np.unique(which):
            at = np.flatnonzero(which == c)
            values = self.conditions[c].values
            for lo in range(0, len(at), batch):
                ids = at[lo : lo + batch]
                with torch.no_grad():
                    x = grid.apply_values(inputs[source[ids]], ids.tolist(), values, self.seed, stage="input")
                    if frontend is None:
                        x = grid.apply_values(x, ids.tolist(), values, self.seed, stage="feature")
                out[torch.as_tensor(ids)] = x.to(inputs.dtype)
        return out, labels[torch.as_tensor(source)], source

    def describe(self) -> str:
        """A few lines for people: the slices targeted and the heaviest conditions."""
        lines = [
            f"augmentation plan from {self.run}: {self.share:g} augmented example(s) per training example, "
            f"seed {self.seed}"
        ]
        for s in self.slices:
            lines.append(
                f"  slice {s['slice']}: {s['conditions']} ({s['errors']} of {s['size']} records failing, "
                f"{s['error_rate']:.0%}; {s['weight']:.0%} of the augmented examples)"
            )
        top = sorted(self.conditions, key=lambda c: -c.weight)[:5]
        for c in top:
            shown = ", ".join(f"{k}={v:g}" for k, v in c.values.items())
            lines.append(f"  {c.weight:6.1%}  {shown}  ({c.source})")
        return "\n".join(lines)


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

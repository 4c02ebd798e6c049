"""The ``anchors`` step: the anchor (:func:`proactiv.analysis.anchor.anchor`) of each of a run's worst failing
records, picked as the report's gallery picks its records (failures first, then by loss on xT, one per instance;
here among every record, since an anchor needs the model, not kept arrays), with its local surrogate and the
outcome along the parameters it names, so the report draws them without rebuilding the model.

A record whose search ends without a rule at the target precision (its budget spent, or no rule of the swept
parameters precise enough) is stored as "not checked", with the most precise rule found and why: never as an
anchor. A run whose model cannot be rebuilt skips the step, saying why.

```
RUN/analysis/anchors.parquet            one row per record: status, sentence, precision, coverage, samples, surrogate
RUN/analysis/anchor_conditions.parquet  one row per condition (a parameter range or a metadata value)
RUN/analysis/anchor_outcomes.parquet    the outcome along the anchored parameters (the view's curve or map)
```
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from proactiv.analysis.anchor import Anchor, Condition, LocalSurrogate, anchor
from proactiv.analysis.anchor_metadata import MetaCondition
from proactiv.analysis.interim import worst_records
from proactiv.analysis.runview import AnalysisError
from proactiv.analysis.steps import Step, register
from proactiv.store import write_parquet

ANCHORED, NOT_CHECKED = "anchored", "not checked"
#: outcome samples along one anchored parameter, and per side of the map of two
CURVE, MAP = 41, 21


def outcome_grid(studio, found: Anchor, n: int | None = None) -> dict[str, np.ndarray]:
    """The score and whether the model is right along the anchor's first parameter (or two), ``n`` values per
    parameter over the swept span (default :data:`CURVE` for one, :data:`MAP` for two), the others at the
    record's values: arrays keyed by column, ``score`` and ``right`` (shaped ``n`` or ``n × n``)."""
    columns = list(found.columns[:2]) or list(found.spans)[:1]
    n = n or (CURVE if len(columns) < 2 else MAP)
    axes = [np.linspace(*found.spans[c], n) for c in columns]
    mesh = np.meshgrid(*axes, indexing="ij")
    values = [
        {**found.values, **{c: float(m.flat[k]) for c, m in zip(columns, mesh, strict=True)}}
        for k in range(mesh[0].size)
    ]
    right, score = studio.outcomes(found.instance, values)
    shape = mesh[0].shape
    return {
        **dict(zip(columns, axes, strict=True)),
        "score": score.reshape(shape),
        "right": right.reshape(shape),
    }


@dataclass
class WorstAnchors:
    """The stored anchors: ``table`` (one row per record, rank order), ``conditions`` (one per condition) and
    ``outcomes`` (the outcome along the anchored parameters); :meth:`anchor` and :meth:`grid` give one record's
    back as :func:`proactiv.views.anchor.anchor_figure` takes them."""

    table: pd.DataFrame
    conditions: pd.DataFrame
    outcomes: pd.DataFrame

    def _row(self, instance: int, point: int) -> pd.Series:
        hit = self.table[(self.table.instance == instance) & (self.table.point == point)]
        if hit.empty:
            raise KeyError(f"no anchor stored for record ({instance}, {point})")
        return hit.iloc[0]

    def anchor(self, instance: int, point: int) -> Anchor | None:
        """The stored anchor of a record (None when its search raised, so that it holds no rule)."""
        row = self._row(instance, point)
        if not isinstance(row.rule, str) or not row.rule:
            return None
        mine = self.conditions[(self.conditions.instance == instance) & (self.conditions.point == point)]
        ranges = tuple(_condition(c) for c in mine.itertuples() if c.kind == "range")
        meta = tuple(
            MetaCondition(c.column, c.value, int(c.shared)) for c in mine.itertuples() if c.kind == "metadata"
        )
        local = None
        if not math.isnan(row.surrogate_fidelity):
            local = LocalSurrogate(float(row.surrogate_intercept), json.loads(row.surrogate_slopes),
                                   float(row.surrogate_fidelity), int(row.surrogate_samples),
                                   float(row.surrogate_kernel))  # fmt: skip
        spans = {c: tuple(s) for c, s in json.loads(row.spans).items()}
        return Anchor(int(instance), int(point), json.loads(row["values"]), bool(row.fails), ranges,
                      float(row.precision), int(row.precision_samples), float(row.coverage), int(row.samples),
                      float(row.target), bool(row.valid), local, spans, meta, int(row.instances))  # fmt: skip

    def grid(self, instance: int, point: int) -> dict[str, np.ndarray]:
        """The stored outcome along the record's anchored parameters, as :func:`outcome_grid` gave it."""
        part = self.outcomes[(self.outcomes.instance == instance) & (self.outcomes.point == point)]
        if part.empty:
            raise KeyError(f"no outcome stored for record ({instance}, {point})")
        a, b = part.column_a.iloc[0], part.column_b.iloc[0]
        if not b:
            return {
                a: part.value_a.to_numpy(),
                "score": part.score.to_numpy(),
                "right": part.right.to_numpy(),
            }
        xs, ys = np.unique(part.value_a), np.unique(part.value_b)
        shape = (len(xs), len(ys))  # stored row-major over (a, b), as the grid was made
        return {a: xs, b: ys, "score": part.score.to_numpy().reshape(shape),
                "right": part.right.to_numpy().reshape(shape)}  # fmt: skip


def _condition(c) -> Condition:
    def pair(lo, hi):
        return None if math.isnan(lo) else (float(lo), float(hi))

    return Condition(c.column, float(c.low), float(c.high), (float(c.span_low), float(c.span_high)),
                     pair(c.below_low, c.below_high), pair(c.above_low, c.above_high))  # fmt: skip


def _status(found: Anchor, budget: int) -> tuple[str, str]:
    """anchored, or not checked and why (the best rule found stays in the row, hedged)."""
    if found.valid:
        return ANCHORED, ""
    why = (
        "its budget of model evaluations ran out" if found.samples >= budget else "no rule was precise enough"
    )
    return NOT_CHECKED, (
        f"no rule reached precision {found.target:.2f} ({why}: {found.samples} of {budget} evaluations); the "
        f"most precise found: {found.precision:.2f} on {found.precision_samples} samples"
    )


def _row(rank: int, record, found: Anchor | None, status: str, reason: str) -> dict:
    local = found.surrogate if found is not None else None
    return {
        "rank": rank,
        "instance": int(record.instance),
        "point": int(record.point),
        "loss_t": float(record.loss_t),
        "status": status,
        "reason": reason,
        "rule": found.describe() if found else "",
        "parameters": ", ".join(found.columns) if found else "",
        "fails": bool(found.fails) if found else True,
        "valid": bool(found.valid) if found else False,
        "precision": found.precision if found else math.nan,
        "precision_samples": found.precision_samples if found else 0,
        "coverage": found.coverage if found else math.nan,
        "samples": found.samples if found else 0,
        "target": found.target if found else math.nan,
        "instances": found.instances if found else 0,
        "values": json.dumps(found.values) if found else "{}",
        "spans": json.dumps(found.spans) if found else "{}",
        "surrogate_fidelity": local.fidelity if local else math.nan,
        "surrogate_intercept": local.intercept if local else math.nan,
        "surrogate_slopes": json.dumps(local.slopes) if local else "{}",
        "surrogate_samples": local.samples if local else 0,
        "surrogate_kernel": local.kernel_width if local else math.nan,
    }


def _conditions(found: Anchor) -> list[dict]:
    nan2 = (math.nan, math.nan)
    out = [{"instance": found.instance, "point": found.point, "kind": "range", "column": c.column, "low": c.low,
            "high": c.high, "span_low": c.span[0], "span_high": c.span[1], "below_low": (c.below or nan2)[0],
            "below_high": (c.below or nan2)[1], "above_low": (c.above or nan2)[0],
            "above_high": (c.above or nan2)[1], "value": "", "shared": 0} for c in found.conditions]  # fmt: skip
    out += [{"instance": found.instance, "point": found.point, "kind": "metadata", "column": m.column,
             "low": math.nan, "high": math.nan, "span_low": math.nan, "span_high": math.nan, "below_low": math.nan,
             "below_high": math.nan, "above_low": math.nan, "above_high": math.nan, "value": m.value,
             "shared": m.instances} for m in found.metadata]  # fmt: skip
    return out


def _outcomes(found: Anchor, grid: dict[str, np.ndarray]) -> pd.DataFrame:
    columns = [c for c in grid if c not in ("score", "right")]
    mesh = np.meshgrid(*(grid[c] for c in columns), indexing="ij")
    b = columns[1] if len(columns) > 1 else ""
    return pd.DataFrame({
        "instance": found.instance, "point": found.point, "column_a": columns[0], "value_a": mesh[0].ravel(),
        "column_b": b, "value_b": mesh[1].ravel() if b else np.full(mesh[0].size, np.nan),
        "score": grid["score"].ravel().astype(float), "right": grid["right"].ravel().astype(bool),
    })  # fmt: skip


#: the columns of each stored table (an empty result keeps them)
TABLE = list(_row(0, pd.Series({"instance": 0, "point": 0, "loss_t": 0.0}), None, "", ""))
CONDITIONS = ["instance", "point", "kind", "column", "low", "high", "span_low", "span_high", "below_low",
              "below_high", "above_low", "above_high", "value", "shared"]  # fmt: skip
OUTCOMES = ["instance", "point", "column_a", "value_a", "column_b", "value_b", "score", "right"]


def worst_anchors(
    run, studio, records: int = 5, budget: int = 2000, progress=None, **options
) -> WorstAnchors:
    """The anchors of the ``records`` worst failing records of ``run`` through ``studio`` (``options`` go to
    :func:`proactiv.analysis.anchor.anchor`); a record whose search raises is "not checked", naming the error."""
    worst = worst_records(run, records, kept=False, failing=True)
    rows, conditions, outcomes = [], [], []
    for rank, record in enumerate(worst.itertuples(), start=1):
        try:
            found = anchor(studio.run, int(record.instance), int(record.point), budget=budget, studio=studio,
                           **options)  # fmt: skip
        except (AnalysisError, ValueError) as err:
            rows.append(_row(rank, record, None, NOT_CHECKED, f"the search raised: {err}"))
        else:
            rows.append(_row(rank, record, found, *_status(found, budget)))
            conditions += _conditions(found)
            outcomes.append(_outcomes(found, outcome_grid(studio, found)))
        if progress:
            progress(rank / len(worst))
    return WorstAnchors(
        pd.DataFrame(rows, columns=TABLE),
        pd.DataFrame(conditions, columns=CONDITIONS),
        pd.concat(outcomes, ignore_index=True) if outcomes else pd.DataFrame(columns=OUTCOMES),
    )


class AnchorsStep(Step):
    """The anchors of the worst failing records (:func:`worst_anchors`)."""

    name = "anchors"
    title = "Anchors: where the worst records fail"
    command = "anchors"
    needs = frozenset({"model"})
    settings = {
        "records": 5,
        "precision": 0.95,
        "budget": 2000,
        "metadata": True,
        "metadata_budget": 600,
        "surrogate_samples": 300,
        "anchor_seed": 0,
    }
    files = ("anchors.parquet", "anchor_conditions.parquet", "anchor_outcomes.parquet")

    def compute(self, ctx, settings, progress):
        from proactiv.whatif import Studio  # rebuilds the model: loaded when the step runs

        if ctx.run.schema.outcome is None:
            raise AnalysisError(
                f"run {ctx.run.path} has no outcome (no classes and no cutoff): nothing fails"
            )
        studio = Studio(ctx.run, device=ctx.device)  # a run it cannot rebuild: skipped, saying why
        return worst_anchors(ctx.view, studio, settings["records"], settings["budget"], progress,
                             precision=settings["precision"], metadata=settings["metadata"],
                             metadata_budget=settings["metadata_budget"],
                             surrogate_samples=settings["surrogate_samples"], seed=settings["anchor_seed"])  # fmt: skip

    def save(self, result: WorstAnchors, folder: Path) -> None:
        for name, frame in zip(self.files, (result.table, result.conditions, result.outcomes), strict=True):
            write_parquet(folder / name, frame)

    def load(self, folder: Path) -> WorstAnchors:
        return WorstAnchors(*(pd.read_parquet(folder / name) for name in self.files))

    def note(self, result: WorstAnchors) -> str:
        t = result.table
        if t.empty:
            return "no record fails: nothing to anchor"
        done = t[t.status == ANCHORED]
        text = (f"the {len(t)} worst failing records (failures first, then by loss on xT, one per instance): "
                f"{len(done)} anchored, {len(t) - len(done)} not checked")  # fmt: skip
        wider = int((done.instances > 1).sum())
        if len(done):
            text += f"; {wider} of {len(done)} rules reach beyond their own instance"
        text += f"; {int(t.samples.sum())} model evaluations"
        unchecked = t[t.status == NOT_CHECKED]
        if len(unchecked):
            text += ". Not checked: " + " | ".join(
                f"#{r.instance} @ {r.point}: {r.reason}" for r in unchecked.itertuples()
            )
        return text


register(AnchorsStep())

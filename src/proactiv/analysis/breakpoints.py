"""Breakpoints: how accuracy, flip rate, ``loss_t`` and ``d_x`` change along each transform parameter, and
the parameter value where the model breaks.

Runs without predictions (image-to-image) whose records carry ``correct_t`` (the output's loss is within the
projection cutoff) get the curve ``within_cutoff`` in place of ``accuracy``, and breakpoints on it. Image runs
add PSNR/SSIM curves (PSNR capped at ``PSNR_CAP_DB``: identical images have infinite PSNR).

Curves marginalise the other grid parameters (condition ``""``) or hold them at one value each (condition
``"clip.level=0.5"``), over all instances (scope ``"all"``) or one class (scope = class name; for runs
without predictions the group of ``RunView.group_column``, e.g. the digit). Marginal
curves first average each instance over the other parameters, so their 95 % confidence intervals are over
instances, the unit that was sampled.

The breakpoint rule: moving away from the identity value, the **first value whose accuracy falls below
``threshold`` × the accuracy at the identity value** (default 0.8: the model lost a fifth of its accuracy),
**and whose 95 % interval lies below ``threshold`` × the lower end of the identity's interval**. It is relative to the identity value, so
classes and conditions with different clean accuracy compare; it names no value when the model never loses
that much (a robust parameter gets no row), whereas a "largest change" rule always names one, and its
answer depends on the spacing of the grid values. The interval condition keeps sampling noise from making
breakpoints: where the model is already near chance, or a class has few instances, accuracy wobbles by more
than a fifth between neighbouring values without anything breaking. Values on each side of a finite identity (gain below and
above 0 dB) are walked separately.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd

from proactiv.analysis.runview import RunView, format_value, open_view, q, record_sql
from proactiv.analysis.steps import TableStep, register
from proactiv.schema import METRIC_CATALOGUE
from proactiv.store import Run

#: curve metrics: name → SQL over records (each only where its columns exist; see ``_metrics``)
CURVE_METRICS = {m.name: record_sql(m) for m in METRIC_CATALOGUE.values() if m.curve}
#: the metrics breakpoints are found on (a run has at most one of them)
OUTCOME_METRICS = ("accuracy", "within_cutoff")
DEFAULT_THRESHOLD = 0.8
BREAKPOINT_COLUMNS = [
    "transform", "param", "column", "scope", "condition", "side", "value", "metric", "before", "after",
    "previous", "reference_value", "reference", "ci_low", "ci_high", "n", "rule",
]  # fmt: skip


def _metrics(view: RunView) -> dict[str, str]:
    """The curve metrics this run's records support, with the image-quality columns of image runs."""
    names = [view.correct_metric] if view.correct_metric else []
    names += [m for m in ("flip_rate",) if view.schema.has("flipped")] + ["loss_t", "d_x"]
    return {m: CURVE_METRICS[m] for m in names + view.quality_metrics}


def _interval(mean: pd.Series, sd: pd.Series, n: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """95 % Student-t interval of a mean over ``n`` instances (zero width for one instance)."""
    from scipy import stats

    n = n.to_numpy(dtype=float)
    half = stats.t.ppf(0.975, np.maximum(n - 1, 1)) * np.nan_to_num(sd.to_numpy(dtype=float)) / np.sqrt(n)
    half[n < 2] = 0.0
    return mean.to_numpy() - half, mean.to_numpy() + half


def _long(frame: pd.DataFrame, metrics: list[str], keys: list[str]) -> pd.DataFrame:
    """Wide per-metric ``<m>_mean``/``<m>_sd`` columns → one row per metric with mean and interval."""
    parts = []
    for m in metrics:
        low, high = _interval(frame[f"{m}_mean"], frame[f"{m}_sd"], frame["n"])
        part = frame[keys + ["n"]].copy()
        part["metric"] = m
        part["mean"], part["ci_low"], part["ci_high"] = frame[f"{m}_mean"].to_numpy(), low, high
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def _scopes(view: RunView, keys: str) -> tuple[str, str]:
    """(GROUP BY clause, scope expression) over records with a ``grp`` column: every key group overall and,
    when the run has classes (or groups), per class."""
    if view.group_sql is not None:
        scope = "CASE WHEN GROUPING(grp) = 1 THEN 'all' ELSE grp END"
        return f"GROUPING SETS (({keys}), ({keys}, grp))", scope
    return keys, "'all'"


def _grouped(view: RunView) -> str:
    """The records with each one's class name as ``grp``."""
    return f"(SELECT *, {view.group_sql or 'NULL::VARCHAR'} AS grp FROM records)"


def curves(run: Run | str | os.PathLike | RunView, within_others: bool = True) -> pd.DataFrame:
    """Metric curves along every transform parameter, with 95 % confidence intervals over instances.

    Returns one row per (column, scope, condition, value, metric): ``transform``, ``param``, ``column``,
    ``scope`` (``"all"`` or a class name), ``condition`` (``""`` when the other parameters are
    marginalised), ``value``, ``metric``, ``mean``, ``ci_low``, ``ci_high``, ``n`` (instances).
    """
    view = run if isinstance(run, RunView) else open_view(run)
    metrics = _metrics(view)
    aggs = ", ".join(f"avg({m}) AS {m}_mean, stddev_samp({m}) AS {m}_sd" for m in metrics)
    tables = []
    for column in view.grid_columns:
        per = ", ".join(f"avg({sql}) AS {m}" for m, sql in metrics.items())
        groups, scope = _scopes(view, "value")
        frame = view.query(
            f"WITH per AS (SELECT {q(column)} AS value, grp, instance, {per} FROM {_grouped(view)} GROUP BY ALL) "
            f"SELECT value, {scope} AS scope, count(*) AS n, {aggs} FROM per GROUP BY {groups}"
        )
        frame["column"], frame["condition"] = column, ""
        tables.append(_long(frame, list(metrics), ["column", "scope", "condition", "value"]))
    if within_others and len(view.grid_columns) > 1:
        cols = ", ".join(q(c) for c in view.grid_columns)
        raw = ", ".join(f"avg({sql}) AS {m}_mean, stddev_samp({sql}) AS {m}_sd" for m, sql in metrics.items())
        groups, scope = _scopes(view, cols)
        frame = view.query(
            f"SELECT {cols}, {scope} AS scope, count(*) AS n, {raw} FROM {_grouped(view)} GROUP BY {groups}"
        )
        for column in view.grid_columns:
            others = [c for c in view.grid_columns if c != column]
            part = frame.drop(columns=others).rename(columns={column: "value"})
            part["column"] = column
            part["condition"] = [
                ", ".join(f"{c}={format_value(v)}" for c, v in zip(others, row, strict=True))
                for row in frame[others].itertuples(index=False)
            ]
            tables.append(_long(part, list(metrics), ["column", "scope", "condition", "value"]))
    out = pd.concat(tables, ignore_index=True)
    params = view.params
    out.insert(0, "transform", out["column"].str.rsplit(".", n=1).str[0])
    out.insert(1, "param", [params[c].name for c in out["column"]])
    return out.sort_values(["column", "condition", "scope", "metric", "value"], ignore_index=True)


def distance_from_identity(value: float, identity: float) -> float:
    """How far a parameter value is from the identity (a larger SNR is closer to an identity of +inf)."""
    if math.isinf(identity):
        return -value if identity > 0 else value
    return abs(value - identity)


def sides_of_identity(values: np.ndarray, identity: float) -> dict[str, np.ndarray]:
    """Indices of values below and above the identity, each ordered from the identity outward."""
    out = {}
    for side, mask in (("below", values < identity), ("above", values > identity)):
        idx = np.nonzero(mask)[0]
        if idx.size:
            out[side] = idx[
                np.argsort([distance_from_identity(values[i], identity) for i in idx], kind="stable")
            ]
    return out


def find_breakpoints(
    curves_table: pd.DataFrame, identities: dict[str, float], threshold: float
) -> pd.DataFrame:
    """Apply the breakpoint rule (module docstring) to the ``accuracy`` (or ``within_cutoff``) curves of a
    :func:`curves` table."""
    if not 0 < threshold < 1:
        raise ValueError(f"threshold = {threshold}: expected a fraction of the identity accuracy in (0, 1)")
    present = [m for m in OUTCOME_METRICS if m in set(curves_table.metric)]
    metric = present[0] if present else "accuracy"
    words = metric.replace("_", " ")
    rule = (
        f"first value, moving away from the identity, with {words} < {threshold:g} x {words} at the identity "
        f"and its 95 % upper bound < {threshold:g} x the identity's 95 % lower bound"
    )
    acc = curves_table[curves_table.metric == metric]
    rows = []
    if acc.empty:
        return pd.DataFrame(rows, columns=BREAKPOINT_COLUMNS)
    for (column, scope, condition), group in acc.groupby(["column", "scope", "condition"], sort=False):
        values = group.value.to_numpy(dtype=float)
        mean = group["mean"].to_numpy(dtype=float)
        upper = group["ci_high"].to_numpy(dtype=float)
        lower = group["ci_low"].to_numpy(dtype=float)
        identity = identities[column]
        ref = int(np.argmin([distance_from_identity(v, identity) for v in values]))
        if mean[ref] <= 0:
            continue
        for side, order in sides_of_identity(values, identity).items():
            prev = ref
            for i in order:
                if i == ref:
                    continue
                if mean[i] < threshold * mean[ref] and upper[i] < threshold * lower[ref]:
                    first = group.iloc[i]
                    rows.append(
                        {
                            "transform": first["transform"],
                            "param": first["param"],
                            "column": column,
                            "scope": scope,
                            "condition": condition,
                            "side": side,
                            "value": values[i],
                            "metric": metric,
                            "before": mean[prev],
                            "after": mean[i],
                            "previous": values[prev],
                            "reference_value": values[ref],
                            "reference": mean[ref],
                            "ci_low": first["ci_low"],
                            "ci_high": first["ci_high"],
                            "n": int(first["n"]),
                            "rule": rule,
                        }
                    )
                    break
                prev = i
    return pd.DataFrame(rows, columns=BREAKPOINT_COLUMNS)


def breakpoints(
    run: Run | str | os.PathLike | RunView,
    threshold: float = DEFAULT_THRESHOLD,
    within_others: bool = True,
    curves_table: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Where the model breaks along each transform parameter, overall and per class.

    One row per (column, scope, condition, side) that breaks: ``transform``, ``param``, ``scope``,
    ``value`` (the first broken value), ``metric`` (``"accuracy"``), ``before`` (accuracy at the previous,
    unbroken value ``previous``), ``after`` (accuracy at ``value``), ``reference`` (accuracy at the identity
    value ``reference_value``, or at the mildest value when the grid lacks the identity), its interval and
    the ``rule``. Runs without predictions break on ``within_cutoff`` (``metric`` says which); runs with
    neither column get an empty table.
    """
    view = run if isinstance(run, RunView) else open_view(run)
    if curves_table is None:
        if view.correct_metric is None:
            return pd.DataFrame(columns=BREAKPOINT_COLUMNS)
        curves_table = curves(view, within_others=within_others)
    elif not within_others:
        curves_table = curves_table[curves_table.condition == ""]
    identities = {c: p.identity for c, p in view.params.items()}
    return find_breakpoints(curves_table, identities, threshold)


class CurvesStep(TableStep):
    """Metric curves along each transform parameter (:func:`curves`)."""

    name = "curves"
    title = "Metric curves"
    files = ("curves.parquet",)

    def compute(self, ctx, settings, progress):
        return curves(ctx.view)


class BreakpointsStep(TableStep):
    """Where the model breaks (:func:`breakpoints`), read off the curves step's table."""

    name = "breakpoints"
    title = "Breakpoints"
    settings = {"threshold": DEFAULT_THRESHOLD}
    after = ("curves",)
    files = ("breakpoints.parquet",)

    def compute(self, ctx, settings, progress):
        table = breakpoints(ctx.view, threshold=settings["threshold"], curves_table=ctx.results["curves"])
        table.attrs["outcome"] = ctx.view.correct_metric  # what the note says the breakpoints are about
        return table

    def note(self, table):
        outcome = table.attrs["outcome"]
        if outcome is None:
            return "no predictions and no loss cutoff in this run: accuracy breakpoints are undefined"
        on = (
            ""
            if outcome == "accuracy"
            else "on the share of outputs within the loss cutoff (no predictions in this run); "
        )
        return on + (
            f"{(table.condition == '').sum()} breakpoints over marginal curves; rule: {table.rule.iloc[0]}"
            if len(table)
            else "the model never broke under the breakpoint rule"
        )


register(CurvesStep())
register(BreakpointsStep())

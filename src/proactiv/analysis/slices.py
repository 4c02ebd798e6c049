"""Error slices: a shallow decision tree predicting failure from the transform parameters and instance
metadata; its leaves are the slices, ranked by error rate × size (the number of failures they hold), as in
the *identify* step of Error Analysis.

Features: every grid column (numeric; an infinite value such as a clean SNR becomes a finite stand-in above
the others), numeric ``meta.*`` columns, and as one-hot categories the class (``label_name``, or the group
column of a run without predictions such as ``meta.digit``: a digit is a name, not a quantity) and the
``meta.*`` columns with few distinct values (identifier-like columns such as a file path would let the tree
memorise instances, so columns with a distinct value for most instances are left out).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from proactiv.analysis.runview import AnalysisError, RunView, format_value, open_view, q
from proactiv.analysis.steps import TableStep, get, register
from proactiv.store import Run


@dataclass
class _Feature:
    """One tree input: a numeric column, or one category of a categorical column."""

    column: str
    category: object = None
    values: np.ndarray | None = None  # distinct values of a numeric column, to show thresholds as data values

    @property
    def categorical(self) -> bool:
        return self.values is None


def _literal(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, float, np.integer, np.floating)):
        return (
            repr(float(value))
            if not math.isinf(value)
            else ("'inf'::DOUBLE" if value > 0 else "'-inf'::DOUBLE")
        )
    return "'" + str(value).replace("'", "''") + "'"


def _design(frame: pd.DataFrame, view: RunView, top_categories: int) -> tuple[np.ndarray, list[_Feature]]:
    """The tree's input matrix and what each of its columns means."""
    n_instances = frame.instance.nunique()
    blocks, features = [], []
    numeric = list(view.grid_columns) + [c for c in view.instance_columns if not frame[c].isna().any()]
    group = view.group_column
    categorical = [group] if group is not None else []
    for col in view.meta_columns:
        s = frame[col]
        if col == group:
            continue
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s) and not s.isna().any():
            numeric.append(col)
        elif s.nunique() <= max(2, min(top_categories * 4, n_instances // 2)):
            categorical.append(col)
    for col in numeric:
        x = frame[col].to_numpy(dtype=float)
        finite = x[np.isfinite(x)]
        span = (finite.max() - finite.min()) if finite.size else 1.0
        top = (finite.max() if finite.size else 0.0) + max(span, 1.0)
        bottom = (finite.min() if finite.size else 0.0) - max(span, 1.0)
        blocks.append(np.where(np.isposinf(x), top, np.where(np.isneginf(x), bottom, x))[:, None])
        features.append(_Feature(col, values=np.unique(x)))
    for col in categorical:
        counts = frame[col].dropna().value_counts()
        for value in counts.index[:top_categories]:
            blocks.append((frame[col] == value).to_numpy(dtype=float)[:, None])
            features.append(_Feature(col, category=value))
    return np.hstack(blocks), features


def _leaf_rules(tree) -> dict[int, list[tuple[int, bool, float]]]:
    """For each leaf node id, the (feature, goes-left, threshold) tests on its path from the root."""
    t = tree.tree_
    out, stack = {}, [(0, [])]
    while stack:
        node, path = stack.pop()
        left, right = t.children_left[node], t.children_right[node]
        if left == right:
            out[node] = path
            continue
        f, thr = int(t.feature[node]), float(t.threshold[node])
        stack.append((left, path + [(f, True, thr)]))
        stack.append((right, path + [(f, False, thr)]))
    return out


def _describe(path: list[tuple[int, bool, float]], features: list[_Feature]) -> tuple[str, str]:
    """Readable conditions and a DuckDB WHERE clause for one leaf's path."""
    bounds: dict[str, list[float]] = {}
    equal: dict[str, object] = {}
    unequal: dict[str, list] = {}
    for f, left, thr in path:
        feat = features[f]
        if feat.categorical:
            if left:
                unequal.setdefault(feat.column, []).append(feat.category)
            else:
                equal[feat.column] = feat.category
        else:
            lo, hi = bounds.setdefault(feat.column, [-math.inf, math.inf])
            bounds[feat.column] = [lo, min(hi, thr)] if left else [max(lo, thr), hi]
    text, sql = [], []
    for feat in {f.column: f for f in features if not f.categorical}.values():
        if feat.column not in bounds:
            continue
        lo, hi = bounds[feat.column]
        inside = (
            feat.values[(feat.values > lo) & (feat.values <= hi)]
            if math.isfinite(hi)
            else feat.values[feat.values > lo]
        )
        first, last = format_value(inside.min()), format_value(inside.max())
        if inside.size == 1:
            text.append(f"{feat.column} = {first}")
        elif math.isfinite(lo) and math.isfinite(hi):
            text.append(f"{first} ≤ {feat.column} ≤ {last}")
        else:
            text.append(f"{feat.column} ≤ {last}" if math.isfinite(hi) else f"{feat.column} ≥ {first}")
        if math.isfinite(lo):
            sql.append(f"{q(feat.column)} > {lo!r}")
        if math.isfinite(hi):
            sql.append(f"{q(feat.column)} <= {hi!r}")
    for col, value in equal.items():
        text.append(f"{col} = {value}")
        sql.append(f"{q(col)} = {_literal(value)}")
    for col, values in unequal.items():
        if col in equal:
            continue
        shown = ", ".join(str(v) for v in values)
        text.append(f"{col} ≠ {shown}" if len(values) == 1 else f"{col} ∉ {{{shown}}}")
        sql.append(f"({q(col)} IS NULL OR {q(col)} NOT IN ({', '.join(_literal(v) for v in values)}))")
    return (" and ".join(text) or "all records"), (" AND ".join(sql) or "TRUE")


def error_slices(
    run: Run | str | os.PathLike | RunView,
    failure: str | None = None,
    max_depth: int = 3,
    min_slice: int | None = None,
    top_categories: int = 30,
) -> pd.DataFrame:
    """Slices of records where the model fails, ranked by ``score`` = error rate × size.

    Parameters
    ----------
    failure : a DuckDB boolean expression over records saying what a failure is (default ``NOT correct_t``:
        a wrong class, or an output outside the loss cutoff; required for runs without ``correct_t``, e.g.
        ``"loss_t > 0.1"``).
    max_depth : depth of the tree (3 gives at most 8 slices of at most 3 conditions each).
    min_slice : fewest records in a slice (default: 1 % of the records, at least 20).

    Returns one row per slice: ``slice`` (rank), ``conditions``, ``where`` (the slice as a DuckDB WHERE
    clause), ``size``, ``errors``, ``error_rate``, ``coverage`` (share of all failures), ``score``, and
    the grid points of the slice with the lowest and highest error rate (``best_point``, ``worst_point``,
    their descriptions and error rates).
    """
    from sklearn.tree import DecisionTreeClassifier

    view = run if isinstance(run, RunView) else open_view(run)
    if failure is None:
        if view.correct_metric is None:
            raise AnalysisError(
                f"run {view.run.path} has neither predictions nor a loss cutoff (no correct_t); pass a failure "
                "expression, e.g. failure='loss_t > 0.1'"
            )
        failure = "NOT correct_t"
    cols = ", ".join(
        q(c)
        for c in [
            "instance",
            "point",
            "label_name",
            *view.grid_columns,
            *view.meta_columns,
            *view.instance_columns,
        ]
    )
    frame = view.query(f"SELECT {cols}, ({failure})::BOOLEAN AS failure FROM records")
    y = frame.failure.fillna(False).to_numpy(dtype=bool)
    x, features = _design(frame, view, top_categories)
    min_slice = int(min_slice or max(20, math.ceil(0.01 * len(frame))))
    tree = DecisionTreeClassifier(max_depth=max_depth, min_samples_leaf=min_slice, random_state=0).fit(x, y)
    leaf = tree.apply(x)
    per_point = (
        pd.DataFrame({"leaf": leaf, "point": frame.point.to_numpy(), "failure": y})
        .groupby(["leaf", "point"], as_index=False)
        .failure.mean()
    )
    rows = []
    for node, path in _leaf_rules(tree).items():
        inside = leaf == node
        if not inside.any():
            continue
        conditions, where = _describe(path, features)
        points = per_point[per_point.leaf == node].sort_values(["failure", "point"])
        best, worst = points.iloc[0], points.iloc[-1]
        size, errors = int(inside.sum()), int(y[inside].sum())
        rows.append(
            {
                "conditions": conditions,
                "where": where,
                "size": size,
                "errors": errors,
                "error_rate": errors / size,
                "coverage": errors / max(int(y.sum()), 1),
                "score": errors,
                "best_point": int(best.point),
                "best_point_values": view.describe_point(int(best.point)),
                "best_point_error_rate": float(best.failure),
                "worst_point": int(worst.point),
                "worst_point_values": view.describe_point(int(worst.point)),
                "worst_point_error_rate": float(worst.failure),
            }
        )
    table = pd.DataFrame(rows).sort_values(["score", "error_rate"], ascending=False, ignore_index=True)
    table.insert(0, "slice", np.arange(1, len(table) + 1))
    table.attrs["failure"] = failure
    return table


class SlicesStep(TableStep):
    """Error slices (:func:`error_slices`), splitting also on the per-instance breakpoints when computed."""

    name = "slices"
    title = "Error slices"
    settings = {"failure": None, "max_depth": 3}
    files = ("slices.parquet",)
    uses = ("instance_breakpoints",)

    def compute(self, ctx, settings, progress):
        ctx.view.attach([get(n).instance_columns(ctx.results[n]) for n in self.uses if ctx.results.get(n)])
        return error_slices(ctx.view, failure=settings["failure"], max_depth=settings["max_depth"])

    def note(self, table):
        return f"failure = {table.attrs['failure']}"


register(SlicesStep())

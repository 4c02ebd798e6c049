"""Confusions: what the inputs of each class are taken for, per finer name of the input when the run has one.

A classifier's errors read best as "these inputs are taken for that class". Classes can hide what matters:
a keyword spotter's ``_unknown_`` class holds many words, and which *word* is taken for which keyword is the
open-set failure a user must see. So the rows are the values of a metadata column that names inputs more
finely than their class — ``by`` (a setting), or else the first categorical ``meta.*`` column whose every
value belongs to one class and which splits a class into several values without naming each instance
(``meta.word`` of a KWS run) — or the classes themselves when there is none (a plain confusion matrix).

One row per (value, class, predicted class) with the share of the value's records predicted so on xT, over
every grid point, and the share of its instances already wrong on the clean input.
"""

from __future__ import annotations

import os

import pandas as pd

from proactiv.analysis.runview import AnalysisError, RunView, open_view, q
from proactiv.analysis.steps import TableStep, register
from proactiv.store import Run

COLUMNS = ("by", "value", "class", "predicted", "records", "share", "instances", "clean_wrong")


def finer_column(view: RunView) -> str | None:
    """The first categorical ``meta.*`` column that names inputs more finely than their class (see the module
    docstring), or None."""
    n_instances = view.query("SELECT count(DISTINCT instance) AS n FROM records").n[0]
    for col in view.meta_columns:
        stats = view.query(
            f"SELECT count(DISTINCT {q(col)}) AS n_values, max(classes) AS most_classes FROM (SELECT {q(col)}, "
            f"count(DISTINCT label_name) AS classes FROM records WHERE {q(col)} IS NOT NULL GROUP BY 1)"
        )
        per_class = view.query(
            f"SELECT max(n) AS n FROM (SELECT count(DISTINCT {q(col)}) AS n FROM records GROUP BY label_name)"
        )
        text = view.query(f"SELECT typeof(any_value({q(col)})) AS t FROM records").t[0] == "VARCHAR"
        n_values = int(stats.n_values[0])
        if text and stats.most_classes[0] == 1 and per_class.n[0] > 1 and n_values <= n_instances / 2:
            return col
    return None


def confusions(run: Run | str | os.PathLike | RunView, by: str | None = None) -> pd.DataFrame:
    """The confusion table of a classifier run (see the module docstring), most-confused values first:
    ``by`` (the column the rows name), ``value``, ``class``, ``predicted``, ``records``, ``share`` (of the
    value's records predicted as ``predicted`` on xT), ``instances``, ``clean_wrong`` (share of the value's
    instances wrong on the clean input)."""
    view = run if isinstance(run, RunView) else open_view(run)
    if not view.classifier:
        raise AnalysisError(f"run {view.run.path} has no predicted classes (not a classifier): no confusions")
    if by is not None and by not in view.meta_columns:
        raise AnalysisError(
            f"confusions by={by!r}: the records have no such metadata column; choose one of {view.meta_columns}"
        )
    by = by or finer_column(view) or "label_name"
    names = view.run.class_names or []
    value = f"CAST({q(by)} AS VARCHAR)"
    frame = view.query(
        f"SELECT {value} AS value, label_name AS class, pred_t, count(*) AS records FROM records GROUP BY 1, 2, 3"
    )
    per_value = view.query(
        f"SELECT {value} AS value, count(DISTINCT instance) AS instances, "
        f"count(DISTINCT CASE WHEN NOT correct_clean THEN instance END) / count(DISTINCT instance) AS clean_wrong "
        f"FROM records GROUP BY 1"
    )
    frame["predicted"] = [names[int(p)] if 0 <= int(p) < len(names) else str(int(p)) for p in frame.pred_t]
    frame["share"] = frame.records / frame.groupby("value").records.transform("sum")
    frame = frame.merge(per_value, on="value", how="left")
    frame["by"] = by
    wrong = frame[frame.predicted != frame["class"]].groupby("value").share.sum()
    frame["_wrong"] = frame.value.map(wrong).fillna(0.0)
    frame = frame.sort_values(["_wrong", "value", "share"], ascending=[False, True, False], ignore_index=True)
    return frame[list(COLUMNS)]


class ConfusionsStep(TableStep):
    """What each input is taken for (:func:`confusions`)."""

    name = "confusions"
    title = "Confusions: what inputs are taken for"
    targets = frozenset({"label"})
    settings = {"by": None}
    files = ("confusions.parquet",)

    def compute(self, ctx, settings, progress):
        return confusions(ctx.view, by=settings["by"])

    def note(self, table):
        if table.empty:
            return "no records"
        return f"rows: {table.by.iloc[0]} ({table.value.nunique()} values)"


register(ConfusionsStep())

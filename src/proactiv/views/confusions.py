"""Confusion view: for the inputs a classifier gets wrong most often, what they are taken for on xT — per word
of a keyword spotter's ``_unknown_`` class, so its open-set failures (``night`` → ``right``) show at a glance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from proactiv.views.sections import register_section
from proactiv.views.source import RunLike, open_analysed
from proactiv.views.style import TEMPLATE, message_figure

#: rows (values) the figure shows at most: the most confused
TOP = 30


def _wrong_share(table: pd.DataFrame) -> pd.Series:
    """Per value, the share of its records predicted as another class than its own, most confused first."""
    wrong = table[table.predicted != table["class"]].groupby("value").share.sum()
    return wrong.reindex(table.value.unique(), fill_value=0.0).sort_values(ascending=False, kind="stable")


def confusion_figure(table: pd.DataFrame | None, top: int = TOP) -> go.Figure:
    """A heatmap of the ``top`` most-confused values (rows, ``value (class)``) against the predicted classes
    (columns): the share of each value's records predicted as each class on xT."""
    if table is None or table.empty:
        return message_figure("no confusions were computed")
    wrong = _wrong_share(table)
    wrong = wrong[wrong > 0].head(top)
    if wrong.empty:
        return message_figure("every record is predicted as its own class: nothing is confused")
    rows = table[table.value.isin(wrong.index)]
    classes = rows.drop_duplicates("value").set_index("value")["class"]
    predicted = sorted(rows.predicted.unique(), key=lambda c: (c.startswith("_"), c))
    grid = rows.pivot_table(index="value", columns="predicted", values="share", aggfunc="sum", fill_value=0.0)
    grid = grid.reindex(index=wrong.index, columns=predicted, fill_value=0.0)
    labels = [f"{v} ({classes[v]})" for v in grid.index]
    by = str(table.by.iloc[0]).removeprefix("meta.")
    fig = go.Figure(
        go.Heatmap(
            z=grid.to_numpy(), x=predicted, y=labels, colorscale="Reds", zmin=0, zmax=1,
            text=np.where(grid.to_numpy() > 0, np.round(grid.to_numpy() * 100).astype(int).astype(str), ""),
            texttemplate="%{text}", colorbar=dict(title="share of records"),
            hovertemplate=f"{by} %{{y}} taken for %{{x}}: %{{z:.0%}} of its records<extra></extra>",
        )
    )  # fmt: skip
    fig.update_yaxes(autorange="reversed", title_text=f"{by} (class)")
    fig.update_xaxes(title_text="predicted on xT", side="top")
    fig.update_layout(template=TEMPLATE, height=160 + 22 * len(labels),
                      title=f"What each {by} is taken for (the {len(labels)} most confused)")  # fmt: skip
    return fig


def confusion_sentence(table: pd.DataFrame | None) -> str:
    """The most-confused value and what it is most often taken for, in words."""
    if table is None or table.empty:
        return "No confusions were computed."
    wrong = _wrong_share(table)
    if wrong.iloc[0] == 0:
        return "Every record is predicted as its own class."
    value = wrong.index[0]
    rows = table[(table.value == value) & (table.predicted != table["class"])].sort_values("share")
    top = rows.iloc[-1]
    by = str(table.by.iloc[0]).removeprefix("meta.")
    confused = int((wrong > 0).sum())
    return (
        f"{confused} of {len(wrong)} {by} values are taken for another class in some records; the most: "
        f"{by} '{value}' ({top['class']}) is taken for '{top.predicted}' in {top.share:.0%} of its records "
        f"({top.clean_wrong:.0%} of its instances already on the clean input)."
    )


def confusions(run: RunLike, top: int = TOP) -> go.Figure:
    """What the most-confused inputs of a classifier run are taken for (per word of a KWS run)."""
    _, analysis = open_analysed(run, ("confusions",))
    return confusion_figure(analysis["confusions"], top)


@register_section("confusions")
def report_html(table: pd.DataFrame, ctx) -> str:
    """The report section: the sentence and the confusion figure."""
    sentence = confusion_sentence(table)
    return f"<p class='confusions'>{sentence}</p>" + ctx.figure(confusion_figure(table), sentence, sentence)

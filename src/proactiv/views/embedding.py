"""The difference embeddings: one dot per grid point (its instances' difference vectors concatenated) or per
instance (its grid points' vectors), coloured by a grid value, a class, metadata or a metric. Several
colourings become a "colour by" menu over one plot."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from proactiv.analysis.runview import RunView, format_value
from proactiv.views.sections import register_section
from proactiv.views.style import TEMPLATE, class_colour, message_figure, param_axes, value_order


@dataclass(frozen=True)
class Colouring:
    """Colour the dots by ``column`` (titled ``label``): categories with a legend (``index`` fixes each
    category's palette entry, e.g. a class's colour) or a continuous scale (``fraction``: 0 to 1)."""

    column: str
    label: str
    categorical: bool
    index: Mapping[str, int] | None = None
    fraction: bool = False


def _traces(table: pd.DataFrame, id_column: str, c: Colouring, selected, webgl: bool) -> list:
    """One trace per category, or one on a colour scale; hover says the id and the value (no per-dot text,
    which would weigh as much as the dots)."""
    kind = go.Scattergl if webgl else go.Scatter
    hover = f"{id_column} %{{customdata}}<br>{c.label} = "

    def chosen(frame: pd.DataFrame):
        return None if selected is None else [k for k, v in enumerate(frame[id_column]) if int(v) in selected]

    if c.categorical:
        values = table[c.column].map(
            lambda v: "(missing)" if pd.isna(v) else str(v)
        )  # e.g. no word for silence
        out = []
        for k, cat in enumerate(sorted(values.unique(), key=value_order)):
            part = table[values == cat]
            colour = class_colour((c.index or {}).get(cat, k))
            out.append(kind(
                x=part["x"], y=part["y"], mode="markers", name=cat, legendgroup=c.column,
                legendgrouptitle_text=c.label, customdata=part[id_column].astype(int),
                marker={"size": 8, "color": colour, "line": {"width": 0.5, "color": "white"}},
                selectedpoints=chosen(part), hovertemplate=hover + cat + "<extra></extra>",
            ))  # fmt: skip
        return out
    v = pd.to_numeric(table[c.column], errors="coerce").replace([np.inf, -np.inf], np.nan)
    scale = {"cmin": 0.0, "cmax": 1.0} if c.fraction else {}
    return [kind(
        x=table["x"], y=table["y"], mode="markers", name=c.label, customdata=table[id_column].astype(int),
        showlegend=False, selectedpoints=chosen(table), hovertemplate=hover + "%{marker.color:.3g}<extra></extra>",
        marker={"size": 8, "color": v, "colorscale": "Viridis", "showscale": True, **scale,
                "colorbar": {"title": {"text": c.label, "side": "right"}}},
    )]  # fmt: skip


def embedding_figure(
    table: pd.DataFrame,
    id_column: str,
    colourings: Sequence[Colouring],
    title: str = "",
    selected: set[int] | None = None,
    webgl: bool = True,
) -> go.Figure:
    """A 2-D embedding (``x``, ``y``; ``customdata`` holds the ``id_column`` for selections), coloured by the
    first of ``colourings``, with a menu to switch to the others; ``selected`` ids are highlighted."""
    if table is None or table.empty or not colourings:
        return message_figure("no embedding in this run's analysis")
    fig = go.Figure()
    spans = []
    for c in colourings:
        traces = _traces(table, id_column, c, selected, webgl)
        spans.append((len(fig.data), len(traces)))
        fig.add_traces(traces)
    n = len(fig.data)
    for k, (start, count) in enumerate(spans):
        for trace in fig.data[start : start + count]:
            trace.visible = k == 0
    if len(colourings) > 1:
        buttons = [
            {"label": c.label, "method": "update",
             "args": [{"visible": [start <= t < start + count for t in range(n)]}]}
            for c, (start, count) in zip(colourings, spans, strict=True)
        ]  # fmt: skip
        fig.update_layout(updatemenus=[{"buttons": buttons, "x": 0, "xanchor": "left", "y": 1.12,
                                        "yanchor": "top", "showactive": True}])  # fmt: skip
    method = table.attrs.get("method", "")
    fig.update_layout(
        template=TEMPLATE, title={"text": title, "font": {"size": 14}, "x": 0.5 if len(colourings) > 1 else 0.05},
        dragmode="lasso", height=440, margin={"t": 60, "b": 20, "l": 20, "r": 10}, uirevision=title,
        legend={"itemsizing": "constant"},
    )  # fmt: skip
    fig.update_xaxes(showticklabels=False, title=f"{method} 1" if method else None)
    fig.update_yaxes(showticklabels=False, title=f"{method} 2" if method else None)
    return fig


#: a metadata column with at most this many values colours by category, with more by a continuous scale
MAX_CATEGORIES = 20


def colourings(view: RunView, table: pd.DataFrame, by: str) -> list[Colouring]:
    """What an embedding can be coloured by: grid values (per point), the class (or group) and metadata (per
    instance); then the run's outcome (or the mean loss) and mean d_x."""
    schema = view.run.schema
    out: list[Colouring] = []
    if by == "point":
        for axis in param_axes(view):
            out.append(Colouring(axis.column, axis.title, True, {v: i for i, v in enumerate(axis.labels)}))
    else:
        group = schema.group_column
        if group is not None and group in table:
            out.append(Colouring(group, schema.group_title, True, {c: i for i, c in enumerate(view.classes)}))
        for col in view.meta_columns:
            if col == group or col not in table or table[col].nunique() < 2:
                continue
            many = table[col].nunique() > MAX_CATEGORIES
            if many and not pd.api.types.is_numeric_dtype(table[col]):
                continue  # e.g. a file path: one colour per instance says nothing
            out.append(Colouring(col, col.removeprefix("meta."), not many))
    outcome = schema.outcome if schema.outcome in table else None
    if outcome is not None:
        out.append(Colouring(outcome, schema.outcome_label, False, fraction=True))
    elif "mean_loss_t" in table:
        out.append(Colouring("mean_loss_t", "mean loss on xT", False))
    if "mean_d_x" in table:
        out.append(Colouring("mean_d_x", "mean d_x", False))
    return out


def run_embedding(view: RunView, table: pd.DataFrame | None, by: str = "point", colour: str | None = None,
                  webgl: bool = True) -> go.Figure:  # fmt: skip
    """The stored embedding ``by`` point or instance, coloured by ``colour`` first (a column of the table;
    default the first of :func:`colourings`), the other colourings in its menu."""
    if table is None or table.empty:
        return message_figure(f"no {by} embedding in this run's analysis")
    options = colourings(view, table, by)
    if colour is not None:
        chosen = [c for c in options if c.column == colour]
        if not chosen:
            raise ValueError(f"colour={colour!r}: choose one of {', '.join(c.column for c in options)}")
        options = chosen + [c for c in options if c.column != colour]
    frame = table.copy()
    for c in options:
        if c.column in view.grid_columns:
            frame[c.column] = [format_value(float(v)) for v in frame[c.column]]
    title = "one dot per grid point" if by == "point" else "one dot per instance"
    return embedding_figure(frame, by, options, f"Difference embedding: {title}", webgl=webgl)


#: what each embedding's section says its dots are
INTROS = {
    "point": "Each dot is a grid point (its instances' difference vectors concatenated), placed so that similar "
    "vectors lie close.",
    "instance": "Each dot is an instance (its grid points' difference vectors concatenated), placed so that "
    "similar vectors lie close.",
}


def _section(by: str, title: str):
    def render(table: pd.DataFrame, ctx) -> str:
        # WebGL only for big embeddings: SVG dots draw faster and need no GPU up to a few thousand
        fig = run_embedding(ctx.view, table, by, webgl=len(table) > 5000)
        return ctx.figure(fig, f"difference vectors {title}; the menu switches what the colour shows",
                          f"embedding {title}")  # fmt: skip

    return render


for _by, _title in (("point", "per grid point"), ("instance", "per instance")):
    register_section(f"embedding_{_by}s", intro=INTROS[_by])(_section(_by, _title))

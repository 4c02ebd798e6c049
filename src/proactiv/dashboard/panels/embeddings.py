"""The embeddings panel: the transform and instance embeddings, coloured by a chosen column, with metrics
recomputed over the filter the other views set (a lasso here filters them)."""

from __future__ import annotations

import pandas as pd
from dash import Input, Output, dcc, html

from proactiv.dashboard.data import Filter, RunData, fmt_value
from proactiv.dashboard.panels.registry import PanelContext, register_panel
from proactiv.dashboard.panels.shared import MAIN_LABEL, MAIN_TAB, dropdown, follow_run
from proactiv.views.curves import FRACTIONS
from proactiv.views.embedding import Colouring
from proactiv.views.embedding import embedding_figure as draw_embedding
from proactiv.views.style import message_figure


def colour_options(data: RunData, by: str) -> list[str]:
    """What an embedding can be coloured by: grid values (points); class and metadata (instances); metrics."""
    metrics = list(data.metrics)
    if by == "point":
        return [*data.grid_columns, *metrics]
    return [*(["label_name"] if data.run.schema.classifier else []), *data.meta_columns, *metrics]


def embeddings(data: RunData, store: dict | None, point_colour: str | None, instance_colour: str | None):
    """Transform and instance embeddings; metrics recomputed over the filter the other views set."""
    flt = Filter.from_store(store)
    return (
        embedding_figure(data, flt, "point", point_colour),
        embedding_figure(data, flt, "instance", instance_colour),
    )


def embedding_figure(
    data: RunData,
    flt: Filter,
    by: str,
    colour: str | None,
    title: str | None = None,
    category_index: dict[str, int] | None = None,
):
    """One embedding (``by`` = "point" or "instance"), coloured by ``colour`` (validated), metrics over
    ``flt`` without its own selection; ``category_index`` fixes category colours (shared across runs)."""
    table = data.analysis.embedding_points if by == "point" else data.analysis.embedding_instances
    if table is None or table.empty:
        return message_figure(f"no {by} embedding (see the analysis notes)")
    options = colour_options(data, by)
    colour = colour if colour in options else options[0]
    base = table[
        [by, "x", "y", *[c for c in table.columns if c not in data.metrics and c not in (by, "x", "y")]]
    ]
    own = getattr(flt, by + "s")
    live = (data.per_point if by == "point" else data.per_instance)(flt.without(by + "s"))
    frame = base.merge(live[[by, *data.metrics]], on=by, how="left")
    if colour in data.grid_columns:
        frame[colour] = [fmt_value(float(v)) for v in frame[colour]]
    is_class = colour in ("label_name", data.run.schema.group_column)
    categorical = colour in data.grid_columns or is_class or not pd.api.types.is_numeric_dtype(frame[colour])
    if title is None:
        title = (
            "Transform embedding — one point per grid point"
            if by == "point"
            else "Instance embedding — one point per instance"
        )
    if category_index is None:
        category_index = {c: i for i, c in enumerate(data.class_names or data.groups)}
    colouring = Colouring(colour, colour, categorical, category_index, fraction=colour in FRACTIONS)
    return draw_embedding(frame, by, [colouring], title, None if own is None else set(own))


def colour_choices(data: RunData) -> tuple[list[str], list[str], str | None, str | None]:
    """The colour dropdowns for a run: options for grid points and instances, then their first values."""
    points, instances = colour_options(data, "point"), colour_options(data, "instance")
    return points, instances, points[0] if points else None, instances[0] if instances else None


def layout(ctx: PanelContext) -> html.Div:
    points, instances, point, instance = colour_choices(ctx.first)
    halves = [
        html.Div(
            [
                dropdown(f"colour-{by}", options, value, f"colour {what} by", "260px"),
                dcc.Loading(dcc.Graph(id=f"emb-{by}", config={"displaylogo": False})),
            ],
            className="half",
        )
        for by, what, options, value in (
            ("points", "grid points", points, point),
            ("instances", "instances", instances, instance),
        )
    ]
    return html.Div(halves, className="row")


def callbacks(app, ctx: PanelContext) -> None:
    follow_run(app, ctx, ("colour-points", "colour-instances"), colour_choices)

    @app.callback(
        Output("emb-points", "figure"),
        Output("emb-instances", "figure"),
        Input("run", "value"),
        Input("filter", "data"),
        Input("colour-points", "value"),
        Input("colour-instances", "value"),
    )
    def _embeddings(index, store, pc, ic):
        return embeddings(ctx.run_of(index), store, pc, ic)


register_panel("embeddings", tab=MAIN_TAB, tab_label=MAIN_LABEL, title="Embeddings", layout=layout,
               callbacks=callbacks, order=11)  # fmt: skip

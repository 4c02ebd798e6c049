"""The compare panel: two runs side by side — their outcome curves, heatmaps and the difference (second −
first run) averaged and per grid point, their transform embeddings in shared colours, and their top slices."""

from __future__ import annotations

import dash
import pandas as pd
from dash import Input, Output, dcc, html

from proactiv.dashboard.data import Filter, RunData, fmt_value
from proactiv.dashboard.panels.embeddings import colour_options, embedding_figure
from proactiv.dashboard.panels.registry import PanelContext, register_panel
from proactiv.dashboard.panels.shared import dropdown, grid_axes, paged_table, usable_pair
from proactiv.dashboard.panels.slices import SLICE_COLUMNS, slices_rows
from proactiv.views.curves import FRACTIONS, runs_curves_figure
from proactiv.views.grid_diff import grid_diff_figure
from proactiv.views.heatmap import HeatPanel, heatmap_figure
from proactiv.views.style import message_figure, value_order

NO_PAIR = "start the dashboard with two runs to compare them"
TAB = "compare"


def compare_metric(a: RunData, b: RunData) -> str:
    """The metric two runs are compared on: accuracy (or the share within the cutoff) when both have it,
    else mean d_x."""
    for metric in ("accuracy", "within_cutoff"):
        if metric in a.metrics and metric in b.metrics:
            return metric
    return "mean_d_x"


def compare(runs: list[RunData | str], col_a: str | None, col_b: str | None):
    """Two runs side by side: the compared metric's curves of both, both heatmaps, and their difference."""
    pair = usable_pair(runs)
    if pair is None:
        msg = message_figure(NO_PAIR)
        return msg, msg, msg
    a, b = pair
    metric = compare_metric(a, b)
    common = [c for c in a.grid_columns if c in b.grid_columns]
    if not common:
        msg = message_figure("the two runs share no grid parameter")
        return msg, msg, msg
    tables = [
        (d.path.name, pd.concat([d.marginal(c, Filter()).assign(column=c) for c in common])) for d in pair
    ]
    curves = runs_curves_figure(tables, grid_axes(a, common), metric, metric.replace("_", " "))
    col_a = col_a if col_a in common else common[0]
    col_b = col_b if col_b in common else common[min(1, len(common) - 1)]
    ta, tb = (d.heatmap(col_a, col_b, metric, Filter()) for d in pair)
    both = ta.merge(tb, on=["a", "b"], suffixes=("_a", "_b"))
    if both.empty:
        return curves, *(message_figure("the two runs share no grid point"),) * 2
    titles = (a.grid_label(col_a), a.grid_label(col_b))
    side = heatmap_figure([HeatPanel(ta, *titles, a.path.name), HeatPanel(tb, *titles, b.path.name)], metric,
                          fraction=metric in FRACTIONS)  # fmt: skip
    both["m"] = both["m_b"] - both["m_a"]
    diff = heatmap_figure([HeatPanel(both[["a", "b", "m"]], *titles)], f"{metric} {b.path.name} − {a.path.name}",
                          diverging=True)  # fmt: skip
    return curves, side, diff


def grid_difference(a: RunData, b: RunData, metric: str) -> tuple[pd.DataFrame, str | None]:
    """``metric`` per grid point of both runs, matched on the grid parameters' values (not on point ids),
    with ``diff`` = b − a; and a note when the grids differ (points of only one run are left out)."""
    if set(a.grid_columns) != set(b.grid_columns):
        only = sorted(set(a.grid_columns) ^ set(b.grid_columns))
        return (
            pd.DataFrame(),
            f"The grids differ in their parameters ({', '.join(only)}): no grid point is shared.",
        )
    cols = a.grid_columns
    keys = [f"_key{i}" for i in range(len(cols))]
    tables = []
    for d in (a, b):
        t = d.per_point(Filter())
        for k, c in zip(keys, cols, strict=True):
            t[k] = t[c].astype(float).round(9)  # match values, tolerant of float noise
        tables.append(t)
    ta, tb = tables
    both = ta[[*keys, *cols, "point", "n", metric]].merge(
        tb[[*keys, "point", "n", metric]], on=keys, suffixes=("_a", "_b")
    )
    both = both.drop(columns=keys).rename(columns={f"{metric}_a": "m_a", f"{metric}_b": "m_b"})
    both["diff"] = both["m_b"] - both["m_a"]
    only_a, only_b = len(ta) - len(both), len(tb) - len(both)
    note = None
    if only_a or only_b:
        note = (
            f"The grids differ: {len(both)} grid points are in both runs and compared; "
            f"{only_a} only in {a.path.name} and {only_b} only in {b.path.name} are left out."
        )
    return both, note


def compare_grid(runs: list[RunData | str]):
    """The difference heatmap per grid point (second − first run) and a note when the grids differ."""
    pair = usable_pair(runs)
    if pair is None:
        return message_figure(NO_PAIR), ""
    a, b = pair
    metric = compare_metric(a, b)
    table, note = grid_difference(a, b, metric)
    if table.empty:
        return message_figure(note or "the two runs share no grid point"), note or ""
    if metric in FRACTIONS:
        scale, unit, fmt = 100.0, f"Δ {metric.replace('_', ' ')} (percentage points)", "+.1f"
    else:
        scale, unit, fmt = 1.0, f"Δ {a.metrics[metric][1]}", "+.4f"
    fig = grid_diff_figure(table, a.grid_columns, [a.grid_label(c) for c in a.grid_columns],
                           (a.path.name, b.path.name), metric, scale, unit, fmt)  # fmt: skip
    return fig, note or f"All {len(table)} grid points are in both runs."


def compare_colour_options(runs: list[RunData | str]) -> list[str]:
    """What both runs' transform embeddings can be coloured by (options common to both)."""
    pair = usable_pair(runs)
    if pair is None:
        return []
    other = set(colour_options(pair[1], "point"))
    return [c for c in colour_options(pair[0], "point") if c in other]


def compare_side(runs: list[RunData | str], colour: str | None, top: int = 8):
    """Both runs' transform embeddings coloured by the same column, and both runs' top error slices."""
    pair = usable_pair(runs)
    if pair is None:
        msg = message_figure(NO_PAIR)
        return msg, msg, [], []
    options = compare_colour_options(runs)
    colour = colour if colour in options else (options[0] if options else None)
    shared = None
    if colour in pair[0].grid_columns:  # grid values get the same colour in both runs
        labels = {fmt_value(float(v)) for d in pair for v in d.values(colour)}
        shared = {v: i for i, v in enumerate(sorted(labels, key=value_order))}
    figs = [
        embedding_figure(d, Filter(), "point", colour, f"{d.path.name}: transform embedding", shared)
        for d in pair
    ]
    rows = [[{k: r[k] for k in SLICE_COLUMNS} for r in slices_rows(d, None)[:top]] for d in pair]
    return figs[0], figs[1], rows[0], rows[1]


def layout(ctx: PanelContext) -> list | None:
    """The two runs' views; None (no tab) with fewer than two runs."""
    pair = usable_pair(ctx.runs)
    if pair is None:
        return None
    cols = pair[0].grid_columns
    colours = compare_colour_options(ctx.runs)
    sides = [
        html.Div([html.Div(d.path.name, className="kv"), paged_table(t, SLICE_COLUMNS)], className="half")
        for d, t in zip(pair, ("cmp-slices-a", "cmp-slices-b"), strict=True)
    ]
    return [
        dcc.Loading(dcc.Graph(id="cmp-curves")),
        html.Div([dropdown("cmp-a", cols, cols[0], "columns"), dropdown("cmp-b", cols, cols[-1], "rows")]),
        dcc.Loading(dcc.Graph(id="cmp-pair")),
        html.H4("Difference (second − first run), averaged over the other parameters"),
        dcc.Loading(dcc.Graph(id="cmp-heat")),
        html.H4("Difference per grid point (second − first run)"),
        html.Div(id="cmp-grid-note", className="note"),
        dcc.Loading(dcc.Graph(id="cmp-grid")),
        html.H4("Transform embeddings side by side"),
        dropdown("cmp-colour", colours, colours[0] if colours else None, "colour grid points by", "260px"),
        html.Div(
            [html.Div(dcc.Loading(dcc.Graph(id=f"cmp-emb-{k}")), className="half") for k in "ab"],
            className="row",
        ),
        html.H4("Top error slices side by side"),
        html.Div(sides, className="row"),
    ]


def callbacks(app, ctx: PanelContext) -> None:
    runs = ctx.runs

    @app.callback(Output("cmp-curves", "figure"), Output("cmp-pair", "figure"), Output("cmp-heat", "figure"),
                  Input("cmp-a", "value"), Input("cmp-b", "value"))  # fmt: skip
    def _compare(a, b):
        return compare(runs, a, b)

    @app.callback(Output("cmp-grid", "figure"), Output("cmp-grid-note", "children"), Input("tabs", "value"))
    def _grid(tab):
        if tab != TAB:  # drawn when the tab is opened
            return dash.no_update, dash.no_update
        return compare_grid(runs)

    @app.callback(Output("cmp-emb-a", "figure"), Output("cmp-emb-b", "figure"), Output("cmp-slices-a", "data"),
                  Output("cmp-slices-b", "data"), Input("cmp-colour", "value"))  # fmt: skip
    def _side(colour):
        return compare_side(runs, colour)


def _title(ctx: PanelContext) -> str:
    a, b = usable_pair(ctx.runs)
    return f"Compare: {a.path.name} vs {b.path.name}"


register_panel(TAB, tab=TAB, tab_label="Compare", title=_title, layout=layout, callbacks=callbacks, order=90)

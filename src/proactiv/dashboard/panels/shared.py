"""What every panel shares: picking a run by index, the filter the linked views set (from selections and
slice clicks, validated) with its callbacks, grid axes, and the page's dropdowns and tables."""

from __future__ import annotations

import math
from collections.abc import Callable

import dash
from dash import Input, Output, State, dash_table, dcc, html

from proactiv.dashboard.data import Filter, RunData
from proactiv.views.style import ParamAxis, param_axis

EMPTY_FILTER = {"points": None, "instances": None, "slice": None}
#: the tab the overview, the embeddings and the error slices share
MAIN_TAB, MAIN_LABEL = "main", "Overview & embeddings"


def pick(runs: list[RunData | str], index) -> RunData:
    """The run at ``index`` (an int from the run picker); ValueError for anything else."""
    try:
        i = int(index or 0)
    except (TypeError, ValueError):
        raise ValueError("bad run index") from None
    if not 0 <= i < len(runs) or isinstance(runs[i], str):
        raise ValueError("no usable run at that index")
    return runs[i]


def usable_pair(runs: list[RunData | str]) -> tuple[RunData, RunData] | None:
    """The first two runs that could be opened (what the compare views show), or None."""
    usable = [r for r in runs if not isinstance(r, str)]
    return (usable[0], usable[1]) if len(usable) >= 2 else None


def selected_ids(selected: dict | None) -> list[int] | None:
    """The point or instance ids of a plotly selection or click (``customdata``), integers only."""
    if not isinstance(selected, dict) or not isinstance(selected.get("points"), list):
        return None
    out = []
    for p in selected["points"]:
        v = p.get("customdata") if isinstance(p, dict) else None
        if isinstance(v, list):
            v = v[0] if v else None
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
            out.append(int(v))
    return sorted(set(out))


def update_filter(
    trigger: str | None,
    store: dict | None,
    points_selected: dict | None,
    instances_selected: dict | None,
    slice_cell: dict | None,
    slice_rows: list[dict] | None,
) -> dict:
    """The new filter after a selection, a slice click or a reset (``trigger`` names the input)."""
    new = dict(EMPTY_FILTER if store is None else store)
    if trigger in (None, "clear", "run"):
        return dict(EMPTY_FILTER)
    if trigger == "emb-points":
        new["points"] = selected_ids(points_selected)
    elif trigger == "emb-instances":
        new["instances"] = selected_ids(instances_selected)
    elif trigger == "slices" and slice_cell and slice_rows:
        row = int(slice_cell.get("row", -1))
        if 0 <= row < len(slice_rows):
            number = int(slice_rows[row]["slice"])
            new["slice"] = None if new.get("slice") == number else number
    return new


def filter_text(store: dict | None) -> str:
    """One line saying what the views are filtered by."""
    flt = Filter.from_store(store)
    if flt.empty:
        return "Showing all records. Lasso or box-select in an embedding, or click a slice, to filter."
    parts = []
    if flt.points is not None:
        parts.append(f"{len(flt.points)} grid points")
    if flt.instances is not None:
        parts.append(f"{len(flt.instances)} instances")
    if flt.slice is not None:
        parts.append(f"slice {flt.slice}")
    return "Filtered to " + " · ".join(parts)


def grid_axes(data: RunData, columns: list[str] | None = None) -> list[ParamAxis]:
    """Axes of a run's grid columns (all by default), values as the run's records hold them."""
    params = {t.column: t.param for t in data.run.grid.transforms}
    return [param_axis(c, params.get(c), data.values(c)) for c in (columns or data.grid_columns)]


def dropdown(id_: str, options: list, value, label: str, width: str = "220px") -> html.Div:
    """A labelled dropdown (no clearing: every panel needs a value)."""
    return html.Div(
        [html.Label(label), dcc.Dropdown(id=id_, options=options, value=value, clearable=False)],
        style={"width": width, "display": "inline-block", "marginRight": "12px"},
    )


def paged_table(id_: str, columns: list[str] | list[dict]) -> dash_table.DataTable:
    """An empty paged table (its rows come from a callback); the active cell is highlighted."""
    return dash_table.DataTable(
        id=id_,
        columns=[c if isinstance(c, dict) else {"name": c, "id": c} for c in columns],
        data=[],
        page_size=12,
        style_cell={
            "fontFamily": "inherit",
            "fontSize": "13px",
            "padding": "4px",
            "textAlign": "left",
            "maxWidth": "420px",
            "whiteSpace": "normal",
        },  # fmt: skip
        style_header={"fontWeight": "bold", "backgroundColor": "#eef2f7"},
        style_data_conditional=[
            {"if": {"state": "active"}, "backgroundColor": "#fde9c9", "border": "1px solid #e0a040"}
        ],
    )


def follow_run(app: dash.Dash, ctx, ids: tuple[str, ...], choices: Callable[[RunData], tuple]) -> None:
    """Register the callback that sets the dropdowns ``ids`` for another picked run: ``choices(data)`` gives
    their options, then their values."""

    @app.callback(
        *(Output(i, p) for p in ("options", "value") for i in ids),
        Input("run", "value"),
        prevent_initial_call=True,
    )
    def _choices(index):
        return choices(ctx.run_of(index))


def callbacks(app: dash.Dash, ctx) -> None:
    """The filter store (set by a lasso in an embedding or a slice click; reset by "Clear filters" or another
    run) and the line saying what it holds."""

    @app.callback(
        Output("filter", "data"),
        Input("emb-points", "selectedData"),
        Input("emb-instances", "selectedData"),
        Input("slices", "active_cell"),
        Input("clear", "n_clicks"),
        Input("run", "value"),
        State("slices", "data"),
        State("filter", "data"),
        prevent_initial_call=True,
    )
    def _filter(p_sel, i_sel, cell, _clicks, _run, rows, store):
        return update_filter(dash.ctx.triggered_id, store, p_sel, i_sel, cell, rows)

    @app.callback(Output("filter-text", "children"), Input("filter", "data"))
    def _filter_text(store):
        return filter_text(store)

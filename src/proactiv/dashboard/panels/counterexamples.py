"""The counterexample panel: failing records of the top error slices beside their passing partners — a table
that follows the current filter, and for a chosen row the three inputs side by side with their facts and, when
the run's inputs can be heard, a player for each."""

from __future__ import annotations

import math

import pandas as pd
from dash import Input, Output, State, dash_table, dcc, html

from proactiv.analysis.counterexamples import gallery_pairs, transformed_inputs
from proactiv.analysis.steps import StepContext
from proactiv.dashboard.data import Filter, RunData
from proactiv.dashboard.panels.registry import PanelContext, register_step_tab
from proactiv.views.audio import input_audio
from proactiv.views.counterexamples import ROLES, counterexample_facts, counterexample_figure, gallery_rows
from proactiv.views.style import message_figure

#: the table's columns (record column → header); classifier-only ones are left out of other runs
COLUMNS = {
    "slice": "slice",
    "group": "class",
    "rank": "rank",
    "instance": "instance",
    "point": "point",
    "point_values": "failing at",
    "predicted": "predicted",
    "loss_t": "loss on xT",
    "same_instance_point_values": "same instance passes at",
    "same_instance_distance": "grid distance",
    "same_class_instance": "same class: instance",
    "same_class_distance": "distance",
}


def counterexample_columns(table: pd.DataFrame | None) -> list[dict]:
    """The table's columns as Dash wants them."""
    have = set(table.columns) if table is not None else set(COLUMNS)
    return [{"name": name, "id": c} for c, name in COLUMNS.items() if c in have]


def _rows(table: pd.DataFrame) -> list[dict]:
    """Display rows: numbers rounded, missing partners blank (their reason stays in the detail view)."""
    shown = table[[c for c in COLUMNS if c in table.columns]].astype(object)
    out = []
    for row in shown.to_dict("records"):
        for k, v in row.items():
            if v is None or (not isinstance(v, str) and pd.isna(v)):
                row[k] = ""
            elif isinstance(v, float):
                row[k] = round(v, 4) if math.isfinite(v) else str(v)
            elif not isinstance(v, str):
                row[k] = int(v)
        out.append(row)
    return out


def counterexample_rows(data: RunData, store: dict | None) -> list[dict]:
    """Counterexamples whose failing record is in the current filter (grid points, instances, error slice)."""
    table = data.analysis["counterexamples"]
    if table is None or table.empty:
        return []
    flt = Filter.from_store(store)
    keep = pd.Series(True, index=table.index)
    if flt.points is not None:
        keep &= table.point.isin(flt.points)
    if flt.instances is not None:
        keep &= table.instance.isin(flt.instances)
    if flt.slice is not None:
        keep &= table["slice"] == flt.slice
    return _rows(table[keep])


def _task(data: RunData):
    """The run's task, rebuilt once per run for inputs whose arrays were not kept."""
    if "counterexample_ctx" not in data._cache:
        data._cache["counterexample_ctx"] = StepContext(data.run, view=data.view)
    return data._cache["counterexample_ctx"].task()


def _row(data: RunData, row: dict | None) -> pd.Series | None:
    """The stored counterexample of a browser row, found by its integers (slice, instance, point)."""
    table = data.analysis["counterexamples"]
    if table is None or not isinstance(row, dict):
        return None
    try:
        key = {k: int(row[k]) for k in ("instance", "point")}
        number = int(row["slice"]) if row.get("slice") not in (None, "") else None
    except (KeyError, TypeError, ValueError):
        return None
    hit = table[(table.instance == key["instance"]) & (table.point == key["point"])]
    if number is not None:
        hit = hit[hit["slice"] == number]
    return None if hit.empty else hit.iloc[0]


def counterexample_detail(data: RunData, row: dict | None):
    """The figure of one counterexample row (failing xT beside its partners), and its facts and players."""
    if not row:
        return message_figure("click a counterexample in the table"), []
    found = _row(data, row)
    if found is None:
        return message_figure("this run has no such counterexample"), []
    key = ("counterexample", int(found["slice"]), int(found["instance"]), int(found["point"]))
    if key not in data._cache:
        pairs = {role: p for role, p in gallery_pairs(found).items() if p is not None}
        inputs, missing = transformed_inputs(data.run, pairs.values(), lambda: _task(data))
        schema = data.run.schema
        fig = counterexample_figure([found], inputs, schema, missing)
        facts = counterexample_facts(found, schema)
        children = [
            html.Div(f"{ROLES[role]}: " + " · ".join(lines), className="kv") for role, lines in facts.items()
        ]
        arrays = {role: inputs[p] for role, p in pairs.items() if p in inputs}
        if schema.audible and arrays:
            players, note = input_audio(data.run, arrays, data._cache)
            children += [html.H4("Listen"), html.Div(note, className="note")] + [
                html.Div([html.Span(ROLES[role], className="k"),
                          html.Audio(src=uri, controls=True, id=f"counterexample-audio-{role}")])
                for role, uri in players
            ]  # fmt: skip
        elif not schema.audible:
            children.append(html.Div(input_audio(data.run, {})[1], className="note"))
        data._cache[key] = (fig, children)
    return data._cache[key]


def counterexamples_panel(table: pd.DataFrame, ctx: StepContext):
    """The step's dashboard tab: every counterexample in a table (``counterexamples-table``) and the most
    confident failure drawn beside its partners (``counterexample-figure``; a click on a row can redraw it
    with :func:`counterexample_detail`)."""
    if table.empty:  # the same components (the tab's callbacks address them), with nothing in them
        note = html.P("No failing records in the error slices.", id="counterexamples-empty")
        return html.Div(
            [note, dash_table.DataTable(id="counterexamples-table", columns=counterexample_columns(table), data=[]),
             dcc.Graph(id="counterexample-figure", figure=message_figure("no counterexamples")),
             html.Div(id="counterexample-facts")],
            id="counterexamples-panel",
        )  # fmt: skip
    first = gallery_rows(table).iloc[0]
    inputs, missing = transformed_inputs(ctx.run, [p for p in gallery_pairs(first).values() if p], ctx.task)
    return html.Div(
        [
            dash_table.DataTable(
                id="counterexamples-table",
                columns=counterexample_columns(table),
                data=_rows(table),
                page_size=12,
            ),
            dcc.Graph(
                id="counterexample-figure",
                figure=counterexample_figure([first], inputs, ctx.run.schema, missing),
            ),
            html.Div(id="counterexample-facts"),
        ],
        id="counterexamples-panel",
    )


def counterexample_callbacks(app, ctx: PanelContext) -> None:
    """The tab's callbacks: the table follows the filter, a clicked row (on the table's current page) is drawn."""

    @app.callback(Output("counterexamples-table", "data"), Input("filter", "data"), State("run", "value"))
    def _rows(store, index):
        return counterexample_rows(ctx.run_of(index), store)

    @app.callback(Output("counterexample-figure", "figure"), Output("counterexample-facts", "children"),
                  Input("counterexamples-table", "active_cell"), State("counterexamples-table",
                  "derived_viewport_data"), State("run", "value"), prevent_initial_call=True)  # fmt: skip
    def _detail(cell, rows, index):
        row = rows[cell["row"]] if cell and rows and 0 <= cell["row"] < len(rows) else None
        return counterexample_detail(ctx.run_of(index), row)


register_step_tab("counterexamples", counterexamples_panel, counterexample_callbacks)

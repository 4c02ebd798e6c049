"""The record panel: kept records in the filter (failures first), the interim view of the chosen one with
what projection changed, its audio when the run's inputs can be heard, its attributions and the training
examples behind it. A record is chosen in its table or by a click in an embedding (which opens this tab)."""

from __future__ import annotations

import dash
from dash import Input, Output, State, dcc, html

from proactiv.dashboard.data import Filter, RunData, fmt_value
from proactiv.dashboard.panels import anchor, attribution, influence
from proactiv.dashboard.panels.registry import PanelContext, register_panel
from proactiv.dashboard.panels.shared import paged_table, selected_ids
from proactiv.views.audio import input_audio
from proactiv.views.record import record_facts, record_figure
from proactiv.views.style import message_figure

#: headers of kept-record columns whose name says too little on its own
COLUMN_TITLES = {"correct_t": "output within cutoff", "psnr_out_t": "PSNR f(xT) (dB)", "label_name": "class"}
PLAYER_LABELS = {"x": "x (clean)", "x_t": "xT", "x_proj": "x̂T"}
TAB = "record"


def kept_columns(data: RunData) -> list[str]:
    """Columns of the kept-records table of a run (predictions, or group and output quality)."""
    if data.run.schema.classifier:
        extra = ["label_name", "pred_t", "pred_proj"]
    else:
        extra = [c for c in ("correct_t", "psnr_out_t") if data.run.schema.has(c)]
        extra = [data.view.group_column, *extra] if data.view.group_column else extra
    return ["instance", "point", *data.grid_columns, *extra, "loss_t", "d_x"]


def kept_table_columns(data: RunData) -> list[dict]:
    """The kept-records table's columns as Dash wants them (``id`` = record column, ``name`` = header)."""
    return [{"name": COLUMN_TITLES.get(c, c), "id": c} for c in kept_columns(data)]


def kept_rows(data: RunData, store: dict | None) -> list[dict]:
    """Records with kept arrays in the filter (worst first), to pick one for the detail view."""
    table = data.kept_records(Filter.from_store(store))
    for c in data.grid_columns:
        table[c] = [fmt_value(float(v)) for v in table[c]]
    if data.run.schema.classifier:
        table["pred_t"] = [data.class_name(v) for v in table["pred_t"]]
        table["pred_proj"] = [data.class_name(v) for v in table["pred_proj"]]
    elif "correct_t" in table:  # "correct" here: the output's loss is within the cutoff
        table["correct_t"] = ["yes" if v else "no" for v in table["correct_t"]]
    if "psnr_out_t" in table:
        table["psnr_out_t"] = [fmt_value(round(float(v), 2)) for v in table["psnr_out_t"]]
    for c in ("loss_t", "d_x"):
        table[c] = table[c].round(4)
    return table.to_dict("records")


def choose_record(
    data: RunData,
    trigger: str | None,
    cell: dict | None,
    rows: list[dict] | None,
    click: dict | None,
    store,
    point_click: dict | None = None,
) -> dict | None:
    """The record to show: a clicked kept-record row, or the worst kept record of a clicked instance (instance
    embedding) or grid point (transform embedding), within the current filter when it has one there."""
    if trigger == "kept" and cell and rows:
        row = int(cell.get("row", -1))
        if 0 <= row < len(rows):
            return {"instance": int(rows[row]["instance"]), "point": int(rows[row]["point"])}
    by = {"emb-instances": ("instances", click), "emb-points": ("points", point_click)}.get(trigger or "")
    if by is None:
        return None
    ids = selected_ids(by[1])
    if not ids:
        return None
    flt = Filter.from_store(store)
    for candidate in (Filter(**{**flt.__dict__, by[0]: (ids[0],)}), Filter(**{by[0]: (ids[0],)})):
        table = data.kept_records(candidate, limit=1)
        if not table.empty:
            return {"instance": int(table["instance"].iloc[0]), "point": int(table["point"].iloc[0])}
    return None


def _chosen(chosen: dict | None) -> tuple[int, int] | None:
    try:
        return int(chosen["instance"]), int(chosen["point"])
    except (KeyError, TypeError, ValueError):
        return None


def record_detail(data: RunData, chosen: dict | None):
    """The interim view of one record and, one line each, what it is and what projection changed."""
    from proactiv.analysis import interim

    if not chosen:
        return message_figure("click a record in the table, or an instance in the instance embedding"), []
    pair = _chosen(chosen)
    if pair is None:
        return message_figure("invalid record"), []
    instance, point = pair
    record = data.record(instance, point)
    if record is None:
        return message_figure(f"this run has no record ({instance}, {point})"), []
    if not data.is_kept(instance, point):
        return message_figure(f"no arrays were kept for record ({instance}, {point})"), []
    fig = record_figure(interim(data.run, instance, point), data.run.schema)
    where = ", ".join(f"{c} = {fmt_value(float(record[c]))}" for c in data.grid_columns)
    facts = record_facts(record, data.run.schema, data.class_name, where)
    return fig, [html.Div(line, className="kv") for line in facts]


def record_sound(data: RunData, chosen: dict | None) -> list:
    """Audio players for x, xT and x̂T of the chosen record under a "Listen" heading; for runs that cannot be
    heard only a note saying why (with the input kind).

    A separate callback from :func:`record_detail`: a Griffin-Lim inversion takes seconds on 2 cores, and
    the pictures should not wait for it. Results are cached per record.
    """
    from proactiv.analysis import interim

    pair = _chosen(chosen) if chosen else None
    if pair is None or not data.is_kept(*pair):
        return []
    if not data.run.schema.audible:
        return [html.Div(input_audio(data.run, {}, data._cache)[1], className="note")]
    key = ("audio", *pair)
    if key not in data._cache:
        it = interim(data.run, *pair)
        data._cache[key] = input_audio(data.run, {"x": it.x, "x_t": it.x_t, "x_proj": it.x_proj}, data._cache)
    players, note = data._cache[key]
    return [html.H4("Listen"), html.Div(note, className="note")] + [
        html.Div(
            [html.Span(PLAYER_LABELS[k], className="k"), html.Audio(src=uri, controls=True, id=f"audio-{k}")]
        )
        for k, uri in players
    ]


def layout(ctx: PanelContext) -> list:
    return [
        html.Div("Records with kept arrays in the current filter, failures first:", className="note"),
        paged_table("kept", kept_table_columns(ctx.first)),
        dcc.Loading(html.Div([dcc.Graph(id="interim", config={"displaylogo": False}), html.Div(id="facts")])),
        dcc.Loading(html.Div(id="audio")),  # "Listen" and the players; nothing for image runs
        *attribution.record_part(ctx.first),
        *influence.record_part(),
        *anchor.record_part(),
    ]


def callbacks(app, ctx: PanelContext) -> None:
    @app.callback(
        Output("kept", "data"), Output("kept", "columns"), Input("run", "value"), Input("filter", "data")
    )
    def _kept(index, store):
        data = ctx.run_of(index)
        return kept_rows(data, store), kept_table_columns(data)

    @app.callback(
        Output("record", "data"),
        Output("tabs", "value"),
        Input("kept", "active_cell"),
        Input("emb-instances", "clickData"),
        Input("emb-points", "clickData"),
        State("kept", "data"),
        State("filter", "data"),
        State("run", "value"),
        prevent_initial_call=True,
    )
    def _choose(cell, click, point_click, rows, store, index):
        chosen = choose_record(
            ctx.run_of(index), dash.ctx.triggered_id, cell, rows, click, store, point_click
        )
        if chosen is None:
            return dash.no_update, dash.no_update
        return chosen, TAB

    @app.callback(Output("interim", "figure"), Output("facts", "children"), Input("record", "data"),
                  State("run", "value"))  # fmt: skip
    def _detail(chosen, index):
        return record_detail(ctx.run_of(index), chosen)

    @app.callback(Output("audio", "children"), Input("record", "data"), State("run", "value"))
    def _sound(chosen, index):
        return record_sound(ctx.run_of(index), chosen)

    attribution.record_callbacks(app, ctx)
    influence.record_callbacks(app, ctx)
    anchor.record_callbacks(app, ctx)


register_panel("record", tab=TAB, tab_label="Record detail", title="Record detail (interim view)", layout=layout,
               callbacks=callbacks, order=20)  # fmt: skip

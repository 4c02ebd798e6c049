"""The Dash app: layout of the linked views and the wiring of the callbacks of :mod:`proactiv.dashboard.panels`.

Assets are served locally (no CDN), so the dashboard works offline. A run that cannot be opened is shown as
a message in the page instead of its views.
"""

from __future__ import annotations

from pathlib import Path

import dash
from dash import ALL, Input, Output, State, ctx, dash_table, dcc, html
from dash.exceptions import DependencyException
from werkzeug.exceptions import BadRequest, NotFound

from proactiv.dashboard import panels
from proactiv.dashboard.data import RunData, open_runs
from proactiv.dashboard.panels import whatif
from proactiv.dashboard.steps_panel import step_panels

#: the page's stylesheet, inlined so the app needs no asset files (nothing to lose when packaged)
CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; background: #f4f6f9; color: #1d2733; }
.header { padding: 12px 20px 4px; }
.header h1 { font-size: 20px; margin: 0 0 6px; color: #1f4e79; }
.bar { display: flex; align-items: flex-end; gap: 16px; padding: 6px 20px 10px; }
.bar button { padding: 6px 12px; border: 1px solid #9fb3c8; background: white; border-radius: 4px; cursor: pointer; }
.filter { flex: 1; font-size: 14px; color: #394b59; padding-bottom: 8px; }
.card { background: white; border-radius: 6px; box-shadow: 0 1px 3px rgba(0,0,0,.12); margin: 12px 20px; padding: 10px 16px; }
.card h3 { margin: 4px 0 8px; font-size: 16px; color: #1f4e79; }
.row { display: flex; gap: 12px; }
.half { flex: 1; min-width: 0; }
.summary { display: grid; grid-template-columns: repeat(auto-fill, minmax(280px, 1fr)); gap: 4px 16px; font-size: 13px; }
.kv { font-size: 13px; margin: 2px 0; }
.kv .k { font-weight: 600; margin-right: 8px; color: #52606d; }
.note { font-size: 12px; color: #6b7785; margin: 4px 0; }
.error { background: #fdecea; color: #8a1c12; border: 1px solid #f5c2bd; border-radius: 4px; padding: 8px 12px; margin: 8px 0; }
label { font-size: 12px; color: #52606d; }
audio { height: 32px; vertical-align: middle; }
"""

INDEX = (
    "<!DOCTYPE html><html><head>{%metas%}<title>{%title%}</title>{%favicon%}{%css%}<style>"
    + CSS
    + "</style></head><body>{%app_entry%}<footer>{%config%}{%scripts%}{%renderer%}</footer></body></html>"
)


#: every tab takes the width of its label (the step tabs are many)
TAB_STYLE = {"flex": "1 0 auto", "padding": "6px 14px"}


def _dropdown(id_: str, options: list, value, label: str, width: str = "220px") -> html.Div:
    return html.Div(
        [html.Label(label), dcc.Dropdown(id=id_, options=options, value=value, clearable=False)],
        style={"width": width, "display": "inline-block", "marginRight": "12px"},
    )


def _table(id_: str, columns: list[str] | list[dict]) -> dash_table.DataTable:
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


def _card(title: str, children, id_: str | None = None) -> html.Div:
    kw = {"id": id_} if id_ else {}
    return html.Div([html.H3(title), *children], className="card", **kw)


def _layout(runs: list[RunData | str], steps: list[tuple] = ()) -> html.Div:
    """The page; ``steps``: (step, panel) of the analysis steps that get a tab (drawn from the first run)."""
    errors = [html.Div(r, className="error") for r in runs if isinstance(r, str)]
    usable = [(i, r) for i, r in enumerate(runs) if not isinstance(r, str)]
    header = html.Div([html.H1("proactiv — where does the model break?"), *errors], className="header")
    if not usable:
        return html.Div(
            [header, html.Div("No run could be opened; see the messages above.", className="error")]
        )
    first = usable[0][1]
    cols = first.grid_columns
    metrics = list(first.metrics)
    classes, values = panels.bias_options(first)
    picker = _dropdown(
        "run", [{"label": r.path.name, "value": i} for i, r in usable], usable[0][0], "run", "320px"
    )
    overview = _card(
        "Overview",
        [
            html.Div(id="summary", className="summary"),
            dcc.Loading(dcc.Graph(id="curves", config={"displaylogo": False})),
            html.Div(
                [
                    _dropdown("heat-a", cols, cols[0], "heatmap columns"),
                    _dropdown("heat-b", cols, cols[min(1, len(cols) - 1)], "heatmap rows"),
                    _dropdown("heat-metric", metrics, metrics[0], "metric"),
                ]
            ),
            dcc.Loading(dcc.Graph(id="heatmap", config={"displaylogo": False})),
        ],
        "view-overview",
    )
    p_opts, i_opts = panels.colour_options(first, "point"), panels.colour_options(first, "instance")
    embed = _card(
        "Embeddings",
        [
            html.Div(
                [
                    html.Div(
                        [
                            _dropdown("colour-points", p_opts, p_opts[0], "colour grid points by", "260px"),
                            dcc.Loading(dcc.Graph(id="emb-points", config={"displaylogo": False})),
                        ],
                        className="half",
                    ),
                    html.Div(
                        [
                            _dropdown("colour-instances", i_opts, i_opts[0], "colour instances by", "260px"),
                            dcc.Loading(dcc.Graph(id="emb-instances", config={"displaylogo": False})),
                        ],
                        className="half",
                    ),
                ],
                className="row",
            )
        ],
        "view-embeddings",
    )
    slices = _card(
        "Error slices (click one to filter every view)",
        [_table("slices", ["slice", "conditions", "size", "errors", "error_rate", "coverage", "selected"])],
        "view-slices",
    )
    kept_cols = panels.kept_table_columns(first)
    methods, targets = panels.attribution_methods(first), panels.attribution_targets(first)
    record = _card(
        "Record detail (interim view)",
        [
            html.Div("Records with kept arrays in the current filter, failures first:", className="note"),
            _table("kept", kept_cols),
            dcc.Loading(
                html.Div([dcc.Graph(id="interim", config={"displaylogo": False}), html.Div(id="facts")])
            ),
            dcc.Loading(html.Div(id="audio")),  # "Listen" and the players; nothing for image runs
            html.H4("Attributions: where the decision rests on x, xT and x̂T"),
            html.Div(
                [
                    _dropdown("attr-method", methods, methods[0]["value"] if methods else None, "method"),
                    _dropdown("attr-target", targets, targets[0]["value"] if targets else None, "toward"),
                ]
            ),
            dcc.Loading(dcc.Graph(id="attr-graph", config={"displaylogo": False})),
            dcc.Loading(html.Div(id="influence")),
        ],
        "view-record",
    )
    bias = _card(
        "Bias maps: what the model wants to see",
        [
            _dropdown("bias-class", classes, classes[0] if classes else None, panels.bias_group(first)),
            _dropdown("bias-value", values, "", "transform value", "320px"),
            dcc.Loading(dcc.Graph(id="bias", config={"displaylogo": False})),
        ],
        "view-bias",
    )
    tabs = [
        dcc.Tab(
            label="Overview & embeddings", value="main", id="tab-main", children=[overview, embed, slices]
        ),
        dcc.Tab(label="Record detail", value="record", id="tab-record", children=[record]),
        dcc.Tab(label="Bias maps", value="bias", id="tab-bias", children=[bias]),
    ]
    tabs += [
        dcc.Tab(label=step.title.split(":")[0], value=f"step-{k}", children=[_card(step.title, [panel])])
        for k, (step, panel) in enumerate(steps)
    ]
    studio = _card("What-if studio: move the transform parameters, project on the spot", [whatif.tab()],
                   "view-whatif")  # fmt: skip
    tabs.append(dcc.Tab(label="What-if studio", value="whatif", id="tab-whatif", children=[studio]))
    if len(usable) >= 2:
        c_opts = panels.compare_colour_options([r for _, r in usable])
        compare = _card(
            f"Compare: {usable[0][1].path.name} vs {usable[1][1].path.name}",
            [
                dcc.Loading(dcc.Graph(id="cmp-curves")),
                html.Div(
                    [_dropdown("cmp-a", cols, cols[0], "columns"), _dropdown("cmp-b", cols, cols[-1], "rows")]
                ),
                dcc.Loading(dcc.Graph(id="cmp-pair")),
                html.H4("Difference (second − first run), averaged over the other parameters"),
                dcc.Loading(dcc.Graph(id="cmp-heat")),
                html.H4("Difference per grid point (second − first run)"),
                html.Div(id="cmp-grid-note", className="note"),
                dcc.Loading(dcc.Graph(id="cmp-grid")),
                html.H4("Transform embeddings side by side"),
                _dropdown(
                    "cmp-colour", c_opts, c_opts[0] if c_opts else None, "colour grid points by", "260px"
                ),
                html.Div(
                    [
                        html.Div(dcc.Loading(dcc.Graph(id="cmp-emb-a")), className="half"),
                        html.Div(dcc.Loading(dcc.Graph(id="cmp-emb-b")), className="half"),
                    ],
                    className="row",
                ),
                html.H4("Top error slices side by side"),
                html.Div(
                    [
                        html.Div(
                            [
                                html.Div(usable[k][1].path.name, className="kv"),
                                _table(t, panels.SLICE_COLUMNS),
                            ],
                            className="half",
                        )
                        for k, t in ((0, "cmp-slices-a"), (1, "cmp-slices-b"))
                    ],
                    className="row",
                ),
            ],
            "view-compare",
        )
        tabs.append(dcc.Tab(label="Compare", value="compare", id="tab-compare", children=[compare]))
    bar = html.Div(
        [
            picker,
            html.Span(id="filter-text", className="filter"),
            html.Button("Clear filters", id="clear", n_clicks=0),
        ],
        className="bar",
    )
    for tab in tabs:  # as wide as its label: many tabs wrap to a second row instead of overlapping
        tab.style = tab.selected_style = TAB_STYLE
    return html.Div(
        [
            header,
            bar,
            dcc.Store(id="filter", data=dict(panels.EMPTY_FILTER)),
            dcc.Store(id="record", data=None),
            dcc.Tabs(id="tabs", value="main", children=tabs, style={"flexWrap": "wrap"}),
        ]
    )


def _refuse(err: Exception) -> None:
    """A callback's error: a value the page never sends (a run index, record, column or filter that is not the
    run's: the panels raise ValueError, or TypeError on the wrong kind of value) is a bad request (400) naming
    it; anything else stays a server error."""
    if isinstance(err, ValueError | TypeError):
        raise BadRequest(f"invalid callback input: {err}") from None
    raise err


def _not_found(_err: DependencyException) -> NotFound:
    """A component file Dash did not register (e.g. a ``..`` path) is simply not there."""
    return NotFound()


def build_app(runs: list[RunData | str | Path], compute: bool = True) -> dash.Dash:
    """The Dash app over opened runs or run directories (opened here, computing missing analyses). It serves
    Dash's own registered files and the callbacks' answers, nothing from the file system by name."""
    runs = [r if isinstance(r, RunData) else open_runs([r], compute=compute)[0] for r in runs]
    app = dash.Dash(
        __name__, serve_locally=True, title="proactiv dashboard", assets_ignore=".*", update_title=None,
        on_error=_refuse,
    )  # fmt: skip
    app.server.register_error_handler(DependencyException, _not_found)
    app.index_string = INDEX
    first = next((r for r in runs if isinstance(r, RunData)), None)
    steps = list(step_panels(first)) if first is not None else []
    app.layout = _layout(runs, steps)
    if first is None:
        return app

    def run_of(index) -> RunData:
        return panels.pick(runs, index)

    @app.callback(Output("summary", "children"), Input("run", "value"))
    def _summary(index):
        return panels.summary_children(run_of(index))

    @app.callback(
        Output("colour-points", "options"),
        Output("colour-instances", "options"),
        Output("heat-a", "options"),
        Output("heat-b", "options"),
        Output("heat-metric", "options"),
        Output("bias-class", "options"),
        Output("bias-value", "options"),
        Output("colour-points", "value"),
        Output("colour-instances", "value"),
        Output("heat-a", "value"),
        Output("heat-b", "value"),
        Output("heat-metric", "value"),
        Output("bias-class", "value"),
        Output("bias-value", "value"),
        Input("run", "value"),
        prevent_initial_call=True,
    )
    def _options(index):
        options = panels.run_options(run_of(index))
        first = [o[0] if o else None for o in options[:2]]
        cols = options[2]
        return (
            *options,
            *first,
            cols[0],
            cols[min(1, len(cols) - 1)],
            options[4][0],
            (options[5] or [None])[0],
            "",
        )

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
        return panels.update_filter(ctx.triggered_id, store, p_sel, i_sel, cell, rows)

    @app.callback(Output("filter-text", "children"), Input("filter", "data"))
    def _filter_text(store):
        return panels.filter_text(store)

    @app.callback(
        Output("curves", "figure"),
        Output("heatmap", "figure"),
        Input("run", "value"),
        Input("filter", "data"),
        Input("heat-a", "value"),
        Input("heat-b", "value"),
        Input("heat-metric", "value"),
    )
    def _overview(index, store, a, b, metric):
        return panels.overview(run_of(index), store, a, b, metric)

    @app.callback(
        Output("emb-points", "figure"),
        Output("emb-instances", "figure"),
        Input("run", "value"),
        Input("filter", "data"),
        Input("colour-points", "value"),
        Input("colour-instances", "value"),
    )
    def _embeddings(index, store, pc, ic):
        return panels.embeddings(run_of(index), store, pc, ic)

    @app.callback(Output("slices", "data"), Input("run", "value"), Input("filter", "data"))
    def _slices(index, store):
        return panels.slices_rows(run_of(index), store)

    @app.callback(
        Output("kept", "data"), Output("kept", "columns"), Input("run", "value"), Input("filter", "data")
    )
    def _kept(index, store):
        data = run_of(index)
        return panels.kept_rows(data, store), panels.kept_table_columns(data)

    @app.callback(
        Output("record", "data"),
        Output("tabs", "value"),
        Input("kept", "active_cell"),
        Input("emb-instances", "clickData"),
        Input("emb-points", "clickData"),
        State("kept", "data"),
        State("filter", "data"),
        State("run", "value"),
        State("tabs", "value"),
        prevent_initial_call=True,
    )
    def _choose(cell, click, point_click, rows, store, index, tab):
        chosen = panels.choose_record(run_of(index), ctx.triggered_id, cell, rows, click, store, point_click)
        if chosen is None:
            return dash.no_update, dash.no_update
        return chosen, "record"

    @app.callback(
        Output("interim", "figure"),
        Output("facts", "children"),
        Input("record", "data"),
        State("run", "value"),
    )
    def _detail(chosen, index):
        return panels.record_detail(run_of(index), chosen)

    @app.callback(Output("audio", "children"), Input("record", "data"), State("run", "value"))
    def _sound(chosen, index):
        return panels.record_sound(run_of(index), chosen)

    @app.callback(Output("attr-graph", "figure"), Input("record", "data"), Input("attr-method", "value"),
                  Input("attr-target", "value"), State("run", "value"))  # fmt: skip
    def _attribution(chosen, method, target, index):
        return panels.record_attribution(run_of(index), chosen, method, target)

    @app.callback(Output("influence", "children"), Input("record", "data"), State("run", "value"))
    def _influence(chosen, index):
        return panels.record_influence(run_of(index), chosen)

    for step, _ in steps:  # the steps whose tabs are in the page make them interactive
        step.callbacks(app, run_of)

    @app.callback(
        Output("bias", "figure"),
        Input("run", "value"),
        Input("bias-class", "value"),
        Input("bias-value", "value"),
    )
    def _bias(index, cls, value):
        return panels.bias_view(run_of(index), cls, value)

    sliders = {"type": whatif.SLIDER, "column": ALL}

    @app.callback(Output("whatif-instance", "options"), Output("whatif-instance", "value"),
                  Output("whatif-sliders", "children"), Output("whatif-built", "data"), Input("tabs", "value"),
                  Input("run", "value"), Input("record", "data"), State("whatif-built", "data"))  # fmt: skip
    def _whatif_controls(tab, index, chosen, built):
        key = whatif.controls_key(index, chosen)
        if tab != "whatif" or built == key:  # built when the tab is opened, again for another run or record
            return dash.no_update, dash.no_update, dash.no_update, dash.no_update
        return (*whatif.controls(run_of(index), chosen), key)

    @app.callback(Output("whatif-inputs", "figure"), Output("whatif-output", "figure"), Output("whatif-audio", "children"),
                  Output("whatif-facts", "children"), Input("whatif-instance", "value"), Input(sliders, "value"),
                  State(sliders, "id"), State("run", "value"), prevent_initial_call=True)  # fmt: skip
    def _whatif_transform(instance, positions, ids, index):
        return whatif.transform_view(run_of(index), instance, ids, positions)

    @app.callback(Output("whatif-projection", "children"), Input("whatif-project", "n_clicks"),
                  Input("whatif-instance", "value"), Input(sliders, "value"), State(sliders, "id"),
                  State("run", "value"), prevent_initial_call=True)  # fmt: skip
    def _whatif_project(_clicks, instance, positions, ids, index):
        if ctx.triggered_id != "whatif-project":  # a new instance or new values: the last projection is stale
            return whatif.PROJECT_HINT
        return whatif.projection_view(run_of(index), instance, ids, positions)

    if sum(isinstance(r, RunData) for r in runs) >= 2:

        @app.callback(Output("cmp-curves", "figure"), Output("cmp-pair", "figure"), Output("cmp-heat", "figure"), Input("cmp-a", "value"),
                      Input("cmp-b", "value"))  # fmt: skip
        def _compare(a, b):
            return panels.compare(runs, a, b)

        @app.callback(
            Output("cmp-grid", "figure"), Output("cmp-grid-note", "children"), Input("tabs", "value")
        )
        def _compare_grid(tab):
            if tab != "compare":
                return dash.no_update, dash.no_update
            return panels.compare_grid(runs)

        @app.callback(Output("cmp-emb-a", "figure"), Output("cmp-emb-b", "figure"), Output("cmp-slices-a", "data"),
                      Output("cmp-slices-b", "data"), Input("cmp-colour", "value"))  # fmt: skip
        def _compare_side(colour):
            return panels.compare_side(runs, colour)

    return app

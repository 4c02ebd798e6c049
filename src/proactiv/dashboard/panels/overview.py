"""The overview panel: the run's summary, its metric curves along every grid parameter and a heatmap over
two parameters, all over the current filter."""

from __future__ import annotations

import pandas as pd
from dash import Input, Output, dcc, html

from proactiv.analysis.runview import PSNR_CAP_DB
from proactiv.analysis.steps import missing_without_model
from proactiv.dashboard.data import Filter, RunData
from proactiv.dashboard.panels.registry import PanelContext, register_panel
from proactiv.dashboard.panels.shared import MAIN_LABEL, MAIN_TAB, dropdown, follow_run, grid_axes
from proactiv.schema import status_counts_text
from proactiv.views.curves import FRACTIONS, breakpoint_markers, curves_figure, metric_label
from proactiv.views.curves import curve_panels as metric_panels
from proactiv.views.heatmap import HeatPanel, heatmap_figure
from proactiv.views.style import message_figure


def curve_panels(data: RunData) -> list[tuple[str, list[str]]]:
    """Rows of the overview curves: (title, metrics drawn in it); PSNR and SSIM lines share a row each."""
    return metric_panels(data.metrics, data.run.schema) or [(m, [m]) for m in list(data.metrics)[:1]]


def overview(data: RunData, store: dict | None, col_a: str | None, col_b: str | None, metric: str | None):
    """Curves of every metric along every grid parameter (breakpoints marked), and a heatmap over two."""
    flt = Filter.from_store(store)
    panels = curve_panels(data)
    cols = data.grid_columns
    long = pd.concat(
        [data.marginal(c, flt).melt(id_vars=["value", "n"], value_vars=list(data.metrics), var_name="series",
                                    value_name="mean").assign(column=c) for c in cols]
    )  # fmt: skip
    if long.empty:
        curves = message_figure("no records in the current filter")
    else:
        curves = curves_figure(long, grid_axes(data), panels, breakpoint_markers(data.analysis.breakpoints))
    col_a = col_a if col_a in cols else cols[0]
    col_b = col_b if col_b in cols else cols[min(1, len(cols) - 1)]
    metric = metric if metric in data.metrics else panels[0][1][0]
    table = data.heatmap(col_a, col_b, metric, flt)
    heat = heatmap_figure(
        [HeatPanel(table, data.grid_label(col_a), data.grid_label(col_b))],
        metric_label(metric, data.run.schema), fraction=metric in FRACTIONS,
    )  # fmt: skip
    return curves, heat


def summary_children(data: RunData) -> list:
    """The overview header: model, data, grid and clean accuracy (or, without predictions, the share of
    outputs within the loss cutoff and the output PSNR), and how many projections ended with each status."""
    s = data.summary()
    schema = data.run.schema
    if s["group"] and not schema.classifier:
        classes = f"no classes (image-to-image) · grouped by {s['group']} ({s['groups']} groups)"
    elif schema.classifier:
        classes = f"{s['classes']} classes"
    else:
        classes = "no classes (image-to-image or regression)"
    items = [
        ("run", f"{s['name']} ({s['status']})"),
        ("task", f"{s['task']} · {s['domain']} domain · {s['kind']} inputs"),
        ("model", s["model"]),
        ("output", schema.output_text),
        ("data", f"{s['instances']} instances · {classes}"),
        ("grid", f"{s['points']} points: {s['grid']}"),
        ("records", f"{s['records']:,}"),
    ]
    if s["within_cutoff"] is not None:
        ident = s["within_cutoff"]["identity"]
        items.append(
            (s["correct_label"], f"{100 * s['within_cutoff']['all']:.1f} % of all records"
             + ("" if ident is None else f" · {100 * ident:.1f} % at the identity point"))
        )  # fmt: skip
    elif s["clean_accuracy"] is not None or schema.classifier:
        acc = "—" if s["clean_accuracy"] is None else f"{100 * s['clean_accuracy']:.1f} %"
        items.append(("clean accuracy", acc))
    items.append(("projections", status_counts_text(s["statuses"])))
    for m, v in s["psnr"].items():
        items.append((f"mean {data.metrics[m][1].removesuffix(' (dB)')}",
                      f"{v:.1f} dB (identical images, PSNR ∞, count as {PSNR_CAP_DB:g} dB)"))  # fmt: skip
    out = [
        html.Div([html.Span(k, className="k"), html.Span(v, className="v")], className="kv") for k, v in items
    ]
    missing = missing_without_model(data.run)
    if missing:
        out.insert(0, html.Div(missing, className="note"))
    if s["in_progress"]:
        out.append(html.Div(f"a sweep is still writing this run: the views show the {s['records']:,} records "
                            "complete when the dashboard opened it; restart the dashboard to see more",
                            className="note"))  # fmt: skip
    for step, note in s["notes"].items():
        out.append(html.Div(f"{step}: {note}", className="note"))
    return out


def heat_choices(data: RunData) -> tuple[list, list, list, str, str, str]:
    """The heatmap's dropdowns for a run: options of columns, rows and metric, then their first values."""
    cols, metrics = data.grid_columns, list(data.metrics)
    return cols, cols, metrics, cols[0], cols[min(1, len(cols) - 1)], metrics[0]


def layout(ctx: PanelContext) -> list:
    cols, rows, metrics, a, b, metric = heat_choices(ctx.first)
    graph = {"displaylogo": False}
    return [
        html.Div(id="summary", className="summary"),
        dcc.Loading(dcc.Graph(id="curves", config=graph)),
        html.Div(
            [
                dropdown("heat-a", cols, a, "heatmap columns"),
                dropdown("heat-b", rows, b, "heatmap rows"),
                dropdown("heat-metric", metrics, metric, "metric"),
            ]
        ),
        dcc.Loading(dcc.Graph(id="heatmap", config=graph)),
    ]


def callbacks(app, ctx: PanelContext) -> None:
    @app.callback(Output("summary", "children"), Input("run", "value"))
    def _summary(index):
        return summary_children(ctx.run_of(index))

    follow_run(app, ctx, ("heat-a", "heat-b", "heat-metric"), heat_choices)

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
        return overview(ctx.run_of(index), store, a, b, metric)


register_panel("overview", tab=MAIN_TAB, tab_label=MAIN_LABEL, title="Overview", layout=layout,
               callbacks=callbacks, order=10)  # fmt: skip

"""Attributions in the record detail: the chosen record's x, xT and x̂T with the attribution maps of a chosen
method overlaid, toward the desired or the predicted class. The run's model is rebuilt once per run and kept
on its :class:`RunData`; a run whose model cannot be rebuilt offers no method and says why. Also the
attributions step's tab: how attributions shift along each transform parameter."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from dash import Input, Output, State, dcc, html

from proactiv.analysis.attribution import METHODS, TARGETS, attribute, last_conv_layer
from proactiv.analysis.runview import AnalysisError
from proactiv.analysis.steps import StepContext
from proactiv.dashboard.data import RunData, fmt_value
from proactiv.dashboard.panels.registry import PanelContext, register_step_tab
from proactiv.dashboard.panels.shared import dropdown
from proactiv.views.attribution import attribution_overlay, shift_view
from proactiv.views.style import message_figure

LABELS = {
    "saliency": "Saliency",
    "integrated_gradients": "Integrated gradients",
    "gradcam": "Grad-CAM",
    "occlusion": "Occlusion",
}
MODEL_KEY = "attribution-model"


def _model(data: RunData):
    """The run's model (rebuilt on first use, then kept on ``data``), or the reason it cannot be rebuilt."""
    if MODEL_KEY not in data._cache:
        try:
            data._cache[MODEL_KEY] = StepContext(data.run).model()
        except AnalysisError as err:
            data._cache[MODEL_KEY] = str(err)
    return data._cache[MODEL_KEY]


def attribution_methods(data: RunData) -> list[dict]:
    """Dropdown options of the methods this run's model supports (Grad-CAM needs a convolution layer); none
    when its model cannot be rebuilt."""
    model = _model(data)
    if isinstance(model, str):
        return []
    try:
        last_conv_layer(model)
        usable = METHODS
    except AnalysisError:
        usable = tuple(m for m in METHODS if m != "gradcam")
    return [{"label": LABELS[m], "value": m} for m in usable]


def attribution_targets(data: RunData) -> list[dict]:
    """Dropdown options of what to attribute toward: the desired and the predicted class (classifiers), or the
    target tensor alone."""
    if not data.run.schema.classifier:
        return [{"label": "target tensor", "value": "desired"}]
    return [{"label": f"{t} class", "value": t} for t in TARGETS]


def record_attribution(
    data: RunData, chosen: dict | None, method: str = "saliency", target: str = "desired"
) -> go.Figure:
    """x, xT and x̂T of the chosen record (``{"instance": …, "point": …}``) with their ``method`` attributions
    toward the ``target`` overlaid; a message figure when there is nothing to draw, and why."""
    try:
        instance, point = int(chosen["instance"]), int(chosen["point"])
    except (KeyError, TypeError, ValueError):
        return message_figure("click a record to see its attributions")
    if method not in METHODS or target not in TARGETS:
        return message_figure(f"unknown method {method!r} or target {target!r}")
    if not data.is_kept(instance, point):
        return message_figure(f"no arrays were kept for record ({instance}, {point})")
    model = _model(data)
    if isinstance(model, str):
        return message_figure(f"no attributions: {model}")
    key = ("attribution", instance, point, method, target)
    if key not in data._cache:
        try:
            att = attribute(data.view, [(instance, point)], method, target, model=model)
        except (AnalysisError, ValueError) as err:
            return message_figure(f"no attributions: {err}")
        where = ", ".join(f"{c} = {fmt_value(float(v))}" for c, v in data.run.grid[point].values.items())
        title = f"{LABELS[method]} toward the {target} target · record ({instance}, {point}): {where}"
        data._cache[key] = attribution_overlay(
            {n: v[0] for n, v in att.inputs.items()}, {n: m[0] for n, m in att.maps.items()}, data.kind, title
        )
    return data._cache[key]


def record_part(data: RunData) -> list:
    """The record card's attributions: method and target dropdowns (for ``data``'s model) and the overlay."""
    methods, targets = attribution_methods(data), attribution_targets(data)
    return [
        html.H4("Attributions: where the decision rests on x, xT and x̂T"),
        html.Div(
            [
                dropdown("attr-method", methods, methods[0]["value"] if methods else None, "method"),
                dropdown("attr-target", targets, targets[0]["value"] if targets else None, "toward"),
            ]
        ),
        dcc.Loading(dcc.Graph(id="attr-graph", config={"displaylogo": False})),
    ]


def record_callbacks(app, ctx: PanelContext) -> None:
    @app.callback(Output("attr-graph", "figure"), Input("record", "data"), Input("attr-method", "value"),
                  Input("attr-target", "value"), State("run", "value"))  # fmt: skip
    def _attribution(chosen, method, target, index):
        return record_attribution(ctx.run_of(index), chosen, method, target)


def attributions_tab(table: pd.DataFrame, ctx: StepContext) -> html.Div:
    """The attributions step's tab: the shift figure and its sentence."""
    fig, sentence = shift_view(table, ctx)
    return html.Div(
        [html.P(sentence, id="attributions-sentence"), dcc.Graph(figure=fig, id="attributions-graph")]
    )


register_step_tab("attributions", attributions_tab)

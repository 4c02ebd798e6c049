"""Attributions in the record detail: the chosen record's x, xT and x̂T with the attribution maps of a chosen
method overlaid, toward the desired or the predicted class. The run's model is rebuilt once per run and kept
on its :class:`RunData`; a run whose model cannot be rebuilt offers no method and says why."""

from __future__ import annotations

import plotly.graph_objects as go

from proactiv.analysis.attribution import METHODS, TARGETS, attribute, last_conv_layer
from proactiv.analysis.runview import AnalysisError
from proactiv.analysis.steps import StepContext
from proactiv.dashboard.data import RunData, fmt_value
from proactiv.views.attribution import attribution_overlay
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

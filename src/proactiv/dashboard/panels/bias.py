"""The bias-map panel: one class's mean x̂T − xT (and mean |x̂T − xT|), over all grid points or the points
with one transform value."""

from __future__ import annotations

from dash import Input, Output, dcc

from proactiv.dashboard.data import RunData, fmt_value
from proactiv.dashboard.panels.registry import PanelContext, register_panel
from proactiv.dashboard.panels.shared import dropdown, follow_run
from proactiv.views.bias_map import bias_figure, class_biases
from proactiv.views.style import message_figure


def bias_options(data: RunData) -> tuple[list[str], list[dict]]:
    """Classes with bias maps, and transform values to pool by (``column=value`` keys, validated later)."""
    bias = data.analysis.bias
    if bias is None:
        return [], []
    values = [{"label": "all grid points", "value": ""}]
    for c in bias.columns:
        for v in sorted(set(bias.point_values[:, bias.columns.index(c)].tolist())):
            values.append({"label": f"{data.grid_label(c)} = {fmt_value(v)}", "value": f"{c}={v!r}"})
    return list(bias.classes), values


def bias_group(data: RunData) -> str:
    """What the bias maps' classes are: "class", or the group of a run without predictions ("digit")."""
    bias = data.analysis.bias
    return "class" if bias is None or bias.group == "all" else bias.group


def bias_view(data: RunData, class_name: str | None, value_key: str | None):
    """The bias map of ``class_name`` pooled over the points with the ``value_key`` value (validated)."""
    bias = data.analysis.bias
    if bias is None:
        return message_figure("no bias maps in this run's analysis (no arrays kept?)")
    classes, values = bias_options(data)
    class_name = class_name if class_name in classes else classes[0]
    where, label = None, "all grid points"
    if value_key and value_key in {o["value"] for o in values}:
        col, _, v = value_key.partition("=")
        where = {col: float(v)}
        label = f"{col} = {fmt_value(float(v))}"
    try:
        maps = class_biases(bias, [class_name], where=where)
    except KeyError as err:
        return message_figure(str(err).strip("'\""))
    pooled = int(bias.instances_[bias.classes.index(class_name)])
    what = "all instances" if bias.group == "all" else f"{bias.group} {class_name}"
    return bias_figure(maps, data.run.schema.input, f"{what} · {label}: mean x̂T − xT over {pooled} instances")


def bias_choices(data: RunData) -> tuple[list[str], list[dict], str | None, str]:
    """The bias dropdowns for a run: classes and transform values, then the first class and "all grid points"."""
    classes, values = bias_options(data)
    return classes, values, classes[0] if classes else None, ""


def layout(ctx: PanelContext) -> list:
    classes, values, cls, value = bias_choices(ctx.first)
    return [
        dropdown("bias-class", classes, cls, bias_group(ctx.first)),
        dropdown("bias-value", values, value, "transform value", "320px"),
        dcc.Loading(dcc.Graph(id="bias", config={"displaylogo": False})),
    ]


def callbacks(app, ctx: PanelContext) -> None:
    follow_run(app, ctx, ("bias-class", "bias-value"), bias_choices)

    @app.callback(
        Output("bias", "figure"),
        Input("run", "value"),
        Input("bias-class", "value"),
        Input("bias-value", "value"),
    )
    def _bias(index, cls, value):
        return bias_view(ctx.run_of(index), cls, value)


register_panel("bias", tab="bias", tab_label="Bias maps", title="Bias maps: what the model wants to see",
               layout=layout, callbacks=callbacks, order=30)  # fmt: skip

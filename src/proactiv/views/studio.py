"""Figures of the what-if studio: inputs side by side on one colour range (x, xT, x̂T, their change or their
attributions) and the model's outputs on them (class probabilities, or output maps beside the target)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from proactiv.analysis.bias import as_2d
from proactiv.schema import InputSpec
from proactiv.views.record import LINE_COLOURS, line
from proactiv.views.style import DIVERGING, TEMPLATE, colorscale, finite_limit, input_axes


def inputs_figure(panels: dict[str, np.ndarray], spec: InputSpec, signed: bool | None = None) -> go.Figure:
    """Inputs side by side on one colour range: maps for 2-D inputs, overlaid lines for 1-D ones. ``signed``:
    None draws inputs (the input's colour scale), True a signed change (diverging, zero white), False a
    magnitude (white to red)."""
    if spec.one_dimensional:
        fig = go.Figure()
        colours = list(LINE_COLOURS.values())
        for k, (title, a) in enumerate(panels.items()):
            xs, ys = line(a)
            fig.add_trace(
                go.Scatter(x=xs, y=ys, mode="lines", name=title, line={"width": 1, "color": colours[k]})
            )
        fig.update_layout(
            template=TEMPLATE,
            height=300,
            margin={"t": 30, "b": 10, "l": 10, "r": 10},
            xaxis_title=spec.column_label,
            legend={"orientation": "h", "y": 1.1},
        )
        return fig
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=list(panels), horizontal_spacing=0.05)
    maps = [as_2d(a).astype(np.float32) for a in panels.values()]
    if signed is None:
        lo, hi = float(min(np.nanmin(m) for m in maps)), float(max(np.nanmax(m) for m in maps))
        kw = {"colorscale": colorscale(spec), "zmin": lo, "zmax": hi}
    else:
        lim = finite_limit(np.concatenate([m.ravel() for m in maps]))
        kw = (
            {"colorscale": DIVERGING, "zmin": -lim, "zmax": lim}
            if signed
            else {"colorscale": "Reds", "zmin": 0.0, "zmax": lim}
        )
    for c, z in enumerate(maps, start=1):
        fig.add_trace(
            go.Heatmap(
                z=z,
                showscale=c == len(maps),
                hovertemplate="row %{y}, col %{x}: %{z:.3g}<extra></extra>",
                **kw,
            ),
            row=1,
            col=c,
        )
        input_axes(fig, spec, 1, c, f"x{c if c > 1 else ''}", titled=c == 1)
    fig.update_layout(
        template=TEMPLATE, height=300 if spec.image else 320, margin={"t": 30, "b": 10, "l": 10, "r": 10}
    )
    return fig


def outputs_figure(
    classifier: bool, class_names, spec: InputSpec, outputs: dict[str, np.ndarray], desired
) -> go.Figure:
    """The model's outputs: class probabilities side by side (the ``desired`` class marked), or output maps
    beside the target (``desired``) for a model whose outputs are tensors."""
    if not classifier:
        return inputs_figure({"y (target)": np.asarray(desired), **outputs}, spec)
    names = list(class_names or [str(k) for k in range(len(next(iter(outputs.values()))))])
    fig = go.Figure()
    colours = {"f(x)": LINE_COLOURS["x"], "f(xT)": LINE_COLOURS["x_t"], "f(x̂T)": LINE_COLOURS["x_proj"]}
    for title, probs in outputs.items():
        fig.add_trace(
            go.Bar(
                x=names,
                y=probs,
                name=title,
                marker_color=colours.get(title),
                hovertemplate="%{x}: %{y:.3f}<extra>" + title + "</extra>",
            )
        )
    fig.add_annotation(
        x=names[int(desired)], y=1.0, yref="y", text="desired", showarrow=True, arrowhead=2, ay=-24
    )
    fig.update_layout(
        template=TEMPLATE,
        barmode="group",
        height=300,
        yaxis={"range": [0, 1.12], "title": "probability"},
        margin={"t": 30, "b": 10, "l": 10, "r": 10},
        legend={"orientation": "h", "y": 1.15},
    )
    return fig

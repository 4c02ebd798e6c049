"""Bias maps: per class, the mean change x̂T − xT (what the model "wants to see"; red: more, blue: less, on
one diverging scale across classes so they compare) and the mean |x̂T − xT| below it. 2-D inputs are maps,
waveforms and vectors lines."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from proactiv.analysis.bias import BiasMaps, as_2d
from proactiv.schema import InputSpec
from proactiv.views.record import line
from proactiv.views.sections import register_section, table_html
from proactiv.views.style import DIVERGING, TEMPLATE, finite_limit, input_axes, message_figure


@dataclass(frozen=True)
class ClassBias:
    """One class's pooled maps, shaped like one input, and its column title."""

    title: str
    mean: np.ndarray
    abs_mean: np.ndarray


def bias_figure(maps: Sequence[ClassBias], spec: InputSpec, title: str = "") -> go.Figure:
    """Classes side by side: the mean change (top) and the mean |change| (bottom)."""
    if not maps:
        return message_figure("no bias maps in this run's analysis (no arrays kept?)")
    n = len(maps)
    fig = make_subplots(rows=2, cols=n, column_titles=[m.title for m in maps], row_titles=["mean x̂T − xT", "mean |x̂T − xT|"],
                        horizontal_spacing=0.1 / n if not spec.one_dimensional else 0.25 / n, vertical_spacing=0.1)  # fmt: skip
    lim = max(finite_limit(m.mean) for m in maps)
    top = max(finite_limit(m.abs_mean) for m in maps)
    for c, m in enumerate(maps, start=1):
        for r, (a, kw) in enumerate(
            ((m.mean, {"colorscale": DIVERGING, "zmin": -lim, "zmax": lim}),
             (m.abs_mean, {"colorscale": "Magma", "zmin": 0.0, "zmax": top})), start=1,
        ):  # fmt: skip
            if spec.one_dimensional:
                xs, ys = line(a)
                fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line={"width": 1, "color": "#1f4e79" if r == 1 else "#e07b39"},
                                         showlegend=False, hovertemplate=f"{spec.column_label} %{{x}}: %{{y:.4f}}<extra></extra>"),
                              row=r, col=c)  # fmt: skip
                fig.update_yaxes(range=[-lim * 1.05, lim * 1.05] if r == 1 else [0, top * 1.05], row=r, col=c)
                fig.update_xaxes(title_text=spec.column_label if r == 2 else None, row=r, col=c)
                continue
            bar = {"len": 0.42, "y": 0.78 if r == 1 else 0.22, "title": {"text": spec.unit, "side": "right"}}
            fig.add_trace(go.Heatmap(z=as_2d(a).astype(np.float32), showscale=c == n, colorbar=bar,
                                     hovertemplate="row %{y}, col %{x}: %{z:.4f}<extra></extra>", **kw),
                          row=r, col=c)  # fmt: skip
            k = (r - 1) * n + c
            input_axes(fig, spec, r, c, f"x{k if k > 1 else ''}", titled=c == 1)
    if spec.one_dimensional:
        fig.update_yaxes(title_text=spec.unit, col=1)
    height = (250 if spec.image else 300) * 2 + (70 if title else 40)
    fig.update_layout(template=TEMPLATE, height=height, title={"text": title, "font": {"size": 14}},
                      margin={"t": 70 if title else 40, "b": 40, "l": 60, "r": 40})  # fmt: skip
    return fig


def class_biases(
    bias: BiasMaps, classes: Sequence[str], point: int | None = None, where: dict | None = None
) -> list[ClassBias]:
    """The pooled maps of ``classes`` (all grid points, one ``point``, or the points with ``where`` values),
    each titled with the class and how many instances it pools."""
    out = []
    for c in classes:
        pooled = int(bias.instances_[bias.classes.index(c)])
        title = "all instances" if bias.group == "all" else f"{bias.group} {c}"
        out.append(ClassBias(f"{title} ({pooled} inst.)", bias.mean(c, point=point, where=where),
                             bias.abs_mean(c, point=point, where=where)))  # fmt: skip
    return out


def run_bias_maps(
    bias: BiasMaps | None, spec: InputSpec, class_name: str | None = None, point: int | None = None
) -> go.Figure:
    """One class's bias map, or the strongest classes' side by side (ten for images, four otherwise)."""
    if bias is None:
        return message_figure("no bias maps in this run's analysis (no arrays kept?)")
    if class_name is None:
        classes = list(bias.ranking["class"].head(10 if spec.image else 4))
    elif class_name in bias.classes:
        classes = [class_name]
    else:
        raise ValueError(
            f"no bias map for {class_name!r}; classes with kept arrays: {', '.join(bias.classes)}"
        )
    where = "all grid points pooled" if point is None else f"grid point {point}"
    per = "over all instances" if bias.group == "all" else f"per {bias.group}"
    return bias_figure(class_biases(bias, classes, point=point), spec, f"Mean change x̂T − xT {per}, {where}")


def _intro(bias: BiasMaps) -> str:
    per = "class" if bias.group == "all" else bias.group
    return (
        f"Mean change x̂T − xT per {per}: what the model wants to see. Red: the model needed more there; blue: "
        "less. Strength is the RMS of the mean change; consistency near 1 means every instance moved the same way."
    )


@register_section("bias_maps", intro=_intro)
def report_html(bias: BiasMaps, ctx) -> str:
    """The report section: the strongest biases (every grid point pooled) and the ranking of classes."""
    body = ctx.figure(run_bias_maps(bias, ctx.run.schema.input), f"strongest {bias.group} biases (all grid points pooled)",
                      "bias maps")  # fmt: skip
    return body + table_html(ctx.analysis.bias_ranking, ["rank", "class", "instances", "records", "strength",
                             "consistency", "mean_abs", "peak_row", "peak_column", "peak_value"], rows=15)  # fmt: skip

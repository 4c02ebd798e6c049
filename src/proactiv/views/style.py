"""How every view looks: one palette with a fixed colour per class, one template, parameter axes whose values
(∞ included: a clean SNR) are ordered categories, and input axes drawn as the run's schema says."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative

from proactiv.analysis.runview import RunView, format_value
from proactiv.schema import InputSpec
from proactiv.transforms.base import Param

PALETTE = qualitative.Plotly + qualitative.D3 + qualitative.Dark24
TEMPLATE = "plotly_white"
#: the change x̂T − xT and bias maps: red where the model needed more, blue where less, white = no change
DIVERGING = "RdBu_r"
#: record and bias views: how many points a drawn line keeps at most (longer signals keep their envelope)
MAX_LINE_POINTS = 4000


def class_colour(index: int) -> str:
    return PALETTE[int(index) % len(PALETTE)]


def class_colours(classes: Sequence[str]) -> dict[str, str]:
    """A fixed colour per class name, in class order."""
    return {c: class_colour(i) for i, c in enumerate(classes)}


def value_order(label: str) -> tuple:
    """Sort key of category labels: numbers by value (−∞ first, ∞ last), then text."""
    try:
        return (0, float(label.replace("∞", "inf").replace("−", "-")), "")
    except ValueError:
        return (1, 0.0, label)


def value_labels(values: Iterable[float]) -> list[str]:
    """Grid values as ordered axis categories: ``["-5", "0", "20", "∞"]``."""
    return [format_value(v) for v in sorted({float(v) for v in values})]


@dataclass(frozen=True)
class ParamAxis:
    """A grid column drawn on an axis: its title with the unit, and its values as ordered categories."""

    column: str
    title: str
    labels: list[str]

    def apply(self, axis: dict) -> dict:
        return {**axis, "type": "category", "categoryorder": "array", "categoryarray": self.labels}


def param_axis(column: str, param: Param | None, values: Iterable[float]) -> ParamAxis:
    unit = getattr(param, "unit", "") or ""
    return ParamAxis(column, f"{column} ({unit})" if unit else column, value_labels(values))


def finite_limit(values, default: float = 1.0) -> float:
    """The largest finite |value| (a symmetric colour range for a change); ``default`` when there is none."""

    a = np.abs(np.asarray(values, dtype=float))
    a = a[np.isfinite(a)]
    top = float(a.max()) if a.size else 0.0
    return top if top > 0 and not math.isinf(top) else default


def input_axes(fig: go.Figure, spec: InputSpec, row: int, col: int, anchor: str, titled: bool = True) -> None:
    """Axes of one 2-D input panel: images upright with square pixels and no ticks; spectrograms with the
    low rows at the bottom and, when ``titled``, named axes. ``anchor`` is the panel's x axis name (``x``,
    ``x2``, …)."""
    if spec.image:
        fig.update_yaxes(autorange="reversed", scaleanchor=anchor, constrain="domain", showticklabels=False,
                         row=row, col=col)  # fmt: skip
        fig.update_xaxes(constrain="domain", showticklabels=False, row=row, col=col)
    elif titled:
        fig.update_yaxes(title_text=spec.row_label, row=row, col=col)
        fig.update_xaxes(title_text=spec.column_label, row=row, col=col)


def colorscale(spec: InputSpec) -> str:
    """The sequential colour scale of an input's values (grey images, magma spectrograms)."""
    return {"gray": "gray", "magma": "Magma"}.get(spec.colormap, "Viridis")


def message_figure(text: str) -> go.Figure:
    """An empty figure that says why it is empty."""
    fig = go.Figure()
    fig.add_annotation(text=text, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_layout(template=TEMPLATE, xaxis_visible=False, yaxis_visible=False, height=260)
    return fig


def param_axes(view: RunView, columns: Sequence[str] | None = None) -> list[ParamAxis]:
    """The axes of grid columns (default: those with more than one value: the others draw no curve)."""
    params = view.params
    values = {c: view.values(c) for c in (columns or view.grid_columns)}
    chosen = columns or [c for c, v in values.items() if len(v) > 1]
    return [param_axis(c, params.get(c), values[c]) for c in chosen]

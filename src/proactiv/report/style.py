"""How the report draws: one colour per class everywhere, parameter axes with units (an infinite value
such as a clean SNR sits at a labelled end of the axis), input axes named for spectrograms or images (what
an input is, :mod:`proactiv.analysis.inputs` decides), and figures as embedded PNG data so the page opens
offline."""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass

import numpy as np

from proactiv.analysis.inputs import InputKind, input_kind
from proactiv.analysis.runview import format_value
from proactiv.transforms.base import Param

__all__ = [
    "InputKind", "ParamAxis", "class_colours", "input_kind", "param_axis", "param_label", "png", "pyplot",
]  # fmt: skip


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend (no display needed), with the report's defaults."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "figure.dpi": 100,
            "font.size": 9,
            "axes.titlesize": 10,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.alpha": 0.3,
        }
    )
    return plt


def png(fig) -> str:
    """A figure as a ``data:`` URI (the figure is closed)."""
    plt = pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def class_colours(classes: list[str]) -> dict[str, tuple]:
    """A fixed colour per class name, in class order (tab10, tab20, then evenly spaced hues)."""
    plt = pyplot()
    n = len(classes)
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20" if n <= 20 else "hsv")
    return {c: cmap(i if n <= 20 else i / n) for i, c in enumerate(classes)}


def param_label(column: str, param: Param) -> str:
    return f"{column} ({param.unit})" if param.unit else column


@dataclass
class ParamAxis:
    """Where each value of a parameter sits on a plot axis, with tick labels (∞ placed past the largest)."""

    values: list[float]
    positions: np.ndarray
    labels: list[str]

    def at(self, value: float) -> float:
        return float(self.positions[self.values.index(float(value))])


def param_axis(values, param: Param) -> ParamAxis:
    values = sorted(float(v) for v in values)
    finite = [v for v in values if math.isfinite(v)]
    span = (max(finite) - min(finite)) if len(finite) > 1 else 1.0
    gap = max(span * 0.3, 1e-9) if finite else 1.0
    top, bottom = (max(finite), min(finite)) if finite else (0.0, 0.0)
    positions = np.asarray(
        [top + gap if v == math.inf else bottom - gap if v == -math.inf else v for v in values]
    )
    labels = [
        f"{format_value(v)}\nidentity" if math.isinf(v) and v == param.identity else format_value(v)
        for v in values
    ]
    return ParamAxis(values, positions, labels)

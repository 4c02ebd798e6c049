"""Per-instance breakpoints: their distribution per class along each parameter (which classes break first),
the instances that break earliest, and one instance's boundary curve in the plane of two parameters."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from proactiv.analysis.instance_breakpoints import InstanceBreakpoints, earliest
from proactiv.analysis.instance_breakpoints import instance_boundary as boundary_of
from proactiv.analysis.runview import format_value
from proactiv.transforms.base import Param
from proactiv.views.sections import register_section
from proactiv.views.source import RunLike, open_analysed
from proactiv.views.style import TEMPLATE, message_figure

#: colour of each search side
SIDE_COLOURS = {"down": "#1f77b4", "up": "#d62728"}
#: the earliest-breaking instances shown
EARLIEST = 10


def _title(column: str, params: dict[str, Param]) -> str:
    unit = getattr(params.get(column), "unit", "")
    return f"{column} ({unit})" if unit else column


def distribution_figure(table: pd.DataFrame | None, params: dict[str, Param]) -> go.Figure:
    """One panel per parameter: each class's per-instance breakpoints (box + points, one colour per side),
    classes ordered by their median share of the range reached before flipping (left: breaks first)."""
    if table is None or table.breakpoint.notna().sum() == 0:
        return message_figure("no instance flips within the searched ranges")
    cols = list(dict.fromkeys(table.column))
    fig = make_subplots(rows=len(cols), cols=1, subplot_titles=[_title(c, params) for c in cols],
                        vertical_spacing=min(0.12, 0.9 / len(cols)))  # fmt: skip
    shown = set()
    for row, col in enumerate(cols, start=1):
        part = table[(table.column == col) & table.breakpoint.notna()]
        order = part.groupby("group").range_fraction.median().sort_values().index.astype(str).tolist()
        for side, rows in part.groupby("side"):
            fig.add_trace(
                go.Box(
                    x=rows.group.astype(str), y=rows.breakpoint, name=f"side: {side}", boxpoints="all",
                    jitter=0.4, pointpos=0, marker_color=SIDE_COLOURS.get(side), legendgroup=side,
                    showlegend=side not in shown, offsetgroup=side,
                    customdata=rows.instance, hovertemplate="instance %{customdata}: %{y}<extra></extra>",
                ),
                row=row, col=1,
            )  # fmt: skip
            shown.add(side)
        fig.update_xaxes(type="category", categoryorder="array", categoryarray=order, row=row, col=1)
        fig.update_yaxes(title_text="breakpoint", row=row, col=1)
    fig.update_layout(template=TEMPLATE, boxmode="group", height=260 * len(cols) + 60,
                      margin=dict(l=60, r=20, t=60, b=40))  # fmt: skip
    return fig


def earliest_table(table: pd.DataFrame | None, n: int = EARLIEST) -> pd.DataFrame:
    """The ``n`` instances that break earliest, for people: where each one first flips and what it cost."""
    if table is None:
        return pd.DataFrame()
    first = earliest(table, n)
    return pd.DataFrame(
        {
            "instance": first.instance,
            "class": first.group.astype(str),
            "parameter": first.column,
            "side": first.side,
            "breakpoint": [format_value(v) for v in first.breakpoint],
            "share of range": first.range_fraction.round(3),
            "forward passes": first.evaluations,
        }
    )


def boundary_figure(boundary: pd.DataFrame | None, params: dict[str, Param]) -> go.Figure:
    """An instance's boundary in a parameter plane: for each value of the first parameter, the breakpoint
    along the second on each side; × where it is flipped with the second at its identity."""
    if boundary is None or boundary.empty:
        return message_figure("no boundary curve (the run has fewer than two parameters, or nothing flips)")
    col_a, col_b = boundary.column_a.iloc[0], boundary.column_b.iloc[0]
    fig = go.Figure()
    for side, rows in boundary.groupby("side"):
        fig.add_trace(go.Scatter(x=rows.value_a, y=rows.breakpoint, mode="lines+markers", name=f"{col_b} {side}",
                                 line_color=SIDE_COLOURS.get(side), connectgaps=False))  # fmt: skip
    pb = params.get(col_b)
    at = boundary[boundary.flipped_at_identity].drop_duplicates("value_a")
    if not at.empty and pb is not None:
        y = pb.identity if math.isfinite(pb.identity) else pb.high
        fig.add_trace(go.Scatter(x=at.value_a, y=np.full(len(at), y), mode="markers", name="flipped already",
                                 marker=dict(symbol="x", size=10, color="#444")))  # fmt: skip
    pa = params.get(col_a)
    reverse = pa is not None and math.isinf(pa.identity) and pa.identity > 0  # clean (+∞) on the left
    fig.update_layout(
        template=TEMPLATE, height=380, margin=dict(l=60, r=20, t=50, b=50),
        title=f"instance {int(boundary.instance.iloc[0])}: where it flips",
        xaxis=dict(title=_title(col_a, params), autorange="reversed" if reverse else True),
        yaxis=dict(title=f"breakpoint along {_title(col_b, params)}"),
    )  # fmt: skip
    return fig


def _params(ctx) -> dict[str, Param]:
    return {t.column: t.param for t in ctx.run.grid.transforms}


@register_section("instance_breakpoints")
def report_html(result: InstanceBreakpoints, ctx) -> str:
    """The report section: distribution per class, the earliest instances, the boundary curve."""
    params = _params(ctx)
    table = earliest_table(result.table)
    rows = (
        table.to_html(index=False, escape=True, border=0)
        if not table.empty
        else "<p class='muted'>(no instance flips)</p>"
    )
    return (
        ctx.figure(distribution_figure(result.table, params),
                   "per-instance breakpoints per class and parameter (the others held); classes that break "
                   "first on the left", "box plots of per-instance breakpoints per class")
        + f"<h3>Instances that break earliest</h3>{rows}"
        + ctx.figure(boundary_figure(result.boundary, params),
                     "boundary curve of the earliest-breaking instance in the plane of the first two parameters",
                     "line chart of one instance's breakpoint along one parameter against another")
    )  # fmt: skip


def instance_breakpoints(run: RunLike) -> go.Figure:
    """Per-instance breakpoints per class, one panel per transform parameter (which classes break first)."""
    view, analysis = open_analysed(run, ("instance_breakpoints",))
    result = analysis["instance_breakpoints"]
    return distribution_figure(None if result is None else result.table, view.params)


def instance_boundary(run: RunLike, instance: int, col_a: str, col_b: str, **options) -> go.Figure:
    """One instance's boundary curve in the plane of two parameters (computed now: forward passes only)."""
    view, _ = open_analysed(run)
    return boundary_figure(boundary_of(view.run, instance, col_a, col_b, **options), view.params)

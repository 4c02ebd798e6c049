"""Radius view: per instance, the certified radius (proved) ≤ the adversarial radius (found) beside the
projection distance d_x_l2 (how far the projection moved the input to fix it) and, when computed, the
instance's transform breakpoints — is the model fragile to meaningless change or to meaningful change?"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from proactiv.analysis.radius import fragility_sentence, projection_distance, stored_instance_breakpoints
from proactiv.views.sections import register_section
from proactiv.views.source import RunLike, open_analysed
from proactiv.views.style import TEMPLATE, class_colour, message_figure

FOUND, PROVED, DX = "#c0392b", "#1f77b4", "#7f7f7f"


def nearest_breakpoints(table: pd.DataFrame | None) -> pd.DataFrame | None:
    """Per (instance, transform column), the breakpoint nearest the identity of an ``instance_breakpoints``
    table (columns instance, column, breakpoint, range_fraction), or None when it has none of those."""
    need = {"instance", "column", "breakpoint", "range_fraction"}
    if not isinstance(table, pd.DataFrame) or not need <= set(table.columns):
        return None
    hits = table.dropna(subset=["breakpoint"]).sort_values("range_fraction")
    return hits.drop_duplicates(["instance", "column"])


def radius_figure(
    table: pd.DataFrame | None, dx: pd.Series | None = None, breakpoints=None, norm: str = "l2"
) -> go.Figure:
    """Instances sorted by their found ``norm`` radius: a bar from certified to found radius, d_x_l2 as a marker
    (log scale); below, each transform's per-instance breakpoint (as the fraction of its range from the
    identity, so transforms share an axis) when ``breakpoints`` (the instance_breakpoints table) is given."""
    found = f"radius_{norm}"
    if table is None or found not in table or table.empty:
        return message_figure(f"no {norm} radius was computed")
    order = table.sort_values(found).reset_index(drop=True)
    x = [f"#{int(i)}" for i in order.instance]
    names = order.label_name.astype(str)
    bp = nearest_breakpoints(breakpoints)
    rows = 2 if bp is not None and not bp.empty else 1
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        row_heights=[0.65, 0.35][:rows] if rows == 2 else None)  # fmt: skip
    proved = f"certified_{norm}"
    if proved in order:
        fig.add_trace(go.Bar(x=x, y=order[found] - order[proved], base=order[proved], marker_color="#f2c4bd",
                             name=f"gap: certified ≤ true radius ≤ found ({norm})", hoverinfo="skip"), 1, 1)  # fmt: skip
        fig.add_trace(go.Scatter(x=x, y=order[proved], mode="markers", marker=dict(color=PROVED, symbol="triangle-up"),
                                 name=f"certified {norm} (proved)", text=names), 1, 1)  # fmt: skip
    fig.add_trace(go.Scatter(x=x, y=order[found], mode="markers", marker=dict(color=FOUND, symbol="triangle-down"),
                             name=f"adversarial {norm} (found)", text=names), 1, 1)  # fmt: skip
    if dx is not None and norm == "l2":
        fig.add_trace(go.Scatter(x=x, y=dx.reindex(order.instance).to_numpy(), mode="markers",
                                 marker=dict(color=DX, symbol="circle-open"), name="d_x_l2 (median over records)",
                                 text=names), 1, 1)  # fmt: skip
    fig.update_yaxes(type="log", title_text=f"{norm} distance (input units)", row=1, col=1)
    if rows == 2:
        for k, (name, part) in enumerate(bp.groupby("column", sort=True)):
            part = part.set_index("instance").reindex(order.instance)
            fig.add_trace(go.Scatter(x=x, y=part.range_fraction.to_numpy(), mode="markers",
                                     marker=dict(color=class_colour(k)), name=f"breakpoint: {name}",
                                     customdata=part.breakpoint.to_numpy(),
                                     hovertemplate=f"{name} = %{{customdata:.4g}}<extra></extra>"), 2, 1)  # fmt: skip
        fig.update_yaxes(title_text="breakpoint (fraction of range from identity)", row=2, col=1)
    fig.update_xaxes(
        title_text="instance (sorted by found radius)", row=rows, col=1, showticklabels=len(x) <= 60
    )
    fig.update_layout(template=TEMPLATE, height=420 + 200 * (rows - 1), legend=dict(orientation="h", y=-0.25),
                      title="How small a change flips each instance")  # fmt: skip
    return fig


def radius(run: RunLike, norm: str = "l2") -> go.Figure:
    """Per instance: certified ≤ adversarial radius beside the projection distance d_x and the instance's
    transform breakpoints — is the model fragile to meaningless change or to meaningful change?"""
    from proactiv.analysis.radius import projection_distance, stored_instance_breakpoints

    view, analysis = open_analysed(run, ("radius",))
    return radius_figure(
        analysis["radius"], projection_distance(view), stored_instance_breakpoints(view.run), norm
    )


def radius_view(table: pd.DataFrame, ctx) -> tuple[go.Figure, str]:
    """The radius figure of a stored radius table and the sentence saying how fragile the instances are."""
    dx = projection_distance(ctx.view)
    return radius_figure(table, dx, stored_instance_breakpoints(ctx.run)), fragility_sentence(table, dx)


@register_section("radius")
def report_html(table: pd.DataFrame, ctx) -> str:
    """The report section: the sentence and the radius figure."""
    fig, sentence = radius_view(table, ctx)
    alt = "per-instance certified and adversarial radius beside the projection distance d_x"
    return f"<p class='radius'>{sentence}</p>" + ctx.figure(fig, sentence, alt)

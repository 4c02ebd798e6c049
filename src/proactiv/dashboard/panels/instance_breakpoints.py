"""The instance-breakpoints tab: per-instance breakpoints per class along each parameter (which classes break
first), the instances that break earliest, and the earliest one's boundary curve in the plane of two parameters."""

from __future__ import annotations

from dash import dash_table, dcc, html

from proactiv.analysis.instance_breakpoints import InstanceBreakpoints
from proactiv.analysis.steps import StepContext
from proactiv.dashboard.panels.registry import register_step_tab
from proactiv.views.instance_breakpoints import EARLIEST, boundary_figure, distribution_figure, earliest_table


def instance_breakpoints_tab(result: InstanceBreakpoints, ctx: StepContext) -> html.Div:
    """The report section's two figures and table."""
    params = ctx.view.params
    table = earliest_table(result.table)
    return html.Div(
        [
            dcc.Graph(id="ibp-distribution", figure=distribution_figure(result.table, params)),
            html.H4("Instances that break earliest"),
            dash_table.DataTable(
                id="ibp-earliest",
                columns=[{"name": c, "id": c} for c in table.columns],
                data=table.to_dict("records"),
                page_size=EARLIEST,
            ),
            dcc.Graph(id="ibp-boundary", figure=boundary_figure(result.boundary, params)),
        ],
        id="ibp-panel",
    )


register_step_tab("instance_breakpoints", instance_breakpoints_tab)

"""The radius tab: each instance's adversarial and certified radius beside how far projection moved it."""

from __future__ import annotations

import pandas as pd
from dash import dcc, html

from proactiv.analysis.steps import StepContext
from proactiv.dashboard.panels.registry import register_step_tab
from proactiv.views.radius import radius_view


def radius_tab(table: pd.DataFrame, ctx: StepContext) -> html.Div:
    """The sentence on how fragile the instances are and the radius figure."""
    fig, sentence = radius_view(table, ctx)
    return html.Div([html.P(sentence, id="radius-sentence"), dcc.Graph(figure=fig, id="radius-graph")])


register_step_tab("radius", radius_tab)

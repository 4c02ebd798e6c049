"""The CKA tab: how similar each layer's activations on xT are to those on the clean x, per transform value."""

from __future__ import annotations

import pandas as pd
from dash import dcc

from proactiv.analysis.steps import StepContext
from proactiv.dashboard.panels.registry import register_step_tab
from proactiv.views.cka import cka_figure


def cka_tab(table: pd.DataFrame, ctx: StepContext) -> dcc.Graph:
    """The CKA heatmap (layers × transform values)."""
    return dcc.Graph(figure=cka_figure(table), id="cka-graph")


register_step_tab("cka", cka_tab)

"""The confusions tab: what inputs are taken for, per transform value, with the sentence naming the largest."""

from __future__ import annotations

import pandas as pd
from dash import dcc, html

from proactiv.analysis.steps import StepContext
from proactiv.dashboard.panels.registry import register_step_tab
from proactiv.views.confusions import confusion_figure, confusion_sentence


def confusions_tab(table: pd.DataFrame, ctx: StepContext) -> html.Div:
    """The sentence and the confusion figure."""
    return html.Div(
        [
            html.P(confusion_sentence(table), id="confusions-sentence"),
            dcc.Graph(figure=confusion_figure(table), id="confusions-graph"),
        ]
    )


register_step_tab("confusions", confusions_tab)

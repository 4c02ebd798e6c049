"""The faithfulness step's tab: whether the attribution maps can be believed — each method's deletion curve
against random deletion, its figures and verdicts (the view of :mod:`proactiv.views.faithfulness`), the flagged
methods named above the figure."""

from __future__ import annotations

import pandas as pd
from dash import dcc, html

from proactiv.analysis.steps import StepContext
from proactiv.dashboard.panels.registry import register_step_tab
from proactiv.views.faithfulness import faithfulness_view, flagged_methods


def faithfulness_tab(table: pd.DataFrame, ctx: StepContext) -> html.Div:
    """The tab: the sentence, the flagged methods (when any) and the figure."""
    fig, sentence = faithfulness_view(table)
    flagged = flagged_methods(table)
    parts = [html.P(sentence, id="faithfulness-sentence")]
    if flagged:
        parts.append(
            html.P(
                f"Read these maps with care: {'; '.join(flagged)}",
                id="faithfulness-flagged",
                className="warning",
            )
        )
    parts.append(dcc.Graph(figure=fig, id="faithfulness-graph", config={"displaylogo": False}))
    return html.Div(parts)


register_step_tab("faithfulness", faithfulness_tab)

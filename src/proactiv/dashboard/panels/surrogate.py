"""The surrogate tab: the top drivers of failure in a sentence (with the fidelity warning), importance, the shape
function of a chosen feature, the strongest pair interaction, the fidelity figure, and the contributions of the
record chosen in the record table (at first: the failure the surrogate is surest of)."""

from __future__ import annotations

from dash import Input, Output, State, dcc, html

from proactiv.analysis.runview import AnalysisError
from proactiv.analysis.surrogate import Surrogate
from proactiv.dashboard.data import RunData
from proactiv.dashboard.panels.registry import PanelContext, register_step_tab
from proactiv.views.style import message_figure
from proactiv.views.surrogate import (
    WARN,
    contributions_figure,
    fidelity_figure,
    importance_figure,
    interaction_figure,
    shapes_figure,
)


def surest_record(s: Surrogate) -> tuple[int, int]:
    """The (instance, point) of the observed failure (or the largest loss) the surrogate predicts most strongly."""
    rows = s.contributions
    failing = rows[rows.observed > 0] if s.outcome == "failure" else rows
    best = (failing if not failing.empty else rows).sort_values("predicted", ascending=False).iloc[0]
    return int(best.instance), int(best.point)


def _surrogate(data: RunData) -> Surrogate | None:
    return data.analysis["surrogate"]


def shape_view(data: RunData, feature: str | None):
    """The shape function of ``feature`` in the run's stored surrogate (a message when there is none)."""
    s = _surrogate(data)
    if s is None:
        return message_figure("this run has no surrogate")
    if feature not in set(s.importance.feature):
        return message_figure(f"choose one of the surrogate's features ({', '.join(s.importance.feature)})")
    return shapes_figure(s, [feature])


def record_contributions(data: RunData, chosen: dict | None):
    """The chosen record's contributions (the browser's ``record`` store: instance and point integers)."""
    s = _surrogate(data)
    if s is None:
        return message_figure("this run has no surrogate")
    try:
        instance, point = int(chosen["instance"]), int(chosen["point"])
    except (KeyError, TypeError, ValueError):
        instance, point = surest_record(s)
    try:
        return contributions_figure(s.record(instance, point))
    except AnalysisError as err:
        return message_figure(str(err))


def surrogate_panel(s: Surrogate):
    """The step's tab (component ids ``surrogate-*``; :func:`surrogate_callbacks` makes it interactive)."""
    options = [{"label": f, "value": f} for f in s.importance.feature]
    first = options[0]["value"] if options else None
    instance, point = surest_record(s)
    warning = [html.P(f"⚠ {s.warning}", id="surrogate-warning", style={"color": WARN})] if s.warning else []
    return html.Div(
        [html.P(s.sentence(), id="surrogate-sentence"), *warning,
         dcc.Graph(id="surrogate-importance", figure=importance_figure(s)),
         html.Div([html.Span("shape function of ", className="k"),
                   dcc.Dropdown(id="surrogate-feature", options=options, value=first, clearable=False,
                                style={"width": "320px", "display": "inline-block"})]),
         dcc.Graph(id="surrogate-shape", figure=shapes_figure(s, [first]) if first else message_figure("no features")),
         dcc.Graph(id="surrogate-interaction", figure=interaction_figure(s)),
         dcc.Graph(id="surrogate-fidelity", figure=fidelity_figure(s)),
         html.H4("One record in the surrogate's terms (choose a record in the record table)"),
         dcc.Graph(id="surrogate-record", figure=contributions_figure(s.record(instance, point)))],
        id="surrogate-panel",
    )  # fmt: skip


def surrogate_callbacks(app, ctx: PanelContext) -> None:
    """The tab's callbacks: the chosen feature's shape function, the chosen record's contributions."""

    @app.callback(Output("surrogate-shape", "figure"), Input("surrogate-feature", "value"), State("run", "value"),
                  prevent_initial_call=True)  # fmt: skip
    def _shape(feature, index):
        return shape_view(ctx.run_of(index), feature)

    @app.callback(Output("surrogate-record", "figure"), Input("record", "data"), State("run", "value"),
                  prevent_initial_call=True)  # fmt: skip
    def _record(chosen, index):
        return record_contributions(ctx.run_of(index), chosen)


register_step_tab("surrogate", lambda s, _ctx: surrogate_panel(s), surrogate_callbacks)

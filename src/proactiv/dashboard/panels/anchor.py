"""The record card's anchor: the ranges of the transform parameters under which the chosen record's outcome
holds, drawn over the outcome along them, with its precision, coverage and the local linear surrogate beside it.
A record the ``anchors`` step anchored (the worst failing ones) shows its stored anchor as soon as it is chosen;
any other is searched on request (seconds to a half minute on an audio run) through the what-if tab's studio,
built once per run. Each record's answer is kept."""

from __future__ import annotations

import dash
from dash import Input, Output, State, dcc, html

from proactiv.analysis.anchor import anchor
from proactiv.analysis.runview import AnalysisError
from proactiv.dashboard.data import RunData
from proactiv.dashboard.panels.registry import PanelContext
from proactiv.dashboard.panels.whatif import GRAPH, studio
from proactiv.views.anchor import anchor_figure, outcome_grid

HINT = "Press “Find the anchor” for the ranges of the transform parameters under which this outcome holds."


def record_anchor(data: RunData, chosen: dict | None, search: bool = True) -> list:
    """Dash components: the chosen record's anchor sentence, its figure and its local surrogate (stored, kept, or
    searched now unless ``search`` is False: then the button's hint); a note when there is no record or no studio
    for the run."""
    try:
        instance, point = int(chosen["instance"]), int(chosen["point"])
    except (KeyError, TypeError, ValueError):
        return [html.Div("choose a record to find its anchor", className="note")]
    key = ("anchor", instance, point)
    if key not in data._cache and (stored := stored_anchor(data, instance, point)) is not None:
        data._cache[key] = stored
    if key not in data._cache and not search:
        return [html.Div(HINT, className="note")]
    built = studio(data) if key not in data._cache else None
    if isinstance(built, str):
        return [html.Div(built, className="note", id="anchor-missing")]
    if key not in data._cache:
        try:
            found = anchor(built.run, instance, point, studio=built)
        except (AnalysisError, ValueError) as err:
            return [html.Div(f"no anchor for record ({instance}, {point}): {err}", className="note")]
        data._cache[key] = (found, anchor_figure(found, outcome_grid(built, found, n=41)))
    found, figure = data._cache[key]
    out = [html.Div(found.describe(), id="anchor-rule", className="facts"),
           dcc.Graph(figure=figure, id="anchor-graph", config=GRAPH)]  # fmt: skip
    if found.surrogate is not None:
        out.append(html.Div(found.surrogate.describe(), id="anchor-surrogate", className="note"))
    return out


def stored_anchor(data: RunData, instance: int, point: int):
    """The ``anchors`` step's stored anchor of the record and its figure, or None when the step did not anchor
    it (or holds no rule for it)."""
    stored = data.analysis["anchors"]
    if stored is None:
        return None
    try:
        found = stored.anchor(instance, point)
        return None if found is None else (found, anchor_figure(found, stored.grid(instance, point)))
    except KeyError:
        return None


def record_part() -> list:
    """The record card's anchor area (filled by :func:`record_callbacks` when its button is pressed)."""
    return [
        html.H4("Anchor: where this outcome holds"),
        html.Button("Find the anchor", id="anchor-go", n_clicks=0),
        dcc.Loading(html.Div(html.Div(HINT, className="note"), id="anchor")),
    ]


def record_callbacks(app, ctx: PanelContext) -> None:
    @app.callback(Output("anchor", "children"), Input("anchor-go", "n_clicks"), Input("record", "data"),
                  State("run", "value"), prevent_initial_call=True)  # fmt: skip
    def _anchor(_clicks, chosen, index):
        # a new record shows its stored (or kept) anchor at once; a search waits for the button
        return record_anchor(ctx.run_of(index), chosen, search=dash.ctx.triggered_id == "anchor-go")

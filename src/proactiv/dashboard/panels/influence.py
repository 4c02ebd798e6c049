"""The influence panel: next to the chosen record, the training examples that most support and most oppose its
prediction on xT and the desired class on x̂T (TracIn over the model's training checkpoints), each playable or
viewable as the run's inputs are; a message saying what is needed when the model has no checkpoints. Also
the self-influence step's tab: the training examples that most influence their own loss.

TracIn is prepared once per run (the training set mapped into the model's inputs) and each record's answer
is cached, so only the first record waits for the training set."""

from __future__ import annotations

import pandas as pd
from dash import Input, Output, State, dcc, html

from proactiv.analysis.runview import AnalysisError
from proactiv.analysis.steps import StepContext
from proactiv.dashboard.data import RunData
from proactiv.dashboard.panels.registry import PanelContext, register_step_tab
from proactiv.views.influence import ON_TITLES, describe, example_media, influence_figure, self_influence_rows

#: proponents and opponents shown per explained input
K = 5


def _media_element(item, id_: str):
    if item is None:
        return None
    kind, uri = item
    if kind == "audio":
        return html.Audio(src=uri, controls=True, preload="none", id=id_)
    return html.Img(src=uri, width=56, style={"imageRendering": "pixelated"}, id=id_)


def examples_list(table, media: list | None, why: str = "", id_prefix: str = "influence") -> html.Div:
    """Training examples as a table: rank, score, label (and the model's prediction when the table has one),
    metadata, and a player or thumbnail each when ``media`` is given; ``why`` says why there are none."""
    predicted = "pred_name" in table
    head = ["rank", "score", "example", "label", *(["model says"] if predicted else []), "metadata", ""]
    rows = []
    for n, (_, row) in enumerate(table.iterrows()):
        said = []
        if predicted:
            said = [
                html.Td(
                    row["pred_name"], className="disagree" if row["pred_name"] != row["label_name"] else ""
                )
            ]
        rows.append(html.Tr([
            html.Td(int(row["rank"])), html.Td(f"{row['score']:.4g}"), html.Td(f"#{int(row['train_index'])}"),
            html.Td(row["label_name"]), *said, html.Td(describe(row)),
            html.Td(_media_element(media[n] if media else None, f"{id_prefix}-media-{n}")),
        ]))  # fmt: skip
    body = [html.Table([html.Tr([html.Th(h) for h in head]), *rows], className="influence")]
    return html.Div(([html.Div(why, className="note")] if why else []) + body, id=f"{id_prefix}-table")


def _tracin(data: RunData):
    """The run's :class:`~proactiv.analysis.influence.TracIn` (prepared once), or why there is none."""
    from proactiv.analysis.influence import TracIn
    from proactiv.analysis.steps import StepContext

    with data._lock:
        if "tracin" not in data._cache:
            try:
                data._cache["tracin"] = TracIn(data.run, StepContext(data.run).task())
            except AnalysisError as err:
                data._cache["tracin"] = f"No influential training examples: {err}"
    return data._cache["tracin"]


def record_influence(data: RunData, chosen: dict | None, k: int = K) -> list:
    """Dash components: for the chosen record, its ``k`` proponents and opponents on xT (toward its prediction)
    and on x̂T (toward the desired class), with scores, labels, metadata and a player or thumbnail each; a note
    when there is nothing to show (no record chosen, no arrays kept, no checkpoints)."""
    try:
        instance, point = int(chosen["instance"]), int(chosen["point"])
    except (KeyError, TypeError, ValueError):
        return [html.Div("choose a record to see the training examples behind it", className="note")]
    if not data.classifier:
        return [html.Div("influential training examples explain class predictions; this run has none",
                         className="note")]  # fmt: skip
    if data.record(instance, point) is None or not data.is_kept(instance, point):
        return [html.Div(f"no arrays were kept for record ({instance}, {point})", className="note")]
    tracin = _tracin(data)
    if isinstance(tracin, str):
        return [html.Div(tracin, className="note", id="influence-missing")]
    key = ("influence", instance, point, int(k))
    if key not in data._cache:
        table = tracin.record(instance, point, k=int(k))
        data._cache[key] = (table, example_media(data.run.schema, tracin.training, table.train_index))
    table, media = data._cache[key]
    out = [html.H4("Influential training examples (TracIn over the training checkpoints)"),
           dcc.Graph(figure=influence_figure(table), id="influence-graph")]  # fmt: skip
    for on, part in table.groupby("on", sort=False):
        name, what = ON_TITLES.get(on, (on, "its target"))
        for role in ("proponent", "opponent"):
            sel = part[part.role == role]
            verb = "support" if role == "proponent" else "oppose"
            out.append(
                html.H5(f"{name} → {sel.target_name.iloc[0]} ({what}): training examples that {verb} it")
            )
            picked = [media[i] for i in sel.index] if media else None
            out.append(examples_list(sel, picked, id_prefix=f"influence-{on}-{role}"))
    return out


def record_part() -> list:
    """The record card's influence area (filled by :func:`record_callbacks`)."""
    return [dcc.Loading(html.Div(id="influence"))]


def record_callbacks(app, ctx: PanelContext) -> None:
    @app.callback(Output("influence", "children"), Input("record", "data"), State("run", "value"))
    def _influence(chosen, index):
        return record_influence(ctx.run_of(index), chosen)


def self_influence_tab(table: pd.DataFrame, ctx: StepContext) -> html.Div:
    """The self-influence step's tab: the most self-influential training examples, playable or viewable."""
    return examples_list(*self_influence_rows(table, ctx), id_prefix="self-influence")


register_step_tab("self_influence", self_influence_tab)

"""The model card: what the picked run's model measured in its own training (the ``metrics.json`` beside it) —
the report's closing section (:mod:`proactiv.views.model_card`) as a card, headed by the key figures a model
developer looks for first. A run whose config names no model path, or whose model folder holds no readable
``metrics.json``, gets one sentence naming what was looked for: the card never stays empty."""

from __future__ import annotations

from pathlib import Path

from dash import Input, Output, dcc, html

from proactiv.dashboard.panels.registry import PanelContext, register_panel
from proactiv.views.model_card import (
    FIGURE_NOTE,
    SPEECH_CAPTION,
    TITLE,
    UNREADABLE,
    card_figure,
    key_figures,
    speech_table,
    stored_metrics,
    training_parts,
    unreadable_sentence,
)

TAB = "model"
_CELL = {"padding": "2px 12px 2px 0", "textAlign": "left", "fontSize": "13px"}


def _table(head: list[str], rows: list[list[str]], id_: str) -> html.Table:
    return html.Table(
        [html.Thead(html.Tr([html.Th(h, style=_CELL) for h in head])),
         html.Tbody([html.Tr([html.Td(c, style=_CELL) for c in row]) for row in rows])],
        id=id_, style={"borderCollapse": "collapse", "margin": "6px 0"},
    )  # fmt: skip


def model_card_children(run) -> list:
    """The card of a run (a store :class:`~proactiv.store.Run`): where its metrics come from, the training
    sentence, the key figures, the model card figure and the running-speech table — each part only when the
    metrics hold it — or the sentence saying why there is none (also when an entry lacks a field the card
    reads, e.g. a hand-edited file: named, instead of a dashboard that does not start)."""
    stored = stored_metrics(run)
    if stored.metrics is None:
        return [html.P(stored.missing, id="model-card-missing")]
    try:
        return _card(stored.file, stored.metrics)
    except UNREADABLE as err:
        return [html.P(unreadable_sentence(stored.file, err), id="model-card-missing")]


def _card(file: Path, metrics: dict) -> list:
    out: list = [html.Div(f"from {file}", className="note")]
    parts = training_parts(metrics)
    if parts:
        out.append(html.P([html.B(text) if bold else text for text, bold in parts], id="model-card-training"))
    figures = key_figures(metrics)
    if figures:
        out.append(_table(["key figure", "value"], [list(row) for row in figures], "model-card-figures"))
    fig = card_figure(metrics)
    if fig is not None:
        out += [dcc.Graph(figure=fig, id="model-card-graph", config={"displaylogo": False}),
                html.Div(FIGURE_NOTE, className="note")]  # fmt: skip
    speech = speech_table(metrics)
    if speech is not None:
        out += [html.P(SPEECH_CAPTION), _table(speech[0], [speech[1]], "model-card-speech")]
    if len(out) == 1:
        out.append(html.P(f"{file} holds none of the measures a model card shows (no test accuracy, calibration, "
                          "operating curve, noise measures, strategy or PGD accuracy).", id="model-card-missing"))  # fmt: skip
    return out


def layout(ctx: PanelContext) -> html.Div:
    return html.Div(model_card_children(ctx.first.run), id="model-card")


def callbacks(app, ctx: PanelContext) -> None:
    @app.callback(Output("model-card", "children"), Input("run", "value"), prevent_initial_call=True)
    def _card(index):
        return model_card_children(ctx.run_of(index).run)


# after the analyses' tabs, as the report closes with it; before the what-if studio and compare
register_panel("model_card", tab=TAB, tab_label="Model card", title=TITLE, layout=layout, callbacks=callbacks,
               order=70)  # fmt: skip

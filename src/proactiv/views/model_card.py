"""The model card of a run: what the model's own training measured, read from the ``metrics.json`` beside it.

A keyword model's training stores the trade between keyword recall and unknown words taken for a keyword as
its ``_unknown_`` offset moves, and its accuracy in noise per noise kind and SNR
(:func:`proactiv.tasks.kws.train.train`). The report draws them beside what the sweep found, so a reader sees
whether a breakpoint lies inside or outside the conditions the training measured, and how the operating point
was chosen. Any task's training stores its strategy and its test accuracy under PGD
(:mod:`proactiv.robust_training`), said in a sentence, and the key figures a model developer looks for first
stand in a table. A run whose model folder holds no such metrics (a model passed in Python) gets no section; one
whose metrics cannot be read gets a sentence naming the file (:func:`stored_metrics`).

The report's section and the dashboard's model card draw from the same functions here: the figure
(:func:`card_figure`), the sentence's parts (:func:`training_parts`), the running-speech table
(:func:`speech_table`), the key figures (:func:`key_figures`) and why there is no card
(:class:`StoredMetrics`); each surface only renders them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from proactiv.views.sections import esc, register_section
from proactiv.views.source import RunLike, open_analysed
from proactiv.views.style import TEMPLATE

METRICS_FILE = "metrics.json"
#: the title of the report section and of the dashboard card
TITLE = "The model: what its training measured"
#: what the card figure shows, under it
FIGURE_NOTE = f"from {METRICS_FILE} beside the model: measured by its training on the corpus's test split"


def metrics_file(run) -> Path | None:
    """Where the run's model keeps its training metrics (``<config.model.path>/metrics.json``), or None when the
    run's config names no model path (a model passed in Python)."""
    path = ((run.header.get("config") or {}).get("model") or {}).get("path")
    return Path(path) / METRICS_FILE if path else None


@dataclass(frozen=True)
class StoredMetrics:
    """What a run's model stored of its training: the file looked for (None: the config names no model path),
    its metrics (None when there are none to read), then the sentence saying why there is no card, and whether
    the file is there but unreadable (the report says so; an absent file means no section)."""

    file: Path | None
    metrics: dict | None
    missing: str | None = None
    unreadable: bool = False


def stored_metrics(run) -> StoredMetrics:
    """The training metrics stored beside the run's model (:func:`metrics_file`), or why there are none."""
    file = metrics_file(run)
    if file is None:
        return StoredMetrics(None, None, f"No model card: the run's config names no model path (a model passed "
                                         f"in Python), so there is no {METRICS_FILE} to read.")  # fmt: skip
    if not file.is_file():
        return StoredMetrics(file, None, f"No model card: {file} does not exist (proactiv kws train and proactiv "
                                         "digits train write it beside the model).")  # fmt: skip
    try:
        metrics = json.loads(file.read_text())
    except (OSError, ValueError) as err:
        return StoredMetrics(file, None, f"No model card: {file} could not be read as JSON ({err}).", True)
    if not isinstance(metrics, dict):
        return StoredMetrics(file, None, f"No model card: {file} holds a JSON {type(metrics).__name__}, not an "
                                         "object of training metrics.", True)  # fmt: skip
    return StoredMetrics(file, metrics)


def model_metrics(run) -> dict | None:
    """The training metrics stored beside the run's model (:func:`stored_metrics`), or None."""
    return stored_metrics(run).metrics


def unreadable_sentence(file: Path, err: Exception) -> str:
    """Why a card could not be drawn from ``file``: an entry lacks a field the card reads, or holds it in another
    form (a hand-edited or foreign file) — named, instead of a bare error that stops the page."""
    return (f"No model card: {file} lacks a field the card reads, or holds it in another form "
            f"({type(err).__name__}: {err}).")  # fmt: skip


#: what reading a metrics entry of an unexpected form raises (:func:`unreadable_sentence`)
UNREADABLE = (KeyError, TypeError, AttributeError, ValueError)


def card_figure(metrics: dict) -> go.Figure | None:
    """Keyword recall against unknown words taken for a keyword over the ``_unknown_`` offset (the model's own
    point marked), and accuracy against SNR per noise kind with the share of keywords decided ``_silence_``;
    None when the metrics hold neither."""
    curve = (metrics.get("test") or {}).get("operating_curve")
    kinds = (metrics.get("noise") or {}).get("kinds")
    if not curve and not kinds:
        return None
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=(
            "keyword recall vs unknown words accepted (test split)",
            "in noise at speed 1 (test split)",
        ),  # fmt: skip
    )
    if curve:
        fig.add_trace(go.Scatter(
            x=[p["false_accept_rate"] for p in curve], y=[p["keyword_recall"] for p in curve], mode="lines",
            name="as the _unknown_ offset moves", text=[f"offset {p['unknown_offset']:+.2f}" for p in curve],
        ), 1, 1)  # fmt: skip
        own = (metrics.get("calibration") or {}).get("unknown_offset")
        mine = [p for p in curve if own is not None and abs(p["unknown_offset"] - own) < 1e-9]
        if mine:
            fig.add_trace(go.Scatter(
                x=[mine[0]["false_accept_rate"]], y=[mine[0]["keyword_recall"]], mode="markers",
                marker={"size": 11, "symbol": "diamond"}, name=f"the model (offset {own:+.2f})",
            ), 1, 1)  # fmt: skip
        fig.update_xaxes(title_text="unknown words taken for a keyword", tickformat=".0%", row=1, col=1)
        fig.update_yaxes(title_text="keyword recall", tickformat=".0%", row=1, col=1)
    for kind, levels in (kinds or {}).items():
        snrs = [float(s) for s in levels]
        fig.add_trace(go.Scatter(x=snrs, y=[m["accuracy"] for m in levels.values()], mode="lines+markers",
                                 name=f"{kind}: accuracy", legendgroup=kind), 1, 2)  # fmt: skip
        fig.add_trace(go.Scatter(
            x=snrs, y=[m.get("keywords_as_silence", float("nan")) for m in levels.values()],
            mode="lines", line={"dash": "dot"}, name=f"{kind}: keywords decided _silence_", legendgroup=kind,
        ), 1, 2)  # fmt: skip
    fig.update_xaxes(title_text="SNR (dB)", row=1, col=2)
    fig.update_yaxes(tickformat=".0%", range=[0, 1], row=1, col=2)
    fig.update_layout(template=TEMPLATE, height=420)
    return fig


def model_card(run: RunLike) -> go.Figure:
    """The run's model card figure (:func:`card_figure`); a ValueError when the model stored no such metrics."""
    view, _ = open_analysed(run)
    metrics = model_metrics(view.run)
    fig = card_figure(metrics) if metrics else None
    if fig is None:
        raise ValueError(
            f"run {view.run.path}: its model folder holds no {METRICS_FILE} with an operating curve or noise "
            "measures (a keyword model trained by proactiv kws train writes one)"
        )
    return fig


#: what the running-speech table (:func:`speech_table`) holds
SPEECH_CAPTION = "Running speech in white noise: false accepts per hour (keyword hit rate)."


def speech_table(metrics: dict) -> tuple[list[str], list[str]] | None:
    """The running-speech table: its header (one SNR a column) and its one row (false accepts per hour, with the
    keyword hit rate), or None when the metrics hold no running speech in white noise."""
    speech = (metrics.get("noise") or {}).get("running_speech_white") or {}
    if not speech:
        return None
    head = [f"{s} dB" for s in speech]
    return head, [f"{m['false_accepts_per_hour']:.0f} ({m['hit_rate']:.0%})" for m in speech.values()]


def training_parts(metrics: dict) -> list[tuple[str, bool]]:
    """How the model was trained (its ``--strategy`` and settings) and its test accuracy under PGD, when the
    metrics say (:mod:`proactiv.robust_training`), as (text, emphasised) parts of a sentence; empty otherwise."""
    strategy, pgd = metrics.get("strategy"), metrics.get("pgd")
    parts: list[tuple[str, bool]] = []
    if strategy:
        settings = ", ".join(f"{k} {v}" for k, v in strategy.items() if k != "name")
        parts += [("Trained with the ", False), (str(strategy["name"]), True),
                  (f" strategy ({settings})." if settings else " strategy.", False)]  # fmt: skip
    if pgd:
        shares = ", ".join(f"ε {e}: {a:.1%}" for e, a in pgd["accuracy"].items())
        parts.append(((" " if parts else "") + f"Test accuracy under a {pgd['steps']}-step {pgd['norm'].upper()} "
                      f"PGD attack on the model input: {shares} ({pgd['n']} inputs).", False))  # fmt: skip
    return parts


#: the key figures beside the test accuracy (:func:`key_figures`): label, where in metrics.json, format
KEY_FIGURES = (
    ("unknown-word offset", "calibration.unknown_offset", "{:+.2f}"),
    ("_silence_ offset", "calibration.silence.silence_offset", "{:+.2f}"),
    ("unknown words taken for a keyword", "open_set.unknown_words.false_accept_rate", "{:.1%}"),
    ("near-miss words taken for a keyword", "open_set.unknown_words.near_miss.false_accept_rate", "{:.1%}"),
    ("false accepts per hour of running speech", "open_set.running_speech.false_accepts_per_hour", "{:.1f}"),
    ("training time", "train_seconds", "{:,.0f} s"),
    ("epochs", "epochs", "{}"),
)


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _at(metrics: dict, where: str):
    """The value at the dotted path ``where`` of the metrics, or None."""
    for key in where.split("."):
        metrics = metrics.get(key) if isinstance(metrics, dict) else None
    return metrics


def key_figures(metrics: dict) -> list[tuple[str, str]]:
    """The figures a model developer looks for first, as (label, value) rows: test accuracy overall and per
    engine, then :data:`KEY_FIGURES` (the calibrated ``_unknown_`` and ``_silence_`` offsets, unknown and
    near-miss words taken for a keyword, false accepts per hour of running speech, training time, epochs). A
    figure the metrics do not hold as a number (an older model, an image model) is left out."""
    test = metrics.get("test") if isinstance(metrics.get("test"), dict) else {}
    engines = test.get("per_engine") if isinstance(test.get("per_engine"), dict) else {}
    found = [("test accuracy", test.get("accuracy"), "{:.1%}")]
    found += [(f"test accuracy: {engine}", a, "{:.1%}") for engine, a in engines.items()]
    found += [(label, _at(metrics, where), fmt) for label, where, fmt in KEY_FIGURES]
    return [(label, fmt.format(value)) for label, value, fmt in found if _is_number(value)]


def _speech_html(metrics: dict) -> str:
    table = speech_table(metrics)
    if table is None:
        return ""
    head, cells = table
    return (
        f"<p>{esc(SPEECH_CAPTION)}</p><table><tr>{''.join(f'<th>{esc(h)}</th>' for h in head)}</tr>"
        f"<tr>{''.join(f'<td>{esc(c)}</td>' for c in cells)}</tr></table>"
    )


def _training_html(metrics: dict) -> str:
    parts = training_parts(metrics)
    if not parts:
        return ""
    return "<p>" + "".join(f"<b>{esc(t)}</b>" if bold else esc(t) for t, bold in parts) + "</p>"


def _figures_html(metrics: dict) -> str:
    rows = key_figures(metrics)
    if not rows:
        return ""
    body = "".join(f"<tr><td>{esc(label)}</td><td>{esc(value)}</td></tr>" for label, value in rows)
    return f"<table><tr><th>key figure</th><th>value</th></tr>{body}</table>"


@register_section(key="model_card", title=TITLE)
def report_html(_, ctx) -> str | None:
    """The closing section: how the model was trained, its key figures, the model card figure and the
    running-speech table, when the model has metrics that say any of it. Metrics that exist but cannot be read,
    or lack a field the section reads, are said in a sentence naming the file (the rest of the report stands)."""
    stored = stored_metrics(ctx.run)
    if stored.metrics is None:
        return f"<p>{esc(stored.missing)}</p>" if stored.unreadable else None
    metrics = stored.metrics
    try:
        fig, training, figures = card_figure(metrics), _training_html(metrics), _figures_html(metrics)
        speech = _speech_html(metrics)
    except UNREADABLE as err:
        return f"<p>{esc(unreadable_sentence(stored.file, err))}</p>"
    if fig is None and not training and not figures:
        return None
    drawn = "" if fig is None else ctx.figure(fig, FIGURE_NOTE, "model card")
    return training + figures + drawn + speech

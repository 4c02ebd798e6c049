"""The model card of a run: what the model's own training measured, read from the ``metrics.json`` beside it.

A keyword model's training stores the trade between keyword recall and unknown words taken for a keyword as
its ``_unknown_`` offset moves, and its accuracy in noise per noise kind and SNR
(:func:`proactiv.tasks.kws.train.train`). The report draws them beside what the sweep found, so a reader sees
whether a breakpoint lies inside or outside the conditions the training measured, and how the operating point
was chosen. Any task's training stores its strategy and its test accuracy under PGD
(:mod:`proactiv.robust_training`), said in a sentence. A run whose model folder holds no such metrics (a model
passed in Python) gets no section.
"""

from __future__ import annotations

import json
from pathlib import Path

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from proactiv.views.sections import esc, register_section
from proactiv.views.source import RunLike, open_analysed
from proactiv.views.style import TEMPLATE

METRICS_FILE = "metrics.json"


def model_metrics(run) -> dict | None:
    """The training metrics stored beside the run's model (its config's ``model.path`` folder), or None."""
    path = ((run.header.get("config") or {}).get("model") or {}).get("path")
    if not path:
        return None
    file = Path(path) / METRICS_FILE
    if not file.is_file():
        return None
    try:
        return json.loads(file.read_text())
    except (OSError, ValueError):
        return None


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


def _speech_table(noise: dict) -> str:
    speech = noise.get("running_speech_white") or {}
    if not speech:
        return ""
    head = "".join(f"<th>{esc(s)} dB</th>" for s in speech)
    cells = "".join(
        f"<td>{m['false_accepts_per_hour']:.0f} ({m['hit_rate']:.0%})</td>" for m in speech.values()
    )
    return (
        "<p>Running speech in white noise: false accepts per hour (keyword hit rate).</p>"
        f"<table><tr>{head}</tr><tr>{cells}</tr></table>"
    )


def _training_html(metrics: dict) -> str:
    """How the model was trained (its ``--strategy`` and settings) and its test accuracy under PGD, when the
    metrics say (:mod:`proactiv.robust_training`); empty otherwise."""
    strategy, pgd = metrics.get("strategy"), metrics.get("pgd")
    if not strategy and not pgd:
        return ""
    text = []
    if strategy:
        settings = ", ".join(f"{k} {v}" for k, v in strategy.items() if k != "name")
        text.append(
            f"Trained with the <b>{esc(strategy['name'])}</b> strategy"
            + (f" ({esc(settings)})." if settings else ".")
        )
    if pgd:
        shares = ", ".join(f"ε {esc(e)}: {a:.1%}" for e, a in pgd["accuracy"].items())
        text.append(f"Test accuracy under a {pgd['steps']}-step {esc(pgd['norm'].upper())} PGD attack on the model "
                    f"input: {shares} ({pgd['n']} inputs).")  # fmt: skip
    return f"<p>{' '.join(text)}</p>"


@register_section(key="model_card", title="The model: what its training measured")
def report_html(_, ctx) -> str | None:
    """The closing section: how the model was trained, the model card figure and the running-speech table, when
    the model has metrics that say any of it."""
    metrics = model_metrics(ctx.run)
    if not metrics:
        return None
    fig, training = card_figure(metrics), _training_html(metrics)
    if fig is None and not training:
        return None
    drawn = "" if fig is None else ctx.figure(
        fig,
        f"from {METRICS_FILE} beside the model: measured by its training on the corpus's test split",
        "model card",
    )  # fmt: skip
    return training + drawn + _speech_table(metrics.get("noise") or {})

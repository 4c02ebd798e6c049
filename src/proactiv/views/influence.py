"""Influential training examples, drawn: for one record, the TracIn scores of the training examples that most
support and most oppose its prediction on xT and the desired class on x̂T; and the pieces that show training
examples as the run's inputs are shown — a player for sounds, a thumbnail for images, decided by the run's
schema — in the report and the dashboard."""

from __future__ import annotations

import base64
import html
import io
import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from proactiv.analysis.influence import TOP, examples_source
from proactiv.analysis.runview import RunView
from proactiv.extras import require
from proactiv.schema import RunSchema
from proactiv.store import Run, open_run
from proactiv.views.sections import register_section
from proactiv.views.style import TEMPLATE, message_figure

SUPPORT, OPPOSE = "#2e8b57", "#c0392b"
#: what each explained input is called, and what its target is
ON_TITLES = {"x_t": ("xT", "its prediction"), "x_proj": ("x̂T", "the desired class")}
#: width of an image thumbnail on the page (pixels; drawn without smoothing)
THUMB_PX = 56


def png_data_uri(image: np.ndarray, value_range: tuple[float, float] | None = None) -> str:
    """A grey-scale PNG ``data:`` URI of a 2-D image (or (1, H, W)), scaled from ``value_range`` (default: its
    own minimum and maximum) to 0–255."""
    Image = require("PIL.Image", "explain", "image thumbnails of influential examples")

    x = np.asarray(image, dtype=np.float64).squeeze()
    if x.ndim != 2:
        raise ValueError(f"an image thumbnail needs a 2-D image, got shape {np.asarray(image).shape}")
    lo, hi = value_range if value_range is not None else (float(np.nanmin(x)), float(np.nanmax(x)))
    scaled = np.clip((np.nan_to_num(x, nan=lo) - lo) / ((hi - lo) or 1.0), 0.0, 1.0)
    buf = io.BytesIO()
    Image.fromarray((scaled * 255).round().astype(np.uint8), mode="L").save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def example_media(schema: RunSchema, training, indices: Sequence[int]) -> list[tuple[str, str]] | None:
    """For training examples ``indices`` of a :class:`~proactiv.checkpoints.TrainingSet`, ``("audio", uri)``
    (runs that can be heard: the raw clips are waveforms at the schema's sample rate) or ``("image", uri)``
    (image runs without a frontend) each; None when the run's inputs are neither."""
    spec = schema.input
    if schema.audible and spec.sample_rate:
        from proactiv.views.audio import wav_data_uri

        return [("audio", wav_data_uri(x.numpy(), spec.sample_rate)) for x in training.raw(list(indices))]
    if spec.image and schema.frontend is None:
        return [("image", png_data_uri(x.numpy(), spec.value_range)) for x in training.raw(list(indices))]
    return None


def describe(row: pd.Series | dict) -> str:
    """A training example's metadata in one line (``speaker: v3 · engine: flite · word: yes · path: …``)."""
    items = [(k.removeprefix("meta."), v) for k, v in dict(row).items() if str(k).startswith("meta.")]
    return " · ".join(f"{k}: {v}" for k, v in items if not pd.isna(v) and str(v) != "")


def _media_html(item: tuple[str, str] | None) -> str:
    if item is None:
        return ""
    kind, uri = item
    if kind == "audio":
        return f"<audio controls preload='none' src='{uri}'></audio>"
    return f"<img src='{uri}' width='{THUMB_PX}' style='image-rendering: pixelated' alt='training example'>"


def examples_html(table: pd.DataFrame, media: list | None = None, why: str = "") -> str:
    """An HTML table of training examples (rank, score, label, the model's prediction when the table has one,
    metadata) with a player or thumbnail each when ``media`` is given; ``why`` says why there are none."""
    e = html.escape
    predicted = "pred_name" in table
    head = "<tr><th>rank</th><th>score</th><th>training example</th><th>label</th>" + (
        "<th>model says</th>" if predicted else "") + "<th>metadata</th><th></th></tr>"  # fmt: skip
    rows = []
    for n, (_, row) in enumerate(table.iterrows()):
        said = ""
        if predicted:
            flag = "" if row["pred_name"] == row["label_name"] else " class='disagree'"
            said = f"<td{flag}>{e(str(row['pred_name']))}</td>"
        rows.append(
            f"<tr><td>{int(row['rank'])}</td><td>{row['score']:.4g}</td><td>#{int(row['train_index'])}</td>"
            f"<td>{e(str(row['label_name']))}</td>{said}<td>{e(describe(row))}</td>"
            f"<td>{_media_html(media[n] if media else None)}</td></tr>"
        )
    note = f"<p class='note'>{e(why)}</p>" if why else ""
    return f"{note}<table class='influence'>{head}{''.join(rows)}</table>"


def influence_figure(table: pd.DataFrame) -> go.Figure:
    """Per explained input (xT, x̂T), bars of the TracIn scores of its proponents (up, green) and opponents
    (down, red), strongest first, each named by its training index and label (metadata on hover)."""
    if table is None or table.empty:
        return message_figure("no influential training examples")
    parts = list(table.groupby("on", sort=False))
    titles = []
    for on, part in parts:
        name, what = ON_TITLES.get(on, (on, "its target"))
        titles.append(f"{name} → {part.target_name.iloc[0]} ({what})")
    fig = make_subplots(rows=len(parts), cols=1, subplot_titles=titles, vertical_spacing=0.25)
    for r, (_, part) in enumerate(parts, start=1):
        for role, colour in (("proponent", SUPPORT), ("opponent", OPPOSE)):
            sel = part[part.role == role]
            fig.add_trace(go.Bar(
                x=[f"{role[0]}{k}: #{i} {n}" for k, i, n in zip(sel["rank"], sel.train_index, sel.label_name, strict=True)],
                y=sel.score, marker_color=colour, name=f"{role}s", showlegend=r == 1,
                hovertext=[describe(row) for _, row in sel.iterrows()],
            ), r, 1)  # fmt: skip
        fig.update_yaxes(title_text="TracIn score", row=r, col=1)
    fig.update_layout(template=TEMPLATE, height=320 * len(parts), title="Training examples that support (+) and "
                      "oppose (−) the record's outputs", legend=dict(orientation="h", y=1.08))  # fmt: skip
    return fig


def influence(
    run: Run | str | os.PathLike | RunView,
    instance: int,
    point: int,
    k: int = 10,
    checkpoints: str | os.PathLike | None = None,
    device: str = "auto",
) -> go.Figure:
    """The ``k`` training examples that most support and most oppose one record's prediction on xT and the
    desired class on x̂T (TracIn over the model's training checkpoints, or those in the folder ``checkpoints``;
    see :func:`proactiv.analysis.influence.influence` for the table behind it)."""
    from proactiv.analysis.influence import influence as tracin

    run = run.run if isinstance(run, RunView) else run if isinstance(run, Run) else open_run(run)
    return influence_figure(tracin(run, (instance, point), k=k, checkpoints=checkpoints, device=device))


def self_influence_rows(table: pd.DataFrame, ctx) -> tuple[pd.DataFrame, list | None, str]:
    """The top of a stored self-influence table, a player or thumbnail per example (None when the training
    set cannot be rebuilt) and why not."""
    source = examples_source(table)
    top = table.head(TOP)
    media = example_media(ctx.run.schema, source, top.train_index) if not isinstance(source, str) else None
    return top, media, source if isinstance(source, str) else ""


@register_section("self_influence")
def report_html(table: pd.DataFrame, ctx) -> str:
    """The report section: the most self-influential training examples, each playable or viewable."""
    return examples_html(*self_influence_rows(table, ctx))

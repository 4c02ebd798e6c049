"""Counterexample gallery: a failing record's xT beside the inputs of its two passing partners — the same
instance at the nearest passing grid point and the closest passing instance of its class at the same point —
with the facts of each (transform values, predicted vs desired, loss). 2-D inputs are maps on one shared colour
range, waveforms and vectors lines on one shared value axis; a missing partner is an empty panel whose title
says why."""

from __future__ import annotations

import html
import math
import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from proactiv.analysis.bias import as_2d
from proactiv.analysis.counterexamples import gallery_pairs, transformed_inputs
from proactiv.schema import RunSchema
from proactiv.views.audio import input_audio
from proactiv.views.record import line
from proactiv.views.sections import register_section
from proactiv.views.source import RunLike, open_analysed
from proactiv.views.style import TEMPLATE, colorscale, input_axes, message_figure

#: the three panels of a gallery row: what each shows
ROLES = {
    "failing": "failing",
    "same_instance": "same instance, nearest passing point",
    "same_class": "same class, same point, closest passing",
}
LINE_COLOURS = {"failing": "#c0392b", "same_instance": "#2ca02c", "same_class": "#1f77b4"}
#: report gallery: the most confident failure of at most this many classes per slice
GALLERY_PER_SLICE = 4


def _compact(values: str) -> str:
    """``audio_noise.snr_db=0, speed.factor=1`` → ``snr_db=0, factor=1`` (panel titles are narrow)."""
    return re.sub(r"[\w-]+\.(?=[\w-]+=)", "", str(values))


def _number(value) -> float:
    return math.nan if value is None or pd.isna(value) else float(value)


def counterexample_facts(row: Mapping, schema: RunSchema) -> dict[str, list[str]]:
    """One short line list per panel (``failing``, ``same_instance``, ``same_class``): which record, where, what
    the model made of it; for a missing partner, the reason."""
    desired = f"{schema.group_title} {row['group']}" if schema.group_title != "all" else ""

    def outcome(prefix: str) -> str:
        pred = row.get(f"{prefix}predicted")
        if schema.classifier and isinstance(pred, str):
            return f"predicted {pred} (desired {row['group']})"
        return desired

    p = _number(row.get("p_desired"))
    failing = [f"instance {int(row['instance'])} at {_compact(row['point_values'])}", outcome(""),
               f"loss on xT {float(row['loss_t']):.3g}" + (f" · p(desired) {p:.2g}" if math.isfinite(p) else "")]  # fmt: skip
    if math.isnan(_number(row.get("same_instance_distance"))):
        same_instance = [str(row.get("same_instance_reason") or "no passing partner")]
    else:
        same_instance = [f"instance {int(row['instance'])} at {_compact(row['same_instance_point_values'])}",
                         outcome("same_instance_"),
                         f"loss {float(row['same_instance_loss_t']):.3g} · grid distance "
                         f"{float(row['same_instance_distance']):.3g}"]  # fmt: skip
    if math.isnan(_number(row.get("same_class_distance"))):
        same_class = [str(row.get("same_class_reason") or "no passing partner")]
    else:
        basis = "difference vectors" if "difference" in str(row.get("same_class_basis")) else "clean inputs"
        same_class = [f"instance {int(row['same_class_instance'])} at the same point", outcome("same_class_"),
                      f"loss {float(row['same_class_loss_t']):.3g} · distance {float(row['same_class_distance']):.3g}"
                      f" ({basis})"]  # fmt: skip
    out = {"failing": failing, "same_instance": same_instance, "same_class": same_class}
    return {k: [line for line in v if line] for k, v in out.items()}


def counterexample_figure(
    rows: Sequence[Mapping],
    inputs: Mapping[tuple[int, int], np.ndarray],
    schema: RunSchema,
    missing: str = "",
) -> go.Figure:
    """One row of three panels per counterexample row (failing xT, same-instance partner, same-class partner);
    ``inputs`` maps (instance, point) to xT (:func:`proactiv.analysis.counterexamples.transformed_inputs`);
    ``missing`` says why an input is absent from it."""
    rows = list(rows)
    if not rows:
        return message_figure("no counterexamples to show")
    spec = schema.input
    cells = [(r, role, pair) for r in rows for role, pair in gallery_pairs(r).items()]
    titles = []
    for row, role, pair in cells:
        lines = counterexample_facts(row, schema)[role]
        if pair is not None and pair not in inputs:
            lines = [*lines, f"<i>{missing or 'input not available'}</i>"]
        titles.append(f"<b>{ROLES[role]}</b><br>" + "<br>".join(lines))
    drawn = [inputs[pair] for _, _, pair in cells if pair is not None and pair in inputs]
    if spec.value_range is not None:
        lo, hi = spec.value_range
    elif drawn:
        lo, hi = (float(min(np.nanmin(a) for a in drawn)), float(max(np.nanmax(a) for a in drawn)))
    else:
        lo, hi = 0.0, 1.0
    panel = 200 if spec.one_dimensional else 260 if spec.image else 240
    gap = 110 if spec.image else 150  # room for each row's panel titles (and the axis titles above them)
    height = len(rows) * (panel + gap) + 20
    fig = make_subplots(rows=len(rows), cols=3, subplot_titles=titles, horizontal_spacing=0.04,
                        vertical_spacing=gap / height)  # fmt: skip
    scale = True  # one colour bar, on the first map drawn
    for k, (_, role, pair) in enumerate(cells):
        r, c, n = k // 3 + 1, k % 3 + 1, k + 1
        if pair is None or pair not in inputs:  # the panel's title says why it is empty
            fig.update_xaxes(visible=False, row=r, col=c)
            fig.update_yaxes(visible=False, row=r, col=c)
            continue
        a = inputs[pair]
        if spec.one_dimensional:
            xs, ys = line(a)
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line={"width": 1, "color": LINE_COLOURS[role]},
                                     showlegend=False, name=ROLES[role]), row=r, col=c)  # fmt: skip
            fig.update_yaxes(range=[lo, hi], title_text=spec.unit if c == 1 else None, row=r, col=c)
            fig.update_xaxes(title_text=spec.column_label, row=r, col=c)
        else:
            fig.add_trace(go.Heatmap(z=as_2d(a).astype(np.float32), colorscale=colorscale(spec), zmin=lo, zmax=hi,
                                     showscale=scale, colorbar={"title": {"text": spec.unit}, "len": 1 / len(rows),
                                                                       "y": 1, "yanchor": "top"},
                                     hovertemplate="row %{y}, col %{x}: %{z:.3f}<extra></extra>"), row=r, col=c)  # fmt: skip
            input_axes(fig, spec, r, c, f"x{n if n > 1 else ''}", titled=c == 1)
            scale = False
    fig.update_annotations(font_size=11)
    fig.update_layout(template=TEMPLATE, height=height, margin={"t": gap, "b": 10, "l": 10, "r": 10})
    return fig


def _players_html(players: list[tuple[str, str]]) -> str:
    return "".join(
        f"<div class='player'><span class='k'>{html.escape(ROLES[role])}</span> "
        f"<audio controls preload='none' src='{uri}'></audio></div>"
        for role, uri in players
    )


def gallery_rows(table: pd.DataFrame, per_slice: int = GALLERY_PER_SLICE) -> pd.DataFrame:
    """The rows a gallery draws: per slice, the most confident failure of each class, most confident first,
    at most ``per_slice`` of them."""
    first = table[table["rank"] == 1].sort_values(["slice", "loss_t"], ascending=[True, False])
    return first.groupby("slice", sort=True).head(per_slice)


#: summary columns of the report's counterexample table
TABLE_COLUMNS = ["slice", "group", "rank", "instance", "point_values", "predicted", "loss_t",
                 "same_instance_point_values", "same_instance_distance", "same_class_instance",
                 "same_class_distance"]  # fmt: skip


@register_section("counterexamples")
def report_html(table: pd.DataFrame, ctx) -> str:
    """The report section: per top slice, the most confident failure of a few classes beside its passing
    partners (with audio players when the run's inputs can be heard), then every counterexample in a table."""
    if table.empty:
        return "<p class='muted'>No failing records in the error slices.</p>"
    run, schema = ctx.run, ctx.run.schema
    chosen = gallery_rows(table)
    pairs = [p for _, r in chosen.iterrows() for p in gallery_pairs(r).values() if p is not None]
    inputs, missing = transformed_inputs(run, pairs, ctx.task)
    body = (
        f"<p>Per error slice, the failing record of each {html.escape(schema.group_title)} with the largest loss "
        "toward the desired output, beside the same instance at the nearest grid point where it passes and the "
        "closest instance of its class that passes at the same grid point.</p>"
    )
    note = ""
    for number, part in chosen.groupby("slice", sort=True):
        body += f"<h3>Slice {int(number)}: {html.escape(str(part.conditions.iloc[0]))}</h3>"
        for _, r in part.iterrows():
            fig = counterexample_figure([r], inputs, schema, missing)
            body += ctx.figure(fig, "", f"{schema.group_title} {r['group']}: failing record {int(r['instance'])} "
                                        f"at point {int(r['point'])} beside its passing partners")  # fmt: skip
            if schema.audible:
                arrays = {role: inputs.get(p) for role, p in gallery_pairs(r).items() if p in inputs}
                players, note = input_audio(run, dict(arrays))
                body += _players_html(players)
    if note:
        body += f"<p class='note'>Audio: {html.escape(note)}</p>"
    shown = table[[c for c in TABLE_COLUMNS if c in table.columns]]
    rows = shown.to_html(index=False, escape=True, border=0, na_rep="", float_format=lambda v: f"{v:.3g}")
    return body + f"<details><summary>Every counterexample ({len(table)})</summary>{rows}</details>"


def counterexamples(
    run: RunLike, slice: int | None = None, group: str | None = None, limit: int = 6
) -> go.Figure:
    """Failing records beside their passing partners: the most confident failure of each class per top error
    slice, or every counterexample of one ``slice`` and/or one ``group`` (class), at most ``limit`` rows."""
    from proactiv.analysis.steps import StepContext

    view, analysis = open_analysed(run, ("counterexamples",))
    table = analysis["counterexamples"]
    if table is None:
        return message_figure(analysis.notes.get("counterexamples") or "no counterexamples computed")
    for column, value in (("slice", slice), ("group", group)):
        if value is None:
            continue
        have = sorted(table[column].unique().tolist(), key=str)
        if value not in have:
            raise ValueError(f"{column}={value!r}: the counterexamples have {column} {have}")
        table = table[table[column] == value]
    spread = max(1, math.ceil(limit / table["slice"].nunique())) if len(table) else limit
    rows = table if slice is not None or group is not None else gallery_rows(table, spread)
    rows = rows.head(limit)
    pairs = [p for _, r in rows.iterrows() for p in gallery_pairs(r).values() if p is not None]
    inputs, missing = transformed_inputs(view.run, pairs, StepContext(view.run, view=view).task)
    return counterexample_figure([r for _, r in rows.iterrows()], inputs, view.run.schema, missing)

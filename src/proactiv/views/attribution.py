"""Attribution views: where the model finds its evidence on x, xT and x̂T of one record (the maps overlaid on
the inputs: spectrograms and images as maps, waveforms as lines with the attribution shaded under them), and
how the evidence moves per transform value (share outside the clean input's support, rank correlations)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from proactiv.analysis.attribution import (
    PREFIX,
    SUMMARY,
    attribute,
    shift_by_value,
    shift_sentence,
    showcase,
    stored_settings,
)
from proactiv.analysis.bias import as_2d
from proactiv.analysis.runview import AnalysisError, RunView
from proactiv.schema import InputSpec
from proactiv.views.record import INPUTS, LINE_COLOURS, line
from proactiv.views.sections import esc, register_section
from proactiv.views.source import RunLike, open_analysed
from proactiv.views.style import TEMPLATE, colorscale, input_axes, message_figure, param_axis

#: attribution drawn over an input: transparent where there is little, opaque cyan (apart from the grey and magma
#: of the inputs) where most of it lies
HEAT = [[0.0, "rgba(0,230,255,0)"], [0.3, "rgba(0,230,255,0.1)"], [1.0, "rgba(0,255,255,0.95)"]]
SHADE = "rgba(220,20,20,0.35)"
#: which figures share a row of the shift figure, and their colours
ROWS = {
    "share of attribution outside the clean support": ("outside_x", "outside_t", "outside_proj"),
    "agreement of the maps": ("spearman_x_t", "spearman_t_proj", "shift_x_t", "shift_t_proj"),
}
COLOURS = {
    "outside_x": LINE_COLOURS["x"],
    "outside_t": LINE_COLOURS["x_t"],
    "outside_proj": LINE_COLOURS["x_proj"],
    "spearman_x_t": "#9467bd",
    "spearman_t_proj": "#d62728",
    "shift_x_t": "#c5b0d5",
    "shift_t_proj": "#ff9896",
}


def _share(m: np.ndarray) -> np.ndarray:
    """|attribution| as a share of the input's total (a 2-D map), so maps of different inputs compare."""
    a = as_2d(np.abs(np.asarray(m, dtype=np.float64)))
    total = a.sum()
    return a / total if total > 0 else a


def attribution_overlay(
    inputs: Mapping[str, np.ndarray], maps: Mapping[str, np.ndarray], spec: InputSpec, title: str = ""
) -> go.Figure:
    """One record's ``inputs`` (name → array of one input: ``x``, ``x_t``, ``x_proj``) with their attribution
    ``maps`` overlaid: 2-D inputs side by side on one colour range, each map as its share of that input's
    |attribution| on one shared scale; 1-D inputs one row each, the |attribution| shaded on a second axis."""
    names = [n for n in INPUTS if n in maps and n in inputs]
    if not names:
        return message_figure("no attributions to draw")
    if spec.one_dimensional:
        return _lines(inputs, maps, names, spec, title)
    fig = make_subplots(
        rows=1, cols=len(names), subplot_titles=[INPUTS[n] for n in names], horizontal_spacing=0.04
    )
    plain = [as_2d(inputs[n]).astype(np.float32) for n in names]
    lo, hi = float(min(np.nanmin(p) for p in plain)), float(max(np.nanmax(p) for p in plain))
    shares = [_share(maps[n]) for n in names]
    top = max(float(np.percentile(s, 99.5)) for s in shares) or 1.0
    for c, (n, z, s) in enumerate(zip(names, plain, shares, strict=True), start=1):
        fig.add_trace(
            go.Heatmap(
                z=z,
                colorscale=colorscale(spec),
                zmin=lo,
                zmax=hi,
                showscale=False,
                name=INPUTS[n],
                hovertemplate=f"{INPUTS[n]}: %{{z:.3f}} {spec.unit}<extra></extra>",
            ),
            1,
            c,
        )
        fig.add_trace(
            go.Heatmap(
                z=s,
                colorscale=HEAT,
                zmin=0,
                zmax=top,
                showscale=c == len(names),
                colorbar={"title": {"text": "share of |attribution|"}},
                hovertemplate="row %{y}, col %{x}: %{z:.2%} of the attribution<extra></extra>",
            ),
            1,
            c,
        )
        input_axes(fig, spec, 1, c, f"x{c if c > 1 else ''}", titled=c == 1)
    head = 44 + 17 * (title.count("<br>") + 1) if title else 40
    fig.update_layout(
        template=TEMPLATE,
        height=(300 if spec.image else 320) + head,
        margin={"t": head, "b": 10, "l": 10, "r": 10},
        title={"text": title, "font": {"size": 12}, "x": 0.01},
    )
    return fig


def _lines(inputs, maps, names, spec: InputSpec, title: str) -> go.Figure:
    fig = make_subplots(
        rows=len(names),
        cols=1,
        shared_xaxes=True,
        subplot_titles=[INPUTS[n] for n in names],
        specs=[[{"secondary_y": True}]] * len(names),
        vertical_spacing=0.08,
    )
    for r, n in enumerate(names, start=1):
        xs, ys = line(inputs[n])
        fig.add_trace(
            go.Scatter(x=xs, y=ys, mode="lines", name=INPUTS[n], line={"width": 1, "color": LINE_COLOURS[n]}),
            row=r,
            col=1,
            secondary_y=False,
        )
        share = np.abs(np.asarray(maps[n], dtype=np.float64)).reshape(-1)
        share = share / share.sum() if share.sum() > 0 else share
        ax, ay = line(share)
        fig.add_trace(
            go.Scatter(
                x=ax,
                y=ay,
                mode="lines",
                fill="tozeroy",
                fillcolor=SHADE,
                line={"width": 0},
                name="|attribution| (share)",
                showlegend=r == 1,
                hovertemplate=f"{spec.column_label} %{{x}}: %{{y:.2e}}<extra></extra>",
            ),
            row=r,
            col=1,
            secondary_y=True,
        )
        fig.update_yaxes(title_text=spec.unit, row=r, col=1, secondary_y=False)
        fig.update_yaxes(showticklabels=False, row=r, col=1, secondary_y=True)
    fig.update_xaxes(title_text=spec.column_label, row=len(names), col=1)
    head = 44 + 17 * (title.count("<br>") + 1) if title else 40
    fig.update_layout(
        template=TEMPLATE,
        height=200 * len(names) + head + 40,
        legend={"orientation": "h", "y": -0.1},
        margin={"t": head, "b": 10, "l": 10, "r": 10},
        title={"text": title, "font": {"size": 12}, "x": 0.01},
    )
    return fig


def attribution_shift_figure(summary: pd.DataFrame | None, view: RunView | None = None) -> go.Figure:
    """Per value of each grid column (the others pooled), the mean share of attribution outside the clean
    input's support on x, xT and x̂T, and the maps' agreement (Spearman ρ, shift) — a ``shift_by_value``
    table; ``view`` gives the axes their units."""
    if summary is None or summary.empty:
        return message_figure("no attribution shift was computed")
    columns = list(dict.fromkeys(summary.column))
    rows = {title: [m for m in metrics if m in set(summary.metric)] for title, metrics in ROWS.items()}
    rows = {t: m for t, m in rows.items() if m}
    fig = make_subplots(
        rows=len(rows),
        cols=len(columns),
        shared_yaxes=True,
        vertical_spacing=0.14,
        horizontal_spacing=0.04,
        column_titles=columns,
    )
    for r, (title, metrics) in enumerate(rows.items(), start=1):
        for c, column in enumerate(columns, start=1):
            part = summary[summary.column == column]
            axis = param_axis(column, view.params.get(column) if view else None, part.value)
            for m in metrics:
                one = part[part.metric == m].sort_values("value")
                fig.add_trace(
                    go.Scatter(
                        x=param_axis(column, None, one.value).labels,
                        y=one["mean"],
                        mode="lines+markers",
                        name=SUMMARY[m],
                        legendgroup=m,
                        showlegend=c == 1,
                        line={"color": COLOURS[m]},
                        customdata=one.n,
                        hovertemplate=f"{SUMMARY[m]}: %{{y:.3f}} (%{{customdata}} records)<extra></extra>",
                    ),
                    row=r,
                    col=c,
                )
            fig.update_xaxes(axis.apply({}), title_text=axis.title if r == len(rows) else None, row=r, col=c)
        fig.update_yaxes(title_text=title, row=r, col=1)
    fig.update_layout(
        template=TEMPLATE,
        height=300 * len(rows) + 80,
        legend={"orientation": "h", "y": -0.2},
        title="Where the evidence moves, per transform value",
    )
    return fig


def attribution(
    run: RunLike,
    instance: int,
    point: int,
    method: str = "saliency",
    target: str = "desired",
    layer: str | None = None,
) -> go.Figure:
    """x, xT and x̂T of one kept record with their ``method`` attributions toward the ``target`` (``desired``
    or ``predicted``) overlaid."""
    view, _ = open_analysed(run)
    att = attribute(view, [(instance, point)], method, target, layer=layer)
    title = f"{method} toward the {target} target · instance {instance} · grid point {point}: {view.describe_point(point)}"
    return attribution_overlay(
        {n: v[0] for n, v in att.inputs.items()},
        {n: m[0] for n, m in att.maps.items()},
        view.run.schema.input,
        title,
    )


def shift_view(table: pd.DataFrame, ctx) -> tuple[go.Figure, str]:
    """The attribution-shift figure of a stored attributions table and its sentence."""
    summary = shift_by_value(table, ctx.run)
    return attribution_shift_figure(summary, ctx.view), shift_sentence(summary)


@register_section("attributions")
def report_html(table: pd.DataFrame, ctx) -> str:
    """The report section: the shift figure and its sentence, then the attributions of the worst record of each
    top error slice on x, xT and x̂T."""
    fig, sentence = shift_view(table, ctx)
    alt = "attribution shift per transform value: share outside the clean support and rank correlation"
    parts = [f"<p class='attributions'>{esc(sentence)}</p>", ctx.figure(fig, sentence, alt)]
    shown = showcase(ctx.view, ctx.results.get("slices"))
    if shown.empty:
        return "".join(parts)
    chosen = stored_settings(ctx.run)
    try:
        att = attribute(
            ctx.view,
            shown,
            chosen.get("attribution_method", "saliency"),
            chosen.get("target", "desired"),
            layer=chosen.get("gradcam_layer"),
            model=ctx.model(),
        )
    except AnalysisError as err:
        return "".join(parts) + f"<p class='note'>No attribution overlays: {esc(str(err))}</p>"
    rows = table.set_index(["instance", "point"])
    for k, s in enumerate(shown.itertuples()):
        facts = f"slice {s.slice}: {s.conditions} · record ({s.instance}, {s.point}): {ctx.view.describe_point(s.point)}"
        if (s.instance, s.point) in rows.index and f"{PREFIX}spearman_t_proj" in rows:
            facts += (
                f" · Spearman ρ(xT, x̂T) {rows.loc[(s.instance, s.point), f'{PREFIX}spearman_t_proj']:.2f}"
            )
        inputs = {n: v[k] for n, v in att.inputs.items()}
        over = attribution_overlay(inputs, {n: m[k] for n, m in att.maps.items()}, ctx.run.schema.input)
        parts.append(ctx.figure(over, facts, f"{att.method} attributions on x, xT and x̂T of a record"))
    return "".join(parts)

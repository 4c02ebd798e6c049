"""A metric over pairs of transform parameters (the other parameters marginalised), several pairs or several
runs on one colour scale."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from proactiv.analysis.runview import PSNR_CAP_DB, RunView, format_value, metric_sql, q
from proactiv.views.curves import METRIC_LABELS
from proactiv.views.sections import register_section
from proactiv.views.style import TEMPLATE, finite_limit, message_figure, param_axes

#: cells per panel up to which each cell also shows its value as text
MAX_TEXT_CELLS = 150
#: pairs of parameters drawn at most when none are chosen
MAX_PANELS = 12


@dataclass(frozen=True)
class HeatPanel:
    """One heatmap: ``table`` has columns ``a`` (x), ``b`` (y) and ``m`` (the value); axis titles; a title."""

    table: pd.DataFrame
    title_a: str
    title_b: str
    title: str = ""


def heatmap_figure(
    panels: Sequence[HeatPanel], label: str, fraction: bool = False, diverging: bool = False
) -> go.Figure:
    """Heatmaps side by side (three per row) on one colour scale: 0–1 for fractions, centred on 0 for
    differences (``diverging``), else the data's range."""
    panels = [p for p in panels if not p.table.empty]
    if not panels:
        return message_figure("no records to draw")
    ncol = min(3, len(panels))
    nrow = math.ceil(len(panels) / ncol)
    fig = make_subplots(rows=nrow, cols=ncol, subplot_titles=[p.title for p in panels] if any(p.title for p in panels) else None,
                        horizontal_spacing=0.09, vertical_spacing=0.5 / nrow)  # fmt: skip
    scale: dict = {"colorscale": "Viridis"}
    if fraction:
        scale.update(cmin=0.0, cmax=1.0)
    if diverging:
        lim = finite_limit(pd.concat([p.table["m"] for p in panels]))
        scale = {"colorscale": "RdBu", "cmid": 0.0, "cmin": -lim, "cmax": lim}
    for k, p in enumerate(panels):
        pivot = p.table.pivot_table(index="b", columns="a", values="m", aggfunc="mean")
        pivot = pivot.sort_index().sort_index(axis=1)
        z = pivot.to_numpy(dtype=float)
        r, c = k // ncol + 1, k % ncol + 1
        fig.add_trace(
            go.Heatmap(
                z=z, x=[format_value(v) for v in pivot.columns], y=[format_value(v) for v in pivot.index],
                coloraxis="coloraxis", texttemplate="%{z:.2f}" if z.size <= MAX_TEXT_CELLS else None,
                hovertemplate=f"{p.title_a}=%{{x}}<br>{p.title_b}=%{{y}}<br>{label}=%{{z:.3f}}<extra></extra>",
            ),
            row=r, col=c,
        )  # fmt: skip
        fig.update_xaxes(type="category", title_text=p.title_a, row=r, col=c)
        fig.update_yaxes(type="category", title_text=p.title_b, row=r, col=c)
    fig.update_layout(
        template=TEMPLATE, coloraxis={**scale, "colorbar": {"title": {"text": label, "side": "right"}}},
        height=340 * nrow + 20, margin={"t": 40, "b": 40, "l": 80, "r": 10},
    )  # fmt: skip
    return fig


def run_heatmaps(
    view: RunView, col_a: str | None = None, col_b: str | None = None, metric: str | None = None
) -> go.Figure:
    """``metric`` (a record column; default the run's outcome, or the loss on xT without one) averaged over
    the records of each pair of values of ``col_a`` × ``col_b``, or of every pair of varying parameters (at
    most :data:`MAX_PANELS`) when they are not given."""
    schema = view.run.schema
    axes = {a.column: a for a in param_axes(view, view.grid_columns)}
    if col_a is not None or col_b is not None:
        cols = [c for c in (col_a, col_b) if c is not None]
        unknown = [c for c in cols if c not in axes]
        if unknown:
            raise ValueError(f"unknown grid columns {unknown}; this run's grid: {', '.join(axes)}")
        pairs = [(cols[0], cols[-1] if len(cols) > 1 else next(c for c in axes if c != cols[0]))]
    else:
        varying = [c for c in axes if len(axes[c].labels) > 1]
        pairs = list(itertools.combinations(varying, 2))[:MAX_PANELS]
    fraction = metric is None and schema.outcome is not None
    if metric is None:
        sql, label = (
            ("correct_t::DOUBLE", schema.outcome_label) if fraction else ("loss_t", "mean loss on xT")
        )
    elif metric in view.columns:
        sql, label = metric_sql(metric), METRIC_LABELS.get(metric, metric)
    else:
        raise ValueError(f"unknown record column {metric!r}")
    panels = [
        HeatPanel(view.query(f"SELECT {q(a)} AS a, {q(b)} AS b, avg({sql}) AS m FROM records GROUP BY 1, 2"),
                  axes[a].title, axes[b].title)
        for a, b in pairs
    ]  # fmt: skip
    return heatmap_figure(panels, label, fraction=fraction)


def _section_title(ctx) -> str:
    schema = ctx.run.schema
    what = schema.outcome_label if schema.outcome else "mean loss on xT"
    return f"{what[0].upper() + what[1:]} over pairs of parameters"


@register_section(key="heatmaps", after="breakpoints", title=_section_title)
def report_html(_, ctx) -> str:
    """The report section after the breakpoints: the outcome (or loss) over every pair of parameters, and the
    output PSNR for image-to-image runs."""
    schema = ctx.run.schema
    body = ctx.figure(run_heatmaps(ctx.view), "mean over instances and the remaining parameters",
                      f"{(schema.outcome or 'loss').replace('_', ' ')} heatmaps")  # fmt: skip
    if "psnr_out_t" in schema.metrics:
        body += ctx.figure(
            run_heatmaps(ctx.view, metric="psnr_out_t"),
            f"mean PSNR of the output f(xT) against the target (capped at {PSNR_CAP_DB:g} dB)",
            "output PSNR heatmaps",
        )
    return body

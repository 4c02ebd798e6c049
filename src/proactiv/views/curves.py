"""Curves along each transform parameter: the run's outcome, flip rate, loss and d_x with 95 % bands over
instances and the breakpoints marked; the same per class; PSNR/SSIM of image runs (inputs against the clean
input, outputs against the target); and one metric of several runs side by side."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from proactiv.analysis.runview import PSNR_CAP_DB, RunView, format_value
from proactiv.schema import METRIC_CATALOGUE, RunSchema
from proactiv.views.sections import register_section, table_html
from proactiv.views.style import TEMPLATE, ParamAxis, class_colours, message_figure, param_axes

#: curve metrics for people (the run's outcome is worded by its schema)
METRIC_LABELS = {m.name: m.label for m in METRIC_CATALOGUE.values() if m.label}
#: metrics drawn as percentages
FRACTIONS = tuple(m.name for m in METRIC_CATALOGUE.values() if m.fraction)
#: PSNR/SSIM lines by what they compare: (legend name, colour, dash); inputs grey, outputs blue/green
QUALITY_LINES = {
    "t": ("xT vs clean x", "#7f7f7f", "solid"),
    "proj": ("x̂T vs clean x", "#b0b0b0", "dot"),
    "out_t": ("f(xT) vs target", "#1f77b4", "solid"),
    "out_proj": ("f(x̂T) vs target", "#2ca02c", "dash"),
}
LINE = "#1f4e79"
BREAK = "#c0392b"


def metric_label(metric: str, schema: RunSchema) -> str:
    if metric == schema.outcome:
        return schema.outcome_label
    return METRIC_LABELS.get(metric, metric.replace("_", " "))


def curve_panels(metrics: Iterable[str], schema: RunSchema) -> list[tuple[str, list[str]]]:
    """Rows of the curves figure among ``metrics``: (title, metrics drawn in it); the outcome, flip rate, loss
    and d_x one each, PSNR and SSIM lines together."""
    metrics = list(metrics)
    single = (schema.outcome, "flip_rate", "loss_t", "mean_loss_t", "d_x", "mean_d_x")
    rows = [(metric_label(m, schema), [m]) for m in single if m in metrics]
    for family, title in (("psnr", "PSNR (dB)"), ("ssim", "SSIM")):
        shown = [m for m in metrics if m.startswith(family + "_")]
        if shown:
            rows.append((title, shown))
    return rows


def _style(series: str) -> tuple[str, str, str, bool]:
    """(name, colour, dash, in the legend) of a metric's line."""
    family, _, suffix = series.partition("_")
    if family in ("psnr", "ssim") and suffix in QUALITY_LINES:
        return (*QUALITY_LINES[suffix], True)
    return series, LINE, "solid", False


def curves_figure(
    table: pd.DataFrame,
    axes: Sequence[ParamAxis],
    panels: Sequence[tuple[str, Sequence[str]]],
    markers: pd.DataFrame | None = None,
    colours: Mapping[str, str] | None = None,
    height: int = 190,
) -> go.Figure:
    """Small multiples: rows are ``panels`` (title, series drawn together), columns the parameters ``axes``.

    ``table`` is long: ``column``, ``value``, ``series`` (a metric, or a class), ``mean`` and optionally
    ``ci_low``/``ci_high`` (drawn as a band) and ``n``; ``markers`` (``column``, ``series``, ``value``, ``y``)
    are breakpoints, drawn as ×. ``colours`` gives series their own colour and a legend entry (classes).
    """
    if table.empty or not panels or not axes:
        return message_figure("no curves to draw")
    fig = make_subplots(
        rows=len(panels), cols=len(axes), column_titles=[a.title for a in axes],
        vertical_spacing=0.3 / max(len(panels), 1), horizontal_spacing=0.04,
    )  # fmt: skip
    legend: set[str] = set()
    band_shown = False
    for j, axis in enumerate(axes, start=1):
        along = table[table["column"] == axis.column]
        for i, (title, series) in enumerate(panels, start=1):
            for s in series:
                line = along[along["series"] == s].sort_values("value")
                if line.empty:
                    continue
                if colours is not None:
                    name, colour, dash, listed = s, colours.get(s, LINE), "solid", True
                else:
                    name, colour, dash, listed = _style(s)
                xs = [format_value(v) for v in line["value"]]
                if colours is None and "ci_low" in line and line["ci_low"].notna().any():
                    fig.add_trace(
                        go.Scatter(
                            x=xs + xs[::-1], y=[*line["ci_high"], *line["ci_low"][::-1]], fill="toself", mode="lines",
                            fillcolor=colour, opacity=0.18, line={"width": 0}, hoverinfo="skip",
                            name="95 % interval over instances", legendgroup="band",
                            showlegend=not band_shown,
                        ),
                        row=i, col=j,
                    )  # fmt: skip
                    band_shown = True
                extra = "<br>n=%{customdata}" if "n" in line else ""
                fig.add_trace(
                    go.Scatter(
                        x=xs, y=line["mean"].tolist(), mode="lines+markers", name=name, legendgroup=name,
                        showlegend=listed and name not in legend, line={"color": colour, "dash": dash},
                        marker={"size": 5}, customdata=line["n"] if "n" in line else None,
                        hovertemplate=f"{name}<br>{axis.column}=%{{x}}<br>%{{y:.3f}}{extra}<extra></extra>",
                    ),
                    row=i, col=j,
                )  # fmt: skip
                legend.add(name)
                hits = (
                    None if markers is None
                    else markers[(markers["column"] == axis.column) & (markers["series"] == s)]
                )  # fmt: skip
                if hits is not None and not hits.empty:
                    fig.add_trace(
                        go.Scatter(
                            x=[format_value(v) for v in hits["value"]], y=hits["y"], mode="markers",
                            name="breakpoint", showlegend="breakpoint" not in legend, legendgroup="breakpoint",
                            marker={"symbol": "x", "size": 13, "color": colour if colours else BREAK,
                                    "line": {"width": 1, "color": "white"}},
                            hovertemplate=f"{name} breaks at {axis.column} = %{{x}}<extra></extra>",
                        ),
                        row=i, col=j,
                    )  # fmt: skip
                    legend.add("breakpoint")
            if j == 1:
                fig.update_yaxes(title_text=title, row=i, col=j)
        fig.update_xaxes(**axis.apply({}), col=j)
    for i, (_, series) in enumerate(panels, start=1):  # one y range per row, so the parameters compare
        fig.update_yaxes(
            range=_row_range(table[table["series"].isin(series)], series, colours is not None), row=i
        )
    fig.update_layout(
        template=TEMPLATE, height=height * len(panels) + 90, margin={"t": 40, "b": 30, "l": 70, "r": 10},
        legend={"orientation": "h", "y": -0.06, "yanchor": "top", "font": {"size": 11}},
    )  # fmt: skip
    return fig


def _row_range(rows: pd.DataFrame, series: Sequence[str], fractions: bool) -> list[float]:
    """The y range of one row of curves: 0 to 1 for fractions, else the span of its means and bands."""
    if fractions or all(s in FRACTIONS for s in series):
        return [-0.03, 1.03]
    values = pd.concat([rows[c] for c in ("mean", "ci_low", "ci_high") if c in rows]).astype(float)
    values = values[np.isfinite(values)]
    low, high = (float(values.min()), float(values.max())) if len(values) else (0.0, 1.0)
    pad = 0.06 * (high - low) or 0.05 * abs(high) or 0.05
    return [low - pad, high + pad]


def stored_curves(curves: pd.DataFrame, scope: str = "all") -> pd.DataFrame:
    """The marginal curves of an analysis (others marginalised) as :func:`curves_figure` wants them: one
    series per metric (``scope="all"``), or per class (any other scope, with ``series`` = the class)."""
    marginal = curves[curves["condition"] == ""]
    if scope == "all":
        return marginal[marginal["scope"] == "all"].assign(series=lambda t: t["metric"])
    return marginal[marginal["scope"] != "all"].assign(series=lambda t: t["scope"])


def breakpoint_markers(breakpoints: pd.DataFrame | None, per_class: bool = False) -> pd.DataFrame | None:
    """Marginal breakpoints as curve markers: over all instances per metric, or per class."""
    if breakpoints is None or breakpoints.empty:
        return None
    bp = breakpoints[breakpoints["condition"].fillna("") == ""]
    bp = bp[bp["scope"] != "all"] if per_class else bp[bp["scope"] == "all"]
    return pd.DataFrame(
        {"column": bp["column"], "series": bp["scope"] if per_class else bp["metric"], "value": bp["value"],
         "y": bp["after"]}
    )  # fmt: skip


def quality_note(metrics: Iterable[str]) -> str:
    """What the PSNR lines compare, for a caption."""
    note = "PSNR and SSIM: the transformed and projected inputs against the clean input"
    if any(m.startswith("psnr_out") for m in metrics):
        note += (
            "; the model's outputs f(xT) and f(x̂T) against the target. Where f(xT) stays low the model cannot "
            "undo that corruption"
        )
    return note + f". PSNR is capped at {PSNR_CAP_DB:g} dB (identical images have infinite PSNR)."


def runs_curves_figure(
    tables: Sequence[tuple[str, pd.DataFrame]], axes: Sequence[ParamAxis], metric: str, label: str
) -> go.Figure:
    """One metric of several runs along their shared parameters: ``tables`` are (run name, long table with
    ``column``, ``value`` and the metric)."""
    fig = make_subplots(rows=1, cols=len(axes), shared_yaxes=True, column_titles=[a.title for a in axes])
    for k, (name, table) in enumerate(tables):
        for j, axis in enumerate(axes, start=1):
            line = table[table["column"] == axis.column].sort_values("value")
            fig.add_trace(
                go.Scatter(x=[format_value(v) for v in line["value"]], y=line[metric], name=name,
                           mode="lines+markers", line={"color": ("#1f77b4", "#d62728", "#2ca02c")[k % 3]},
                           showlegend=j == 1, legendgroup=name),
                row=1, col=j,
            )  # fmt: skip
            fig.update_xaxes(**axis.apply({}), row=1, col=j)
    fig.update_yaxes(title_text=label, row=1, col=1)
    fig.update_layout(template=TEMPLATE, height=320, margin={"t": 40, "b": 30, "l": 60, "r": 10})
    return fig


def run_curves(
    view: RunView, curves: pd.DataFrame, breakpoints: pd.DataFrame | None, per: str = "all"
) -> go.Figure:
    """The curves of an analysed run: ``per="all"`` the outcome, flip rate, loss and d_x (with PSNR/SSIM rows
    for image runs); ``"class"`` the outcome per class (or group); ``"quality"`` only PSNR/SSIM."""
    schema = view.run.schema
    axes = param_axes(view)
    if per == "class":
        table = stored_curves(curves, scope="class")
        table = table[table["metric"] == schema.outcome]
        classes = view.classes
        return curves_figure(table, axes, [(f"{schema.outcome_label} per {schema.group_title}", classes)],
                             breakpoint_markers(breakpoints, per_class=True), class_colours(classes), height=300)  # fmt: skip
    table = stored_curves(curves)
    panels = curve_panels(table["series"].unique(), schema)
    if per == "quality":
        panels = [p for p in panels if p[0] in ("PSNR (dB)", "SSIM")]
    elif per != "all":
        raise ValueError(f"per={per!r}: expected 'all', 'class' or 'quality'")
    return curves_figure(table, axes, panels, breakpoint_markers(breakpoints))


#: the breakpoint table's columns the report shows
BREAKPOINT_COLUMNS = ["column", "scope", "side", "value", "before", "after", "previous", "reference", "reference_value",
                      "ci_low", "ci_high", "n"]  # fmt: skip


@register_section(
    "breakpoints",
    intro="Curves along each transform parameter, the other parameters marginalised (each instance averaged "
    "over them first; bands are 95 % intervals over instances). × marks the breakpoint.",
)
def report_html(bp: pd.DataFrame, ctx) -> str:
    """The report section: the curves (overall, per class or group, image quality) and the breakpoint tables."""
    view, schema, curves = ctx.view, ctx.run.schema, ctx.analysis.curves
    body = ""
    if curves is not None:
        body += ctx.figure(
            run_curves(view, curves, bp), "metric curves per transform parameter", "breakpoint curves"
        )
        if schema.outcome and schema.group_column:
            body += ctx.figure(
                run_curves(view, curves, bp, per="class"),
                f"{schema.outcome_label} per {schema.group_title}",
                f"per-{schema.group_title} {schema.outcome.replace('_', ' ')} curves",
            )
        quality = [m for m in schema.metrics if m.startswith(("psnr", "ssim"))]
        if quality:
            body += "<h3>Image quality along each parameter</h3>"
            body += ctx.figure(run_curves(view, curves, bp, per="quality"), quality_note(quality),
                               "image quality curves")  # fmt: skip
    if schema.outcome:
        marginal = bp[bp.condition == ""]
        body += (
            f"<h3>Breakpoints (others marginalised)</h3>{table_html(marginal, BREAKPOINT_COLUMNS, rows=200)}"
        )
        cond = bp[bp.condition != ""]
        body += (
            f"<details><summary>Breakpoints within each value of the other parameters ({len(cond)})</summary>"
            f"{table_html(cond, ['column', 'condition', 'scope', 'value', 'before', 'after', 'reference'], rows=500)}"
            "</details>"
        )
    return body

"""One record up close (the interim view): x, xT, x̂T and the change x̂T − xT; for runs whose target is a
tensor a second row with the target y, f(xT), f(x̂T) and f(x̂T) − f(xT). 2-D inputs are maps on one shared
colour range (the changes on a diverging one), waveforms and vectors are lines. :func:`record_facts` words
what the record is and what projection changed, for every surface."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from proactiv.analysis.bias import as_2d
from proactiv.analysis.interim import Interim, interims, worst_records
from proactiv.schema import InputSpec, RunSchema
from proactiv.views.sections import note_html, register_section
from proactiv.views.style import DIVERGING, MAX_LINE_POINTS, TEMPLATE, colorscale, finite_limit, input_axes

INPUTS = {"x": "x (clean)", "x_t": "xT (transformed)", "x_proj": "x̂T (projected)", "diff": "x̂T − xT"}
OUTPUTS = {"y": "y (target)", "y_t": "f(xT) (output)", "y_proj": "f(x̂T) (output)", "diff": "f(x̂T) − f(xT)"}
LINE_COLOURS = {"x": "#9aa5b1", "x_t": "#1f77b4", "x_proj": "#2ca02c", "y": "#9aa5b1", "y_t": "#1f77b4",
                "y_proj": "#2ca02c", "diff": "#c0392b"}  # fmt: skip


def line(a: np.ndarray, limit: int = MAX_LINE_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """(positions, values) of a 1-D signal to draw; longer than ``limit``, its min/max envelope per bucket
    (the peaks stay visible, the page stays small)."""
    a = np.asarray(a, dtype=np.float32).reshape(-1)
    if a.size <= limit:
        return np.arange(a.size), a
    buckets = limit // 2
    edges = np.linspace(0, a.size, buckets + 1).astype(int)
    lo, hi = np.minimum.reduceat(a, edges[:-1]), np.maximum.reduceat(a, edges[:-1])
    return np.repeat(edges[:-1], 2), np.column_stack([lo, hi]).reshape(-1)


def _rows(item: Interim, schema: RunSchema) -> list[tuple[dict[str, str], dict[str, np.ndarray]]]:
    rows = [(INPUTS, {"x": item.x, "x_t": item.x_t, "x_proj": item.x_proj, "diff": item.diff})]
    if schema.has_outputs and item.y_t is not None and item.y_proj is not None:
        rows.append(
            (OUTPUTS, {"y": item.y, "y_t": item.y_t, "y_proj": item.y_proj, "diff": item.y_proj - item.y_t})
        )
    return [(names, {k: v for k, v in arrays.items() if v is not None}) for names, arrays in rows]


def record_figure(item: Interim, schema: RunSchema, title: str = "") -> go.Figure:
    """The interim view of one record (see the module docstring)."""
    spec = schema.input
    rows = _rows(item, schema)
    if spec.one_dimensional:
        return _lines(rows, spec, title)
    ncol = max(len(arrays) for _, arrays in rows)
    grid_titles = []
    for names, arrays in rows:
        keys = list(arrays)
        grid_titles += [names[k] for k in keys] + [""] * (ncol - len(keys))
    fig = make_subplots(rows=len(rows), cols=ncol, subplot_titles=grid_titles, horizontal_spacing=0.05,
                        vertical_spacing=0.12)  # fmt: skip
    plain = [as_2d(a) for _, arrays in rows for k, a in arrays.items() if k != "diff"]
    lo, hi = float(min(np.nanmin(m) for m in plain)), float(max(np.nanmax(m) for m in plain))
    for r, (_, arrays) in enumerate(rows, start=1):
        for c, (k, a) in enumerate(arrays.items(), start=1):
            z = as_2d(a).astype(np.float32)
            if k == "diff":
                lim = finite_limit(z)
                bar = {
                    "x": 1.0,
                    "len": 0.9 / len(rows),
                    "y": 1 - (r - 0.5) / len(rows),
                    "title": {"text": spec.unit},
                }
                kw = {"colorscale": DIVERGING, "zmin": -lim, "zmax": lim, "colorbar": bar}
            else:
                kw = {"colorscale": colorscale(spec), "zmin": lo, "zmax": hi, "showscale": False}
            fig.add_trace(go.Heatmap(z=z, hovertemplate="row %{y}, col %{x}: %{z:.3f}<extra></extra>", **kw),
                          row=r, col=c)  # fmt: skip
            n = (r - 1) * ncol + c
            input_axes(fig, spec, r, c, f"x{n if n > 1 else ''}", titled=c == 1)
    top = _title(fig, title)
    fig.update_layout(
        height=(260 if spec.image else 300) * len(rows) + top, margin={"t": top, "b": 10, "l": 10, "r": 10}
    )
    return fig


def _title(fig: go.Figure, title: str) -> int:
    """Put the record's facts above the panels; returns the top margin they need (in px)."""
    top = 44 + 17 * (title.count("<br>") + 1) if title else 30
    fig.update_layout(template=TEMPLATE, title={"text": title, "font": {"size": 12}, "x": 0.01, "xanchor": "left",
                                                "yref": "container", "y": 1, "yanchor": "top", "pad": {"t": 14}})  # fmt: skip
    return top


def _lines(rows, spec: InputSpec, title: str) -> go.Figure:
    """1-D inputs (and outputs): the signals overlaid, and their change beside them."""
    titles = []
    for names, arrays in rows:
        titles += [", ".join(names[k].split(" ")[0] for k in arrays if k != "diff"), names["diff"]]
    fig = make_subplots(rows=len(rows), cols=2, subplot_titles=titles, column_widths=[0.6, 0.4],
                        horizontal_spacing=0.07, vertical_spacing=0.16)  # fmt: skip
    for r, (names, arrays) in enumerate(rows, start=1):
        for k, a in arrays.items():
            xs, ys = line(a)
            fig.add_trace(
                go.Scatter(x=xs, y=ys, mode="lines", name=names[k], line={"width": 1, "color": LINE_COLOURS[k]},
                           showlegend=k != "diff", hovertemplate=f"{names[k]}<br>{spec.column_label} %{{x}}: %{{y:.3f}}<extra></extra>"),
                row=r, col=2 if k == "diff" else 1,
            )  # fmt: skip
        for c in (1, 2):
            fig.update_xaxes(title_text=spec.column_label, row=r, col=c)
            fig.update_yaxes(title_text=spec.unit, row=r, col=c)
    top = _title(fig, title)
    fig.update_layout(height=280 * len(rows) + top + 40, margin={"t": top, "b": 10, "l": 10, "r": 10},
                      legend={"orientation": "h", "y": -0.15})  # fmt: skip
    return fig


def db(value) -> str:
    """A PSNR for people: ``18.3 dB``, ``∞ dB (identical)``."""
    v = float(value)
    return "∞ dB (identical)" if math.isinf(v) and v > 0 else f"{v:.1f} dB"


def record_facts(
    record: Mapping, schema: RunSchema, class_name: Callable[[object], str], where: str
) -> list[str]:
    """What one record is and what projection changed, one line each: the grid point, the labels and
    predictions (classifiers) or the group and whether the output is within the loss cutoff, losses, d_x,
    steps, and the PSNR of image runs."""
    lines = [f"instance {int(record['instance'])} · grid point {int(record['point'])}: {where}"]
    group = schema.group_column
    if schema.classifier:
        lines.append(
            f"label {class_name(record['label'])} · prediction on x {class_name(record['pred_clean'])}"
            f" → on xT {class_name(record['pred_t'])} → on x̂T {class_name(record['pred_proj'])}"
        )
    elif group is not None and group in record:
        lines.append(f"{schema.group_title} {record[group]}")
    lines.append(
        f"loss on xT {record['loss_t']:.4f} → on x̂T {record['loss_proj']:.4f} · d_x {record['d_x']:.4f}"
        f" · {int(record.get('steps', 0))} steps"
    )
    if schema.outcome == "within_cutoff" and "correct_t" in record:
        words = {True: "within the loss cutoff", False: "outside the loss cutoff"}
        lines.append(
            f"output on xT {words[bool(record['correct_t'])]} → on x̂T {words[bool(record['correct_proj'])]}"
        )
    if "psnr_out_t" in schema.metrics:
        lines.append(
            f"PSNR against the target: f(xT) {db(record['psnr_out_t'])} → f(x̂T) {db(record['psnr_out_proj'])}"
            f" · SSIM {record['ssim_out_t']:.3f} → {record['ssim_out_proj']:.3f}"
        )
    if "psnr_t" in schema.metrics:
        lines.append(
            f"PSNR against the clean input: xT {db(record['psnr_t'])} · x̂T {db(record['psnr_proj'])}"
        )
    return lines


@register_section(key="gallery", title="Worst records")
def report_html(_, ctx) -> str:
    """The closing report section: the kept records the model fails worst (one per instance), each as its
    interim view."""
    view, run, schema = ctx.view, ctx.run, ctx.run.schema
    worst = worst_records(view, ctx.gallery)
    outputs, body = "", ""
    if worst.empty:
        body = note_html(
            f"no arrays kept in this run (arrays.keep = {run.config.get('arrays', {}).get('keep')!r})"
        )
    names = run.class_names or []

    def class_name(label) -> str:
        return names[int(label)] if 0 <= int(label) < len(names) else str(label)

    for item in interims(view, worst):
        facts = record_facts(item.record, schema, class_name, view.describe_point(item.point))
        two_rows = schema.has_outputs and item.y_t is not None
        alt = f"record {item.instance} at point {item.point}" + (
            ": inputs and outputs f(xT), f(x̂T)" if two_rows else ""
        )
        body += ctx.figure(record_figure(item, schema, "<br>".join(facts)), "", alt)
        if two_rows:
            outputs = " The second row shows the model's outputs f(xT), f(x̂T) next to the target y."
    return (
        f"<p>Kept records the model {schema.failure_wording} with the highest loss (one per instance): clean, "
        f"transformed, projected input and the change projection made.{outputs}</p>{body}"
    )

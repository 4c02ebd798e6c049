"""Plotly figures of the dashboard, built from the small aggregates of :mod:`proactiv.dashboard.data`.

Class colours are fixed per run (class index → palette entry) so a class looks the same in every view;
scatter plots use WebGL (``Scattergl``); grid values are shown as ordered categories so ∞ (a clean SNR) has
a place on the axis.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from proactiv.analysis.bias import as_2d
from proactiv.analysis.inputs import InputKind
from proactiv.dashboard.data import RunData, fmt_value

PALETTE = qualitative.Plotly + qualitative.D3 + qualitative.Dark24
TEMPLATE = "plotly_white"


def class_colour(index: int) -> str:
    return PALETTE[int(index) % len(PALETTE)]


def _order(label: str) -> tuple:
    """Sort key of category labels: numbers (∞ last) by value, then text."""
    try:
        return (0, float(label.replace("∞", "inf").replace("−", "-")), "")
    except ValueError:
        return (1, 0.0, label)


def message_figure(text: str) -> go.Figure:
    """An empty figure that says why it is empty."""
    fig = go.Figure()
    fig.add_annotation(text=text, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_layout(template=TEMPLATE, xaxis_visible=False, yaxis_visible=False, height=260)
    return fig


#: line colours of the image-quality metrics (inputs grey, outputs blue/green), as in the report
QUALITY_COLOURS = {"t": "#7f7f7f", "proj": "#b0b0b0", "out_t": "#1f77b4", "out_proj": "#2ca02c"}


QUALITY_NAMES = {
    "t": "xT vs clean x",
    "proj": "x̂T vs clean x",
    "out_t": "f(xT) vs target",
    "out_proj": "f(x̂T) vs target",
}


def _quality_suffix(metric: str) -> str | None:
    """``out_t`` for ``psnr_out_t``; None for metrics that are not PSNR/SSIM."""
    family, _, suffix = metric.partition("_")
    return suffix if family in ("psnr", "ssim") and suffix in QUALITY_COLOURS else None


def _line_colour(metric: str) -> str:
    suffix = _quality_suffix(metric)
    return "#1f4e79" if suffix is None else QUALITY_COLOURS[suffix]


def curves_figure(
    data: RunData, marginals: dict[str, pd.DataFrame], panels: list[tuple[str, list[str]]] | list[str]
) -> go.Figure:
    """Metric curves along each grid parameter (rows: panels of one or more metrics, e.g. the PSNR of xT,
    f(xT) and f(x̂T) together; columns: parameters), breakpoints marked."""
    panels = [(p.replace("_", " "), [p]) if isinstance(p, str) else p for p in panels]
    cols = list(marginals)
    fig = make_subplots(
        rows=len(panels),
        cols=len(cols),
        shared_yaxes="rows",
        vertical_spacing=0.08 if len(panels) < 5 else 0.05,
        horizontal_spacing=0.04,
        column_titles=[data.grid_label(c) for c in cols],
    )
    bps = data.analysis.breakpoints
    legend: set[str] = set()
    for j, col in enumerate(cols, start=1):
        table = marginals[col]
        xs = [fmt_value(v) for v in table["value"]]
        for i, (title, metrics) in enumerate(panels, start=1):
            for metric in metrics:
                suffix = _quality_suffix(metric)  # PSNR and SSIM lines of one comparison share a legend entry
                label = QUALITY_NAMES[suffix] if suffix else metric
                fig.add_trace(
                    go.Scatter(
                        x=xs,
                        y=table[metric],
                        mode="lines+markers",
                        line={"color": _line_colour(metric)},
                        name=label,
                        legendgroup=label,
                        showlegend=suffix is not None and label not in legend,
                        customdata=table["n"],
                        hovertemplate=f"{col}=%{{x}}<br>{metric}=%{{y:.3f}}<br>n=%{{customdata}}<extra></extra>",
                    ),
                    row=i,
                    col=j,
                )
                if suffix is not None:
                    legend.add(label)
                if bps is not None and len(bps) and "metric" in bps:
                    hit = bps[
                        (bps["column"] == col)
                        & (bps["scope"] == "all")
                        & (bps["condition"].fillna("") == "")
                        & (bps["metric"] == metric)
                    ]
                    for v in hit["value"]:
                        if fmt_value(float(v)) in xs:
                            fig.add_trace(
                                go.Scatter(
                                    x=[fmt_value(float(v))],
                                    y=[float(table[metric][table["value"] == v].iloc[0])],
                                    mode="markers",
                                    marker={"symbol": "x", "size": 14, "color": "#c0392b"},
                                    name="breakpoint",
                                    showlegend=False,
                                    hovertemplate=f"breakpoint: {col} = %{{x}}<extra></extra>",
                                ),
                                row=i,
                                col=j,
                            )
            if j == 1:
                fig.update_yaxes(title_text=title, row=i, col=j)
    fig.update_xaxes(type="category")
    fig.update_layout(
        template=TEMPLATE,
        height=170 * len(panels) + 60,
        margin={"t": 40, "b": 30, "l": 60, "r": 10},
        legend={"orientation": "h", "y": -0.04, "yanchor": "top", "font": {"size": 11}},
    )
    return fig


def heatmap_figure(
    table: pd.DataFrame, label_a: str, label_b: str, metric: str, diverging: bool = False
) -> go.Figure:
    """A metric over two grid parameters (rows: b, columns: a)."""
    if table.empty:
        return message_figure("no records in the current filter")
    pivot = table.pivot_table(index="b", columns="a", values="m", aggfunc="mean")
    z = pivot.to_numpy(dtype=float)
    kw = {"colorscale": "RdBu", "zmid": 0.0} if diverging else {"colorscale": "Viridis"}
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[fmt_value(v) for v in pivot.columns],
            y=[fmt_value(v) for v in pivot.index],
            colorbar={"title": metric.replace("_", " ")},
            hovertemplate=f"{label_a}=%{{x}}<br>{label_b}=%{{y}}<br>{metric}=%{{z:.3f}}<extra></extra>",
            **kw,
        )
    )
    fig.update_xaxes(type="category", title=label_a)
    fig.update_yaxes(type="category", title=label_b)
    fig.update_layout(template=TEMPLATE, height=360, margin={"t": 30, "b": 40, "l": 70, "r": 10})
    return fig


def pair_heatmap(
    ta: pd.DataFrame, tb: pd.DataFrame, name_a: str, name_b: str, label_a: str, label_b: str, metric: str
) -> go.Figure:
    """The same metric heatmap of two runs side by side, on one colour scale."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=[name_a, name_b], shared_yaxes=True)
    lo = float(min(ta["m"].min(), tb["m"].min()))
    hi = float(max(ta["m"].max(), tb["m"].max()))
    for j, table in enumerate((ta, tb), start=1):
        pivot = table.pivot_table(index="b", columns="a", values="m", aggfunc="mean")
        fig.add_trace(
            go.Heatmap(
                z=pivot.to_numpy(dtype=float),
                x=[fmt_value(v) for v in pivot.columns],
                y=[fmt_value(v) for v in pivot.index],
                zmin=lo,
                zmax=hi,
                colorscale="Viridis",
                showscale=j == 2,
                colorbar={"title": metric},
                hovertemplate=f"{label_a}=%{{x}}<br>{label_b}=%{{y}}<br>{metric}=%{{z:.3f}}<extra></extra>",
            ),
            row=1,
            col=j,
        )
        fig.update_xaxes(type="category", title=label_a, row=1, col=j)
    fig.update_yaxes(type="category", title=label_b, row=1, col=1)
    fig.update_yaxes(type="category", row=1, col=2)
    fig.update_layout(template=TEMPLATE, height=340, margin={"t": 40, "b": 40, "l": 70, "r": 10})
    return fig


def scatter_figure(
    table: pd.DataFrame,
    id_column: str,
    colour: str,
    title: str,
    categorical: bool,
    class_index: dict[str, int] | None = None,
    selected: set[int] | None = None,
) -> go.Figure:
    """A 2-D embedding as WebGL scatter; ``customdata`` holds the point/instance id for selections."""
    if table.empty:
        return message_figure("no embedding in this run's analysis")
    fig = go.Figure()
    hover = f"{id_column} %{{customdata}}<br>{colour} = %{{text}}<extra></extra>"

    def sel(frame: pd.DataFrame):
        if selected is None:
            return None
        return [k for k, v in enumerate(frame[id_column]) if int(v) in selected]

    if categorical:
        values = table[colour].astype(str)
        for k, cat in enumerate(sorted(values.unique(), key=_order)):
            part = table[values == cat]
            idx = (class_index or {}).get(cat, k)
            fig.add_trace(
                go.Scattergl(
                    x=part["x"],
                    y=part["y"],
                    mode="markers",
                    name=cat,
                    customdata=part[id_column].astype(int),
                    text=[cat] * len(part),
                    marker={"size": 8, "color": class_colour(idx), "line": {"width": 0.5, "color": "white"}},
                    selectedpoints=sel(part),
                    hovertemplate=hover,
                )
            )
    else:
        v = pd.to_numeric(table[colour], errors="coerce").replace([np.inf, -np.inf], np.nan)
        fig.add_trace(
            go.Scattergl(
                x=table["x"],
                y=table["y"],
                mode="markers",
                customdata=table[id_column].astype(int),
                text=[f"{x:.3g}" for x in v],
                marker={
                    "size": 8,
                    "color": v,
                    "colorscale": "Viridis",
                    "showscale": True,
                    "colorbar": {"title": colour},
                },
                selectedpoints=sel(table),
                hovertemplate=hover,
                showlegend=False,
            )
        )
    fig.update_layout(
        template=TEMPLATE,
        title={"text": title, "font": {"size": 14}},
        dragmode="lasso",
        height=420,
        margin={"t": 40, "b": 20, "l": 20, "r": 10},
        uirevision=title,
        legend={"itemsizing": "constant"},
    )
    fig.update_xaxes(showticklabels=False, title=None)
    fig.update_yaxes(showticklabels=False, title=None)
    return fig


def spectrogram(a: np.ndarray) -> np.ndarray:
    """A 2-D map of a model input: images/log-mels as they are; waveforms as a log-power STFT (dB)."""
    a = np.squeeze(np.asarray(a, dtype=np.float64))
    if a.ndim != 1:
        return as_2d(a)
    n, hop = 256, 128
    if a.size < n:
        return a.reshape(1, -1)
    frames = np.lib.stride_tricks.sliding_window_view(a, n)[::hop] * np.hanning(n)
    return 10 * np.log10(np.abs(np.fft.rfft(frames, axis=1)).T ** 2 + 1e-10)


def interim_figure(maps: dict[str, np.ndarray | None], kind: InputKind) -> go.Figure:
    """x, xT, x̂T and x̂T − xT side by side; shared colour range for the inputs, diverging for the change.
    With outputs (``y_t``, ``y_proj``: image-to-image runs) a second row: the target ``y``, f(xT), f(x̂T) and f(x̂T) − f(xT). Images upright with square pixels."""
    names = {"x": "x (clean)", "x_t": "xT (transformed)", "x_proj": "x̂T (projected)", "diff": "x̂T − xT"}
    out_names = {
        "y": "y (target)",
        "y_t": "f(xT) (output)",
        "y_proj": "f(x̂T) (output)",
        "y_diff": "f(x̂T) − f(xT)",
    }
    rows = [[k for k in names if maps.get(k) is not None]]
    if maps.get("y_t") is not None:
        rows.append([k for k in out_names if maps.get(k) is not None])
    ncol = max(len(r) for r in rows)
    titles = [
        (names if r == 0 else out_names)[row[c]] if c < len(row) else ""
        for r, row in enumerate(rows)
        for c in range(ncol)
    ]
    fig = make_subplots(
        rows=len(rows), cols=ncol, subplot_titles=titles, horizontal_spacing=0.04, vertical_spacing=0.1
    )
    plain = [maps[k] for row in rows for k in row if k not in ("diff", "y_diff")]
    lo = float(min(np.nanmin(m) for m in plain))
    hi = float(max(np.nanmax(m) for m in plain))
    image = kind.image
    for r, row in enumerate(rows, start=1):
        for j, k in enumerate(row, start=1):
            z = maps[k]
            if k in ("diff", "y_diff"):
                lim = float(np.nanmax(np.abs(z))) or 1.0
                bar = {"x": 1.0, "len": 0.9 / len(rows), "y": 1 - (r - 0.5) / len(rows)}
                kw = {"colorscale": "RdBu_r", "zmin": -lim, "zmax": lim, "colorbar": bar}
            else:
                kw = {"colorscale": "gray" if image else "Magma", "zmin": lo, "zmax": hi, "showscale": False}
            fig.add_trace(
                go.Heatmap(z=z, hovertemplate="row %{y}, col %{x}: %{z:.3f}<extra></extra>", **kw),
                row=r,
                col=j,
            )
            axis = (r - 1) * ncol + j
            if image:  # row 0 on top, square pixels
                fig.update_yaxes(
                    autorange="reversed", scaleanchor=f"x{axis if axis > 1 else ''}", constrain="domain",
                    row=r, col=j,
                )  # fmt: skip
                fig.update_xaxes(constrain="domain", row=r, col=j)
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False)
    height = (270 if image else 300) * len(rows)
    fig.update_layout(template=TEMPLATE, height=height, margin={"t": 40, "b": 10, "l": 10, "r": 10})
    return fig


def bias_figure(mean: np.ndarray, title: str, kind: InputKind) -> go.Figure:
    """The mean x̂T − xT map of a class (diverging colours, 0 = no change); images upright and square."""
    z = spectrogram(mean) if np.squeeze(mean).ndim == 1 else as_2d(mean)
    lim = float(np.nanmax(np.abs(z))) or 1.0
    fig = go.Figure(
        go.Heatmap(z=z, colorscale="RdBu_r", zmin=-lim, zmax=lim, colorbar={"title": "mean x̂T − xT"})
    )
    if kind.image:
        fig.update_yaxes(autorange="reversed", scaleanchor="x", constrain="domain", title="row")
        fig.update_xaxes(constrain="domain", title="column")
    elif kind.spectrogram:
        fig.update_yaxes(title="mel band")
        fig.update_xaxes(title="frame")
    else:  # a waveform's change, shown as a log-power spectrogram
        fig.update_yaxes(title="frequency bin")
        fig.update_xaxes(title="frame")
    fig.update_layout(template=TEMPLATE, title={"text": title, "font": {"size": 14}}, height=380,
                      margin={"t": 40, "b": 40, "l": 60, "r": 10})  # fmt: skip
    return fig


def grid_diff_figure(
    table: pd.DataFrame,
    columns: list[str],
    labels: list[str],
    name_a: str,
    name_b: str,
    metric: str,
    scale: float,
    unit: str,
    fmt: str,
) -> go.Figure:
    """One cell per grid point shared by two runs: ``diff`` × ``scale`` (second − first run), diverging colours
    centred at 0. Columns: the last grid parameter's values; rows: every combination of the others."""
    last, rest = columns[-1], columns[:-1]
    xs = sorted({float(v) for v in table[last]})
    ys = sorted(set(map(tuple, table[rest].astype(float).to_numpy().tolist()))) if rest else [()]
    xi, yi = {v: j for j, v in enumerate(xs)}, {v: i for i, v in enumerate(ys)}
    z = np.full((len(ys), len(xs)), np.nan)
    text = np.full((len(ys), len(xs)), "", dtype=object)
    for r in table.to_dict("records"):
        i, j = yi[tuple(float(r[c]) for c in rest)], xi[float(r[last])]
        z[i, j] = scale * float(r["diff"])
        grid = "<br>".join(
            f"{lab} = {fmt_value(float(r[c]))}" for c, lab in zip(columns, labels, strict=True)
        )
        text[i, j] = (
            f"{grid}<br>{name_a}: {metric} {r['m_a']:.3f} (point {int(r['point_a'])}, n={int(r['n_a'])})"
            f"<br>{name_b}: {metric} {r['m_b']:.3f} (point {int(r['point_b'])}, n={int(r['n_b'])})"
        )
    lim = float(np.nanmax(np.abs(z))) if np.isfinite(z).any() else 0.0
    lim = lim or 1.0
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[fmt_value(v) for v in xs],
            y=[" · ".join(fmt_value(v) for v in row) or "all" for row in ys],
            text=text,
            colorscale="RdBu",
            zmid=0.0,
            zmin=-lim,
            zmax=lim,
            xgap=1,
            ygap=1,
            colorbar={"title": {"text": f"{unit}<br>{name_b} − {name_a}", "side": "right"}},
            hovertemplate=f"%{{text}}<br>{unit}: %{{z:{fmt}}}<extra></extra>",
        )
    )
    fig.update_xaxes(type="category", title=labels[-1])
    fig.update_yaxes(type="category", title=" · ".join(labels[:-1]) or None)
    fig.update_layout(
        template=TEMPLATE,
        height=max(300, min(1400, 24 * len(ys) + 140)),
        margin={"t": 30, "b": 50, "l": 90, "r": 10},
    )
    return fig

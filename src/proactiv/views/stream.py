"""The stream view of a monitor store: over time, the posteriors of the watched classes, the firings of every
decision the store keeps (raw, each correction alone, all corrections) and every assertion's violations, on one
shared time axis. Every point carries its step (``customdata``), so the dashboard plays the window clicked.

    store = pv.open_monitor("monitors/day1")
    pv.views.stream(store)                          # the whole stream
    pv.views.stream(store, start_s=60, end_s=120)   # one minute of it
"""

from __future__ import annotations

import os

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from proactiv.monitor import MonitorStore, open_monitor
from proactiv.views.style import TEMPLATE, class_colour, message_figure

#: posterior lines keep at most this many points (a longer stream is drawn every k-th step)
MAX_POINTS = 20000


def _seconds(t: float) -> str:
    minutes, seconds = divmod(float(t), 60)
    return f"{int(minutes)}:{seconds:05.2f}"


def stream_figure(
    store: MonitorStore, start_s: float | None = None, end_s: float | None = None, height: int = 620
) -> go.Figure:
    """The stream view of ``store`` between ``start_s`` and ``end_s`` (seconds; default the whole stream)."""
    steps = store.steps
    if steps.empty:
        return message_figure(f"monitor store {store.path}: no steps stored yet")
    keep = np.ones(len(steps), dtype=bool)
    if start_s is not None:
        keep &= steps.start_s.to_numpy() >= start_s
    if end_s is not None:
        keep &= steps.start_s.to_numpy() < end_s
    steps = steps[keep]
    if steps.empty:
        return message_figure(f"no window starts between {start_s} and {end_s} s")
    names = store.class_names
    watched = [n for n in store.events if f"p.{n}" in steps]
    columns = [c for c in store.decision_columns() if c in steps]
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.06, row_heights=[0.45, 0.3, 0.25],
                        subplot_titles=("posteriors", "firings: raw and corrected", "violations"))  # fmt: skip
    stride = max(1, len(steps) // MAX_POINTS)
    thin = steps.iloc[::stride]
    for name in watched:
        colour = class_colour(names.index(name))
        fig.add_trace(go.Scattergl(x=thin.start_s, y=thin[f"p.{name}"], mode="lines", name=name, legendgroup=name,
                                   line={"color": colour, "width": 1}, customdata=thin.step,
                                   hovertemplate=f"{name} %{{y:.2f}}<br>window %{{customdata}} at %{{x:.1f}} s"
                                   "<extra></extra>"), row=1, col=1)  # fmt: skip
    label = {"decision": "raw", "corrected": "all corrections"}
    order = [label.get(c, c.removeprefix("c.")) for c in columns]
    for column, y in zip(columns, order, strict=True):
        fired = store.firings(column)
        fired = fired[fired.step.isin(steps.step)]
        colours = [class_colour(int(c)) for c in fired["class"]]
        fig.add_trace(go.Scatter(x=fired.start_s, y=[y] * len(fired), mode="markers", name=y, showlegend=False,
                                 marker={"color": colours, "size": 9, "symbol": "diamond" if column != "decision" else "circle"},
                                 customdata=fired.step, text=fired.name,
                                 hovertemplate="%{text} fires at %{x:.2f} s (window %{customdata})<extra>" + y + "</extra>"),
                      row=2, col=1)  # fmt: skip
    for name in store.assertions:
        sev = steps[f"a.{name}"].to_numpy()
        hit = steps[sev > 0]
        fig.add_trace(go.Scatter(x=hit.start_s, y=[name] * len(hit), mode="markers", name=name, showlegend=False,
                                 marker={"color": "#c0392b", "size": 5 + 8 * hit[f"a.{name}"], "opacity": 0.8,
                                         "symbol": "line-ns-open"},
                                 customdata=hit.step, text=[f"{v:.2f}" for v in hit[f"a.{name}"]],
                                 hovertemplate=name + " severity %{text} at %{x:.2f} s (window %{customdata})"
                                 "<extra></extra>"), row=3, col=1)  # fmt: skip
    fig.update_yaxes(title_text="probability", range=[-0.02, 1.02], row=1, col=1)
    fig.update_yaxes(categoryorder="array", categoryarray=order[::-1], row=2, col=1)
    fig.update_yaxes(categoryorder="array", categoryarray=store.assertions[::-1], row=3, col=1)
    fig.update_xaxes(title_text="time (s)", row=3, col=1)
    span = f"{_seconds(steps.start_s.iloc[0])}–{_seconds(steps.end_s.iloc[-1])}"
    title = f"{store.stream.get('name', store.path.name)}: {span}, {len(steps)} windows"
    fig.update_layout(template=TEMPLATE, height=height, title=title, hovermode="closest", clickmode="event",
                      margin={"l": 110, "r": 20, "t": 70, "b": 40}, legend={"orientation": "h", "y": 1.08})  # fmt: skip
    return fig


def stream(
    store: MonitorStore | str | os.PathLike, start_s: float | None = None, end_s: float | None = None
) -> go.Figure:
    """The stream view of a monitor store (or its folder): posteriors, firings raw and corrected, violations."""
    return stream_figure(store if isinstance(store, MonitorStore) else open_monitor(store), start_s, end_s)

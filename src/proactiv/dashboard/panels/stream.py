"""The stream panel, the page `proactiv serve` shows for a monitor store: the stream view (posteriors, firings
raw and corrected, violations) over the whole stream, the windows the assertions flagged most, and a player:
clicking a point of the timeline or a flagged window plays that window and says what the model and each
assertion made of it.

The what-if studio is not offered here: it rebuilds everything from a sweep run (its task, its instances, its
grid), and a monitored window is none of a run's instances.
"""

from __future__ import annotations

import dash
import numpy as np
import pandas as pd
from dash import ALL, Input, Output, dcc, html

from proactiv.monitor import MonitorStore
from proactiv.views.audio import wav_data_uri
from proactiv.views.stream import stream_figure

#: the pattern-matching id type of the flagged windows' buttons: ``{"type": FLAG, "step": <step>}``
FLAG = "stream-flag"
GRAPH = {"displaylogo": False}


def flagged_windows(store: MonitorStore, count: int = 12) -> pd.DataFrame:
    """The ``count`` windows with the highest total severity: ``step``, ``start_s``, ``severity`` and the
    assertions that flagged each (``flagged``), most severe first (earliest among equals)."""
    steps = store.steps
    columns = [f"a.{a}" for a in store.assertions]
    if steps.empty or not columns:
        return pd.DataFrame(columns=["step", "start_s", "severity", "flagged"])
    sev = steps[columns].to_numpy()
    total = sev.sum(1)
    order = np.lexsort((steps.step.to_numpy(), -total))
    order = [i for i in order if total[i] > 0][:count]
    flagged = [", ".join(a for a, s in zip(store.assertions, sev[i], strict=True) if s > 0) for i in order]
    return pd.DataFrame({"step": steps.step.to_numpy()[order].astype(int), "start_s": steps.start_s.to_numpy()[order],
                         "severity": total[order], "flagged": flagged})  # fmt: skip


def _step(store: MonitorStore, step) -> int:
    if isinstance(step, bool) or not isinstance(step, (int, float)) or int(step) != step:
        raise ValueError(f"window {step!r}: expected a window number")
    steps = store.steps
    if not (steps.step == int(step)).any():
        raise ValueError(f"window {step}: not one of the {len(steps)} stored windows")
    return int(step)


def window_view(store: MonitorStore, step) -> tuple[list, list]:
    """A player for one window (autoplaying) and what the model and the assertions made of it."""
    step = _step(store, step)
    row = store.steps.set_index("step").loc[step]
    names = store.class_names
    facts = [f"window {step}: {row.start_s:.2f}–{row.end_s:.2f} s, energy {row.energy_db:.1f} dB",
             f"decision {names[int(row.decision)]} ({row.confidence:.0%})"]  # fmt: skip
    fixed = [f"{c.removeprefix('c.')}: {names[int(row[c])]}" for c in store.decision_columns()[1:]]
    if fixed:
        facts.append("corrected — " + ", ".join(fixed))
    copies = [c for c in row.index if c.startswith("copy.")]
    if copies:
        facts.append(
            "copies — " + ", ".join(f"{c.removeprefix('copy.')}: {names[int(row[c])]}" for c in copies)
        )
    flagged = [f"{a} {row[f'a.{a}']:.2f}" for a in store.assertions if row[f"a.{a}"] > 0]
    facts.append("violations — " + (", ".join(flagged) if flagged else "none"))
    found = store.samples(step)
    if found is None:
        player = [
            html.Div(
                "no audio to play: the stream is not a waveform, or its source file moved", className="note"
            )
        ]
    else:
        player = [html.Audio(src=wav_data_uri(*found), controls=True, autoPlay=True, id="stream-player")]
    return player, [html.Div(f, className="kv") for f in facts]


def chosen_step(triggered: dict | None, click: dict | None):
    """The window a click asks for: a flagged window's button (its id) or a timeline point (its customdata)."""
    if isinstance(triggered, dict) and triggered.get("type") == FLAG:
        return triggered.get("step")
    points = (click or {}).get("points") or []
    return points[0].get("customdata") if points else None


def layout(store: MonitorStore) -> html.Div:
    summary = store.summary()
    per_minute = ", ".join(f"{a} {v['per_minute']:.2f}" for a, v in summary["assertions"].items())
    label = {"decision": "raw", "corrected": "all corrections"}
    fired = ", ".join(
        f"{label.get(c, c.removeprefix('c.'))} {v['per_hour']:.0f}" for c, v in summary["firings"].items()
    )
    flags = flagged_windows(store)
    buttons = [html.Button(f"{r.start_s:.1f} s — {r.flagged}", id={"type": FLAG, "step": int(r.step)}, n_clicks=0,
                           className="flag") for r in flags.itertuples()]  # fmt: skip
    return html.Div(
        [
            html.Div(
                f"{summary['minutes']:.1f} min, {summary['steps']} windows ({summary['status']})",
                className="kv",
            ),
            html.Div(f"violations per minute: {per_minute}", className="kv"),
            html.Div(f"firings per hour: {fired}", className="kv"),
            dcc.Graph(id="stream-timeline", figure=stream_figure(store), config=GRAPH),
            html.Div("Click a point of the timeline or a flagged window to hear it.", className="note"),
            html.Div(
                [
                    html.Div(
                        [html.H3("most flagged windows"), html.Div(buttons or "none", id="stream-flags")],
                        className="half",
                    ),
                    html.Div(
                        [html.H3("window"), html.Div(id="stream-audio"), html.Div(id="stream-window")],
                        className="half",
                    ),
                ],
                className="row",
            ),  # fmt: skip
        ],
        className="card",
        id="view-stream",
    )


def callbacks(app: dash.Dash, store: MonitorStore) -> None:
    @app.callback(
        Output("stream-audio", "children"),
        Output("stream-window", "children"),
        Input({"type": FLAG, "step": ALL}, "n_clicks"),
        Input("stream-timeline", "clickData"),
        prevent_initial_call=True,
    )
    def _play(_clicks, click):
        step = chosen_step(dash.ctx.triggered_id, click)
        if step is None:
            return dash.no_update, dash.no_update
        return window_view(store, step)

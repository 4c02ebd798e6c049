"""The stream panel, the page `proactiv serve` shows for a monitor store: the stream view (posteriors, firings
raw and corrected, violations) over the whole stream, the windows the assertions flagged most, and a player:
clicking a point of the timeline or a flagged window plays that window and says what the model and each
assertion made of it.

"What if?" sends the window playing to the what-if studio on the same page. The studio rebuilds a sweep run's
instance, so the window is first swept as a one-instance run (:func:`proactiv.monitor.window_run`: the demo's
grid, kept under the store and reused) with the model's decision on it as the desired output (a stream has no
ground truth) or a class picked beside the button; then the what-if tab's own controls and callbacks
(:mod:`proactiv.dashboard.panels.whatif`) show that run.
"""

from __future__ import annotations

import threading

import dash
import numpy as np
import pandas as pd
from dash import ALL, Input, Output, State, dcc, html

from proactiv.dashboard.data import RunData
from proactiv.dashboard.panels import whatif
from proactiv.monitor import MonitorError, MonitorStore
from proactiv.monitor.window import window_run
from proactiv.store import RunError
from proactiv.views.audio import wav_data_uri
from proactiv.views.stream import stream_figure

#: the pattern-matching id type of the flagged windows' buttons: ``{"type": FLAG, "step": <step>}``
FLAG = "stream-flag"
GRAPH = {"displaylogo": False}
#: the studio section while no window run is shown, and once one is
HIDDEN, SHOWN = {"display": "none"}, {"display": "block"}
#: one window run is swept at a time (two clicks on one window would race for its folder)
_SWEEPING = threading.Lock()


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


def window_view(store: MonitorStore, step) -> tuple[list, list]:
    """A player for one window (autoplaying) and what the model and the assertions made of it."""
    row = store.window(step)
    step = int(row.step)
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


def studio_view(store: MonitorStore, step, label: str | None, opened: dict[str, RunData]) -> tuple:
    """What "What if?" shows for window ``step``: the studio's picker options, instance and sliders
    (:func:`proactiv.dashboard.panels.whatif.controls`) for the window's run, the key of that run in
    ``opened`` (where it is kept for the studio's callbacks), a note on the desired output, and the studio
    section's style; or, when the window cannot be swept, the reason in the note and the section hidden."""
    if step is None:
        return [], None, [], None, html.Div("Choose a window first.", className="note"), HIDDEN
    try:
        with _SWEEPING:
            run = window_run(store, step, label=label)
        key = str(run.path)
        opened[key] = RunData(run.path, compute=False)
    except (ValueError, MonitorError, RunError) as err:
        return [], None, [], None, html.Div(f"No what-if studio: {err}", className="error"), HIDDEN
    names, meta = store.class_names, run.config["monitor_window"]
    decision = names[int(store.window(step).decision)]
    wanted = meta["label"]
    why = (f"the model's own decision on window {meta['step']} (a stream has no ground truth; pick another label "
           "to ask what the input would need to be heard as it)" if wanted == decision
           else f"the label picked (the model decided {decision})")  # fmt: skip
    note = [html.Div(f"Desired output: {wanted}, {why}.", className="kv"),
            html.Div(f"Window run: {len(run.grid)} grid points in {run.path}.", className="note")]  # fmt: skip
    return (*whatif.controls(opened[key], None), key, note, SHOWN)


def opened_run(opened: dict[str, RunData], key) -> RunData:
    """The window run the studio's callbacks ask for by its key (one "What if?" opened)."""
    if key not in opened:
        raise ValueError(f"window run {key!r}: press “What if?” on a window first")
    return opened[key]


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
    asking = html.Div(
        [
            dcc.Store(id="stream-step", data=None),
            dcc.Store(id="whatif-run", data=None),
            html.Div(
                dcc.Dropdown(
                    id="stream-label",
                    options=store.class_names,
                    value=None,
                    clearable=True,
                    placeholder="desired output: the model's decision",
                ),
                style={"width": "320px", "display": "inline-block", "verticalAlign": "middle"},
            ),
            html.Button("What if?", id="stream-whatif", n_clicks=0),
            dcc.Loading(html.Div(id="stream-whatif-note")),
        ],
        style={"marginTop": "10px"},
    )
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
                        [
                            html.H3("window"),
                            html.Div(id="stream-audio"),
                            html.Div(id="stream-window"),
                            asking,
                        ],
                        className="half",
                    ),
                ],
                className="row",
            ),  # fmt: skip
            html.Div([html.H3("what if?"), whatif.layout()], id="stream-studio", style=HIDDEN),
        ],
        className="card",
        id="view-stream",
    )


def callbacks(app: dash.Dash, store: MonitorStore) -> None:
    opened: dict[str, RunData] = {}

    @app.callback(
        Output("stream-audio", "children"),
        Output("stream-window", "children"),
        Output("stream-step", "data"),
        Input({"type": FLAG, "step": ALL}, "n_clicks"),
        Input("stream-timeline", "clickData"),
        prevent_initial_call=True,
    )
    def _play(_clicks, click):
        step = chosen_step(dash.ctx.triggered_id, click)
        if step is None:
            return dash.no_update, dash.no_update, dash.no_update
        return (*window_view(store, step), step)

    @app.callback(Output("whatif-instance", "options"), Output("whatif-instance", "value"),
                  Output("whatif-sliders", "children"), Output("whatif-run", "data"),
                  Output("stream-whatif-note", "children"), Output("stream-studio", "style"),
                  Input("stream-whatif", "n_clicks"), State("stream-step", "data"), State("stream-label", "value"),
                  prevent_initial_call=True)  # fmt: skip
    def _studio(_clicks, step, label):
        return studio_view(store, step, label, opened)

    whatif.studio_callbacks(app, lambda key: opened_run(opened, key), State("whatif-run", "data"))

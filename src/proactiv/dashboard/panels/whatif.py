"""The what-if studio tab: pick any instance of the run's data (a record chosen in the record tab brings its
instance and grid values), move one slider per transform parameter — continuous, marked at the grid's values —
to redraw xT and f(xT) and play xT; "Project" projects this one input on the spot and shows x̂T, x̂T − xT,
f(x̂T) and the attributions of xT and x̂T.

The computation is :class:`proactiv.whatif.Studio`, built once per run (when the tab is first opened) and kept
on the run's :class:`RunData`. A slider spans the grid's values and as far again on each side (within the
parameter's valid range, the identity included); an identity outside the valid range (a clean SNR of +∞) gets
one more position past the end, marked with it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dash
import numpy as np
from dash import ALL, Input, Output, State, dcc, html

from proactiv.analysis.interim import Interim
from proactiv.analysis.runview import format_value
from proactiv.dashboard.data import RunData
from proactiv.dashboard.panels.registry import PanelContext, register_panel
from proactiv.store import RunError
from proactiv.views.audio import wav_data_uri
from proactiv.views.record import record_figure
from proactiv.views.studio import inputs_figure, outputs_figure
from proactiv.views.style import message_figure
from proactiv.whatif import Parameter, Projected, Studio, Transformed

#: the pattern-matching id type of the parameter sliders: ``{"type": SLIDER, "column": <grid column>}``
SLIDER = "whatif-slider"
TAB = "whatif"
#: what the projection area says until "Project" is pressed for the current instance and values
PROJECT_HINT = "Press “Project” to project this transformed input toward its desired output."
#: positions per slider, about (the step is the power of ten nearest below span / POSITIONS)
POSITIONS = 200
GRAPH = {"displaylogo": False}


# ----------------------------------------------------------------------------------------------- studio
def studio(data: RunData) -> Studio | str:
    """The run's studio, built on first use and kept on ``data``; or why the run cannot have one."""
    with data._lock:
        if "whatif" not in data._cache:
            try:
                data._cache["whatif"] = Studio(data.run)
            except RunError as err:
                data._cache["whatif"] = f"No what-if studio for this run: {err}"
        return data._cache["whatif"]


# ----------------------------------------------------------------------------------------------- sliders
@dataclass(frozen=True)
class Scale:
    """Slider positions of one parameter: ``low`` to ``high`` by ``step``; ``off`` is the extra position that
    stands for an identity outside the valid range (None when the identity is inside it)."""

    parameter: Parameter
    low: float
    high: float
    step: float
    off: float | None

    @property
    def decimals(self) -> int:
        return max(0, -math.floor(math.log10(self.step) + 1e-9))

    def value(self, position) -> float:
        """The parameter value at a slider position (snapped to the step; a grid value when on one)."""
        if (
            isinstance(position, bool)
            or not isinstance(position, (int, float))
            or not math.isfinite(position)
        ):
            raise ValueError(f"{self.parameter.column}: slider position {position!r} is not a number")
        if self.off is not None and (position > self.high if self.off > self.high else position < self.low):
            return self.parameter.identity
        value = round(self.low + round((position - self.low) / self.step) * self.step, self.decimals)
        return next(
            (g for g in self.parameter.grid_values if abs(g - value) < 1e-9 * max(1.0, abs(g))), value
        )

    def position(self, value: float) -> float:
        """The slider position of a parameter value (the identity's own position when outside the range)."""
        if self.off is not None and value == self.parameter.identity:
            return self.off
        return float(min(max(value, self.low), self.high))

    def marks(self) -> dict[float, str]:
        """Marks at the grid's values (labels only where they do not crowd) and at an off-range identity."""
        out: dict[float, str] = {}
        last = -math.inf
        for v in self.parameter.grid_values:
            p = self.position(v)
            far = p - last >= (self.high - self.low) / 12 or p == self.off
            out[p] = format_value(v) if far else ""
            last = p if far else last
        return out

    def slider(self, value: float) -> dcc.Slider:
        return dcc.Slider(
            id={"type": SLIDER, "column": self.parameter.column},
            min=min(self.low, self.off if self.off is not None else self.low),
            max=max(self.high, self.off if self.off is not None else self.high),
            step=self.step,
            marks=self.marks(),
            value=self.position(value),
            included=False,
            updatemode="mouseup",
            allow_direct_input=self.off is None,  # a box would show the off position
        )


def scale(parameter: Parameter) -> Scale:
    """The slider of one parameter (see the module docstring for its span)."""
    p = parameter
    finite = [v for v in p.grid_values if math.isfinite(v)]
    inside = p.low <= p.identity <= p.high
    lo, hi = (min(finite), max(finite)) if finite else (p.low, p.high)
    span = hi - lo
    lo, hi = (lo - span, hi + span) if span > 0 else (p.low, p.high)
    if inside:
        lo, hi = min(lo, p.identity), max(hi, p.identity)
    lo, hi = max(lo, p.low), min(hi, p.high)
    step = 10.0 ** math.floor(math.log10((hi - lo) / POSITIONS))
    for _ in range(6):  # every grid value (and the start) a whole number of steps away
        on = [v for v in [*finite, p.low] if abs(v / step - round(v / step)) > 1e-6]
        if not on:
            break
        step /= 10
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    lo = max(p.low, round(math.floor(lo / step + 1e-9) * step, decimals))
    hi = min(p.high, round(math.ceil(hi / step - 1e-9) * step, decimals))
    off = None
    if not inside:
        gap = max(1, round((hi - lo) / 10 / step)) * step
        off = hi + gap if p.identity > p.high else lo - gap
    return Scale(p, lo, hi, step, off)


def _values(found: Studio, ids: list | None, positions: list | None) -> dict[str, float]:
    """Parameter values from the sliders' ids and positions (as the browser sends them)."""
    scales = {p.column: scale(p) for p in found.parameters()}
    out = {}
    for ident, pos in zip(ids or [], positions or [], strict=True):
        column = ident.get("column") if isinstance(ident, dict) else None
        if column not in scales:
            raise ValueError(f"slider {ident!r}: not a parameter of this run")
        out[column] = scales[column].value(pos)
    return out


def controls_key(index, chosen: dict | None) -> list:
    """What the controls were built for (the run and the chosen record): rebuilt when it changes."""
    pair = _pair(chosen)
    return [index, *(pair or (None, None))]


def _pair(chosen: dict | None) -> tuple[int, int] | None:
    try:
        return int(chosen["instance"]), int(chosen["point"])
    except (KeyError, TypeError, ValueError):
        return None


def controls(data: RunData, chosen: dict | None) -> tuple[list[dict], int | None, list]:
    """The instance picker's options and value and one slider per parameter: at the chosen record's instance
    and grid values when it is one of this run's, else the first instance at the identity."""
    found = studio(data)
    if isinstance(found, str):
        return [], None, [html.Div(found, className="error")]
    options = [{"label": found.describe(i), "value": i} for i in range(found.n_instances)]
    pair = _pair(chosen)
    instance, values = 0, {}
    if pair is not None and 0 <= pair[0] < found.n_instances and 0 <= pair[1] < len(found.grid):
        instance, values = pair[0], found.grid[pair[1]].values
    rows = []
    for p in found.parameters():
        label = f"{p.column} ({p.unit}), identity {format_value(p.identity)}"
        rows.append(
            html.Div(
                [html.Label(label), scale(p).slider(values.get(p.column, p.identity))],
                className="whatif-slider",
                style={"margin": "6px 0 14px"},
            )
        )
    return options, instance, rows


def _outputs(found: Studio, outputs: dict, desired):
    """The studio's outputs figure for this run's kind (class probabilities, or output maps and target)."""
    return outputs_figure(found.classifier, found.task.class_names, found.schema.input, outputs, desired)


def _where(found: Studio, seen: Transformed) -> str:
    units = {p.column: p.unit for p in found.parameters()}
    at = ", ".join(f"{c} = {format_value(v)} {units[c]}" for c, v in seen.values.items())
    return at + (f" (grid point {seen.point})" if seen.point is not None else " (between grid points)")


def _outcome(found: Studio, output: np.ndarray, desired, loss: float, on: str) -> str:
    if found.classifier:
        names = list(found.task.class_names or [])
        name = {k: names[k] if k < len(names) else str(k) for k in range(len(output))}
        pred = int(np.argmax(output))
        verdict = "right" if pred == int(desired) else f"wrong (desired {name[int(desired)]})"
        return f"prediction on {on}: {name[pred]} (p {float(output[pred]):.2f}), {verdict} · loss {loss:.4g}"
    cutoff = found.schema.cutoff
    within = (
        "" if cutoff is None else (" within" if loss < cutoff else " outside") + f" the cutoff {cutoff:g}"
    )
    return f"loss of f({on}) against the target: {loss:.4g}{within}"


def _lines(texts: list[str]) -> list:
    return [html.Div(t, className="kv") for t in texts]


# ----------------------------------------------------------------------------------------------- callbacks
def _instance(instance) -> int:
    if isinstance(instance, bool) or not isinstance(instance, (int, float)) or int(instance) != instance:
        raise ValueError(f"instance {instance!r}: pick an instance")
    return int(instance)


def transform_view(data: RunData, instance, ids: list | None, positions: list | None):
    """xT beside x, f(x) and f(xT), a player for xT when it can be heard, and one line each on where the
    sliders are and what the model made of xT."""
    found = studio(data)
    if isinstance(found, str):
        return message_figure(found), message_figure(found), [], []
    try:
        seen = found.transform(_instance(instance), _values(found, ids, positions))
    except ValueError as err:
        return message_figure(str(err)), message_figure(str(err)), [], []
    pictures = inputs_figure({"x (clean)": seen.x, "xT (transformed)": seen.x_t}, found.schema.input)
    outputs = _outputs(found, {"f(x)": seen.output_clean, "f(xT)": seen.output}, seen.desired)
    sound = []
    if seen.audio is not None:
        sound = [
            html.Span("xT ", className="k"),
            html.Audio(src=wav_data_uri(seen.audio, seen.sample_rate), controls=True, id="whatif-player"),
        ]
    sound.append(html.Div(seen.audio_note, className="note"))
    facts = [
        f"{found.describe(seen.instance)} at {_where(found, seen)}",
        _outcome(found, seen.output, seen.desired, seen.loss, "xT"),
    ]
    return pictures, outputs, sound, _lines(facts)


def projection_view(data: RunData, instance, ids: list | None, positions: list | None) -> list:
    """The projection of the current xT: what it moved (x, xT, x̂T, x̂T − xT), f(xT) beside f(x̂T), the
    attributions of xT and x̂T toward the desired output, and one line each on the outcome."""
    found = studio(data)
    if isinstance(found, str):
        return [html.Div(found, className="error")]
    try:
        moved = found.project(_instance(instance), _values(found, ids, positions))
    except ValueError as err:
        return [html.Div(str(err), className="error")]
    seen = moved.before
    children = [
        *_lines(_projection_facts(found, moved)),
        dcc.Graph(
            id="whatif-moved", figure=record_figure(_interim(found, moved), found.schema), config=GRAPH
        ),
    ]
    if found.classifier:  # a tensor target's outputs are in the record view's second row
        figure = _outputs(found, {"f(xT)": seen.output, "f(x̂T)": moved.output}, seen.desired)
        children.append(dcc.Graph(id="whatif-moved-output", figure=figure, config=GRAPH))
    maps = {"attribution of xT": moved.attributions_t, "attribution of x̂T": moved.attributions}
    signed = bool(min(m.min() for m in maps.values()) < 0)
    return children + [
        html.H4("Saliency attributions toward the desired output"),
        dcc.Graph(
            id="whatif-attributions", figure=inputs_figure(maps, found.schema.input, signed), config=GRAPH
        ),
    ]


def _interim(found: Studio, moved: Projected) -> Interim:
    """The projection as the record view draws a record (outputs too when the target is a tensor)."""
    seen = moved.before
    outputs = (
        (None, None, None) if found.classifier else (seen.output, moved.output, np.asarray(seen.desired))
    )
    point = seen.point if seen.point is not None else -1
    return Interim(seen.instance, point, seen.x, seen.x_t, moved.x_proj, {}, *outputs)


def _projection_facts(found: Studio, moved: Projected) -> list[str]:
    rms = float(np.sqrt(np.mean(np.square(moved.diff))))
    state = "converged" if moved.converged else f"did not converge (status {moved.status})"
    return [
        _outcome(found, moved.output, moved.before.desired, moved.loss, "x̂T"),
        f"projection {state} in {moved.steps} step{'' if moved.steps == 1 else 's'}"
        f" · d_x (RMS of x̂T − xT) {rms:.4g} {found.schema.input.unit}",
    ]


def layout(ctx: PanelContext | None = None) -> html.Div:
    """The tab's static part; the callbacks fill the picker, the sliders and the figures. It needs nothing of the
    run, so another page can hold it too (a monitor's window, :mod:`proactiv.dashboard.panels.stream`)."""
    return html.Div(
        [
            dcc.Store(id="whatif-built", data=None),
            html.Div(
                [
                    html.Label("instance"),
                    dcc.Dropdown(id="whatif-instance", options=[], value=None, clearable=False),
                ],
                style={"width": "320px"},
            ),
            html.Div(id="whatif-sliders"),
            dcc.Loading(
                html.Div(
                    [
                        html.Div(id="whatif-facts"),
                        html.Div(
                            [
                                html.Div(dcc.Graph(id="whatif-inputs", config=GRAPH), className="half"),
                                html.Div(dcc.Graph(id="whatif-output", config=GRAPH), className="half"),
                            ],
                            className="row",
                        ),
                        html.Div(id="whatif-audio"),
                    ]
                )
            ),
            html.Button("Project", id="whatif-project", n_clicks=0),
            dcc.Loading(html.Div(PROJECT_HINT, id="whatif-projection", className="note")),
        ]
    )


def callbacks(app, ctx: PanelContext) -> None:
    @app.callback(Output("whatif-instance", "options"), Output("whatif-instance", "value"),
                  Output("whatif-sliders", "children"), Output("whatif-built", "data"), Input("tabs", "value"),
                  Input("run", "value"), Input("record", "data"), State("whatif-built", "data"))  # fmt: skip
    def _controls(tab, index, chosen, built):
        key = controls_key(index, chosen)
        if tab != TAB or built == key:  # built when the tab is opened, again for another run or record
            return dash.no_update, dash.no_update, dash.no_update, dash.no_update
        return (*controls(ctx.run_of(index), chosen), key)

    studio_callbacks(app, ctx.run_of, State("run", "value"))


def studio_callbacks(app, run_of: Callable[[Any], RunData], run: State) -> None:
    """The callbacks of the studio's controls on any page that holds its :func:`layout` and fills its picker and
    sliders (with :func:`controls`): xT redrawn when the instance or a slider moves, the projection on
    "Project". ``run`` is the page's state that names the run, ``run_of`` opens the run it names."""
    sliders = {"type": SLIDER, "column": ALL}

    @app.callback(Output("whatif-inputs", "figure"), Output("whatif-output", "figure"), Output("whatif-audio", "children"),
                  Output("whatif-facts", "children"), Input("whatif-instance", "value"), Input(sliders, "value"),
                  State(sliders, "id"), run, prevent_initial_call=True)  # fmt: skip
    def _transform(instance, positions, ids, index):
        return transform_view(run_of(index), instance, ids, positions)

    @app.callback(Output("whatif-projection", "children"), Input("whatif-project", "n_clicks"),
                  Input("whatif-instance", "value"), Input(sliders, "value"), State(sliders, "id"),
                  run, prevent_initial_call=True)  # fmt: skip
    def _project(_clicks, instance, positions, ids, index):
        # a new instance or new values: the last projection is stale
        if dash.ctx.triggered_id != "whatif-project":
            return PROJECT_HINT
        return projection_view(run_of(index), instance, ids, positions)


register_panel(TAB, tab=TAB, tab_label="What-if studio", layout=layout, callbacks=callbacks, order=80,
               title="What-if studio: move the transform parameters, project on the spot")  # fmt: skip

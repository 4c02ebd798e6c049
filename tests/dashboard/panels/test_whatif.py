"""The what-if tab's plain functions: slider scales, controls that follow the chosen record, the transform and
projection views, and the app's tab and callbacks."""

import math

import dash
import plotly.graph_objects as go
import pytest
import torch
from dash import dcc, html
from torch import nn

import proactiv as pv
from proactiv.dashboard.app import build_app
from proactiv.dashboard.data import RunData
from proactiv.dashboard.panels import whatif
from proactiv.testing import sweep_image_run, write_synthetic_run
from proactiv.whatif import Parameter

SNR = Parameter("noise.snr_db", "dB", -40.0, 120.0, math.inf, (-5.0, 0.0, 5.0, 10.0, 20.0, math.inf))
SPEED = Parameter("speed.factor", "×", 0.25, 4.0, 1.0, (0.8, 1.0, 1.25))


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> RunData:
    run = sweep_image_run(tmp_path_factory.mktemp("whatif-panel") / "img", image_to_image=False)
    return RunData(run.path, compute=False)


def _sliders(rows) -> tuple[list[dict], list[float]]:
    """The sliders' ids and positions, as the browser sends them."""
    sliders = [row.children[1] for row in rows]
    assert all(isinstance(s, dcc.Slider) for s in sliders)
    return [s.id for s in sliders], [s.value for s in sliders]


def _text(children) -> str:
    return " ".join(str(getattr(c, "children", c)) for c in children)


def test_an_infinite_identity_gets_its_own_position_past_the_range():
    scale = whatif.scale(SNR)
    assert scale.low <= -5 and scale.high >= 20 and scale.off > scale.high
    assert scale.value(scale.off) == math.inf and scale.position(math.inf) == scale.off
    assert all(scale.value(scale.position(v)) == v for v in SNR.grid_values)
    assert scale.value(7.3000000001) == 7.3 and scale.value(scale.high) == scale.high
    assert scale.marks()[scale.off] == "∞"
    slider = scale.slider(math.inf)
    assert slider.max == scale.off and slider.value == scale.off and slider.allow_direct_input is False


def test_positions_snap_to_the_step_and_to_grid_values():
    scale = whatif.scale(SPEED)
    assert scale.off is None and 0.25 <= scale.low <= 0.8 and 1.25 <= scale.high <= 4.0
    assert all(abs(v / scale.step - round(v / scale.step)) < 1e-6 for v in SPEED.grid_values)
    assert scale.value(1.2500000000001) == 1.25 and scale.value(1.0317) == round(1.0317, scale.decimals)
    assert set(scale.marks()) == {0.8, 1.0, 1.25} and scale.slider(1.0).allow_direct_input
    for bad in (None, "1", float("nan"), True):
        with pytest.raises(ValueError, match="speed.factor: slider position"):
            scale.value(bad)


def test_controls_follow_the_chosen_record(image):
    options, instance, rows = whatif.controls(image, {"instance": 4, "point": 3})
    _, positions = _sliders(rows)
    assert instance == 4 and len(options) == 12 and options[4]["label"].startswith("#4 · ")
    assert positions == [image.run.grid[3].values[c] for c in image.grid_columns]
    assert whatif.controls(image, None)[1] == 0 and _sliders(whatif.controls(image, None)[2])[1] == [0.0, 0.0]
    assert whatif.controls(image, {"instance": 4, "point": 99})[1] == 0  # not a record of this run
    assert whatif.controls_key(2, {"instance": 4, "point": 3}) == [2, 4, 3]


def test_a_run_without_a_model_says_why(tmp_path):
    run = write_synthetic_run(tmp_path / "syn", n_instances=8)
    data = RunData(run.path, compute=False)
    options, instance, rows = whatif.controls(data, None)
    assert options == [] and instance is None and "cannot rebuild the task" in rows[0].children
    pictures, _, _, _ = whatif.transform_view(data, 0, [], [])
    assert "cannot rebuild the task" in pictures.layout.annotations[0].text


def test_transform_view_draws_xt_and_its_outputs(image):
    _, _, rows = whatif.controls(image, {"instance": 4, "point": 3})
    ids, positions = _sliders(rows)
    pictures, outputs, sound, facts = whatif.transform_view(image, 4, ids, positions)
    assert [type(t) for t in pictures.data] == [go.Heatmap, go.Heatmap]  # x and xT, images
    assert [t.name for t in outputs.data] == ["f(x)", "f(xT)"] and all(
        isinstance(t, go.Bar) for t in outputs.data
    )
    assert "grid point 3" in _text(facts) and "prediction on xT" in _text(facts)
    assert not any(isinstance(c, html.Audio) for c in sound) and "nothing to listen to" in _text(sound)
    _, _, _, facts = whatif.transform_view(image, 4, ids, [p + 7.3 for p in positions])
    assert "between grid points" in _text(facts) and "rotate.degrees = 37.3" in _text(facts)
    pictures, *_ = whatif.transform_view(image, 4, [{"type": whatif.SLIDER, "column": "zoom"}], [1.0])
    assert "not a parameter" in pictures.layout.annotations[0].text
    pictures, *_ = whatif.transform_view(image, None, ids, positions)
    assert "pick an instance" in pictures.layout.annotations[0].text


def test_projection_view_shows_what_moved_and_the_attributions(image):
    _, _, rows = whatif.controls(image, {"instance": 4, "point": 3})
    ids, positions = _sliders(rows)
    children = whatif.projection_view(image, 4, ids, positions)
    graphs = {c.id: c.figure for c in children if isinstance(c, dcc.Graph)}
    assert set(graphs) == {"whatif-moved", "whatif-moved-output", "whatif-attributions"}
    assert len(graphs["whatif-moved"].data) == 4  # x, xT, x̂T, x̂T − xT
    assert [t.name for t in graphs["whatif-moved-output"].data] == ["f(xT)", "f(x̂T)"]
    assert len(graphs["whatif-attributions"].data) == 2
    assert "projection converged in" in _text(children) and "prediction on x̂T" in _text(children)
    error = whatif.projection_view(image, 40, ids, positions)
    assert "instance 40" in error[0].children


def test_a_waveform_run_gets_a_player(tmp_path):
    torch.manual_seed(0)
    model, x = nn.Linear(400, 3), torch.randn(4, 400) * 0.1
    grid = pv.Grid([pv.transforms.get("noise", snr_db=[20, 0])])
    labels = model(x).argmax(1)
    run = pv.sweep(
        model, x, labels, grid, tmp_path / "w", input_kind="waveform", sample_rate=8000, progress=False
    )
    data = RunData(run.path, compute=False)
    ids, positions = _sliders(whatif.controls(data, None)[2])
    pictures, _, sound, _ = whatif.transform_view(data, 1, ids, positions)
    player = next(c for c in sound if isinstance(c, html.Audio))
    assert player.src.startswith("data:audio/wav;base64,") and isinstance(pictures.data[0], go.Scatter)


def test_the_app_has_the_tab_and_its_callbacks(image):
    app = build_app([image])
    assert "tab-whatif" in str(app.layout) and "whatif-sliders" in str(app.layout)
    outputs = " ".join(app.callback_map)
    assert all(k in outputs for k in ("whatif-projection.children", "whatif-inputs.figure", "whatif-sliders"))


def test_controls_are_built_when_the_tab_opens_and_again_for_another_record(image, callbacks_of):
    build = callbacks_of("whatif", [image])["whatif-instance.options"]
    assert build("main", 0, None, None) == (dash.no_update,) * 4  # not built before the tab is opened
    options, instance, rows, key = build("whatif", 0, {"instance": 4, "point": 3}, None)
    assert instance == 4 and len(rows) == len(image.grid_columns) and key == [0, 4, 3]
    assert build("whatif", 0, {"instance": 4, "point": 3}, key) == (dash.no_update,) * 4  # already built
    assert build("whatif", 0, {"instance": 5, "point": 3}, key)[1] == 5
    with pytest.raises(ValueError):
        build("whatif", 3, None, None)

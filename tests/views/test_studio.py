"""The what-if studio's figures: inputs share one colour range (signed changes centred on zero), 1-D inputs are
lines, and the outputs mark the desired class or sit beside the target."""

import numpy as np

from proactiv.schema import input_spec
from proactiv.views.studio import inputs_figure, outputs_figure

IMAGE = input_spec("image", (1, 4, 4), value_range=(0.0, 1.0))
WAVE = input_spec("waveform", (50,), sample_rate=8000)


def test_maps_share_one_colour_range():
    fig = inputs_figure({"x": np.zeros((1, 4, 4)), "xT": np.full((1, 4, 4), 0.5)}, IMAGE)
    assert [t.type for t in fig.data] == ["heatmap", "heatmap"]
    assert {(t.zmin, t.zmax) for t in fig.data} == {(0.0, 0.5)}
    assert [t.showscale for t in fig.data] == [False, True]  # one colour bar for both


def test_a_signed_change_is_centred_on_zero_and_a_magnitude_starts_there():
    change = {"x̂T − xT": np.array([[[-0.2, 0.1], [0.05, 0.0]]])}
    signed = inputs_figure(change, IMAGE, signed=True).data[0]
    assert signed.zmin == -signed.zmax and signed.zmax > 0
    magnitude = inputs_figure(change, IMAGE, signed=False).data[0]
    assert magnitude.zmin == 0.0 and magnitude.colorscale[0][1].startswith("rgb(255")


def test_one_dimensional_inputs_are_lines():
    fig = inputs_figure({"x": np.sin(np.arange(50)), "xT": np.cos(np.arange(50))}, WAVE)
    assert [t.type for t in fig.data] == ["scatter", "scatter"] and [t.name for t in fig.data] == ["x", "xT"]


def test_class_outputs_mark_the_desired_class():
    fig = outputs_figure(True, ["yes", "no", "up"], IMAGE, {"f(xT)": np.array([0.1, 0.7, 0.2])}, 2)
    assert list(fig.data[0].x) == ["yes", "no", "up"] and list(fig.data[0].y) == [0.1, 0.7, 0.2]
    (mark,) = fig.layout.annotations
    assert mark.text == "desired" and mark.x == "up"


def test_tensor_outputs_sit_beside_their_target():
    target = np.ones((1, 4, 4))
    fig = outputs_figure(False, None, IMAGE, {"f(xT)": np.zeros((1, 4, 4))}, target)
    assert [t.type for t in fig.data] == ["heatmap", "heatmap"]
    assert [a.text for a in fig.layout.annotations] == ["y (target)", "f(xT)"]

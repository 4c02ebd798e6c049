"""How every view looks: a fixed colour per class, grid values as ordered categories (∞ last), a symmetric
colour range from finite values only, parameter axes with their unit and only when they vary, inputs drawn
as their schema says, and empty figures that say why."""

import math

import numpy as np

from proactiv.analysis.runview import open_view
from proactiv.schema import input_spec
from proactiv.testing import synthetic_grid, write_synthetic_run
from proactiv.transforms import get
from proactiv.views.style import (
    PALETTE,
    class_colours,
    colorscale,
    finite_limit,
    input_axes,
    message_figure,
    param_axes,
    param_axis,
    value_labels,
    value_order,
)


def test_grid_values_are_ordered_categories_with_infinity_last():
    assert value_labels([math.inf, 20, 0, -5, 20.0, -math.inf]) == ["-∞", "-5", "0", "20", "∞"]
    labels = ["∞", "10", "−∞", "b", "-5", "a", "2.5"]
    assert sorted(labels, key=value_order) == ["−∞", "-5", "2.5", "10", "∞", "a", "b"]  # text after numbers


def test_a_class_keeps_its_colour_whatever_else_is_drawn():
    colours = class_colours(["yes", "no", "up"])
    assert colours == {"yes": PALETTE[0], "no": PALETTE[1], "up": PALETTE[2]}
    many = class_colours([str(i) for i in range(len(PALETTE) + 1)])
    assert many[str(len(PALETTE))] == PALETTE[0]  # the palette wraps instead of failing


def test_a_symmetric_range_comes_from_the_finite_values():
    assert finite_limit([-3.0, 2.0, np.inf, np.nan]) == 3.0
    assert finite_limit([0.0, 0.0]) == finite_limit([]) == finite_limit([np.nan]) == 1.0
    assert finite_limit([], default=0.5) == 0.5


def test_parameter_axes_say_their_unit_and_skip_parameters_that_do_not_vary(tmp_path):
    axis = param_axis("noise.snr_db", get("noise", snr_db=[0]).param, [math.inf, 0, 10])
    assert axis.title == "noise.snr_db (dB)" and axis.labels == ["0", "10", "∞"]
    assert axis.apply({"title": "t"}) == {"title": "t", "type": "category", "categoryorder": "array",
                                          "categoryarray": ["0", "10", "∞"]}  # fmt: skip
    assert param_axis("count", None, [2, 1]).title == "count"
    run = write_synthetic_run(tmp_path / "run", n_instances=8, grid=synthetic_grid([math.inf, 0], [0]))
    view = open_view(run)
    assert [a.column for a in param_axes(view)] == ["noise.snr_db"]  # gain has one value: no curve to draw
    assert [a.column for a in param_axes(view, ["gain.gain_db"])] == ["gain.gain_db"]


def test_inputs_are_drawn_as_their_schema_says():
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    image, spectrogram = input_spec("image", (1, 8, 8)), input_spec("spectrogram", (40, 101))
    assert colorscale(image) == "gray" and colorscale(spectrogram) == "Magma"
    fig = make_subplots(rows=1, cols=2)
    fig.add_trace(go.Heatmap(z=[[0]]), 1, 1)
    input_axes(fig, image, 1, 1, "x")
    input_axes(fig, spectrogram, 1, 2, "x2")
    assert fig.layout.yaxis.autorange == "reversed" and fig.layout.yaxis.scaleanchor == "x"  # upright, square
    assert fig.layout.yaxis2.autorange is None and fig.layout.yaxis2.title.text == spectrogram.row_label
    assert fig.layout.xaxis2.title.text == spectrogram.column_label


def test_an_empty_figure_says_why():
    fig = message_figure("no curves to draw")
    assert not fig.data and fig.layout.annotations[0].text == "no curves to draw"

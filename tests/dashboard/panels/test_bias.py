"""The bias-map panel: one class's mean x̂T − xT over all grid points or the points of one transform value."""

import numpy as np

from proactiv.dashboard import panels
from proactiv.dashboard.data import RunData


def test_a_class_bias_map_at_one_transform_value(data, callbacks_of):
    classes, values, cls, value = panels.bias_choices(data)
    assert "yes" in classes and cls == classes[0] and value == "" and values[0]["value"] == ""
    fig = callbacks_of("bias", [data])["bias.figure"](0, "yes", values[1]["value"])
    col, _, v = values[1]["value"].partition("=")
    expected = data.analysis.bias.mean("yes", where={col: float(v)})
    # a waveform's bias map is a line (mean change, then mean |change|), the planted shift in samples 1000–1400
    assert [t.type for t in fig.data] == ["scatter", "scatter"] and np.allclose(fig.data[0].y, expected)
    assert np.asarray(fig.data[0].y)[1000:1400].mean() > 0.5 > abs(np.asarray(fig.data[0].y)[:1000].mean())


def test_unknown_choices_fall_back_and_a_run_without_maps_says_so(data, tmp_path):
    fig = panels.bias_view(data, "nonsense", "bogus=1")
    assert np.allclose(fig.data[0].y, data.analysis.bias.mean(panels.bias_options(data)[0][0]))
    from proactiv.testing import write_synthetic_run

    bare = RunData(write_synthetic_run(tmp_path / "bare", n_instances=8).path, compute=False)
    assert panels.bias_choices(bare) == ([], [], None, "")
    assert "no bias maps" in panels.bias_view(bare, None, "").layout.annotations[0].text

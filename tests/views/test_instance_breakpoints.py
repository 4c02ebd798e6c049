"""Per-instance breakpoints drawn from hand-made tables: one panel per parameter with the classes that break
first on the left, the earliest instances worded for people, and one instance's boundary with the clean SNR on
the left and × where it is flipped already."""

import math

import numpy as np
import pandas as pd

from proactiv.transforms import get
from proactiv.views.instance_breakpoints import boundary_figure, distribution_figure, earliest_table

PARAMS = {"noise.snr_db": get("noise", snr_db=[0]).param, "gain.gain_db": get("gain", gain_db=[0]).param}


def _table() -> pd.DataFrame:
    """ "no" breaks at 10 dB (a fifth of the way from ∞), "yes" at 0 dB; along gain only "yes" breaks, upward."""
    return pd.DataFrame({
        "instance": [0, 1, 2, 3, 0, 1], "group": ["yes", "no", "yes", "no", "yes", "no"],
        "column": ["noise.snr_db"] * 4 + ["gain.gain_db"] * 2, "side": ["down"] * 4 + ["up", "up"],
        "breakpoint": [0.0, 10.0, 0.5, 12.0, 30.0, np.nan], "range_fraction": [0.8, 0.2, 0.79, 0.18, 0.5, np.nan],
        "evaluations": [7, 6, 7, 6, 5, 9],
    })  # fmt: skip


def test_classes_that_break_first_are_on_the_left_of_each_parameters_panel():
    fig = distribution_figure(_table(), PARAMS)
    assert [a.text for a in fig.layout.annotations] == ["noise.snr_db (dB)", "gain.gain_db (dB)"]
    assert list(fig.layout.xaxis.categoryarray) == ["no", "yes"]  # "no" reaches a fifth of its range
    (noise,) = [t for t in fig.data if t.xaxis == "x"]
    assert list(noise.x) == ["yes", "no", "yes", "no"] and list(noise.y) == [0, 10, 0.5, 12]
    assert list(noise.customdata) == [0, 1, 2, 3]  # hover names the instance
    (gain,) = [t for t in fig.data if t.xaxis == "x2"]
    assert list(gain.y) == [30] and gain.marker.color != noise.marker.color  # the other side, its own colour
    nothing = _table().assign(breakpoint=np.nan)
    assert distribution_figure(nothing, PARAMS).layout.annotations[0].text.startswith("no instance flips")


def test_the_earliest_instances_are_worded_for_people():
    table = earliest_table(_table(), n=3)
    assert table.instance.tolist() == [3, 1, 0]  # each instance once, at its nearest flip (0: gain, at half)
    assert table.columns.tolist() == ["instance", "class", "parameter", "side", "breakpoint", "share of range",
                                      "forward passes"]  # fmt: skip
    assert table.iloc[0].to_dict() == {"instance": 3, "class": "no", "parameter": "noise.snr_db", "side": "down",
                                       "breakpoint": "12", "share of range": 0.18, "forward passes": 6}  # fmt: skip
    assert earliest_table(None).empty


def test_the_boundary_puts_the_clean_snr_on_the_left_and_marks_flipped_points():
    boundary = pd.DataFrame({
        "instance": 3, "column_a": "noise.snr_db", "column_b": "gain.gain_db", "value_a": [math.inf, 10, 0, 0],
        "side": ["up", "up", "up", "down"], "breakpoint": [20.0, 8.0, np.nan, np.nan],
        "flipped_at_identity": [False, False, True, True],
    })  # fmt: skip
    fig = boundary_figure(boundary, PARAMS)
    assert fig.layout.title.text == "instance 3: where it flips"
    assert fig.layout.xaxis.autorange == "reversed"  # the clean (+∞) SNR on the left
    flipped = next(t for t in fig.data if t.name == "flipped already")
    assert list(flipped.x) == [0] and list(flipped.y) == [0.0]  # at gain's identity, once per SNR value
    up = next(t for t in fig.data if t.name == "gain.gain_db up")
    assert list(up.y[:2]) == [20, 8] and fig.layout.yaxis.title.text == "breakpoint along gain.gain_db (dB)"
    assert boundary_figure(None, PARAMS).layout.annotations[0].text.startswith("no boundary curve")

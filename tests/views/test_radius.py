"""The radius view from hand-made tables: instances sorted by their found radius, a bar from the certified to
the found radius, the projection distance d_x beside them, and below, each transform's breakpoint nearest the
identity as a share of its range."""

import numpy as np
import pandas as pd

from proactiv.views.radius import nearest_breakpoints, radius_figure

TABLE = pd.DataFrame({"instance": [5, 2, 9], "label_name": ["a", "b", "a"], "radius_l2": [0.3, 0.1, 0.2],
                      "certified_l2": [0.2, 0.05, 0.2]})  # fmt: skip
BREAKPOINTS = pd.DataFrame({
    "instance": [2, 2, 9, 5], "column": ["noise.snr_db", "noise.snr_db", "blur.sigma", "noise.snr_db"],
    "side": ["down", "up", "up", "down"], "breakpoint": [10.0, np.nan, 0.5, 0.0], "range_fraction": [0.2, np.nan, 0.25, 0.8],
})  # fmt: skip


def test_the_breakpoint_nearest_the_identity_per_instance_and_transform():
    near = nearest_breakpoints(BREAKPOINTS).set_index(["instance", "column"]).breakpoint
    assert near.to_dict() == {(2, "noise.snr_db"): 10.0, (9, "blur.sigma"): 0.5, (5, "noise.snr_db"): 0.0}
    assert (
        nearest_breakpoints(None) is None
        and nearest_breakpoints(BREAKPOINTS.drop(columns=["column"])) is None
    )


def test_instances_sorted_by_found_radius_with_the_certified_gap_and_d_x():
    dx = pd.Series({2: 0.5, 5: 0.6, 9: 0.7})
    fig = radius_figure(TABLE, dx, BREAKPOINTS)
    gap = fig.data[0]
    assert list(gap.x) == ["#2", "#9", "#5"]  # by found radius
    assert np.allclose(gap.base, [0.05, 0.2, 0.2]) and np.allclose(np.add(gap.base, gap.y), [0.1, 0.2, 0.3])
    found = next(t for t in fig.data if t.name == "adversarial l2 (found)")
    assert list(found.y) == [0.1, 0.2, 0.3] and list(found.text) == ["b", "a", "a"]
    drawn = next(t for t in fig.data if t.name.startswith("d_x_l2"))
    assert list(drawn.y) == [0.5, 0.7, 0.6]  # joined on the instance, not on the row
    assert fig.layout.yaxis.type == "log"
    noise = next(t for t in fig.data if t.name == "breakpoint: noise.snr_db")
    assert list(noise.x) == ["#2", "#9", "#5"] and np.allclose(noise.y, [0.2, np.nan, 0.8], equal_nan=True)


def test_without_breakpoints_one_row_and_without_a_radius_a_message():
    fig = radius_figure(TABLE)
    assert {t.yaxis for t in fig.data} == {"y"} and not any(t.name.startswith("d_x") for t in fig.data)
    assert radius_figure(TABLE, norm="linf").layout.annotations[0].text == "no linf radius was computed"
    found_only = radius_figure(TABLE.drop(columns=["certified_l2"]))
    assert [t.name for t in found_only.data] == ["adversarial l2 (found)"]

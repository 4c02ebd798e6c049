"""What the panels share: runs picked by index (validated), the filter the linked views set, its line of text,
and the filter callbacks."""

import pytest

from proactiv.dashboard import panels
from proactiv.dashboard.panels import shared


def test_run_index_is_validated(data):
    assert panels.pick([data], 0) is data and panels.pick([data], None) is data
    for bad in (5, -1, "../x", [0]):
        with pytest.raises(ValueError):
            panels.pick([data], bad)
    with pytest.raises(ValueError, match="no usable run"):
        panels.pick(["corrupt run header", data], 0)


def test_a_selection_sets_only_its_own_part_of_the_filter():
    points = {"points": [{"customdata": 3}, {"customdata": [1]}, {"customdata": "x"}, {"customdata": True}]}
    store = panels.update_filter("emb-points", None, points, None, None, None)
    assert store == {"points": [1, 3], "instances": None, "slice": None}
    store = panels.update_filter("emb-instances", store, None, {"points": [{"customdata": 7}]}, None, None)
    assert store == {"points": [1, 3], "instances": [7], "slice": None}
    assert panels.update_filter("run", store, None, None, None, None) == panels.EMPTY_FILTER


def test_slice_click_toggles(data):
    rows = panels.slices_rows(data, None)
    store = panels.update_filter("slices", None, None, None, {"row": 0}, rows)
    assert store["slice"] == rows[0]["slice"]
    assert panels.update_filter("slices", store, None, None, {"row": 0}, rows)["slice"] is None
    assert (
        panels.update_filter("slices", store, None, None, {"row": 99}, rows) == store
    )  # not a row: unchanged
    assert panels.update_filter("clear", store, None, None, None, None) == panels.EMPTY_FILTER


def test_the_filter_text_says_what_the_views_are_filtered_by(data, callbacks_of):
    text = callbacks_of(shared.callbacks, [data])["filter-text.children"]
    assert text(None).startswith("Showing all records")
    assert text({"points": [1, 2], "instances": None, "slice": 4}) == "Filtered to 2 grid points · slice 4"

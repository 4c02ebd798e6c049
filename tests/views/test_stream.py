"""The stream view of a monitor store: posteriors of the watched classes, firings per decision column (raw, each
correction, all), each assertion's violations at their planted steps, every point carrying its step."""

import pytest

import proactiv as pv
from proactiv.testing.streams import KEYWORDS, PLANTED, write_planted_store
from proactiv.views.stream import stream_figure


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return write_planted_store(tmp_path_factory.mktemp("stream") / "planted")


def _traces(fig, row_axis: str):
    return [t for t in fig.data if t.yaxis == row_axis]


def test_posteriors_firings_and_violations_on_one_time_axis(store):
    fig = pv.views.stream(store.path)
    lines = _traces(fig, "y")
    assert [t.name for t in lines] == KEYWORDS
    firings = {t.name: list(t.customdata) for t in _traces(fig, "y2")}
    assert firings["raw"] == [20, 70, 100, 105, 140, 147, 180] and firings["all corrections"] == [
        22,
        102,
        142,
        182,
    ]
    assert set(firings) == {"raw", "majority", "suppress_flicker", "hold_refractory", "all corrections"}
    violations = {t.name: list(t.customdata) for t in _traces(fig, "y3")}
    assert violations == PLANTED


def test_a_time_range(store):
    fig = stream_figure(store, start_s=10.0, end_s=15.0)
    violations = {t.name: list(t.customdata) for t in _traces(fig, "y3")}
    assert violations["alternation"] == [105] and violations["refractory"] == [147]
    assert violations["flicker"] == [] and "50 windows" in fig.layout.title.text


def test_empty_range_says_so(store):
    fig = stream_figure(store, start_s=100.0)
    assert "no window starts" in fig.layout.annotations[0].text

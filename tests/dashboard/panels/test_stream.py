"""The stream panel over the planted monitor store: the most flagged windows, the window a click asks for, its
player and facts, and refusals of windows the page never sends."""

import pytest

from proactiv.dashboard.monitor_app import build_monitor_app
from proactiv.dashboard.panels.stream import FLAG, chosen_step, flagged_windows, layout, window_view
from proactiv.testing.streams import PLANTED, write_planted_store


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return write_planted_store(tmp_path_factory.mktemp("panel") / "planted")


def test_flagged_windows_most_severe_first(store):
    flags = flagged_windows(store, count=40)
    planted = {s for steps in PLANTED.values() for s in steps}
    assert set(flags.step) == planted  # every planted window, nothing else
    assert flags.severity.is_monotonic_decreasing
    assert flags.set_index("step").loc[105, "flagged"] == "alternation"


def test_a_window_plays_and_says_what_was_made_of_it(store):
    player, facts = window_view(store, 147)
    assert player[0].src.startswith("data:audio/wav;base64,") and player[0].autoPlay
    text = " ".join(f.children for f in facts)
    assert "window 147: 14.70–14.80 s" in text and "decision up" in text and "refractory 0.30" in text
    assert "suppress_flicker: _silence_" in text and "hold_refractory: up" in text


def test_the_click_chooses_the_window():
    assert chosen_step({"type": FLAG, "step": 71}, None) == 71
    assert chosen_step("stream-timeline", {"points": [{"customdata": 180, "x": 18.0}]}) == 180
    assert chosen_step("stream-timeline", {"points": []}) is None


@pytest.mark.parametrize("step", [-1, 240, 3.5, "7", True])
def test_windows_the_page_never_sends_are_refused(store, step):
    with pytest.raises(ValueError, match="window"):
        window_view(store, step)


def test_the_page_holds_the_timeline_and_flags(store):
    page = layout(store)
    assert "view-stream" == page.id
    app = build_monitor_app(store.path)
    assert "stream-timeline" in str(app.layout)


def test_proactiv_serve_on_a_monitor_store_serves_its_stream_page(store, monkeypatch):
    from typer.testing import CliRunner

    import proactiv.dashboard.monitor_app as monitor_app
    from proactiv.cli import app

    asked = {}
    monkeypatch.setattr(monitor_app, "serve_monitor", lambda path, **kw: asked.update(path=path, **kw))
    result = CliRunner().invoke(app, ["serve", str(store.path), "--port", "8123"])
    assert result.exit_code == 0, result.output
    assert asked["path"] == store.path and asked["port"] == 8123 and asked["host"] == "127.0.0.1"


def test_a_monitor_store_is_kept_on_this_machine_unless_public(store):
    from typer.testing import CliRunner

    from proactiv.cli import app

    result = CliRunner().invoke(app, ["serve", str(store.path), "--host", "0.0.0.0"])
    assert result.exit_code == 2 and "--public" in result.output

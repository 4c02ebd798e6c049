"""The stream panel over the planted monitor store: the most flagged windows, the window a click asks for, its
player and facts, "What if?" showing the what-if studio's controls for a window, and refusals of windows the page
never sends."""

import pytest

from proactiv.dashboard.monitor_app import build_monitor_app
from proactiv.dashboard.panels import whatif
from proactiv.dashboard.panels.stream import (
    FLAG,
    HIDDEN,
    SHOWN,
    chosen_step,
    flagged_windows,
    layout,
    opened_run,
    studio_view,
    window_view,
)
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


def _text(children) -> str:
    return " ".join(str(getattr(c, "children", c)) for c in children)


def test_what_if_shows_the_studio_for_a_flagged_window(store):
    opened = {}
    options, instance, rows, key, note, style = studio_view(store, 147, None, opened)
    assert style == SHOWN and instance == 0 and options == [{"label": "#0 · up", "value": 0}]
    sliders = [row.children[1] for row in rows]
    ids, positions = [s.id for s in sliders], [s.value for s in sliders]
    assert [i["column"] for i in ids] == ["audio_noise.snr_db", "speed.factor", "pitch.semitones"]
    assert "Desired output: up, the model's own decision on window 147" in _text(note)
    assert key == str(store.window_path(147)) and "54 grid points" in _text(note)
    _, _, sound, facts = whatif.transform_view(opened_run(opened, key), instance, ids, positions)
    assert "prediction on xT: up" in _text(facts) and "right" in _text(facts)
    assert sound[1].src.startswith("data:audio/wav;base64,")
    moved = whatif.projection_view(opened_run(opened, key), instance, ids, positions)
    assert "prediction on x̂T: up" in _text(moved)


def test_what_if_with_a_picked_label(store):
    opened = {}
    *_, key, note, _ = studio_view(store, 147, "yes", opened)
    assert "Desired output: yes, the label picked (the model decided up)" in _text(note)
    facts = whatif.transform_view(opened[key], 0, [], [])[3]
    assert "prediction on xT: up" in _text(facts) and "wrong (desired yes)" in _text(facts)


@pytest.mark.parametrize(
    ("step", "said"), [(None, "Choose a window first"), (999, "No what-if studio: window 999")]
)
def test_what_if_without_a_window_says_why(store, step, said):
    opened = {}
    options, instance, rows, key, note, style = studio_view(store, step, None, opened)
    assert said in note.children and style == HIDDEN and key is None and opened == {}
    with pytest.raises(ValueError, match="What if"):
        opened_run(opened, "elsewhere")


def test_the_monitor_app_wires_the_studio(store):
    app = build_monitor_app(store)
    assert "stream-whatif" in str(app.layout) and "whatif-sliders" in str(app.layout)
    outputs = " ".join(app.callback_map)
    for output in (
        "whatif-sliders.children",
        "whatif-inputs.figure",
        "whatif-projection.children",
        "stream-step.data",
    ):
        assert output in outputs

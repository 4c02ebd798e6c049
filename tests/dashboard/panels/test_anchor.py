"""The record card's anchor on the planted gain threshold: the sentence names gain alone, the figure shades the
rule, the answer is kept per record, and a note stands in when no record is chosen."""

import pytest
import torch

from proactiv.dashboard.app import build_app
from proactiv.dashboard.data import RunData
from proactiv.dashboard.panels.anchor import HINT, record_anchor
from proactiv.testing.threshold import GAIN, plant_threshold_run, point_of

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> RunData:
    run = plant_threshold_run(tmp_path_factory.mktemp("anchor-panel") / "run")
    return RunData(run.path, compute=False)


def _by_id(children, id_):
    return next(c for c in children if getattr(c, "id", None) == id_)


def test_the_chosen_records_anchor_is_shown_and_kept(data):
    chosen = {"instance": 0, "point": point_of(data.run, -9.0)}
    shown = record_anchor(data, chosen)
    rule = _by_id(shown, "anchor-rule").children
    assert rule.startswith(f"fails whenever {GAIN} ≤ ")
    figure = _by_id(shown, "anchor-graph").figure
    assert figure.layout.title.text == rule and any(s.type == "rect" for s in figure.layout.shapes)
    assert "weighted R²" in _by_id(shown, "anchor-surrogate").children
    assert _by_id(record_anchor(data, chosen), "anchor-graph").figure is figure  # kept, not searched again


def test_no_record_gives_a_note(data):
    (note,) = record_anchor(data, None)
    assert "choose a record" in note.children


def test_the_record_card_has_the_anchor_button(data):
    app = build_app([data.path], compute=False)
    assert "anchor-go" in str(app.layout) and "anchor.children" in app.callback_map
    assert "Find the anchor" in HINT


def test_a_record_the_anchors_step_anchored_shows_its_stored_anchor_without_a_search(tmp_path, monkeypatch):
    from proactiv.analysis import analyze
    from proactiv.dashboard.panels import anchor as panel

    run = plant_threshold_run(tmp_path / "run")
    analyze(run, steps=["anchors"], device="cpu")
    data = RunData(run.path, compute=False)
    table = data.analysis["anchors"].table
    first = table[table.rule.str.len() > 0].iloc[0]
    monkeypatch.setattr(panel, "studio", lambda _: pytest.fail("a stored anchor needs no search"))
    shown = record_anchor(data, {"instance": int(first.instance), "point": int(first.point)}, search=False)
    assert _by_id(shown, "anchor-rule").children.startswith(first.rule)
    assert any(s.type == "rect" for s in _by_id(shown, "anchor-graph").figure.layout.shapes)
    anchored = set(zip(table.instance, table.point, strict=True))
    other = next((0, p) for p in range(len(data.run.grid)) if (0, p) not in anchored)
    (hint,) = record_anchor(data, {"instance": other[0], "point": other[1]}, search=False)
    assert hint.children == HINT  # not stored: the search waits for the button

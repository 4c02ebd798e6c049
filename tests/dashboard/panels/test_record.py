"""The record panel: kept records in the filter, the chosen record's interim view, facts and audio; browser
input validated."""

import json

import numpy as np
import pytest

from proactiv.analysis import interim
from proactiv.dashboard import panels


def test_record_detail_validates_and_shows(data):
    rows = panels.kept_rows(data, None)
    chosen = panels.choose_record(data, "kept", {"row": 0}, rows, None, None)
    fig, facts = panels.record_detail(data, chosen)
    # a waveform is drawn as lines: x, xT, x̂T overlaid and the change x̂T − xT beside them, never a map
    assert [t.type for t in fig.data] == ["scatter"] * 4 and facts
    item = interim(data.run, chosen["instance"], chosen["point"])
    shown = {t.name: np.asarray(t.y) for t in fig.data}
    assert np.allclose(shown["xT (transformed)"], item.x_t) and np.allclose(
        shown["x̂T − xT"], item.diff, atol=1e-6
    )
    audio = panels.record_sound(data, chosen)
    players = [
        c
        for c in audio
        if type(c).__name__ == "Div" and "audio-" in json.dumps(c.to_plotly_json(), default=str)
    ]
    assert len(players) == 3
    assert len(panels.record_detail(data, None)) == 2 and panels.record_sound(data, None) == []
    fig, _ = panels.record_detail(data, {"instance": 10**9, "point": 0})
    assert "no record" in fig.layout.annotations[0].text
    fig, _ = panels.record_detail(data, {"instance": "../../etc/passwd", "point": 0})
    assert "invalid" in fig.layout.annotations[0].text


def test_a_click_in_an_embedding_chooses_a_kept_record(data):
    by_instance = panels.choose_record(
        data, "emb-instances", None, None, {"points": [{"customdata": 0}]}, None
    )
    assert by_instance["instance"] == 0 and data.is_kept(by_instance["instance"], by_instance["point"])
    by_point = panels.choose_record(
        data, "emb-points", None, None, None, None, {"points": [{"customdata": 5}]}
    )
    assert by_point["point"] == 5
    assert (
        panels.choose_record(data, "emb-points", None, None, None, None, {"points": [{"customdata": 999}]})
        is None
    )
    assert panels.choose_record(data, "kept", {"row": 10**6}, [], None, None) is None


def test_the_kept_table_follows_the_filter(data, callbacks_of):
    fn = callbacks_of("record", [data])
    every, columns = fn["kept.data"](0, None)
    assert {c["id"] for c in columns} >= {"instance", "point", "noise.snr_db", "pred_t", "loss_t"}
    instance = every[0]["instance"]
    inside, _ = fn["kept.data"](0, {"instances": [instance]})
    assert 0 < len(inside) < len(every) and {r["instance"] for r in inside} == {instance}
    assert fn["kept.data"](0, {"instances": [10**6]})[0] == []


def test_the_detail_callbacks_draw_the_chosen_record_of_the_picked_run(data, callbacks_of):
    fn = callbacks_of("record", [data])
    row = panels.kept_rows(data, None)[0]
    chosen = {"instance": row["instance"], "point": row["point"]}
    fig, facts = fn["interim.figure"](chosen, 0)
    assert len(fig.data) == 4 and f"instance {row['instance']}" in json.dumps([f.children for f in facts])
    assert len(fn["audio.children"](chosen, 0)) == 5  # "Listen", a note, three players
    # the synthetic run has no model: its attributions and influential examples say so
    attributions = fn["attr-graph.figure"](chosen, "saliency", "desired", 0)
    assert "cannot rebuild the model" in attributions.layout.annotations[0].text
    assert fn["influence.children"](chosen, 0)[0].id == "influence-missing"
    with pytest.raises(ValueError):
        fn["interim.figure"](chosen, 7)

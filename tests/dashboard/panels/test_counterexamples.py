"""The counterexample panel as plain functions: rows follow the filter, a row's detail draws the failing input
beside its partners with their facts and players, browser input is validated."""

from proactiv.analysis import StepContext
from proactiv.dashboard.data import RunData
from proactiv.dashboard.panels.counterexamples import (
    counterexample_columns,
    counterexample_detail,
    counterexample_rows,
    counterexamples_panel,
)


def test_rows_follow_the_filter(data):
    table = data.analysis["counterexamples"]
    rows = counterexample_rows(data, None)
    assert len(rows) == len(table) > 0
    assert {c["id"] for c in counterexample_columns(table)} == set(rows[0])
    point = int(table.point.iloc[0])
    by_point = counterexample_rows(data, {"points": [point], "instances": None, "slice": None})
    assert by_point and {r["point"] for r in by_point} == {point}
    assert len(by_point) == int((table.point == point).sum())
    number = int(table["slice"].max())
    by_slice = counterexample_rows(data, {"points": None, "instances": None, "slice": number})
    assert {r["slice"] for r in by_slice} == {number} and len(by_slice) == int(
        (table["slice"] == number).sum()
    )
    assert counterexample_rows(data, {"instances": [10_000]}) == []
    lonely = next(r for r in rows if r["same_instance_distance"] == "")  # voice v3: passes nowhere
    assert lonely["same_instance_point_values"] == ""


def test_detail_draws_the_failing_input_beside_its_partners_with_players(data):
    table = data.analysis["counterexamples"]
    kept = data.sql("SELECT instance, point FROM kept")
    kept = set(zip(kept.instance, kept.point, strict=True))
    row = next(r for r in counterexample_rows(data, None) if (r["instance"], r["point"]) in kept)
    fig, children = counterexample_detail(data, row)
    titles = [a.text for a in fig.layout.annotations]
    assert len(titles) == 3 and titles[0].startswith("<b>failing</b>")
    assert f"instance {row['instance']}" in titles[0]
    text = " ".join(str(c.children) for c in children)
    assert "predicted" in text and "waveforms as the model received them" in text
    players = [c for c in children if getattr(c, "children", None) and any(
        type(k).__name__ == "Audio" for k in (c.children if isinstance(c.children, list) else []))]  # fmt: skip
    assert 1 <= len(players) <= 3 and len(fig.data) == len(players)  # one player per input drawn
    assert counterexample_detail(data, row)[0] is fig  # cached per row
    found = table[(table.instance == row["instance"]) & (table.point == row["point"])].iloc[0]
    if found.same_class_reason:
        assert found.same_class_reason in text


def test_detail_validates_browser_input(data):
    for bad in (None, {}, {"instance": "x", "point": 1}, {"instance": 10_000, "point": 0, "slice": 1}):
        fig, children = counterexample_detail(data, bad)
        assert children == [] and fig.layout.annotations


def test_image_to_image_panel_has_no_audio_and_says_why(denoise_run):
    data = RunData(denoise_run)
    rows = counterexample_rows(data, None)
    assert rows and "predicted" not in rows[0]
    fig, children = counterexample_detail(data, rows[0])
    assert "nothing to listen to" in " ".join(str(c.children) for c in children)
    tab = counterexamples_panel(data.analysis["counterexamples"], StepContext(data.run, view=data.view))
    assert tab.id == "counterexamples-panel" and fig.data


def test_the_tab_is_interactive_in_the_app_and_an_empty_tab_keeps_its_components(data, callbacks_of):
    from proactiv.dashboard.app import build_app

    app = build_app([data])  # the panel registered against the step brings its callbacks
    assert "counterexamples-table.data" in app.callback_map
    assert any(k.startswith("..counterexample-figure.figure") for k in app.callback_map)
    fn = callbacks_of("counterexamples", [data])
    point = int(data.analysis["counterexamples"].point.iloc[0])
    assert fn["counterexamples-table.data"]({"points": [point]}, 0) == counterexample_rows(
        data, {"points": [point]}
    )
    rows = counterexample_rows(data, None)
    fig, _ = fn["counterexample-figure.figure"]({"row": 1}, rows, 0)
    assert f"instance {rows[1]['instance']}" in fig.layout.annotations[0].text
    assert (
        "click a counterexample"
        in fn["counterexample-figure.figure"]({"row": 99}, rows, 0)[0].layout.annotations[0].text
    )
    empty = counterexamples_panel(
        data.analysis["counterexamples"].iloc[:0], StepContext(data.run, view=data.view)
    )
    ids = {getattr(c, "id", None) for c in empty.children}
    assert {"counterexamples-table", "counterexample-figure", "counterexample-facts"} <= ids

"""The surrogate tab: registered against its step, with callbacks that redraw a feature's shape function and
the chosen record's contributions."""

from proactiv.dashboard.app import build_app
from proactiv.dashboard.data import RunData
from proactiv.dashboard.panels.surrogate import surest_record
from proactiv.views.surrogate import contributions_figure


def test_the_tab_and_its_callbacks_follow_the_choices(run_a, callbacks_of):
    data = RunData(run_a)
    app = build_app([data])
    tab = next(t for t in app.layout["tabs"].children if t.value == "step-surrogate")
    s = data.analysis["surrogate"]
    assert tab.label == "Surrogate" and tab["surrogate-sentence"].children == s.sentence()
    assert {"surrogate-shape.figure", "surrogate-record.figure"} <= set(app.callback_map)
    fn = callbacks_of("surrogate", [data])
    feature = s.importance.feature.iloc[-1]
    assert fn["surrogate-shape.figure"](feature, 0).layout.annotations[0].text == feature
    assert "choose one of" in fn["surrogate-shape.figure"]("../x", 0).layout.annotations[0].text
    row = s.contributions.iloc[0]
    chosen = fn["surrogate-record.figure"]({"instance": int(row.instance), "point": int(row.point)}, 0)
    assert chosen == contributions_figure(s.record(int(row.instance), int(row.point)))
    # no record chosen (or not a record): the failure the surrogate is surest of
    assert fn["surrogate-record.figure"]({"instance": "x"}, 0) == contributions_figure(
        s.record(*surest_record(s))
    )

"""The app shell: a tab per group of registered panels in order, each card and its callbacks; runs that could
not be opened become messages; every callback answers for the picked run and refuses an unknown one."""

import json

import pytest

from proactiv.dashboard.app import build_app
from proactiv.dashboard.data import RunData, open_runs
from proactiv.dashboard.panels import heat_choices

from .loadtest import CALLBACK_ROUTE, callback_body, find


@pytest.fixture(scope="module")
def runs(run_a, run_b) -> list[RunData]:
    return [RunData(run_a), RunData(run_b)]


def test_the_tabs_in_order_with_their_cards(runs):
    tabs = build_app(runs).layout["tabs"].children
    values = [t.value for t in tabs]
    assert values[:3] == ["main", "record", "bias"] and values[-3:] == ["model", "whatif", "compare"]
    assert all(v.startswith("step-") for v in values[3:-3]) and "step-surrogate" in values
    assert all(t.id == f"tab-{t.value}" for t in tabs)
    main = tabs[0]
    assert main.label == "Overview & embeddings"
    assert [c.id for c in main.children] == ["view-overview", "view-embeddings", "view-slices"]
    assert tabs[-1].children[0].children[0].children == "Compare: model-a vs model-b"
    assert [t.value for t in build_app(runs[:1]).layout["tabs"].children][
        -1
    ] == "whatif"  # nothing to compare


def test_corrupt_run_becomes_a_message(tmp_path, run_a):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "run.json").write_text("{ half written")
    opened = open_runs([bad, tmp_path / "missing"], compute=False)
    assert all(isinstance(r, str) for r in opened) and "corrupt" in opened[0]
    app = build_app(opened)
    text = json.dumps(app.layout.to_plotly_json(), default=str)
    assert "corrupt run header" in text and "Traceback" not in text and not app.callback_map
    beside = build_app([opened[0], RunData(run_a)])  # a good run beside a bad one: the picker's index 1
    assert "corrupt run header" in json.dumps(beside.layout.to_plotly_json(), default=str)
    assert beside.layout["run"].value == 1


def test_each_panel_sets_its_own_dropdowns_for_the_picked_run(runs):
    client = build_app(runs).server.test_client()
    deps = client.get("/_dash-dependencies").get_json()
    writers = [d["output"] for d in deps if "options" in d["output"]]
    assert len(writers) == len(set(writers)) >= 3  # overview, embeddings and bias maps: one callback each
    answer = client.post(CALLBACK_ROUTE, json=callback_body(find(deps, "heat-a.options"), {"run.value": 1}))
    assert answer.status_code == 200
    response = answer.get_json()["response"]
    assert response["heat-metric"]["options"] == heat_choices(runs[1])[2]
    for bad in (2, -1, "../run.json"):
        answer = client.post(
            CALLBACK_ROUTE, json=callback_body(find(deps, "heat-a.options"), {"run.value": bad})
        )
        assert answer.status_code == 400 and b"run" in answer.get_data()

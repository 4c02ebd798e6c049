"""The model card panel: the picked run's model's own training measures (metrics.json beside it, hand-written
here) — the key figures exactly as stored, the operating curve with the model's point at its calibrated offset,
the noise subplot only when measured, and one sentence naming the file when there is none."""

import json

import pytest

from proactiv.dashboard.app import build_app
from proactiv.dashboard.data import RunData
from proactiv.testing import write_synthetic_run

CURVE = [
    {"unknown_offset": 0.0, "keyword_recall": 0.99, "false_accept_rate": 0.20},
    {"unknown_offset": 1.25, "keyword_recall": 0.93, "false_accept_rate": 0.04},
    {"unknown_offset": 2.5, "keyword_recall": 0.81, "false_accept_rate": 0.01},
]
METRICS = {
    "epochs": 7,
    "train_seconds": 1234.4,
    "strategy": {"name": "augment"},
    "pgd": {"norm": "l2", "steps": 10, "n": 200, "accuracy": {"4": 0.875}},
    "calibration": {"unknown_offset": 1.25, "silence": {"silence_offset": -0.5}},
    "test": {"accuracy": 0.9123, "per_engine": {"espeak": 0.8877, "flite": 0.95}, "operating_curve": CURVE},
    "open_set": {
        "unknown_words": {"false_accept_rate": 0.0321, "near_miss": {"false_accept_rate": 0.0578}},
        "running_speech": {"false_accepts_per_hour": 12.76},
    },
    "noise": {
        "kinds": {"white": {"20": {"accuracy": 0.9, "keywords_as_silence": 0.0},
                            "0": {"accuracy": 0.4, "keywords_as_silence": 0.3}}},
        "running_speech_white": {"20": {"false_accepts_per_hour": 63.7, "hit_rate": 0.49},
                                 "5": {"false_accepts_per_hour": 93.4, "hit_rate": 0.29}},
    },
}  # fmt: skip


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_synthetic_run(tmp_path_factory.mktemp("card") / "run", n_instances=8, shape=(16,)).path


def opened(tiny, folder=None, metrics=None) -> RunData:
    """The tiny run opened for the dashboard, its config naming ``folder`` as the model (with ``metrics`` as
    its metrics.json when given); no model path when ``folder`` is None."""
    data = RunData(tiny, compute=False)
    if folder is not None:
        folder.mkdir(exist_ok=True)
        if metrics is not None:
            (folder / "metrics.json").write_text(metrics if isinstance(metrics, str) else json.dumps(metrics))
        data.run.header["config"]["model"] = {"path": str(folder)}
    return data


def card(data: RunData) -> dict:
    """The card as the app draws it for the first run: the components by id."""
    tab = next(t for t in build_app([data], compute=False).layout["tabs"].children if t.value == "model")
    assert tab.label == "Model card" and tab.children[0].id == "view-model_card"
    assert tab.children[0].children[0].children == "The model: what its training measured"
    return tab


def cells(table) -> list[list[str]]:
    """A table's rows (header row first) as their cells' text."""
    head, body = table.children
    return [[c.children for c in head.children.children]] + [
        [c.children for c in r.children] for r in body.children
    ]


def test_the_key_figures_are_the_stored_numbers_and_the_curve_marks_the_calibrated_offset(tiny, tmp_path):
    tab = card(opened(tiny, tmp_path / "kws", METRICS))
    assert cells(tab["model-card-figures"]) == [
        ["key figure", "value"],
        ["test accuracy", "91.2%"],
        ["test accuracy: espeak", "88.8%"],
        ["test accuracy: flite", "95.0%"],
        ["unknown-word offset", "+1.25"],
        ["_silence_ offset", "-0.50"],
        ["unknown words taken for a keyword", "3.2%"],
        ["near-miss words taken for a keyword", "5.8%"],
        ["false accepts per hour of running speech", "12.8"],
        ["training time", "1,234 s"],
        ["epochs", "7"],
    ]
    fig = tab["model-card-graph"].figure
    curve = next(t for t in fig.data if t.name == "as the _unknown_ offset moves")
    assert list(curve.x) == [0.20, 0.04, 0.01] and list(curve.y) == [0.99, 0.93, 0.81]
    (mine,) = [t for t in fig.data if t.name == "the model (offset +1.25)"]
    assert (list(mine.x), list(mine.y)) == ([0.04], [0.93])  # the point at the calibrated offset, not another
    assert [t.name for t in fig.data if t.xaxis == "x2"] == [
        "white: accuracy",
        "white: keywords decided _silence_",
    ]
    assert cells(tab["model-card-speech"]) == [["20 dB", "5 dB"], ["64 (49%)", "93 (29%)"]]
    training = tab["model-card-training"].children
    assert training[1].children == "augment"  # the strategy emphasised, as the report does
    assert "10-step L2 PGD attack on the model input: ε 4: 87.5% (200 inputs)." in training[-1]
    assert str(tmp_path / "kws" / "metrics.json") in str(
        tab["view-model_card"].children
    )  # where it comes from


def test_what_the_metrics_do_not_hold_is_left_out(tiny, tmp_path):
    older = {"calibration": {"unknown_offset": 2.5}, "test": {"accuracy": 0.5, "operating_curve": CURVE},
             "open_set": {"unknown_words": {"false_accept_rate": None}}}  # fmt: skip
    tab = card(opened(tiny, tmp_path / "older", older))
    assert cells(tab["model-card-figures"])[1:] == [
        ["test accuracy", "50.0%"],
        ["unknown-word offset", "+2.50"],
    ]
    fig = tab["model-card-graph"].figure
    assert [t.name for t in fig.data] == ["as the _unknown_ offset moves", "the model (offset +2.50)"]
    assert (fig.data[1].x[0], fig.data[1].y[0]) == (0.01, 0.81)
    ids = str(tab.to_plotly_json())
    assert (
        "model-card-speech" not in ids
        and "model-card-training" not in ids
        and "model-card-missing" not in ids
    )


@pytest.mark.parametrize(
    ("folder", "metrics", "sentence"),
    [
        (None, None, "No model card: the run's config names no model path (a model passed in Python), so there "
                     "is no metrics.json to read."),
        ("bare", None, "No model card: {file} does not exist"),
        ("broken", "{ half written", "No model card: {file} could not be read as JSON (Expecting property name"),
        ("listed", "[1, 2]", "No model card: {file} holds a JSON list, not an object of training metrics."),
        ("arch", {"arch": "dscnn"}, "{file} holds none of the measures a model card shows"),
        ("edited", {"noise": {"running_speech_white": {"20": {"false_accepts_per_hour": 3.0}}}},
         "No model card: {file} lacks a field the card reads, or holds it in another form (KeyError: 'hit_rate')"),
    ],
)  # fmt: skip
def test_a_model_without_a_card_is_said_naming_the_file(tiny, tmp_path, folder, metrics, sentence):
    tab = card(opened(tiny, None if folder is None else tmp_path / folder, metrics))
    said = tab["model-card-missing"].children
    assert said.startswith(sentence.format(file=tmp_path / str(folder) / "metrics.json"))
    assert "model-card-graph" not in str(tab.to_plotly_json())


def test_the_card_follows_the_picked_run(tiny, tmp_path, callbacks_of):
    runs = [opened(tiny, tmp_path / "kws", METRICS), opened(tiny, tmp_path / "bare")]
    follow = callbacks_of("model_card", runs)["model-card.children"]
    assert any(getattr(c, "id", None) == "model-card-figures" for c in follow(0))
    (said,) = follow(1)
    assert said.children.startswith(f"No model card: {tmp_path / 'bare' / 'metrics.json'} does not exist")
    with pytest.raises(ValueError, match="no usable run"):
        follow(2)

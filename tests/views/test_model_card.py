"""The model card section: the training's own measures drawn from metrics.json beside the run's model."""

import json

import pytest

from proactiv import views
from proactiv.testing import write_synthetic_run
from proactiv.views.model_card import card_figure, model_metrics
from proactiv.views.sections import SectionContext, sections

METRICS = {
    "calibration": {"unknown_offset": 1.5},
    "test": {"operating_curve": [
        {"unknown_offset": 0.0, "keyword_recall": 0.99, "false_accept_rate": 0.20},
        {"unknown_offset": 1.5, "keyword_recall": 0.95, "false_accept_rate": 0.05},
        {"unknown_offset": 3.0, "keyword_recall": 0.80, "false_accept_rate": 0.01},
    ]},
    "noise": {
        "kinds": {"white": {"20": {"accuracy": 0.9, "keywords_as_silence": 0.0},
                            "0": {"accuracy": 0.4, "keywords_as_silence": 0.3}}},
        "running_speech_white": {"20": {"false_accepts_per_hour": 12.0, "hit_rate": 0.5}},
    },
}  # fmt: skip


@pytest.fixture
def run(tmp_path):
    return write_synthetic_run(tmp_path / "run", n_instances=4)


def with_model(run, folder, metrics):
    folder.mkdir(exist_ok=True)
    if metrics is not None:
        (folder / "metrics.json").write_text(json.dumps(metrics))
    run.header["config"] = {"model": {"path": str(folder)}}
    return run


def section_html(run):
    (card,) = [s for s in sections() if s.key == "model_card"]
    return card.html(SectionContext(run))


def test_the_card_draws_the_operating_curve_with_the_models_point_and_the_noise_measures(run, tmp_path):
    with_model(run, tmp_path / "model", METRICS)
    fig = views.model_card(run)
    names = [t.name for t in fig.data]
    assert names == ["as the _unknown_ offset moves", "the model (offset +1.50)", "white: accuracy",
                     "white: keywords decided _silence_"]  # fmt: skip
    assert (fig.data[1].x[0], fig.data[1].y[0]) == (0.05, 0.95)  # the model's own point, not another
    assert list(fig.data[2].x) == [20.0, 0.0] and list(fig.data[3].y) == [0.0, 0.3]
    html = section_html(run)
    assert "The model: what its training measured" in html and "<td>12 (50%)</td>" in html
    assert "<tr><td>unknown-word offset</td><td>+1.50</td></tr>" in html  # the key figures, as stored


def test_metrics_the_section_cannot_read_are_said_naming_the_file_and_the_report_stands(run, tmp_path):
    with_model(run, tmp_path / "broken", None)
    (tmp_path / "broken" / "metrics.json").write_text("{ half written")
    assert section_html(run) == (f"<h2>The model: what its training measured</h2><p>No model card: "
                                 f"{tmp_path / 'broken' / 'metrics.json'} could not be read as JSON (Expecting "
                                 "property name enclosed in double quotes: line 1 column 3 (char 2)).</p>")  # fmt: skip
    edited = {**METRICS, "noise": {"running_speech_white": {"20": {"false_accepts_per_hour": 12.0}}}}
    with_model(run, tmp_path / "edited", edited)  # a running-speech level without its hit rate
    html = section_html(run)
    assert f"{tmp_path / 'edited' / 'metrics.json'} lacks a field the card reads" in html
    assert "(KeyError: &#x27;hit_rate&#x27;)" in html


def test_no_metrics_no_section_and_the_view_says_why(run, tmp_path):
    with_model(run, tmp_path / "bare", None)
    assert model_metrics(run) is None and section_html(run) is None
    with pytest.raises(ValueError, match="holds no metrics.json"):
        views.model_card(run)
    assert card_figure({"arch": "dscnn"}) is None  # metrics without the measures: nothing to draw


def test_the_training_strategy_and_the_accuracy_under_pgd_are_said_even_without_a_figure(run, tmp_path):
    digits = {"strategy": {"name": "adversarial", "epsilon": 1.0, "steps": 5, "norm": "l2"},
              "pgd": {"norm": "l2", "steps": 10, "n": 540, "accuracy": {"0.5": 0.937, "1": 0.722}}}  # fmt: skip
    with_model(run, tmp_path / "digits", digits)
    html = section_html(run)
    assert "Trained with the <b>adversarial</b> strategy (epsilon 1.0, steps 5, norm l2)." in html
    assert "10-step L2 PGD attack on the model input: ε 0.5: 93.7%, ε 1: 72.2% (540 inputs)" in html
    with pytest.raises(ValueError, match="holds no metrics.json with an operating curve"):
        views.model_card(run)  # nothing to draw: the sentence is the section
    with_model(run, tmp_path / "kws", {**METRICS, "strategy": {"name": "augment"}})
    assert "Trained with the <b>augment</b> strategy." in section_html(
        run
    ) and "<td>12 (50%)</td>" in section_html(run)

"""The record detail's attributions as plain functions: the methods a run's model supports, overlays of the
chosen record (model rebuilt once per run), and messages for runs or records that have nothing to draw; and the
attributions step's tab."""

import numpy as np
import pytest

from proactiv.analysis.attribution import shift_by_value, shift_sentence
from proactiv.dashboard.app import build_app
from proactiv.dashboard.data import Filter, RunData
from proactiv.dashboard.panels.attribution import (
    MODEL_KEY,
    attribution_methods,
    attribution_targets,
    record_attribution,
)


@pytest.fixture(scope="module")
def denoise(denoise_run) -> RunData:
    return RunData(denoise_run, compute=False)


def _message(fig) -> str:
    return " ".join(a.text for a in fig.layout.annotations)


def test_methods_and_targets_follow_the_model_and_the_schema(denoise, run_a):
    assert [o["value"] for o in attribution_methods(denoise)] == [
        "saliency",
        "integrated_gradients",
        "gradcam",
        "occlusion",
    ]
    assert attribution_targets(denoise) == [{"label": "target tensor", "value": "desired"}]
    synthetic = RunData(run_a, compute=False)  # a run without a model: nothing to offer, and why
    assert attribution_methods(synthetic) == []
    fig = record_attribution(synthetic, {"instance": 0, "point": 0}, "saliency")
    assert "no attributions: cannot rebuild the model" in _message(fig)


def test_record_overlay_of_an_image_run(denoise):
    pair = denoise.kept_records(Filter(), limit=1)
    chosen = {"instance": int(pair.instance[0]), "point": int(pair.point[0])}
    fig = record_attribution(denoise, chosen, "saliency")
    # x, xT, x̂T: each the image and its attribution over it
    assert [t.type for t in fig.data] == ["heatmap"] * 6
    shares = [np.asarray(t.z, dtype=float) for t in fig.data[1::2]]
    # each map as its share of that input's attribution (x is the target of the identity denoiser: no gradient)
    assert all(np.isclose(s.sum(), 1.0) or not s.any() for s in shares) and np.isclose(shares[1].sum(), 1.0)
    model = denoise._cache[MODEL_KEY]
    assert record_attribution(denoise, chosen, "saliency") is fig and denoise._cache[MODEL_KEY] is model
    cam = record_attribution(denoise, chosen, "gradcam")
    assert cam is not fig and [t.type for t in cam.data] == ["heatmap"] * 6


@pytest.mark.parametrize(
    ("chosen", "method", "says"),
    [
        (None, "saliency", "click a record"),
        ({"instance": "x"}, "saliency", "click a record"),
        ({"instance": 0, "point": 0}, "lime", "unknown method 'lime'"),
        ({"instance": 999, "point": 0}, "saliency", "no arrays were kept for record (999, 0)"),
    ],
)
def test_bad_choices_get_a_message(denoise, chosen, method, says):
    assert says in _message(record_attribution(denoise, chosen, method))


def test_the_step_tab_draws_the_stored_shift_and_the_record_card_follows_the_model(
    classifier_run, callbacks_of
):
    data = RunData(classifier_run, compute=False)
    app = build_app([data])
    tab = next(t for t in app.layout["tabs"].children if t.value == "step-attributions")
    summary = shift_by_value(data.analysis["attributions"], data.run)
    assert tab.label == "Attributions" and tab["attributions-sentence"].children == shift_sentence(summary)
    assert tab["attributions-graph"].figure.data
    methods = app.layout["attr-method"].options  # the record card offers what this CNN supports
    assert [o["value"] for o in methods] == [o["value"] for o in attribution_methods(data)] and len(
        methods
    ) == 4
    kept = data.kept_records(Filter(), limit=1)
    chosen = {"instance": int(kept.instance[0]), "point": int(kept.point[0])}
    fig = callbacks_of("record", [data])["attr-graph.figure"](chosen, "saliency", "predicted", 0)
    assert [t.type for t in fig.data] == [
        "heatmap"
    ] * 6 and "toward the predicted target" in fig.layout.title.text

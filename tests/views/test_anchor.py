"""The anchor view on the planted gain threshold: the outcome along gain with the rule's region shaded, the record
marked, the sentence as the title; two named parameters give a map with the rule's rectangle."""

import html

import numpy as np
import pytest

import proactiv as pv
from proactiv.analysis.anchor import Anchor, Condition
from proactiv.testing.threshold import GAIN, NOISE, THRESHOLDS_DB, plant_threshold_run, point_of
from proactiv.views.anchor import anchor_figure


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    return plant_threshold_run(tmp_path_factory.mktemp("anchor-view") / "run")


def test_the_failing_record_is_drawn_along_gain_with_its_region_shaded(planted):
    fig = pv.views.anchor(planted, 0, point_of(planted, -9.0), n=37, device="cpu", surrogate_samples=0)
    assert fig.layout.title.text.startswith(f"fails whenever {GAIN} ≤ ")
    assert fig.layout.xaxis.title.text == GAIN
    (region,) = [s for s in fig.layout.shapes if s.type == "rect"]
    assert region.x0 == -12.0 and region.x1 < THRESHOLDS_DB[0] + 1.0
    (mark,) = [s for s in fig.layout.shapes if s.type == "line"]
    assert mark.x0 == -9.0
    curve, right, wrong = fig.data
    assert len(curve.x) == 37
    assert (
        max(wrong.x) < THRESHOLDS_DB[0] + 0.5 < min(right.x) + 1.0
    )  # the model is wrong below the threshold
    assert np.all(np.diff(curve.y) >= -1e-6)  # louder is never less sure here


def test_two_named_parameters_give_a_map_with_the_rules_rectangle():
    spans = {GAIN: (-12.0, 6.0), NOISE: (20.0, 40.0)}
    rule = (Condition(GAIN, -12.0, -6.6, spans[GAIN], None, (-8.4, -6.0)),
            Condition(NOISE, 30.0, 40.0, spans[NOISE], (28.0, 32.0), None))  # fmt: skip
    found = Anchor(0, 5, {GAIN: -9.0, NOISE: 40.0}, True, rule, 0.97, 300, 0.15, 900, 0.95, True, None, spans)
    grid = {GAIN: np.linspace(-12, 6, 5), NOISE: np.linspace(20, 40, 3), "score": np.zeros((5, 3)),
            "right": np.zeros((5, 3), bool)}  # fmt: skip
    fig = anchor_figure(found, grid)
    heat, record = fig.data
    assert heat.z.shape == (3, 5) and (record.x[0], record.y[0]) == (-9.0, 40.0)
    (box,) = fig.layout.shapes
    assert (box.x0, box.x1, box.y0, box.y1) == (-12.0, -6.6, 30.0, 40.0)
    assert fig.layout.title.text == found.describe()
    assert "30 ≤ noise.snr_db ≤ 40" not in found.describe() and f"{NOISE} ≥ 30" in found.describe()


def test_the_report_section_draws_the_stored_anchors_of_the_worst_records(planted):
    from proactiv.analysis import analyze
    from proactiv.views.sections import SectionContext, sections_of

    analysis = analyze(planted, steps=["anchors"], device="cpu")
    (section,) = sections_of("anchors")
    ctx = SectionContext(planted, analysis=analysis)
    page = section.html(ctx)
    stored = analysis["anchors"].table
    assert page.startswith("<h2>Anchors: where the worst records fail</h2>")
    assert "2 anchored, 0 not checked" in page and "surrogate_fidelity" in page
    for row in stored.itertuples():
        assert html.escape(row.rule) in page  # the sentence, its precision, coverage and samples
    assert len(ctx.figures) == len(stored)  # one outcome figure per anchored record, drawn without the model
    titles = sorted(f.layout.title.text for f in ctx.figures)
    assert titles == sorted(stored.rule) and all(f.layout.xaxis.title.text == GAIN for f in ctx.figures)
    assert all(len(f.data[0].x) == 41 for f in ctx.figures)

    unchecked = analyze(planted, steps=["anchors"], settings={"anchors": {"budget": 40}}, device="cpu")
    ctx = SectionContext(planted, analysis=unchecked)
    page = section.html(ctx)
    assert "not checked" in page and "ran out" in page and not ctx.figures  # no rule drawn as if found

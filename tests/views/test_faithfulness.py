"""Faithfulness view on a tiny image classifier: each method's mean deletion curve beside random deletion's, a table
of the figures with the verdicts (flagged methods in red), a message for a run whose step was skipped, and the
report section right after the attribution maps, naming a flagged method."""

import numpy as np
import pytest
import torch

from proactiv import views
from proactiv.analysis import analyze, registered
from proactiv.analysis.faithfulness import faithfulness_summary
from proactiv.analysis.faithfulness_metrics import Explainer, register_explainer, unregister_explainer
from proactiv.testing import sweep_image_run
from proactiv.views.faithfulness import FLAGGED, RANDOM, faithfulness_figure, flagged_methods
from proactiv.views.sections import SectionContext, sections_of

torch.set_num_threads(1)
METHODS = ["saliency", "gradcam", "input_itself"]


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    """Six random 8×8 images, a fixed random 3-class CNN; faithfulness of saliency, Grad-CAM and the input itself
    (a planted "method" that ignores the model) stored."""
    register_explainer(Explainer("input_itself", lambda model, inputs, targets, **_: inputs.detach().clone()))
    run = sweep_image_run(
        tmp_path_factory.mktemp("faith") / "run", image_to_image=False, n_instances=6, size=8
    )
    analyze(run, steps=["faithfulness"], settings={"faithfulness": {"faithfulness_methods": METHODS, "deletion_steps": 5}},
            device="cpu")  # fmt: skip
    yield run
    unregister_explainer("input_itself")


def test_deletion_curves_per_method_beside_random_and_a_table_of_verdicts(image_run):
    fig = views.faithfulness(image_run)
    lines = [t for t in fig.data if t.type == "scatter"]
    assert [t.name for t in lines] == [*METHODS, "random deletion"]
    assert lines[-1].line.dash == "dash" and lines[-1].line.color == RANDOM
    assert all(len(t.x) == 6 and t.x[0] == 0 and t.x[-1] == 1 for t in lines)  # 5 steps: 0 … 100 % deleted
    assert all(
        np.isclose(t.y[0], lines[-1].y[0]) for t in lines
    )  # nothing deleted: one score for every order
    table = next(t for t in fig.data if t.type == "table")
    assert list(table.cells.values[0]) == METHODS
    verdicts = dict(zip(table.cells.values[0], table.cells.values[-1], strict=True))
    assert "randomisation flagged" in verdicts["input_itself"]
    colours = dict(zip(METHODS, table.cells.font.color[0], strict=True))
    assert colours["input_itself"] == FLAGGED
    assert "probability of the explained class" in fig.layout.yaxis.title.text


def test_the_figure_follows_the_stored_table(image_run):
    stored = analyze(image_run, steps=["faithfulness"], device="cpu",
                     settings={"faithfulness": {"faithfulness_methods": METHODS, "deletion_steps": 5}})["faithfulness"]  # fmt: skip
    fig = faithfulness_figure(stored)
    np.testing.assert_allclose(fig.data[0].y, stored.attrs["curves"]["saliency"])
    summary = faithfulness_summary(stored)
    table = next(t for t in fig.data if t.type == "table")
    assert table.cells.values[1][0] == f"{summary.infidelity_rel[0]:.3f}"
    flagged = flagged_methods(stored)
    assert any(m.startswith("input_itself (") and "randomisation" in m for m in flagged)
    assert all(m.split(" (")[0] in METHODS for m in flagged)


def test_a_skipped_step_gets_a_message(run):
    fig = views.faithfulness(run)  # a synthetic run: no model to rebuild
    assert "no faithfulness figures" in fig.layout.annotations[0].text
    assert faithfulness_figure(None).layout.annotations[0].text == "no faithfulness figures were computed"


def test_the_report_section_follows_the_attributions_and_names_flagged_methods(image_run):
    order = [s.name for s in registered()]
    assert order.index("faithfulness") == order.index("attributions") + 1
    ctx = SectionContext(image_run)
    (section,) = [s for s in sections_of("faithfulness") if s.step == "faithfulness"]
    page = section.html(ctx)
    assert page.startswith("<h2>Faithfulness: can the attributions be believed?</h2><p class='note'>")
    assert "Read these maps with care: " in page and "input_itself (" in page
    assert len(ctx.figures) == 1 and ctx.figures[0].data[0].name == "saliency"

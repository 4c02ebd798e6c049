"""The faithfulness tab: the stored figures' sentence, the flagged methods named above the figure, and the figure
of :mod:`proactiv.views.faithfulness`."""

import numpy as np

from proactiv.analysis.faithfulness import faithfulness_summary, summary_sentence
from proactiv.dashboard.app import build_app
from proactiv.dashboard.data import RunData
from proactiv.dashboard.panels.faithfulness import faithfulness_tab
from proactiv.views.faithfulness import flagged_methods


def test_the_tab_draws_the_stored_figures(classifier_run):
    data = RunData(classifier_run, compute=False)
    tabs = build_app([data]).layout["tabs"].children
    values = [t.value for t in tabs]
    assert values.index("step-faithfulness") == values.index("step-attributions") + 1
    tab = tabs[values.index("step-faithfulness")]
    table = data.analysis["faithfulness"]
    assert tab.label == "Faithfulness"
    assert tab["faithfulness-sentence"].children == summary_sentence(faithfulness_summary(table))
    curves = [t for t in tab["faithfulness-graph"].figure.data if t.type == "scatter"]
    assert [t.name for t in curves] == [*table.attrs["methods"], "random deletion"]
    np.testing.assert_allclose(curves[-1].y, table.attrs["random_curve"])


def test_flagged_methods_are_named_above_the_figure(classifier_run):
    data = RunData(classifier_run, compute=False)
    table = data.analysis["faithfulness"].copy()
    table.attrs = dict(data.analysis["faithfulness"].attrs)
    table.loc[table.method == "saliency", "randomised_spearman"] = 0.9  # as if its maps ignored the model
    div = faithfulness_tab(table, None)
    assert "saliency (randomisation)" in flagged_methods(table)
    assert div["faithfulness-flagged"].children.startswith("Read these maps with care: ")
    assert "saliency (randomisation)" in div["faithfulness-flagged"].children
    table.loc[:, "randomised_spearman"] = 0.0
    table.loc[:, "deletion_ratio"] = 0.1
    quiet = faithfulness_tab(table, None)
    assert [c.id for c in quiet.children] == ["faithfulness-sentence", "faithfulness-graph"]

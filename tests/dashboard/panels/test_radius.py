"""The radius tab: each instance's found radius beside its projection distance, and the sentence on how
fragile the model is."""

import numpy as np

from proactiv.analysis.radius import fragility_sentence, projection_distance
from proactiv.dashboard.app import build_app
from proactiv.dashboard.data import RunData


def test_the_tab_draws_the_stored_radii_smallest_first(classifier_run):
    data = RunData(classifier_run, compute=False)
    tab = next(t for t in build_app([data]).layout["tabs"].children if t.value == "step-radius")
    table = data.analysis["radius"]
    assert tab["radius-sentence"].children == fragility_sentence(table, projection_distance(data.view))
    found = next(t for t in tab["radius-graph"].figure.data if t.name == "adversarial l2 (found)")
    np.testing.assert_allclose(found.y, np.sort(table.radius_l2.to_numpy()))

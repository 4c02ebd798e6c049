"""The CKA tab: the stored CKA of each layer and transform value, as the report draws it."""

import numpy as np

from proactiv.dashboard.app import build_app
from proactiv.dashboard.data import RunData


def test_the_tab_draws_the_stored_cka_per_layer_and_value(classifier_run):
    data = RunData(classifier_run, compute=False)
    tab = next(t for t in build_app([data]).layout["tabs"].children if t.value == "step-cka")
    assert tab.label == "Representation similarity (CKA)"
    table = data.analysis["cka"]
    rotate = table[table.column == "rotate.degrees"].pivot(index="layer_index", columns="value", values="cka")
    heat = tab["cka-graph"].figure.data[0]  # the first parameter's panel: layers × rotations
    assert list(heat.x) == ["0", "30"] and len(heat.y) == len(rotate)
    np.testing.assert_allclose(np.asarray(heat.z, dtype=float), rotate.to_numpy())

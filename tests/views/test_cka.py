"""CKA views on a table whose answer is known: layers top to bottom, values in the grid's order on one 0–1
scale, the first layer below 0.9 circled only where CKA falls that low, two models' layers against each other,
and the report section's sentence."""

import numpy as np
import pandas as pd

from proactiv.analysis.pipeline import Analysis
from proactiv.views.cka import cka_figure, compare_figure
from proactiv.views.sections import SectionContext, sections_of

LAYERS = ["conv1", "conv2", "fc"]
#: (column, value) → CKA per layer: noise departs at conv2 at its strongest value, blur never falls below 0.9
CKA = {
    ("noise.level", 0.0): [1.0, 1.0, 1.0],
    ("noise.level", 0.6): [0.95, 0.7, 0.5],
    ("noise.level", 0.1): [0.99, 0.93, 0.91],
    ("blur.sigma", 0.0): [1.0, 1.0, 1.0],
    ("blur.sigma", 1.0): [0.98, 0.96, 0.95],
}


def _table() -> pd.DataFrame:
    rows = [{"layer": layer, "layer_index": i, "column": column, "value": value, "cka": cka[i], "n": 8, "points": 1}
            for (column, value), cka in CKA.items() for i, layer in enumerate(LAYERS)]  # fmt: skip
    return pd.DataFrame(rows)


def test_layers_by_values_with_the_departure_circled_where_there_is_one():
    fig = cka_figure(_table())
    noise, circle, blur = fig.data  # the blur panel gets no circle: no layer falls below 0.9
    assert (noise.type, circle.type, blur.type) == ("heatmap", "scatter", "heatmap")
    assert (
        list(noise.x) == ["0", "0.6", "0.1"] and list(noise.y) == LAYERS
    )  # the grid's order, first layer on top
    np.testing.assert_allclose(np.asarray(noise.z, dtype=float), np.array(list(CKA.values())[:3]).T)
    assert (noise.zmin, noise.zmax, blur.zmin, blur.zmax) == (0, 1, 0, 1)
    assert list(circle.x) == ["0.6"] and list(circle.y) == [
        "conv2"
    ]  # the strongest value, its first layer < 0.9
    assert fig.layout.yaxis.autorange == "reversed" and list(fig.layout.yaxis.categoryarray) == LAYERS
    assert cka_figure(_table().iloc[:0]).layout.annotations[0].text == "no CKA to draw"


def test_two_models_layers_against_each_other():
    table = pd.DataFrame({"layer_a": ["a0", "a0", "a1", "a1"], "index_a": [0, 0, 1, 1],
                          "layer_b": ["b0", "b1", "b0", "b1"], "index_b": [0, 1, 0, 1], "cka": [0.9, 0.2, 0.3, 0.8],
                          "n": 10})  # fmt: skip
    (heat,) = compare_figure(table, "small", "big").data
    assert list(heat.y) == ["a0", "a1"] and list(heat.x) == ["b0", "b1"]
    assert np.asarray(heat.z).tolist() == [[0.9, 0.2], [0.3, 0.8]]
    assert "small: %{y}<br>big: %{x}" in heat.hovertemplate


def test_the_section_names_the_first_layer_that_departs(run):
    table = _table()
    ctx = SectionContext(run, analysis=Analysis(run, results={"cka": table}))
    page = sections_of("cka")[0].html(ctx)
    assert page.startswith("<h2>Representation similarity (CKA)</h2><figure/><p class='cka-departures'>")
    assert "at noise.level = 0.6 CKA first falls below 0.9 at conv2 (layer 2 of 3, CKA 0.70)" in page
    assert "at blur.sigma = 1 no layer falls below 0.9 (last layer 0.95)" in page
    (fig,) = ctx.figures
    assert len(fig.data) == 3

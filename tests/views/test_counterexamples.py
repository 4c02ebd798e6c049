"""The counterexample gallery drawn from hand-made rows: each panel's facts (where, what the model made of it,
how far the partner is) or the reason a partner is missing, one row of three panels per failure on one value
range, an empty panel where an input is missing, lines for 1-D inputs, and the rows a gallery draws per slice."""

import math

import numpy as np
import pandas as pd

from proactiv.schema import RunSchema, input_spec
from proactiv.views.counterexamples import counterexample_facts, counterexample_figure, gallery_rows

SCHEMA = RunSchema(target="label", input=input_spec("image", (1, 4, 4), value_range=(0, 1)), outcome="accuracy",
                   group_column="label_name")  # fmt: skip
ROW = {
    "slice": 1, "group": "yes", "rank": 1, "instance": 16, "point": 14, "loss_t": 3.0898, "predicted": "no",
    "p_desired": 0.0462, "point_values": "noise.snr_db=0, gain.gain_db=6",
    "same_instance_point": 11, "same_instance_point_values": "noise.snr_db=5, gain.gain_db=6",
    "same_instance_loss_t": 0.1463, "same_instance_predicted": "yes", "same_instance_distance": 0.142857,
    "same_class_instance": 4, "same_class_loss_t": 0.2, "same_class_predicted": "yes", "same_class_distance": 1.5,
    "same_class_basis": "distance of the standardised difference vectors at the grid point",
}  # fmt: skip


def test_each_panel_says_where_and_what_the_model_made_of_it():
    facts = counterexample_facts(ROW, SCHEMA)
    assert facts["failing"] == [
        "instance 16 at snr_db=0, gain_db=6",  # transform names dropped: panel titles are narrow
        "predicted no (desired yes)",
        "loss on xT 3.09 · p(desired) 0.046",
    ]
    assert facts["same_instance"] == ["instance 16 at snr_db=5, gain_db=6", "predicted yes (desired yes)",
                                      "loss 0.146 · grid distance 0.143"]  # fmt: skip
    assert facts["same_class"][-1] == "loss 0.2 · distance 1.5 (difference vectors)"
    missing = {
        **ROW,
        "same_class_distance": math.nan,
        "same_class_reason": "no other instance of class yes passes",
    }
    assert counterexample_facts(missing, SCHEMA)["same_class"] == ["no other instance of class yes passes"]


def test_a_row_of_three_panels_on_one_range_with_missing_inputs_left_empty():
    inputs = {(16, 14): np.full((1, 4, 4), 0.2), (16, 11): np.full((1, 4, 4), 0.8)}  # no input of instance 4
    fig = counterexample_figure([ROW], inputs, SCHEMA, missing="the run keeps no arrays of it")
    assert len(fig.data) == 2 and all(t.type == "heatmap" for t in fig.data)
    assert [(t.zmin, t.zmax) for t in fig.data] == [(0, 1), (0, 1)]  # the schema's value range, shared
    titles = [a.text for a in fig.layout.annotations]
    assert titles[0].startswith("<b>failing</b><br>instance 16")
    assert titles[2].startswith("<b>same class, same point, closest passing</b>")
    assert titles[2].endswith("<i>the run keeps no arrays of it</i>")
    assert fig.layout.xaxis3.visible is False  # the empty panel has no axes
    assert counterexample_figure([], {}, SCHEMA).layout.annotations[0].text == "no counterexamples to show"


def test_one_dimensional_inputs_are_lines_on_a_shared_value_axis():
    schema = RunSchema(target="label", input=input_spec("vector", (6,)), outcome="accuracy")
    inputs = {(16, 14): np.arange(6.0), (16, 11): -np.arange(6.0), (4, 14): np.ones(6)}
    fig = counterexample_figure([ROW], inputs, schema)
    assert [t.type for t in fig.data] == ["scatter"] * 3
    assert [list(fig.layout[f"yaxis{k}"].range) for k in ("", "2", "3")] == [[-5, 5]] * 3


def test_a_gallery_draws_the_most_confident_failure_of_a_few_classes_per_slice():
    table = pd.DataFrame({
        "slice": [1, 1, 1, 1, 2, 2], "group": ["yes", "yes", "no", "up", "yes", "no"], "rank": [1, 2, 1, 1, 1, 1],
        "loss_t": [2.0, 3.0, 4.0, 1.0, 5.0, 0.5],
    })  # fmt: skip
    rows = gallery_rows(table, per_slice=2)
    assert list(zip(rows.slice, rows.group, strict=True)) == [(1, "no"), (1, "yes"), (2, "yes"), (2, "no")]

"""The embeddings panel: both embeddings coloured by a chosen column, metrics recomputed over the filter."""

import numpy as np
import pytest

from proactiv.dashboard import panels
from proactiv.dashboard.data import Filter, RunData


def test_colour_choices_follow_the_run(data):
    points, instances, point, instance = panels.colour_choices(data)
    assert "noise.snr_db" in points and "label_name" in instances and "meta.voice" in instances
    assert "accuracy" in points and (point, instance) == (points[0], instances[0])


def test_a_point_filter_recomputes_the_instances_metrics(data, callbacks_of):
    fn = callbacks_of("embeddings", [data])
    _, every = fn["emb-points.figure"](0, None, None, "accuracy")
    shares = np.asarray(every.data[0].marker.color)
    assert every.data[0].type == "scattergl" and ((shares > 0) & (shares < 1)).any()  # wrong at low SNR only
    clean = [int(p) for p in data.per_point(Filter()).query("`noise.snr_db` > 15").point]
    points, instances = fn["emb-points.figure"](0, {"points": clean}, None, "accuracy")
    # over clean audio an instance is always right, or always wrong (the planted failing voice)
    assert set(np.asarray(instances.data[0].marker.color)) == {0.0, 1.0}
    assert len(instances.data[0].x) == len(every.data[0].x) == data.n_instances


def test_an_unknown_colour_falls_back_and_choices_follow_the_run(data, run_b, callbacks_of):
    fn = callbacks_of("embeddings", [data, RunData(run_b)])
    points, _ = fn["emb-points.figure"](0, None, "../etc", "nope")
    assert points.data and fn["colour-points.options"](1) == panels.colour_choices(RunData(run_b))
    with pytest.raises(ValueError):
        fn["colour-points.options"](2)

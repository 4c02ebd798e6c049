import numpy as np
import pytest

from proactiv.analysis import difference_matrix, embed
from proactiv.analysis.runview import DIFFERENCE_METRICS


def test_difference_matrix_concatenates_per_point_and_per_instance(planted):
    n_points, n_instances, k = len(planted.grid), 120, len(DIFFERENCE_METRICS)
    ids, rows = difference_matrix(planted, by="point")
    assert ids.tolist() == list(range(n_points)) and rows.shape == (n_points, n_instances * k)
    ids, rows = difference_matrix(planted, by="instance")
    assert ids.tolist() == list(range(n_instances)) and rows.shape == (n_instances, n_points * k)
    assert np.allclose(rows.mean(0).reshape(n_points, k).mean(0), 0, atol=0.5)  # scaled per metric


def _separation(coords: np.ndarray, group: np.ndarray) -> float:
    """Distance between group centroids over the mean spread inside the groups."""
    a, b = coords[group], coords[~group]
    spread = (np.linalg.norm(a - a.mean(0), axis=1).mean() + np.linalg.norm(b - b.mean(0), axis=1).mean()) / 2
    return float(np.linalg.norm(a.mean(0) - b.mean(0)) / spread)


def test_point_embedding_separates_broken_from_working_points(planted):
    table = embed(planted, by="point", method="pca")
    assert {"point", "x", "y", "noise.snr_db", "gain.gain_db", "accuracy", "mean_d_x"} <= set(table.columns)
    broken = table["noise.snr_db"].to_numpy() < 2.5
    assert _separation(table[["x", "y"]].to_numpy(), broken) > 3


def test_instance_embedding_separates_the_failing_voice(planted):
    table = embed(planted, by="instance", method="pca")
    assert {"instance", "label_name", "meta.voice", "meta.gender", "accuracy"} <= set(table.columns)
    assert _separation(table[["x", "y"]].to_numpy(), (table["meta.voice"] == "v3").to_numpy()) > 3


def test_subsampling_beyond_max_rows_is_said(planted):
    table = embed(planted, by="instance", method="pca", max_rows=50)
    assert len(table) == 50
    assert "random sample of 50 of 120 instances" in table.attrs["note"]
    assert len(embed(planted, by="point", method="pca", max_rows=50)) == len(planted.grid)


def test_too_few_rows_fall_back_to_pca(planted):
    table = embed(planted, by="point", method="tsne", max_rows=6)
    assert table.attrs["method"] == "pca" and "too few" in table.attrs["note"]


def test_unknown_method_or_view_is_refused(planted):
    with pytest.raises(ValueError, match="method"):
        embed(planted, method="mds")
    with pytest.raises(ValueError, match="by"):
        embed(planted, by="class")


@pytest.mark.slow
def test_opentsne_embedding_separates_the_failing_voice(planted):
    progress = []
    table = embed(planted, by="instance", method="tsne", progress=progress.append)
    assert table.attrs["method"] == "tsne"
    assert progress and progress[-1] == pytest.approx(1.0)
    assert _separation(table[["x", "y"]].to_numpy(), (table["meta.voice"] == "v3").to_numpy()) > 2


@pytest.mark.slow
def test_umap_embedding_separates_the_failing_voice(planted):
    table = embed(planted, by="instance", method="umap")
    assert table.attrs["method"] == "umap"
    assert _separation(table[["x", "y"]].to_numpy(), (table["meta.voice"] == "v3").to_numpy()) > 2

import numpy as np
import pytest

from proactiv.analysis import AnalysisError, BiasMaps, bias_maps
from proactiv.testing import write_synthetic_run


def test_planted_shift_shows_in_its_class_map_only(planted):
    maps = bias_maps(planted)
    yes = maps.mean("yes")
    assert yes.shape == (40, 101)  # one model input
    assert yes[10:14].mean() == pytest.approx(1.0, abs=0.02)
    assert np.abs(np.delete(yes, range(10, 14), axis=0)).max() < 0.2
    for other in ("no", "up", "down"):
        assert np.abs(maps.mean(other)).max() < 0.2
    assert maps.abs_mean("yes")[10:14].mean() == pytest.approx(1.0, abs=0.05)
    # signed mean: instance noise cancels, while its magnitude does not
    assert abs(maps.mean("no").mean()) < 0.005 < 0.03 < maps.abs_mean("no").mean()


def test_ranking_puts_the_planted_class_first(planted):
    ranking = bias_maps(planted).ranking
    top = ranking.iloc[0]
    assert top["class"] == "yes" and 10 <= top.peak_row < 14
    assert top.consistency > 0.9 > ranking.iloc[1].consistency
    assert top.instances == 2  # arrays were kept for two instances per class
    assert top.records == 2 * 18


def test_ranking_per_transform_value(planted):
    by_value = bias_maps(planted).ranking_by_value
    assert set(by_value.column) == {"noise.snr_db", "gain.gain_db"}
    assert len(by_value) == 4 * (6 + 3)  # classes x (SNR values + gain values)
    assert set(by_value.head(9)["class"]) == {"yes"}


def test_profiles_show_the_band(planted):
    along_bands, along_frames = bias_maps(planted).profiles("yes")
    assert along_bands.shape == (40,) and along_frames.shape == (101,)
    assert set(np.argsort(along_bands)[-4:]) == {10, 11, 12, 13}
    assert along_frames.mean() == pytest.approx(4 / 40, abs=0.01)


def test_selection_by_point_and_by_transform_value(planted):
    maps = bias_maps(planted)
    clean = maps.mean("yes", where={"noise.snr_db": float("inf")})
    assert clean[10:14].mean() == pytest.approx(1.0, abs=0.05)
    assert maps.mean("yes", point=0).shape == (40, 101)
    with pytest.raises(KeyError, match="class"):
        maps.mean("maybe")
    with pytest.raises(KeyError, match="grid column"):
        maps.mean("yes", where={"speed.factor": 1.0})


def test_save_load_round_trip(planted, tmp_path):
    maps = bias_maps(planted)
    maps.save(tmp_path / "maps.npz")
    back = BiasMaps.load(tmp_path / "maps.npz")
    assert back.classes == maps.classes
    assert np.allclose(back.mean("yes"), maps.mean("yes"), atol=1e-6)
    assert back.ranking["class"].tolist() == maps.ranking["class"].tolist()


def test_image_shaped_inputs(tmp_path):
    run = write_synthetic_run(tmp_path / "img", n_instances=16, shape=(1, 8, 8), bias_rows=(2, 4))
    yes = bias_maps(run).mean("yes")
    assert yes.shape == (1, 8, 8)
    assert yes[0, 2:4].mean() == pytest.approx(1.0, abs=0.05)


def test_run_without_kept_arrays(tmp_path):
    run = write_synthetic_run(tmp_path / "bare", n_instances=8, keep_per_class=0)
    with pytest.raises(AnalysisError, match="kept no arrays"):
        bias_maps(run)

"""The what-if studio: one instance under any parameter values, on the sweep's own path, and its projection on
the spot with the run's projection settings."""

import math

import numpy as np
import pytest
import torch
from torch import nn

import proactiv as pv
from proactiv.analysis.runview import AnalysisError
from proactiv.tasks.kws.frontend import LogMel
from proactiv.testing import sweep_image_run, write_synthetic_run
from proactiv.whatif import Studio


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    """A fixed random 3-class CNN on 12×12 images over rotate [0, 30] × blur [0, 1], every array kept."""
    return sweep_image_run(tmp_path_factory.mktemp("whatif") / "img", image_to_image=False)


@pytest.fixture(scope="module")
def studio(image_run):
    return Studio(image_run, device="cpu")


def test_parameters_come_from_the_transform_registry(studio):
    rotate, blur = studio.parameters()
    assert (rotate.column, rotate.low, rotate.high, rotate.identity) == ("rotate.degrees", -180, 180, 0)
    assert rotate.grid_values == (0.0, 30.0) and blur.unit == "px" and blur.grid_values == (0.0, 1.0)


def test_at_a_grid_point_xt_is_the_sweeps(image_run, studio):
    records = image_run.records.set_index(["instance", "point"])
    for point in image_run.grid:
        for instance in (0, 5, 11):
            seen = studio.transform(instance, point.values)
            kept = image_run.arrays(instance, point.id)
            assert seen.point == point.id
            np.testing.assert_allclose(seen.x_t, kept["x_t"], atol=1e-6)
            np.testing.assert_allclose(seen.x, kept["x"], atol=1e-6)
            record = records.loc[(instance, point.id)]
            assert seen.prediction == record.pred_t and seen.desired == record.label
            assert seen.loss == pytest.approx(record.loss_t, rel=1e-4, abs=1e-6)


def test_values_between_grid_points_are_continuous_and_reproducible(studio):
    between = {"rotate.degrees": 15.0, "blur.sigma": 0.5}
    seen, again = studio.transform(3, between), studio.transform(3, between)
    assert seen.point is None and np.array_equal(seen.x_t, again.x_t)
    ends = [studio.transform(3, {"rotate.degrees": d, "blur.sigma": 0.5}).x_t for d in (0.0, 30.0)]
    assert all(not np.allclose(seen.x_t, end) for end in ends)
    assert seen.output.sum() == pytest.approx(1.0, abs=1e-5)  # class probabilities
    clean = studio.transform(3, {})  # columns left out stay at their identity: the clean input
    assert clean.point == 0 and np.allclose(clean.x_t, clean.x)
    assert clean.values == {"rotate.degrees": 0.0, "blur.sigma": 0.0}


def _failure(studio):
    """An (instance, values) whose prediction is not the desired class."""
    for degrees in (30.0, 90.0, 150.0):
        for sigma in (1.0, 3.0):
            values = {"rotate.degrees": degrees, "blur.sigma": sigma}
            for instance in range(studio.n_instances):
                seen = studio.transform(instance, values)
                if seen.prediction != seen.desired:
                    return instance, values
    raise AssertionError("no failing instance found")


def test_projection_reaches_the_desired_label(image_run, studio):
    instance, values = _failure(studio)
    moved = studio.project(instance, values)
    assert moved.converged and moved.prediction == moved.before.desired
    assert moved.loss < image_run.config["projection"]["cutoff"] < moved.before.loss
    assert np.abs(moved.diff).max() > 0 and moved.steps > 0
    assert moved.attributions.shape == moved.attributions_t.shape == moved.x_proj.shape
    assert moved.attributions.max() > 0 and not np.allclose(moved.attributions, moved.attributions_t)


def test_projection_at_a_grid_point_is_the_sweeps(image_run, studio):
    records = image_run.records.set_index(["instance", "point"])
    wrong = records[~records.correct_t].index[0]  # a record the projection had to move
    moved = studio.project(wrong[0], image_run.grid[wrong[1]].values)
    np.testing.assert_allclose(moved.x_proj, image_run.arrays(*wrong)["x_proj"], atol=1e-5)
    assert moved.steps == records.loc[wrong].steps and moved.converged == records.loc[wrong].converged


def test_image_to_image_run(tmp_path):
    run = sweep_image_run(tmp_path / "den")  # identity "denoiser", MSE to the clean image, cutoff 1e-3
    studio = Studio(run, device="cpu")
    clean = studio.transform(2, {})
    assert clean.prediction is None and clean.within_cutoff and clean.output.shape == (1, 12, 12)
    np.testing.assert_allclose(clean.output, clean.desired, atol=1e-6)  # the target is the clean image
    turned = studio.transform(2, {"rotate.degrees": 20.0})
    assert not turned.within_cutoff and turned.audio is None and "nothing to listen to" in turned.audio_note
    moved = studio.project(2, {"rotate.degrees": 20.0})
    assert moved.converged and moved.loss < 1e-3 and moved.output.shape == (1, 12, 12)
    assert moved.attributions.shape == (1, 12, 12)


class Wave(nn.Module):
    """A fixed linear classifier of model inputs of any shape with 3 classes."""

    def __init__(self, size: int):
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(size, 3)

    def forward(self, x):
        return self.lin(x.flatten(1))


def test_waveform_inputs_play_as_the_model_received_them(tmp_path):
    model, x = Wave(400), torch.randn(4, 400) * 0.1
    grid = pv.Grid([pv.transforms.get("noise", snr_db=[20, 0])])
    labels = model(x).argmax(1)
    run = pv.sweep(
        model, x, labels, grid, tmp_path / "w", input_kind="waveform", sample_rate=8000, progress=False
    )
    seen = Studio(run, device="cpu").transform(1, {"noise.snr_db": 5.0})
    assert seen.sample_rate == 8000 and np.array_equal(seen.audio, seen.x_t.reshape(-1))


def test_spectrograms_play_the_waveform_they_were_made_from(tmp_path):
    frontend = LogMel()
    x = torch.randn(3, 4000) * 0.05
    model = Wave(40 * frontend.n_frames(4000))
    grid = pv.Grid(
        [pv.transforms.get("audio_noise", snr_db=[math.inf, 10]), pv.transforms.get("gain", gain_db=[0, -6])]
    )
    run = pv.sweep(
        model, x, model(frontend(x)).argmax(1), grid, tmp_path / "s", frontend=frontend, progress=False
    )
    seen = Studio(run, device="cpu").transform(2, {"audio_noise.snr_db": 12.5, "gain.gain_db": -3.0})
    assert (
        run.schema.input.kind == "spectrogram" and seen.sample_rate == 16000 and seen.audio.shape == (4000,)
    )
    np.testing.assert_allclose(frontend(torch.from_numpy(seen.audio)[None])[0].numpy(), seen.x_t, atol=1e-4)
    assert not np.allclose(seen.audio, x[2].numpy())


def test_own_prediction_runs_desire_the_clean_prediction(tmp_path):
    model, x = Wave(6), torch.randn(5, 6)
    wrong = (model(x).argmax(1) + 1) % 3  # labels the loss ignores
    projector = pv.Projector(model, loss="own_prediction", max_steps=100)
    grid = pv.Grid([pv.transforms.get("noise", snr_db=[20, 0])])
    run = pv.sweep(model, x, wrong, grid, tmp_path / "own", projector=projector, progress=False)
    studio = Studio(run, device="cpu")
    moved = studio.project(4, {"noise.snr_db": -10.0})
    assert moved.before.desired == int(model(x[4:5]).argmax()) != int(wrong[4])
    assert moved.converged and moved.prediction == moved.before.desired


@pytest.mark.parametrize(
    "instance, values, message",
    [
        (12, {}, "instance 12: run .* has instances 0 to 11"),
        (-1, {}, "instance -1"),
        (True, {}, "instance True: expected an integer"),
        (2.5, {}, "instance 2.5"),
        (
            0,
            {"rotate.degrees": 500.0},
            r"rotate.degrees = 500.0 degrees: outside the valid range \[-180.0, 180.0\]",
        ),
        (0, {"blur.sigma": float("nan")}, "blur.sigma = nan: expected a finite number"),
        (0, {"zoom.factor": 2.0}, "parameter 'zoom.factor': not a grid column of this run"),
    ],
)
def test_bad_input_is_named(studio, instance, values, message):
    with pytest.raises(ValueError, match=message):
        studio.transform(instance, values)
    with pytest.raises(ValueError, match=message):
        studio.project(instance, values)


def test_a_run_that_cannot_rebuild_its_task_is_refused(tmp_path):
    run = write_synthetic_run(tmp_path / "syn", n_instances=8)  # records only: no model to rebuild
    with pytest.raises(AnalysisError, match="cannot rebuild the task of run .*syn"):
        Studio(run)

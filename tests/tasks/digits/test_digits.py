"""The digits task at 28×28, the reference study's 450-point grid, and the denoiser (image-to-image)."""

from pathlib import Path

import numpy as np
import pytest
import torch

import proactiv as pv
from proactiv.config import ConfigError, load_config, parse_config
from proactiv.summary import summarize
from proactiv.sweep import sweep_config
from proactiv.tasks import digits
from proactiv.tasks.digits.denoise import cached_denoiser

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def test_upsampled_digits_keep_the_mnist_layout():
    split = digits.digits_split(0, 28)
    x, y = split["test"]
    assert x.shape[1:] == (1, 28, 28) and float(x.min()) >= 0 and float(x.max()) <= 1
    assert float(x[..., :4, :].abs().max()) == 0 and float(x[..., -4:].abs().max()) == 0  # blank margin
    assert float(x[..., 4:24, 4:24].sum()) == pytest.approx(float(x.sum()))
    native = digits.digits_split(0, 8)["test"]
    assert native[0].shape[1:] == (1, 8, 8) and torch.equal(native[1], y)  # same split at either size
    with pytest.raises(ValueError, match="image_size=4"):
        digits.digits_split(0, 4)


def test_digits_model_reaches_95_percent_on_held_out_digits():
    task = digits.load_task(instances_per_class=None, split="test")
    with torch.no_grad():
        acc = (task.model(task.inputs).argmax(1) == task.labels).float().mean().item()
    assert task.inputs.shape == (540, 1, 28, 28) and acc >= 0.95
    assert task.pixel_range == 1.0 and task.projection_defaults["clamp"] == (0.0, 1.0)


def test_reference_grid_sweep_writes_every_record(tmp_path):
    grid = load_config(EXAMPLES / "digits_reference.yaml").build_grid()
    assert len(grid) == 450 and [len(t.values) for t in grid.transforms] == [15, 3, 10]
    assert load_config(EXAMPLES / "emnist_reference.yaml").build_grid().spec() == grid.spec()
    task = digits.load_task(instances_per_class=None)
    x, y = task.inputs[[0, 200, 400]], task.labels[[0, 200, 400]]
    proj = pv.Projector(task.model, max_steps=3, clamp=(0.0, 1.0))
    run = pv.sweep(task.model, x, y, grid, tmp_path / "run", projector=proj, progress=False, pixel_range=1.0)
    rec = run.records
    assert len(rec) == 3 * 450 and not rec.duplicated(["instance", "point"]).any()
    assert sorted(rec.point.unique()) == list(range(450))
    row = rec[(rec.instance == 1) & (rec.point == 449)].iloc[0]
    assert (row["rotate.degrees"], row["blur.sigma"], row["image_noise.level"]) == (84, 2, 0.45)
    ident = rec[rec.point == grid.identity_point()]
    assert np.isinf(ident.psnr_t).all() and (ident.ssim_t == 1).all() and (ident.d_t == 0).all()
    assert (rec[rec.point != grid.identity_point()].psnr_t < np.inf).all()


@pytest.fixture(scope="module")
def denoiser():
    return cached_denoiser(digits.digits_split(0, 28)["train"][0])


def test_denoiser_removes_noise_it_was_trained_on(denoiser):
    x = digits.digits_split(0, 28)["test"][0][:100]
    noisy = pv.transforms.get("image_noise", level=[0.3]).apply(
        x, 0.3, pv.transforms.BatchGenerator(range(100))
    )
    with torch.no_grad():
        assert ((denoiser(noisy) - x) ** 2).mean() < 0.25 * ((noisy - x) ** 2).mean()


def test_denoise_task_projection_shows_what_it_cannot_undo(tmp_path, denoiser):
    cfg = parse_config(
        {
            "task": "denoise",
            "data": {"instances_per_class": 1},
            "grid": [{"type": "image_noise", "level": [0, 0.2]}, {"type": "rotate", "degrees": [0, 60]}],
            "projection": {"max_steps": 200},
        }
    )
    run = sweep_config(cfg, tmp_path / "run", progress=False)
    rec = run.records
    assert (
        len(rec) == 40 and (rec.label == -1).all() and sorted(rec["meta.digit"].unique()) == list(range(10))
    )
    assert {"psnr_out_t", "ssim_out_t", "psnr_out_proj", "ssim_out_proj"} <= set(rec.columns)
    upright = rec[rec["rotate.degrees"] == 0]
    turned = rec[rec["rotate.degrees"] == 60]
    # noise it was trained on: output already within the cutoff; a 60° turn: never, and the input must move far
    assert upright.correct_t.mean() >= 0.9 and turned.correct_t.mean() == 0
    assert turned.d_x.median() > 3 * upright.d_x.median()
    assert (turned.psnr_out_proj > turned.psnr_out_t).all()
    overall = summarize(run)["overall"]  # `proactiv info`: "within cutoff", not accuracy
    assert overall.within_cutoff[0] == pytest.approx(rec.correct_t.mean()) and "flip_rate" not in overall
    for instance in rec.instance.unique():  # arrays kept for every digit (meta.digit is the class here)
        kept = run.arrays(int(instance), int(turned.point.iloc[0]))
        assert kept["y_t"].shape == kept["x"].shape == (1, 28, 28)
    with pytest.raises(ConfigError, match="image_size=8: the denoiser is built for 28×28"):
        cfg.data.image_size = 8
        sweep_config(cfg, tmp_path / "run8", progress=False)

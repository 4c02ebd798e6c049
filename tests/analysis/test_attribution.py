"""Attributions: integrated gradients is complete, every method finds a planted cue (an image patch, a
spectrogram band), Grad-CAM's layer map lands where the input is, the shift is zero where projection left the
input alone, the support of a clean input is where its content is, bad input is named, and the step reaches
the CLI and the report."""

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import proactiv as pv
from proactiv.analysis.attribution import (
    METHODS,
    PREFIX,
    attribute,
    attribution_maps,
    attribution_table,
    last_conv_layer,
    support_mask,
)
from proactiv.analysis.attribution_maps import _to_input
from proactiv.analysis.runview import AnalysisError
from proactiv.cli import app
from proactiv.report import write_report
from proactiv.schema import input_spec
from proactiv.testing import sweep_image_run

torch.set_num_threads(1)
IMAGE, PATCH = (16, 16), (slice(6, 10), slice(8, 12))
SPECTROGRAM, BAND = (40, 101), (slice(10, 14), slice(0, 101))


def cue_model(shape, region, channel=True, stride=2):
    """A model whose only evidence for class 1 is ``region``: a stride-``stride`` convolution that fires where
    a value exceeds 0.5, read by the class-1 logit over ``region``'s cells only; class 0 is a constant 0.5.
    Inputs without a ``channel`` axis (spectrogram-shaped) get one first."""
    h, w = shape
    conv = nn.Conv2d(1, 1, 3, stride=stride, padding=1)
    head = nn.Linear(((h - 1) // stride + 1) * ((w - 1) // stride + 1), 2)
    mask = torch.zeros((h - 1) // stride + 1, (w - 1) // stride + 1)
    rows, cols = region
    mask[rows.start // stride : -(-rows.stop // stride), cols.start // stride : -(-cols.stop // stride)] = 1
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 1, 1] = 1.0
        conv.bias.fill_(-0.5)
        head.weight.zero_()
        head.weight[1] = 8 * mask.flatten() / mask.sum()
        head.bias.copy_(torch.tensor([0.5, 0.0]))
    front = [] if channel else [nn.Unflatten(1, (1, h))]
    return nn.Sequential(*front, conv, nn.Softplus(beta=10), nn.Flatten(), head).eval()


def cue_inputs(shape, region, n=6, seed=0, channel=True):
    """Dim random inputs (< 0.4) with ``region`` bright (0.9): the cue present."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, *shape, generator=gen) * 0.4
    x[(slice(None), *region)] = 0.9
    return x.unsqueeze(1) if channel else x


class Smooth(nn.Module):
    """A smooth CNN (tanh) with 3 classes on (1, 8, 8) inputs, or an image-to-image map with ``dense=True``."""

    def __init__(self, dense=False):
        super().__init__()
        torch.manual_seed(3)
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.head = nn.Conv2d(4, 1, 1) if dense else nn.Sequential(nn.Flatten(), nn.Linear(4 * 64, 3))

    def forward(self, x):
        return self.head(torch.tanh(self.conv(x)))


def test_integrated_gradients_is_complete():
    """Sum of attributions = score(x) − score(baseline) within 1 %, for a class logit and for the negative loss
    toward a target tensor."""
    x = torch.rand(5, 1, 8, 8) * 2
    model = Smooth().eval()
    with torch.no_grad():
        out, base = model(x), model(torch.zeros_like(x))
        target = out.argmax(1)
        gap = (out - base).gather(1, target[:, None])[:, 0]
    maps = attribution_maps(model, x, target, "integrated_gradients")
    assert maps.shape == x.shape
    torch.testing.assert_close(maps.flatten(1).sum(1), gap, rtol=0.01, atol=1e-4)

    dense = Smooth(dense=True).eval()
    y = torch.rand(5, 1, 8, 8)
    with torch.no_grad():
        score = -(dense(x) - y).pow(2).flatten(1).mean(1)
        start = -(dense(torch.zeros_like(x)) - y).pow(2).flatten(1).mean(1)
    maps = attribution_maps(dense, x, y, "integrated_gradients", target_kind="tensor", loss="mse")
    torch.testing.assert_close(maps.flatten(1).sum(1), score - start, rtol=0.01, atol=1e-5)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("shape", "region"), [(IMAGE, PATCH), (SPECTROGRAM, BAND)], ids=["patch", "band"])
def test_every_method_puts_its_maximum_on_the_planted_cue(method, shape, region):
    image = shape == IMAGE
    model = cue_model(shape, region, channel=image)
    x = cue_inputs(shape, region, channel=image)
    assert (model(x).argmax(1) == 1).all()
    maps = attribution_maps(model, x, torch.ones(len(x), dtype=torch.long), method).abs()
    assert maps.shape == x.shape
    inside = torch.zeros(shape, dtype=torch.bool)
    inside[region] = True
    inside = inside.expand(x.shape[1:]).reshape(-1)
    flat = maps.flatten(1)
    assert inside[flat.argmax(1)].all(), method
    assert (flat[:, inside].sum(1) / flat.sum(1) > 0.5).all()  # most of the evidence, not only its peak


def test_a_layer_map_lands_on_the_inputs_axes():
    cam = torch.zeros(1, 1, 8, 50)
    cam[..., 10] = 1.0  # a log-mel layer of a waveform model: frame 10 of 50
    wave = _to_input(cam, (16000,))
    assert wave.shape == (1, 16000) and abs(int(wave.argmax()) - 10.5 / 50 * 16000) < 16000 / 50
    image = torch.zeros(1, 1, 4, 4)
    image[0, 0, 3, 0] = 1.0  # bottom left cell
    up = _to_input(image, (3, 16, 16))
    assert up.shape == (1, 3, 16, 16) and torch.equal(up[0, 0], up[0, 2])
    row, col = divmod(int(up[0, 0].argmax()), 16)
    assert row >= 12 and col < 4


def test_support_is_where_the_clean_input_has_content():
    spec = np.full((2, 40, 101), -100.0)
    spec[:, :, 40:60] = -20.0
    mask = support_mask(spec, input_spec("spectrogram", (40, 101)))
    assert mask[:, :, 40:60].all() and not mask[:, :, :40].any() and not mask[:, :, 60:].any()
    wave = np.zeros((1, 16000))
    wave[0, 4000:8000] = np.sin(np.arange(4000) * 0.3)
    mask = support_mask(wave, input_spec("waveform", (16000,), sample_rate=16000))
    assert mask[0, 4000:8000].all() and not mask[0, :3840].any() and not mask[0, 8160:].any()
    img = np.zeros((1, 1, 8, 8))
    img[0, 0, 2:6, 3] = 1.0  # a stroke
    mask = support_mask(img, input_spec("image", (1, 8, 8), value_range=(0, 1)))
    assert mask.sum() == 4 and mask[0, 0, 2:6, 3].all()
    assert support_mask(np.zeros((1, 6)), input_spec("vector", (6,))) is None


def test_last_conv_layer_is_found_or_named():
    model = cue_model(IMAGE, PATCH)
    assert last_conv_layer(model)[0] == "0"
    with pytest.raises(AnalysisError, match=r"Sequential has no layer 'head'; its convolution layers: 0"):
        last_conv_layer(model, "head")
    with pytest.raises(
        AnalysisError, match=r"Sequential has no Conv1d/Conv2d layer.*convolution layers: none"
    ):
        attribution_maps(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)), torch.rand(2, 4), [0, 1], "gradcam")


@pytest.fixture(scope="module")
def cue_run(tmp_path_factory):
    """Half the instances show the cue (correct: projection leaves them alone), half do not (projected)."""
    model = cue_model(IMAGE, PATCH)
    x = cue_inputs(IMAGE, PATCH, n=8)
    x[1::2, 0, 6:10, 8:12] = 0.3  # odd instances: no cue
    grid = pv.Grid([pv.transforms.get("image_noise", level=[0, 0.05])])
    projector = pv.Projector(model, cutoff=0.3, max_steps=30)
    return pv.sweep(
        model,
        x,
        torch.ones(8, dtype=torch.long),
        grid,
        tmp_path_factory.mktemp("attr") / "run",
        projector=projector,
        class_names=["dim", "cue"],
        keep_arrays="sample",
        arrays_per_class=4,
        pixel_range=1.0,
        progress=False,
    )


def test_shift_is_zero_where_projection_left_the_input_alone(cue_run):
    table = attribution_table(cue_run, method="saliency")
    kept = pv.analysis.load_arrays(cue_run)
    assert len(table) == len(kept) == 8  # instances 0-3 at both grid points
    same = {
        (int(i), int(p))
        for i, p, a, b in zip(kept.instance, kept.point, kept.x_t, kept.x_proj, strict=True)
        if np.array_equal(a, b)
    }
    unmoved = [(int(i), int(p)) in same for i, p in zip(table.instance, table.point, strict=True)]
    unmoved = np.array(unmoved)
    assert unmoved.any() and (~unmoved).any()
    assert (table[f"{PREFIX}shift_t_proj"][unmoved] == 0).all()
    assert np.allclose(table[f"{PREFIX}spearman_t_proj"][unmoved], 1.0)
    # a uniform patch raised uniformly keeps its saliency's shape (no shift); under noise the evidence moves
    assert (table[f"{PREFIX}shift_t_proj"][~unmoved] > 0.05).any()
    shares = table.filter(like=f"{PREFIX}share_t.")
    assert shares.shape[1] == 9 and np.allclose(shares.sum(axis=1), 1.0)
    # the cue instances' evidence lies on the bright patch, which is their clean support
    cue = table.instance % 2 == 0
    assert (table[f"{PREFIX}outside_x"][cue] < 0.05).all()
    assert table.attrs["method"] == "saliency" and table.attrs["inputs"] == ["x", "x_t", "x_proj"]


def test_attribute_targets_and_bad_records(cue_run):
    att = attribute(cue_run, [(0, 1), (1, 1)], method="gradcam", target="predicted")
    assert att.layer == "0" and att.maps["x_t"].shape == (2, 1, *IMAGE)
    records = cue_run.records.set_index(["instance", "point"])
    assert list(att.targets["x_proj"]) == [records.loc[(0, 1), "pred_proj"], records.loc[(1, 1), "pred_proj"]]
    with pytest.raises(
        AnalysisError, match=r"no arrays kept for \(instance, point\) \[\(6, 0\)\].*arrays.keep = 'sample'"
    ):
        attribute(cue_run, pd.DataFrame({"instance": [0, 6], "point": [0, 0]}))
    with pytest.raises(AnalysisError, match="Sequential has no layer 'nope'; its convolution layers: 0"):
        attribute(cue_run, [(0, 0)], method="gradcam", layer="nope")
    with pytest.raises(ValueError, match="method='lime'"):
        attribute(cue_run, [(0, 0)], method="lime")
    with pytest.raises(AnalysisError, match=r"has no records \(instance, point\) \[\(999, 0\)\]"):
        attribute(cue_run, [(0, 0), (999, 0)])


def test_inputs_the_model_cannot_take_or_that_are_not_finite_are_named():
    model = cue_model((12, 12), (slice(0, 4), slice(0, 4)))
    x = cue_inputs((12, 12), (slice(0, 4), slice(0, 4)), n=2)
    x[0, 0, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="inputs: 1 values are NaN or infinite"):
        attribution_maps(model, x, torch.tensor([1, 1]))
    with pytest.raises(
        ValueError, match=r"Sequential cannot attribute inputs of shape \(2, 7\) with saliency"
    ):
        attribution_maps(model, torch.zeros(2, 7), torch.tensor([1, 1]))


def test_image_to_image_runs_attribute_toward_the_target(tmp_path):
    run = sweep_image_run(tmp_path / "den", n_instances=4, size=8)
    att = attribute(run, [(0, 3), (1, 3)], method="gradcam", inputs=("x_t", "x_proj"))
    assert att.layer == "" and att.maps["x_t"].shape == (2, 1, 8, 8) and att.targets == {}
    assert np.isfinite(att.maps["x_t"]).all()
    with pytest.raises(ValueError, match="tensor target"):
        attribute(run, [(0, 3)], target="predicted")


def test_the_step_runs_from_the_cli_and_shows_overlays_in_the_report(cue_run):
    out = CliRunner().invoke(
        app, ["attributions", str(cue_run.path), "--set", "attribution_method=gradcam", "--no-progress"]
    )
    assert out.exit_code == 0, out.output
    assert "gradcam toward the desired target (layer 0)" in out.output
    table = pd.read_parquet(cue_run.path / "analysis" / "attributions.parquet")
    assert {"instance", "point", f"{PREFIX}shift_t_proj", f"{PREFIX}outside_t"} <= set(table.columns)
    assert table.attrs["method"] == "gradcam"
    # the report keeps the stored result when given the same settings (a flat one reaches only this step)
    page = write_report(cue_run, gallery=1, method="pca", attribution_method="gradcam").read_text()
    assert "<section id='attributions'>" in page
    assert page.count("gradcam attributions on x, xT and x̂T of a record") >= 1
    assert "image_noise.level" in page


def test_own_prediction_runs_attribute_toward_the_clean_prediction(tmp_path):
    model = cue_model(IMAGE, PATCH)
    x = cue_inputs(IMAGE, PATCH, n=4)
    x[1::2, 0, 6:10, 8:12] = 0.3  # odd instances: no cue, so the model predicts class 0 on them
    run = pv.sweep(model, x, torch.ones(4, dtype=torch.long), pv.Grid([pv.transforms.get("image_noise", level=[0.05])]),
                   tmp_path / "own", projector=pv.Projector(model, loss="own_prediction", cutoff=0.3, max_steps=30),
                   class_names=["dim", "cue"], keep_arrays="all", progress=False)  # fmt: skip
    assert run.schema.desired == "clean_prediction" and run.schema.desired_column == "pred_clean"
    records = run.records.set_index(["instance", "point"])
    assert records.pred_clean.tolist() == [1, 0, 1, 0] and (records.label == 1).all()  # labels differ
    att = attribute(run, [(0, 0), (1, 0)], inputs=("x_t", "x_proj"))
    assert list(att.targets["x_proj"]) == list(att.targets["x_t"]) == [1, 0]  # where projection aimed

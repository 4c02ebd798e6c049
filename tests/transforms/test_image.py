"""Image transforms: identity, shape, direction and size of each effect, clipping, determinism, specs."""

from __future__ import annotations

import json
import math

import pytest
import torch

from proactiv.transforms import BatchGenerator, get, names

IMAGE_NAMES = [n for n in names() if get(n).domain == "image"]


def gen(batch: int, seed: int = 0) -> BatchGenerator:
    return BatchGenerator([seed + i for i in range(batch)])


def images(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def non_identity(name: str) -> float:
    """A value halfway from the identity to the far end of the parameter's range."""
    p = get(name).param
    far = p.high if p.high > p.identity else p.low
    return p.identity + 0.5 * (far - p.identity)


def blob(size: int, col: float, row: float, width: float = 2.0) -> torch.Tensor:
    rows = torch.arange(size, dtype=torch.float32)[:, None]
    cols = torch.arange(size, dtype=torch.float32)[None, :]
    return torch.exp(-((cols - col) ** 2 + (rows - row) ** 2) / (2 * width**2))[None, None]


def centre_of_mass(img: torch.Tensor) -> tuple[float, float]:
    """(col, row) centre of mass of a (1, 1, H, W) image."""
    h, w = img.shape[-2:]
    m = img[0, 0]
    total = m.sum()
    col = (m.sum(0) * torch.arange(w)).sum() / total
    row = (m.sum(1) * torch.arange(h)).sum() / total
    return float(col), float(row)


def test_the_image_families_are_registered():
    assert set(IMAGE_NAMES) == {
        "blur",
        "brightness",
        "contrast",
        "elastic",
        "image_noise",
        "rotate",
        "scale",
        "translate",
    }


@pytest.mark.parametrize("name", IMAGE_NAMES)
def test_identity_returns_input_and_other_values_keep_shape_and_range(name):
    x = images(2, 3, 20, 24)
    t = get(name)
    assert t.apply(x, t.param.identity, gen(2)) is x
    y = t.apply(x, non_identity(name), gen(2))
    assert y.shape == x.shape and y.dtype == x.dtype
    assert not torch.allclose(y, x, atol=1e-3)
    assert y.min() >= 0.0 and y.max() <= 1.0  # bilinear, fill and clipping all stay in value_range


@pytest.mark.parametrize("name", IMAGE_NAMES)
def test_spec_round_trips_through_json_and_get(name):
    p = get(name).param
    options = {"value_range": (0.0, 255.0)}
    if name in ("rotate", "translate", "scale", "elastic"):
        options["fill"] = 10.0
    if name == "translate":
        options["direction_deg"] = 45.0
    if name == "elastic":
        options["sigma"] = 2.0
    value = non_identity(name)
    t = get(name, **{p.name: [p.identity, value]}, **options)
    spec = json.loads(json.dumps(t.spec()))
    assert spec["value_range"] == [0.0, 255.0]
    rebuilt = get(spec["type"], **spec)
    assert type(rebuilt) is type(t) and rebuilt.spec() == t.spec() and rebuilt.values == t.values
    x = 255 * images(1, 3, 16, 16)
    assert torch.equal(rebuilt.apply(x, value, gen(1, 3)), t.apply(x, value, gen(1, 3)))


@pytest.mark.parametrize("name", IMAGE_NAMES)
def test_out_of_range_value_raises_naming_the_transform(name):
    p = get(name).param
    with pytest.raises(ValueError, match=rf"^{name}\.{p.name} = .*outside the valid range"):
        get(name, **{p.name: [p.high + 1]})


def test_bad_options_and_inputs_raise_naming_the_transform():
    with pytest.raises(ValueError, match=r"rotate\.value_range = \[1, 0\]: expected \[low, high\]"):
        get("rotate", value_range=[1, 0])
    with pytest.raises(ValueError, match=r"blur\.value_range"):
        get("blur", value_range=[0.0])
    with pytest.raises(ValueError, match=r"contrast\.value_range"):
        get("contrast", value_range=[0.0, math.inf])
    with pytest.raises(ValueError, match=r"scale\.fill = 2\.0: expected a number inside value_range"):
        get("scale", fill=2.0)
    with pytest.raises(ValueError, match=r"elastic\.sigma = 0"):
        get("elastic", sigma=0)
    with pytest.raises(ValueError, match=r"translate\.direction_deg = 'up'"):
        get("translate", direction_deg="up")
    with pytest.raises(ValueError, match="transform 'brightness': bad option"):
        get("brightness", fill=0.5)  # photometric transforms have no fill
    with pytest.raises(ValueError, match=r"rotate: expected images \(B, C, H, W\), got shape \(3, 4\)"):
        get("rotate").apply(torch.zeros(3, 4), 30.0, gen(3))
    with pytest.raises(ValueError, match="blur: expected floating-point images"):
        get("blur").apply(torch.zeros(1, 1, 4, 4, dtype=torch.uint8), 1.0, gen(1))


# --------------------------------------------------------------------------------------------------------------
# rotate


def test_rotate_quarter_turns_are_exact():
    x = images(2, 3, 16, 16)
    rot = get("rotate")
    y = x
    for _ in range(4):
        y = rot.apply(y, 90.0, gen(2))
    assert torch.equal(y, x)
    assert torch.equal(rot.apply(x, 180.0, gen(2)), x.flip(-1, -2))
    assert torch.equal(rot.apply(x, -180.0, gen(2)), x.flip(-1, -2))
    three = rot.apply(rot.apply(rot.apply(x, 90.0, gen(2)), 90.0, gen(2)), 90.0, gen(2))
    assert torch.equal(rot.apply(x, -90.0, gen(2)), three)
    non_square = images(1, 1, 10, 14)
    assert torch.equal(rot.apply(non_square, 180.0, gen(1)), non_square.flip(-1, -2))


def test_rotate_90_is_counter_clockwise_as_displayed():
    x = torch.zeros(1, 1, 8, 8)
    x[0, 0, 0, 0] = 1.0  # top-left
    y = get("rotate").apply(x, 90.0, gen(1))
    assert y[0, 0, 7, 0] == 1.0 and y.sum() == 1.0  # bottom-left
    # the general (non-square) path turns the same way: a pixel up-left of centre goes down-left
    x = torch.zeros(1, 1, 8, 12)  # centre (col 5.5, row 3.5)
    x[0, 0, 1, 3] = 1.0  # offset (-2.5, -2.5)
    y = get("rotate").apply(x, 90.0, gen(1))
    assert y[0, 0, 6, 3] == pytest.approx(1.0, abs=1e-4)  # offset (-2.5, +2.5)


def test_rotate_general_path_agrees_with_exact_quarter_turn():
    x = blob(32, 20.0, 9.0, width=3.0) + 0.3 * images(1, 1, 32, 32)
    rot = get("rotate")
    near = rot.apply(x, 89.999, gen(1))
    assert (near - rot.apply(x, 90.0, gen(1))).abs().max() < 1e-3
    assert (rot.apply(x, -89.999, gen(1)) - rot.apply(x, -90.0, gen(1))).abs().max() < 1e-3


def test_rotate_30_degrees_turns_the_centre_of_mass_about_the_centre():
    c = 31.5
    rot = get("rotate")
    col, row = centre_of_mass(rot.apply(blob(64, c, c), 30.0, gen(1)))
    assert abs(col - c) < 0.05 and abs(row - c) < 0.05
    col, row = centre_of_mass(rot.apply(blob(64, c + 15, c), 30.0, gen(1)))
    angle = math.degrees(math.atan2(-(row - c), col - c))  # y up, as displayed
    assert angle == pytest.approx(30.0, abs=2.0)
    assert math.hypot(col - c, row - c) == pytest.approx(15.0, abs=0.3)


def test_rotate_fills_the_corners():
    y = get("rotate", fill=1.0).apply(torch.zeros(1, 1, 16, 16), 45.0, gen(1))
    assert y[0, 0, 0, 0] == 1.0 and y[0, 0, -1, -1] == 1.0 and y[0, 0, 8, 8] == 0.0


# --------------------------------------------------------------------------------------------------------------
# blur, noise, brightness, contrast


def test_blur_keeps_constants_and_smooths_more_with_larger_sigma():
    board = ((torch.arange(32)[:, None] + torch.arange(32)[None, :]) % 2).float()
    x = torch.stack([torch.full((32, 32), 0.2), board])[None]  # channel 0 constant, channel 1 checkerboard
    blur = get("blur")
    variances = []
    for sigma in (0.5, 1.0, 2.0):
        y = blur.apply(x, sigma, gen(1))
        assert torch.allclose(y[0, 0], torch.full((32, 32), 0.2), atol=1e-6)  # channels do not mix
        assert y[0, 1].mean() == pytest.approx(0.5, abs=1e-3)
        variances.append(float(y[0, 1].var()))
    assert variances[0] < 0.5 * float(board.var())
    assert variances[0] > variances[1] > variances[2]


def test_blur_with_a_large_sigma_on_a_tiny_image_still_works():
    x = images(1, 2, 3, 5)
    y = get("blur").apply(x, 10.0, gen(1))
    assert y.shape == x.shape and y.std() < x.std()


def test_image_noise_has_the_requested_std_in_units_of_the_range():
    x = torch.full((2, 3, 64, 64), 0.5)
    y = get("image_noise").apply(x, 0.05, gen(2))
    assert float((y - x).std()) == pytest.approx(0.05, rel=0.1)
    y = get("image_noise", value_range=[0, 255]).apply(255 * x, 0.05, gen(2))
    assert float((y - 255 * x).std()) == pytest.approx(0.05 * 255, rel=0.1)
    y = get("image_noise").apply(x, 1.0, gen(2))
    assert y.min() == 0.0 and y.max() == 1.0  # clipped to the range, and the clip is reached


def test_image_noise_is_deterministic_per_sample_and_independent_of_batching():
    x = images(3, 3, 16, 16)
    noise = get("image_noise")
    alone = noise.apply(x[:1], 0.1, BatchGenerator([5]))
    batch = noise.apply(x, 0.1, BatchGenerator([5, 6, 7]))
    assert torch.equal(alone[0], batch[0])
    assert not torch.equal(batch[0] - x[0], batch[1] - x[1])
    assert not torch.equal(alone, noise.apply(x[:1], 0.1, BatchGenerator([8])))


def test_brightness_shifts_by_a_fraction_of_the_range_and_clips():
    x = torch.tensor([0.1, 0.5, 0.9]).view(1, 1, 1, 3)
    y = get("brightness").apply(x, 0.2, gen(1))
    assert torch.allclose(y, torch.tensor([0.3, 0.7, 1.0]).view(1, 1, 1, 3))
    assert get("brightness").apply(x, -1.0, gen(1)).max() == 0.0
    y = get("brightness", value_range=[0, 255]).apply(255 * x, 0.1, gen(1))
    assert torch.allclose(y, 255 * x + 25.5)


def test_contrast_keeps_the_mean_and_clips():
    x = 0.4 + 0.2 * images(2, 3, 8, 8)
    contrast = get("contrast")
    y = contrast.apply(x, 1.5, gen(2))
    assert torch.allclose(y.mean((1, 2, 3)), x.mean((1, 2, 3)), atol=1e-6)
    mean = x.mean((1, 2, 3), keepdim=True)
    assert torch.allclose(y - mean, 1.5 * (x - mean), atol=1e-6)  # each image's own mean, not the batch's
    assert torch.allclose(contrast.apply(x, 0.0, gen(2)), mean.expand_as(x))
    wide = contrast.apply(images(1, 3, 8, 8), 5.0, gen(1))
    assert wide.min() == 0.0 and wide.max() == 1.0


# --------------------------------------------------------------------------------------------------------------
# translate, scale, elastic


def test_translate_whole_pixels_is_an_exact_shift():
    x = images(1, 2, 12, 12)
    y = get("translate", fill=0.25).apply(x, 3.0, gen(1))
    assert torch.equal(y[..., 3:], x[..., :-3])  # 3 columns to the right, bit-exact
    assert torch.all(y[..., :3] == 0.25)
    dot = torch.zeros(1, 1, 12, 12)
    dot[0, 0, 5, 5] = 1.0
    up = get("translate", direction_deg=90).apply(dot, 2.0, gen(1))
    assert up[0, 0, 3, 5] == 1.0 and up.sum() == 1.0  # 90° = up as displayed
    left = get("translate").apply(dot, -4.0, gen(1))
    assert left[0, 0, 5, 1] == 1.0 and left.sum() == 1.0


def test_translate_fractional_shift_is_bilinear():
    dot = torch.zeros(1, 1, 12, 12)
    dot[0, 0, 5, 5] = 1.0
    y = get("translate").apply(dot, 0.5, gen(1))
    assert y[0, 0, 5, 5] == pytest.approx(0.5, abs=1e-5) and y[0, 0, 5, 6] == pytest.approx(0.5, abs=1e-5)
    assert float(y.sum()) == pytest.approx(1.0, abs=1e-5)


def test_scale_zooms_about_the_centre():
    x = torch.zeros(1, 1, 64, 64)
    x[..., 28:36, 28:36] = 1.0  # a centred 8×8 square
    scale = get("scale")
    big = scale.apply(x, 2.0, gen(1))
    assert int((big > 0.5).sum()) == pytest.approx(4 * 64, rel=0.15)
    assert centre_of_mass(big) == pytest.approx((31.5, 31.5), abs=0.05)
    small = get("scale", fill=0.5).apply(torch.ones(1, 1, 64, 64), 0.5, gen(1))
    assert small[0, 0, 0, 0] == 0.5 and small[0, 0, 32, 32] == 1.0
    assert int((small > 0.75).sum()) == pytest.approx(32 * 32, rel=0.15)


def test_elastic_moves_pixels_by_about_alpha_rms():
    rows, cols = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    ramp = 0.01 * torch.stack([cols, rows])[None].repeat(4, 1, 1, 1)  # gradient 0.01 per px along x and y
    alpha = 1.5
    y = get("elastic").apply(ramp, alpha, gen(4))
    d = (y - ramp)[..., 10:-10, 10:-10] / 0.01  # away from the fill at the border: d = displacement in px
    rms = float(d.pow(2).sum(1).mean().sqrt())
    assert rms == pytest.approx(alpha, rel=0.3)
    assert float(d.abs().max()) < 6 * alpha


def test_elastic_is_deterministic_per_seed_and_independent_of_batching():
    x = images(3, 1, 24, 24)
    elastic = get("elastic", sigma=3.0)
    a = elastic.apply(x, 4.0, BatchGenerator([1, 2, 3]))
    assert torch.equal(a, elastic.apply(x, 4.0, BatchGenerator([1, 2, 3])))
    assert torch.equal(a[2:], elastic.apply(x[2:], 4.0, BatchGenerator([3])))
    assert not torch.allclose(a, elastic.apply(x, 4.0, BatchGenerator([4, 5, 6])))

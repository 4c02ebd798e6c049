"""Image transforms: image domain, batches (B, C, H, W) of float pixels in a known ``value_range``.

Every transform keeps the shape exactly (no canvas growth): geometric ones resample on the same pixel grid
and fill what comes from outside the image with ``fill`` (default: the low end of ``value_range``);
photometric ones clip to ``value_range`` where they can leave it. Geometry is in pixels about the image
centre, with row 0 at the top as displayed, so "counter-clockwise" and "up" mean what a viewer sees.
Random transforms draw only from the per-sample :class:`BatchGenerator`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from proactiv.transforms.base import BatchGenerator, Param, Transform, register

# --------------------------------------------------------------------------------------------------------------
# shared helpers


def _check_image(name: str, x: torch.Tensor) -> None:
    if x.dim() != 4:
        raise ValueError(f"{name}: expected images (B, C, H, W), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name}: expected floating-point images, got dtype {x.dtype}")


def _is_number(v) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)


def _gaussian_kernel(sigma: float, radius: int, dtype: torch.dtype, device) -> torch.Tensor:
    """Normalised 1-D Gaussian of standard deviation ``sigma`` px on ``[-radius, radius]``."""
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return (k / k.sum()).to(dtype=dtype, device=device)


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of each channel of ``x`` (B, C, H, W), reflect padded, same shape.

    The radius is ``ceil(3σ)``, capped per axis at size − 1: that is the most reflect padding can mirror, so
    no replicate fallback is needed (an axis of size 1 is left alone). The truncated kernel is renormalised,
    so a constant image stays constant.
    """
    channels = x.shape[1]
    for axis in (2, 3):
        size = x.shape[axis]
        radius = min(math.ceil(3.0 * sigma), size - 1)
        if radius <= 0:
            continue
        k = _gaussian_kernel(sigma, radius, x.dtype, x.device)
        if axis == 2:
            weight = k.view(1, 1, -1, 1).expand(channels, 1, -1, 1)
            pad = (0, 0, radius, radius)
        else:
            weight = k.view(1, 1, 1, -1).expand(channels, 1, 1, -1)
            pad = (radius, radius, 0, 0)
        x = F.conv2d(F.pad(x, pad, mode="reflect"), weight, groups=channels)
    return x


def _base_grid(x: torch.Tensor, matrix: torch.Tensor, offset_px: Sequence[float]) -> torch.Tensor:
    """Sampling grid (1, H, W, 2) for ``grid_sample``: output pixel ``u`` reads source ``M·u + offset``.

    ``u`` is in pixels from the image centre with x to the right and y down (rows); the affine map is
    conjugated into ``grid_sample``'s normalised coordinates per axis, so it stays a true pixel-space map
    on non-square images.
    """
    _, _, h, w = x.shape
    scale = torch.tensor([w / 2.0, h / 2.0], dtype=torch.float64)
    m = matrix.to(torch.float64)
    theta = torch.empty(1, 2, 3, dtype=torch.float64)
    theta[0, :, :2] = m * scale[None, :] / scale[:, None]  # S⁻¹ M S
    theta[0, :, 2] = torch.tensor([float(o) for o in offset_px], dtype=torch.float64) / scale
    grid = F.affine_grid(theta.to(x.dtype), [1, 1, h, w], align_corners=False)
    return grid.to(x.device)


def _resample(x: torch.Tensor, grid: torch.Tensor, fill: float) -> torch.Tensor:
    """Bilinear resampling of ``x`` through ``grid`` (normalised, align_corners=False), ``fill`` outside.

    Sampling ``x − fill`` with zero padding and adding ``fill`` back is bilinear interpolation with the
    outside of the image held at ``fill``: edges blend smoothly into the fill value.
    """
    grid = grid.expand(x.shape[0], -1, -1, -1)
    out = F.grid_sample(x - fill, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out + fill


def _affine(x: torch.Tensor, matrix: torch.Tensor, offset_px: Sequence[float], fill: float) -> torch.Tensor:
    """Resample ``x`` so that output pixel ``u`` (from the centre, pixels) shows source ``M·u + offset``."""
    return _resample(x, _base_grid(x, matrix, offset_px), fill)


def _displace(x: torch.Tensor, disp_px: torch.Tensor, fill: float) -> torch.Tensor:
    """Resample ``x`` so that output pixel ``p`` shows source ``p + disp[p]``; ``disp_px`` (B, 2, H, W) = (dx, dy)."""
    _, _, h, w = x.shape
    grid = _base_grid(x, torch.eye(2), (0.0, 0.0))
    to_norm = torch.tensor([2.0 / w, 2.0 / h], dtype=x.dtype, device=x.device)
    return _resample(x, grid + disp_px.permute(0, 2, 3, 1) * to_norm, fill)


def _shift_pixels(x: torch.Tensor, dx: int, dy: int, fill: float) -> torch.Tensor:
    """Move the content ``dx`` columns right and ``dy`` rows down (exact copy), ``fill`` where it left."""
    _, _, h, w = x.shape
    out = torch.full_like(x, fill)
    if abs(dx) >= w or abs(dy) >= h:
        return out
    out[:, :, max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = x[
        :, :, max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


# --------------------------------------------------------------------------------------------------------------
# bases: value range and fill options


class _ImageTransform(Transform):
    """An image-domain family with the option ``value_range`` = (low, high), the valid pixel range."""

    domain = "image"

    def __init__(self, values=None, *, name: str | None = None, value_range: Sequence[float] = (0.0, 1.0)):
        super().__init__(values, name=name)
        ok = (
            isinstance(value_range, (list, tuple))
            and len(value_range) == 2
            and all(_is_number(v) for v in value_range)
        )
        if not ok or not value_range[0] < value_range[1]:
            raise ValueError(
                f"{self.name}.value_range = {value_range!r}: expected [low, high], finite numbers with low < high"
            )
        self.value_range = (float(value_range[0]), float(value_range[1]))

    @property
    def span(self) -> float:
        return self.value_range[1] - self.value_range[0]

    def clip(self, x: torch.Tensor) -> torch.Tensor:
        return x.clamp(*self.value_range)

    def options(self) -> dict:
        return {"value_range": list(self.value_range)}


class _GeometricTransform(_ImageTransform):
    """An image family that resamples pixel positions; ``fill`` (default: value_range low) enters from outside."""

    def __init__(
        self,
        values=None,
        *,
        name: str | None = None,
        value_range: Sequence[float] = (0.0, 1.0),
        fill: float | None = None,
    ):
        super().__init__(values, name=name, value_range=value_range)
        low, high = self.value_range
        if fill is None:
            fill = low
        if not _is_number(fill) or not low <= fill <= high:
            raise ValueError(
                f"{self.name}.fill = {fill!r}: expected a number inside value_range [{low}, {high}]"
            )
        self.fill = float(fill)

    def options(self) -> dict:
        return {**super().options(), "fill": self.fill}


# --------------------------------------------------------------------------------------------------------------
# geometric transforms


@register
class Rotate(_GeometricTransform):
    """Rotate about the image centre, counter-clockwise as displayed for positive angles (bilinear).

    Multiples of 90° on square images (and 180° on any image) use ``torch.rot90``, exact to the bit, so four
    quarter turns give back the input; other angles sample on the same grid, with the corners filled.
    """

    name = "rotate"
    param = Param("degrees", "degrees", -180.0, 180.0, 0.0)

    def transform(self, x: torch.Tensor, value: float, generator: BatchGenerator) -> torch.Tensor:
        _check_image(self.name, x)
        quarter = value / 90.0
        if quarter == round(quarter) and (x.shape[-1] == x.shape[-2] or round(quarter) % 2 == 0):
            return torch.rot90(x, k=round(quarter) % 4, dims=(-2, -1))
        rad = math.radians(value)
        c, s = math.cos(rad), math.sin(rad)
        # Content moves by [[c, s], [-s, c]] in (x right, y down) pixels; the output reads its inverse.
        return _affine(x, torch.tensor([[c, -s], [s, c]], dtype=torch.float64), (0.0, 0.0), self.fill)


@register
class Translate(_GeometricTransform):
    """Shift by ``shift_px`` pixels along ``direction_deg`` (0 = right, 90 = up as displayed).

    Whole-pixel shifts (e.g. integers along an axis) are exact pixel copies; fractional ones are bilinear.
    """

    name = "translate"
    param = Param("shift_px", "px", -64.0, 64.0, 0.0)

    def __init__(
        self,
        values=None,
        *,
        name: str | None = None,
        value_range: Sequence[float] = (0.0, 1.0),
        fill: float | None = None,
        direction_deg: float = 0.0,
    ):
        super().__init__(values, name=name, value_range=value_range, fill=fill)
        if not _is_number(direction_deg):
            raise ValueError(
                f"{self.name}.direction_deg = {direction_deg!r}: expected a finite angle in degrees"
            )
        self.direction_deg = float(direction_deg)

    def options(self) -> dict:
        return {**super().options(), "direction_deg": self.direction_deg}

    def transform(self, x: torch.Tensor, value: float, generator: BatchGenerator) -> torch.Tensor:
        _check_image(self.name, x)
        rad = math.radians(self.direction_deg)
        dx, dy = value * math.cos(rad), -value * math.sin(rad)  # y grows downwards
        rx, ry = round(dx), round(dy)
        if abs(dx - rx) < 1e-6 and abs(dy - ry) < 1e-6:
            return _shift_pixels(x, rx, ry, self.fill)
        return _affine(x, torch.eye(2), (-dx, -dy), self.fill)


@register
class Scale(_GeometricTransform):
    """Zoom about the centre keeping the size: factor 2 shows the content twice as large (cropped), 0.5 half
    as large inside a ``fill`` border."""

    name = "scale"
    param = Param("factor", "×", 0.1, 4.0, 1.0)

    def transform(self, x: torch.Tensor, value: float, generator: BatchGenerator) -> torch.Tensor:
        _check_image(self.name, x)
        return _affine(x, torch.eye(2, dtype=torch.float64) / value, (0.0, 0.0), self.fill)


@register
class Elastic(_GeometricTransform):
    """Random smooth warp: each sample's displacement field has an RMS length of ``alpha_px`` pixels.

    The field is uniform noise in [-1, 1] per pixel and axis, smoothed by a Gaussian of ``sigma`` px (larger:
    broader, gentler bends; the noise is drawn with a 3σ margin that is cropped after smoothing), then scaled so that sqrt(mean(dx² + dy²)) = alpha_px exactly for each sample.
    """

    name = "elastic"
    param = Param("alpha_px", "px", 0.0, 20.0, 0.0)
    random = True

    def __init__(
        self,
        values=None,
        *,
        name: str | None = None,
        value_range: Sequence[float] = (0.0, 1.0),
        fill: float | None = None,
        sigma: float = 4.0,
    ):
        super().__init__(values, name=name, value_range=value_range, fill=fill)
        if not _is_number(sigma) or sigma <= 0:
            raise ValueError(f"{self.name}.sigma = {sigma!r}: expected a smoothness > 0 px")
        self.sigma = float(sigma)

    def options(self) -> dict:
        return {**super().options(), "sigma": self.sigma}

    def transform(self, x: torch.Tensor, value: float, generator: BatchGenerator) -> torch.Tensor:
        _check_image(self.name, x)
        _, _, h, w = x.shape
        # Draw a margin of 3σ around the image and crop it after smoothing, so the field is equally strong
        # everywhere (smoothing reflect-padded noise would leave larger displacements along the borders).
        m = math.ceil(3.0 * self.sigma)
        field = (2.0 * generator.rand(2, h + 2 * m, w + 2 * m) - 1.0).to(dtype=x.dtype, device=x.device)
        field = _gaussian_blur(field, self.sigma)[:, :, m : m + h, m : m + w]
        rms = field.pow(2).sum(1).mean((1, 2)).sqrt().clamp_min(1e-12)
        return _displace(x, field * (value / rms).view(-1, 1, 1, 1), self.fill)


# --------------------------------------------------------------------------------------------------------------
# photometric transforms


@register
class Blur(_ImageTransform):
    """Gaussian blur of ``sigma`` pixels, each channel on its own, reflect padded at the borders."""

    name = "blur"
    param = Param("sigma", "px", 0.0, 10.0, 0.0)

    def transform(self, x: torch.Tensor, value: float, generator: BatchGenerator) -> torch.Tensor:
        _check_image(self.name, x)
        return _gaussian_blur(x, value)


@register
class ImageNoise(_ImageTransform):
    """Additive Gaussian pixel noise, std = ``level`` × (high − low) of ``value_range``, clipped to it."""

    name = "image_noise"
    param = Param("level", "fraction of range", 0.0, 1.0, 0.0)
    random = True

    def transform(self, x: torch.Tensor, value: float, generator: BatchGenerator) -> torch.Tensor:
        _check_image(self.name, x)
        noise = generator.randn(*x.shape[1:]).to(dtype=x.dtype, device=x.device)
        return self.clip(x + value * self.span * noise)


@register
class Brightness(_ImageTransform):
    """Add ``delta`` × (high − low) to every pixel, clipped to ``value_range``."""

    name = "brightness"
    param = Param("delta", "fraction of range", -1.0, 1.0, 0.0)

    def transform(self, x: torch.Tensor, value: float, generator: BatchGenerator) -> torch.Tensor:
        _check_image(self.name, x)
        return self.clip(x + value * self.span)


@register
class Contrast(_ImageTransform):
    """Scale each image's deviations from its mean (over channels and pixels) by ``factor``, clipped.

    Factor 0 gives a flat image at the mean; the mean itself is kept unless clipping bites.
    """

    name = "contrast"
    param = Param("factor", "×", 0.0, 5.0, 1.0)

    def transform(self, x: torch.Tensor, value: float, generator: BatchGenerator) -> torch.Tensor:
        _check_image(self.name, x)
        mean = x.mean((1, 2, 3), keepdim=True)
        return self.clip((x - mean) * value + mean)

"""Generic transforms for any tensor input: additive Gaussian noise at an SNR, gain, clipping."""

from __future__ import annotations

import math

import torch

from proactiv.transforms.base import BatchGenerator, Param, Transform, register


def _power(x: torch.Tensor) -> torch.Tensor:
    """Mean power per sample, shaped to broadcast against ``x``."""
    return x.pow(2).flatten(1).mean(1).view(-1, *([1] * (x.dim() - 1)))


@register
class Noise(Transform):
    """Additive white Gaussian noise at a signal-to-noise ratio in dB (per sample: noise power = P_x / 10^(snr/10))."""

    name = "noise"
    param = Param("snr_db", "dB", -40.0, 120.0, math.inf)
    random = True

    def transform(self, x: torch.Tensor, value: float, generator: BatchGenerator) -> torch.Tensor:
        noise = generator.randn(*x.shape[1:]).to(dtype=x.dtype, device=x.device)
        scale = torch.sqrt(_power(x) / (10.0 ** (value / 10.0)) / _power(noise).clamp_min(1e-20))
        return x + scale * noise


@register
class Gain(Transform):
    """Multiply the input by a gain given in dB."""

    name = "gain"
    param = Param("gain_db", "dB", -60.0, 60.0, 0.0)

    def transform(self, x: torch.Tensor, value: float, generator: BatchGenerator) -> torch.Tensor:
        return x * (10.0 ** (value / 20.0))


@register
class Clip(Transform):
    """Hard clipping at a fraction of each sample's peak magnitude (1 = no clipping)."""

    name = "clip"
    param = Param("level", "fraction of peak", 0.01, 1.0, 1.0)

    def transform(self, x: torch.Tensor, value: float, generator: BatchGenerator) -> torch.Tensor:
        peak = x.abs().flatten(1).amax(1).view(-1, *([1] * (x.dim() - 1)))
        limit = value * peak
        return torch.maximum(torch.minimum(x, limit), -limit)

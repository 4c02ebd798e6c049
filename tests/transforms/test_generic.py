"""Generic transforms and the registry: identity, units, validation, determinism."""

import math

import pytest
import torch

from proactiv.transforms import BatchGenerator, get


def gen(n, seed=0):
    return BatchGenerator(range(seed, seed + n))


@pytest.mark.parametrize("name, identity", [("noise", math.inf), ("gain", 0.0), ("clip", 1.0)])
def test_identity_returns_the_input(name, identity):
    x = torch.randn(3, 50)
    t = get(name)
    assert t.param.identity == identity
    assert t.apply(x, identity, gen(3)) is x


@pytest.mark.parametrize("snr", [30.0, 10.0, 0.0, -10.0])
def test_noise_reaches_requested_snr(snr):
    x = torch.sin(torch.linspace(0, 200, 16000)).repeat(4, 1) * torch.tensor([[0.1], [1.0], [3.0], [0.5]])
    y = get("noise").apply(x, snr, gen(4))
    measured = 10 * torch.log10(x.pow(2).mean(1) / (y - x).pow(2).mean(1))
    assert torch.allclose(measured, torch.full((4,), snr), atol=0.5)


def test_gain_and_clip_values():
    x = torch.tensor([[1.0, -2.0, 0.5]])
    assert torch.allclose(get("gain").apply(x, 20.0, gen(1)), 10 * x)
    assert torch.allclose(get("clip").apply(x, 0.5, gen(1)), torch.tensor([[1.0, -1.0, 0.5]]))


def test_bad_values_raise_naming_parameter():
    with pytest.raises(ValueError, match=r"gain\.gain_db = 100 dB: outside the valid range"):
        get("gain", gain_db=[0, 100])
    with pytest.raises(ValueError, match=r"noise\.snr_db = 'loud'"):
        get("noise", snr_db=["loud"])
    with pytest.raises(ValueError, match="unknown transform 'blurr'; known transforms: .*gain"):
        get("blurr", sigma=[1])
    with pytest.raises(ValueError, match="value list is empty"):
        get("clip", level=[])


def test_noise_is_deterministic_per_sample_and_independent_of_batching():
    x = torch.randn(4, 100)
    t = get("noise")
    batch = t.apply(x, 5.0, BatchGenerator([11, 12, 13, 14]))
    for i, seed in enumerate([11, 12, 13, 14]):
        alone = t.apply(x[i : i + 1], 5.0, BatchGenerator([seed]))
        assert torch.equal(alone[0], batch[i])
    assert not torch.equal(batch[0] - x[0], batch[1] - x[1])

"""Log-mel frontend: shape, frequency placement, differentiability, Griffin-Lim round trip."""

from __future__ import annotations

import math

import pytest
import torch

from proactiv.tasks.kws.frontend import LogMel, griffin_lim, hz_to_mel, mel_filterbank, mel_to_hz

SR = 16000
T = torch.arange(SR, dtype=torch.float32) / SR


def sine(freq: float) -> torch.Tensor:
    return 0.5 * torch.sin(2 * math.pi * freq * T)


def test_shape_of_a_one_second_batch():
    out = LogMel()(torch.randn(3, SR))
    assert out.shape == (3, 40, 101)
    assert LogMel().n_frames(SR) == 101


@pytest.mark.parametrize("scale", ["htk", "slaney"])
@pytest.mark.parametrize("freq", [300.0, 1000.0, 4000.0])
def test_sine_peaks_in_the_nearest_mel_bin(scale, freq):
    fe = LogMel(mel_scale=scale)
    out = fe(sine(freq)[None])[0]
    nearest = int((fe.centre_frequencies() - freq).abs().argmin())
    assert int(out.mean(1).argmax()) == nearest


@pytest.mark.parametrize("scale", ["htk", "slaney"])
def test_mel_scale_round_trip_and_filters(scale):
    f = torch.tensor([0.0, 500.0, 1000.0, 3000.0, 8000.0])
    torch.testing.assert_close(mel_to_hz(hz_to_mel(f, scale), scale), f.double())
    fb = mel_filterbank(257, 40, SR, 20.0, 8000.0, scale)
    assert fb.shape == (40, 257) and fb.min() >= 0 and fb.max() <= 1
    assert torch.all(fb.sum(1) > 0)  # no empty filter


def test_levels_in_db_and_floor():
    fe = LogMel()
    silent = fe(torch.zeros(1, SR))
    assert torch.all(silent == -100.0)
    loud, quiet = fe(sine(1000)[None]), fe(0.1 * sine(1000)[None])
    torch.testing.assert_close(loud.amax(), quiet.amax() + 20.0, atol=0.01, rtol=0)


def test_gradient_flows_to_the_waveform():
    x = (0.1 * torch.randn(2, SR)).requires_grad_(True)
    LogMel()(x)[:, 10:20].mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_config_round_trip():
    fe = LogMel(n_mels=32, mel_scale="slaney", f_min=50.0)
    fe2 = LogMel.from_config(fe.config())
    x = torch.randn(1, SR)
    assert fe2.config() == fe.config()
    torch.testing.assert_close(fe(x), fe2(x))


def test_bad_input_shape_raises():
    with pytest.raises(ValueError, match="waveform batch"):
        LogMel()(torch.zeros(1, 2, 3))
    with pytest.raises(ValueError, match="mel_scale"):
        LogMel(mel_scale="bark")


@pytest.mark.parametrize("freq", [440.0, 1500.0])
def test_griffin_lim_of_a_sine_has_its_peak_near_the_sine(freq):
    fe = LogMel()
    wave = griffin_lim(fe(sine(freq)[None]), fe, n_iter=32)
    assert wave.shape == (1, SR)
    spec = torch.fft.rfft(wave[0] * torch.hann_window(SR)).abs()
    # the mel inverse cannot place energy finer than the filter spacing around the sine
    centres = fe.centre_frequencies()
    k = int((centres - freq).abs().argmin())
    spacing = float(centres[k + 1] - centres[k - 1]) / 2
    assert abs(float(spec.argmax()) - freq) < spacing
    torch.testing.assert_close(
        griffin_lim(fe(sine(freq)[None]), fe, n_iter=4), griffin_lim(fe(sine(freq)[None]), fe, n_iter=4)
    )

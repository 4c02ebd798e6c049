"""Audio transforms: identity, SNR, determinism, and the physical effect of each transform."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from proactiv.transforms import BatchGenerator, audio, get

SR = 16000
T = torch.arange(SR, dtype=torch.float32) / SR


def gen(batch: int, seed: int = 0) -> BatchGenerator:
    return BatchGenerator([seed + i for i in range(batch)])


def tone(freq: float, start: int = 0, stop: int = SR) -> torch.Tensor:
    x = torch.zeros(SR)
    x[start:stop] = torch.sin(2 * math.pi * freq * T[start:stop])
    return x


def peak_hz(x: torch.Tensor) -> float:
    """Frequency (Hz) of the largest spectral peak of a 1 s clip (1 Hz bins)."""
    return float(torch.fft.rfft(x * torch.hann_window(len(x))).abs().argmax())


def speechlike(batch: int = 2, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    env = torch.exp(-(((T - 0.5) / 0.15) ** 2))
    return 0.3 * env * torch.randn(batch, SR, generator=g)


WAVE_TRANSFORMS = [
    ("audio_noise", {"color": "white"}, 10.0),
    ("audio_noise", {"color": "pink"}, 10.0),
    ("audio_noise", {"color": "brown"}, 10.0),
    ("audio_noise", {"color": "babble"}, 10.0),
    ("shift", {}, 120.0),
    ("speed", {}, 1.3),
    ("pitch", {}, 3.0),
    ("reverb", {}, 0.4),
    ("lowpass", {}, 2000.0),
    ("lowpass", {"highpass_hz": 300.0}, 3400.0),
]
FEATURE_TRANSFORMS = [("time_mask", {}, 10.0), ("freq_mask", {}, 5.0)]


@pytest.fixture
def bg_dir(tmp_path):
    from scipy.io import wavfile

    g = np.random.default_rng(0)
    wavfile.write(
        tmp_path / "hum.wav", SR, (3000 * np.sin(2 * np.pi * 120 * np.arange(3 * SR) / SR)).astype(np.int16)
    )
    wavfile.write(tmp_path / "hiss.wav", 8000, (2000 * g.standard_normal(8000 * 2)).astype(np.int16))
    return tmp_path


@pytest.mark.parametrize("kind, opts, value", WAVE_TRANSFORMS + FEATURE_TRANSFORMS)
def test_identity_returns_input_and_non_identity_changes_it(kind, opts, value):
    t = get(kind, **opts)
    x = torch.randn(2, 40, 101) if t.domain == "feature" else speechlike()
    out = t.apply(x, t.param.identity, gen(2))
    assert out.shape == x.shape and torch.equal(out, x)
    changed = t.apply(x, value, gen(2))
    assert changed.shape == x.shape
    assert not torch.allclose(changed, x)
    assert torch.isfinite(changed).all()


@pytest.mark.parametrize("kind, opts, value", WAVE_TRANSFORMS + FEATURE_TRANSFORMS)
def test_deterministic_and_batch_independent(kind, opts, value):
    t = get(kind, **opts)
    x = torch.randn(2, 40, 101) if t.domain == "feature" else speechlike()
    a = t.apply(x, value, BatchGenerator([11, 12]))
    b = t.apply(x, value, BatchGenerator([11, 12]))
    assert torch.equal(a, b)
    alone0 = t.apply(x[:1], value, BatchGenerator([11]))
    alone1 = t.apply(x[1:], value, BatchGenerator([12]))
    assert torch.equal(a, torch.cat([alone0, alone1]))  # bit for bit: a record may not depend on its batch


def test_speed_then_pitch_of_a_clip_is_the_same_alone_and_in_a_batch():
    """The phase vocoder sums phases over frames, so it turns the rounding difference of a batched FFT
    (1e-7) in a quiet bin into an audible one: rows must be transformed as if alone, bit for bit."""
    x = speechlike(batch=12, seed=3) * torch.linspace(0.05, 1.0, 12)[:, None]
    speed, pitch = get("speed"), get("pitch")
    batched = pitch.apply(speed.apply(x, 0.8, gen(12)), -4.0, gen(12))
    for i in range(12):
        alone = pitch.apply(speed.apply(x[i : i + 1], 0.8, gen(1)), -4.0, gen(1))
        assert torch.equal(alone[0], batched[i]), f"clip {i} differs alone vs batched"


@pytest.mark.parametrize("color", ["white", "pink", "brown", "babble", "hum", "background", "babble_files"])
@pytest.mark.parametrize("snr", [-5.0, 0.0, 20.0])
def test_noise_snr_is_the_requested_one(color, snr, bg_dir):
    opts = {"color": color}
    if color in ("background", "babble_files"):
        opts = {"color": color.split("_")[0], "source": str(bg_dir)}
    t = get("audio_noise", snr_db=[snr], **opts)
    x = speechlike(3)
    y = t.apply(x, snr, gen(3))
    measured = 10 * torch.log10(audio.power(x) / audio.power(y - x))
    assert torch.all((measured - snr).abs() < 0.5), measured


def _slope(noise: torch.Tensor) -> float:
    """Fitted log-power vs log-frequency slope over 100 Hz–4 kHz."""
    spec = torch.fft.rfft(noise).abs().pow(2).mean(0)
    f = torch.arange(len(spec), dtype=torch.float64)
    band = (f >= 100) & (f <= 4000)
    return float(np.polyfit(np.log10(f[band].numpy()), np.log10(spec[band].double().numpy()), 1)[0])


def test_noise_colours_have_their_spectral_slope():
    assert abs(_slope(get("audio_noise", color="white").make_noise(SR, gen(4)))) < 0.1
    assert abs(_slope(get("audio_noise", color="pink").make_noise(SR, gen(4))) + 1) < 0.1
    assert abs(_slope(get("audio_noise", color="brown").make_noise(SR, gen(4))) + 2) < 0.1


def test_hum_is_mains_frequency_and_its_harmonics():
    noise = get("audio_noise", color="hum").make_noise(SR, gen(12))
    spectrum = torch.fft.rfft(noise).abs()  # 1-s clips: bin k is k Hz
    for row in spectrum:
        fundamental = int(row.argmax())
        assert fundamental in (50, 60)
        assert row[2 * fundamental] > 100 * row[2 * fundamental + 7]  # a harmonic, nothing between
        assert row[1201:].max() < 1e-3 * row.max()  # 20 harmonics: nothing above 1.2 kHz
    assert {int(r.argmax()) for r in spectrum} == {50, 60}  # both mains frequencies are drawn


def test_background_noise_comes_from_the_files(bg_dir):
    t = get("audio_noise", color="background", source=str(bg_dir))
    noise = t.make_noise(SR, gen(8))
    peaks = {peak_hz(n) for n in noise}
    assert 120.0 in peaks  # the hum file was picked for some sample


def test_noise_bad_options_raise():
    with pytest.raises(ValueError, match="color"):
        get("audio_noise", color="purple")
    with pytest.raises(ValueError, match="source"):
        get("audio_noise", color="background")
    with pytest.raises(ValueError, match="snr_db"):
        get("audio_noise", snr_db=[float("nan")])


def test_shift_moves_content_and_zero_fills():
    x = tone(500, 4000, 8000)[None]
    y = get("shift").apply(x, 100.0, gen(1))
    torch.testing.assert_close(y[0, 5600:9600], x[0, 4000:8000])
    assert torch.all(y[0, :5600] == 0)
    y = get("shift").apply(x, -300.0, gen(1))
    torch.testing.assert_close(y[0, 0:3200], x[0, 4800:8000])


def _active(x: torch.Tensor, thresh: float = 0.1) -> int:
    env = torch.nn.functional.avg_pool1d(x.abs()[None], 81, stride=1, padding=40)[0]
    return int((env > thresh).sum())


def test_speed_two_halves_the_duration_of_a_tone_burst():
    x = tone(300, 4000, 12000)[None]
    y = get("speed").apply(x, 2.0, gen(1))[0]
    assert abs(_active(y) - 4000) < 150
    assert abs(peak_hz(y) - 600) <= 3
    y = get("speed").apply(x, 0.8, gen(1))[0]
    assert abs(_active(y) - 10000) < 150


@pytest.mark.parametrize("semitones", [12.0, -12.0, 5.0])
def test_pitch_shifts_frequency_and_keeps_duration(semitones):
    x = tone(440)[None]
    y = get("pitch").apply(x, semitones, gen(1))[0]
    expected = 440 * 2 ** (semitones / 12)
    assert abs(peak_hz(y) - expected) < 0.02 * expected
    burst = tone(440, 4000, 12000)[None]
    yb = get("pitch").apply(burst, semitones, gen(1))[0]
    assert abs(_active(yb) - _active(burst[0])) < 500


def test_reverb_lengthens_the_decay():
    x = tone(500, 2000, 6000)[None]
    tail = slice(6500, 10000)
    energies = [float(get("reverb").apply(x, rt, gen(1))[0, tail].pow(2).mean()) for rt in (0.0, 0.2, 0.8)]
    assert energies[0] == 0.0
    assert energies[1] > 1e-4 and energies[2] > 5 * energies[1]
    y = get("reverb").apply(x, 0.8, gen(1))
    assert abs(float(audio.power(y) / audio.power(x)) - 1) < 1e-3  # level kept


def test_lowpass_removes_a_6khz_tone_and_keeps_a_low_one():
    x = (tone(6000) + tone(440))[None]
    y = get("lowpass").apply(x, 4000.0, gen(1))[0]
    spec = torch.fft.rfft(y).abs()
    ref = torch.fft.rfft(x[0]).abs()
    assert spec[6000] < 1e-3 * ref[6000]
    assert abs(spec[440] / ref[440] - 1) < 0.01


def test_telephone_band_removes_low_and_high():
    x = (tone(100) + tone(1000) + tone(5000))[None]
    y = get("lowpass", cutoff_hz=[3400], highpass_hz=300).apply(x, 3400.0, gen(1))[0]
    spec, ref = torch.fft.rfft(y).abs(), torch.fft.rfft(x[0]).abs()
    assert spec[100] < 1e-3 * ref[100] and spec[5000] < 1e-3 * ref[5000]
    assert abs(spec[1000] / ref[1000] - 1) < 0.01
    with pytest.raises(ValueError, match="highpass_hz"):
        get("lowpass", cutoff_hz=[200], highpass_hz=300)


@pytest.mark.parametrize("kind, axis", [("time_mask", 2), ("freq_mask", 1)])
def test_masks_fill_a_band_of_the_given_width_with_the_sample_mean(kind, axis):
    x = torch.randn(3, 40, 101) * 10 - 50
    y = get(kind).apply(x, 7.0, gen(3))
    for b in range(3):
        changed = (y[b] != x[b]).any(dim=2 - axis)
        idx = changed.nonzero()[:, 0]
        assert len(idx) == 7 and int(idx[-1] - idx[0]) == 6
        band = y[b].index_select(axis - 1, idx)
        torch.testing.assert_close(band, torch.full_like(band, float(x[b].mean())))


def test_bad_values_name_the_parameter():
    with pytest.raises(ValueError, match="speed.factor"):
        get("speed", factor=[10.0])
    with pytest.raises(ValueError, match="reverb.rt60_s"):
        get("reverb", rt60_s=[-1.0])
    with pytest.raises(ValueError, match="expects a waveform"):
        get("speed").apply(torch.zeros(2, 3, 4), 2.0, gen(2))

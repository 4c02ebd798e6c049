"""Audio transforms: waveform domain (B, samples) at 16 kHz, and feature-domain masks on log-mel (B, mels, frames).

Waveform transforms keep the clip length (1 s = 16000 samples): anything that changes duration is centre
cropped or zero padded back, because Speech Commands utterances sit roughly in the middle of their clip.
Random transforms draw only from the per-sample :class:`BatchGenerator`, so a sample's result does not depend
on the rest of its batch. Gain and clipping are generic (``proactiv.transforms.generic``).

The ``*_`` functions below are the vectorised cores (per-sample parameters as tensors); training
augmentation uses them directly with its own generator.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from proactiv.transforms.base import BatchGenerator, Param, Transform, register

SAMPLE_RATE = 16000
NOISE_COLORS = ("white", "pink", "brown", "babble", "hum", "background")


def _check_wave(name: str, x: torch.Tensor) -> None:
    if x.dim() != 2:
        raise ValueError(
            f"transform {name!r} expects a waveform batch (B, samples); got shape {tuple(x.shape)}"
        )


def _check_feature(name: str, x: torch.Tensor) -> None:
    if x.dim() != 3:
        raise ValueError(f"transform {name!r} expects features (B, mels, frames); got shape {tuple(x.shape)}")


def power(x: torch.Tensor) -> torch.Tensor:
    """Mean power per sample of a batch ``(B, ...)``, shape ``(B,)``."""
    return x.pow(2).flatten(1).mean(1)


# --------------------------------------------------------------------------------------------------------------
# functional cores


def _by_rows(fft, x: torch.Tensor, n: int | None) -> torch.Tensor:
    """``fft`` of the last axis one row at a time: a batched FFT rounds differently from the same row alone,
    and the pitch transform's phase vocoder carries such 1e-7 differences into audible ones, so a record would
    depend on which clips shared its batch."""
    rows = x.reshape(-1, x.shape[-1])
    if len(rows) == 0:
        return fft(x, n=n)
    out = torch.stack([fft(r, n=n) for r in rows])
    return out.reshape(*x.shape[:-1], out.shape[-1])


def rfft(x: torch.Tensor, n: int | None = None) -> torch.Tensor:
    """``torch.fft.rfft`` whose rows do not depend on the batch they come in."""
    return _by_rows(torch.fft.rfft, x, n)


def irfft(spec: torch.Tensor, n: int | None = None) -> torch.Tensor:
    """``torch.fft.irfft`` whose rows do not depend on the batch they come in."""
    return _by_rows(torch.fft.irfft, spec, n)


def fit_length(x: torch.Tensor, n: int) -> torch.Tensor:
    """Centre-crop or symmetrically zero-pad the last axis to ``n`` samples."""
    length = x.shape[-1]
    if length == n:
        return x
    if length > n:
        start = (length - n) // 2
        return x[..., start : start + n]
    left = (n - length) // 2
    return torch.nn.functional.pad(x, (left, n - length - left))


def resample(x: torch.Tensor, n_out: int) -> torch.Tensor:
    """Band-limited resampling of the last axis to ``n_out`` samples (FFT method, zero padded against wrap).

    Playing the result at the original rate changes speed and pitch by ``len / n_out``.
    """
    n_in = x.shape[-1]
    if n_out == n_in:
        return x
    spec = rfft(x, n=2 * n_in)
    keep = min(spec.shape[-1], n_out + 1)
    out = torch.zeros(*spec.shape[:-1], n_out + 1, dtype=spec.dtype, device=spec.device)
    out[..., :keep] = spec[..., :keep]
    y = irfft(out, n=2 * n_out) * (n_out / n_in)
    return y[..., :n_out]


def shift_(x: torch.Tensor, samples: torch.Tensor) -> torch.Tensor:
    """Shift each row of ``x`` (B, N) right by ``samples[b]`` (negative: left), zero fill."""
    n = x.shape[-1]
    idx = torch.arange(n, device=x.device)[None, :] - samples.to(x.device).long()[:, None]
    valid = (idx >= 0) & (idx < n)
    return torch.where(
        valid, x.gather(1, idx.clamp(0, n - 1)), torch.zeros((), dtype=x.dtype, device=x.device)
    )


def speed_linear_(x: torch.Tensor, factors: torch.Tensor, shift: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample speed change by linear interpolation around the clip centre (cheap; for augmentation).

    ``factors[b] > 1`` plays faster (shorter, higher); the length is kept by zero fill at the ends. The
    optional ``shift[b]`` (samples, positive: later) is applied in the same pass.
    """
    n = x.shape[-1]
    centre = (n - 1) / 2
    grid = torch.arange(n, device=x.device, dtype=x.dtype)[None, :] - centre
    pos = centre + grid * factors.to(x)[:, None]
    if shift is not None:
        pos = pos - shift.to(x)[:, None] * factors.to(x)[:, None]
    lo = pos.floor()
    frac = pos - lo
    lo = lo.long()
    valid = (lo >= 0) & (lo + 1 < n)
    a = x.gather(1, lo.clamp(0, n - 1))
    b = x.gather(1, (lo + 1).clamp(0, n - 1))
    return torch.where(valid, a + frac * (b - a), torch.zeros((), dtype=x.dtype, device=x.device))


def mix_at_snr_(x: torch.Tensor, noise: torch.Tensor, snr_db: torch.Tensor | float) -> torch.Tensor:
    """``x + g·noise`` with ``g`` per sample so that power(x) / power(g·noise) = 10^(snr_db/10) exactly."""
    snr_db = torch.as_tensor(snr_db, dtype=x.dtype, device=x.device).expand(x.shape[0])
    gain = torch.sqrt(power(x) / (10.0 ** (snr_db / 10.0)) / power(noise).clamp_min(1e-20))
    return x + gain.view(-1, *([1] * (x.dim() - 1))) * noise


def shape_spectrum_(noise: torch.Tensor, exponent: float, f_min: float = 20.0) -> torch.Tensor:
    """Colour white noise (B, N): amplitude ∝ f^(-exponent/2) (power ∝ 1/f^exponent), zero below ``f_min``.

    Below ``f_min`` the noise is removed: brown noise would otherwise put most of its power under 20 Hz,
    which no log-mel bin sees, and the nominal SNR would overstate how loud the noise is.
    """
    n = noise.shape[-1]
    spec = rfft(noise)
    freqs = torch.fft.rfftfreq(n, d=1.0 / SAMPLE_RATE).to(noise.device)
    weight = torch.where(freqs >= f_min, freqs.clamp_min(f_min) ** (-exponent / 2.0), torch.zeros_like(freqs))
    return irfft(spec * weight.to(spec.dtype), n=n)


def speech_shaped_babble_(white: torch.Tensor, envelopes: torch.Tensor) -> torch.Tensor:
    """Synthetic babble: the sum of talkers, each speech-spectrum noise under a syllable-rate envelope.

    ``white`` (B, K, N) and ``envelopes`` (B, K, N) standard normal draws; the long-term spectrum falls off
    above 500 Hz and below 100 Hz like speech, and each talker's loudness moves at ~4 Hz like syllables.
    """
    n = white.shape[-1]
    freqs = torch.fft.rfftfreq(n, d=1.0 / SAMPLE_RATE).to(white.device)
    speech = (freqs / 100.0).clamp(max=1.0) ** 2 / torch.sqrt(1.0 + (freqs / 500.0) ** 2)
    talkers = irfft(rfft(white) * speech, n=n)
    syllabic = (freqs <= 6.0).to(freqs.dtype)
    syllabic[0] = 0.0
    env = irfft(rfft(envelopes) * syllabic, n=n)
    env = env / env.pow(2).mean(-1, keepdim=True).sqrt().clamp_min(1e-12)
    env = torch.nn.functional.softplus(2.0 * env)
    return (talkers * env).sum(1)


def mains_hum_(uniform: torch.Tensor, n: int, harmonics: int = 20) -> torch.Tensor:
    """Mains hum (B, n): a 50- or 60-Hz fundamental and its first ``harmonics`` harmonics, amplitude ∝ 1/k.

    ``uniform`` (B, harmonics + 1) uniform draws: the first picks the mains frequency, the rest the phases.
    A hum is tonal and sits below 1.2 kHz, unlike the broadband noises above: a noise a model trained on
    broadband noise has not heard.
    """
    fundamental = torch.where(uniform[:, :1] < 0.5, 50.0, 60.0)
    k = torch.arange(1, harmonics + 1, dtype=uniform.dtype)
    t = torch.arange(n, dtype=uniform.dtype) / SAMPLE_RATE
    phase = 2 * math.pi * uniform[:, 1:, None]
    tones = torch.sin(2 * math.pi * fundamental[:, :, None] * k[None, :, None] * t + phase) / k[None, :, None]
    return tones.sum(1)


def band_filter_(
    x: torch.Tensor, low_hz: float, high_hz: float, transition_hz: float = 200.0
) -> torch.Tensor:
    """Zero-phase FFT band-pass: pass [low, high], zero outside, raised-cosine edges of ``transition_hz``.

    The edges lie *inside* the band, so nothing above ``high_hz`` (or below ``low_hz``) survives.
    """
    n = x.shape[-1]
    spec = rfft(x, n=2 * n)
    freqs = torch.fft.rfftfreq(2 * n, d=1.0 / SAMPLE_RATE).to(x.device)
    resp = torch.ones_like(freqs)
    if high_hz < SAMPLE_RATE / 2:
        w = min(transition_hz, 0.25 * high_hz)
        t = ((high_hz - freqs) / w).clamp(0.0, 1.0)
        resp = resp * (0.5 - 0.5 * torch.cos(math.pi * t))
    if low_hz > 0:
        w = min(transition_hz, 0.25 * low_hz)
        t = ((freqs - low_hz) / w).clamp(0.0, 1.0)
        resp = resp * (0.5 - 0.5 * torch.cos(math.pi * t))
    return irfft(spec * resp.to(spec.dtype), n=2 * n)[..., :n]


def phase_vocoder_(spec: torch.Tensor, rate: float, hop: int) -> torch.Tensor:
    """Time-stretch a complex STFT (..., freqs, frames) by ``rate`` (>1 faster) keeping phase coherence.

    Magnitudes are interpolated between neighbouring frames; each bin's phase advances by its measured
    instantaneous frequency, so partials keep their pitch.
    """
    n_freq, n_frames = spec.shape[-2], spec.shape[-1]
    steps = torch.arange(0, n_frames, rate, device=spec.device, dtype=torch.float64)
    alpha = (steps % 1.0).to(spec.real.dtype)
    expected = torch.linspace(0, math.pi * hop, n_freq, device=spec.device, dtype=spec.real.dtype)[:, None]
    padded = torch.nn.functional.pad(spec, (0, 2))
    i0 = steps.long()
    s0, s1 = padded[..., i0], padded[..., i0 + 1]
    dphi = s1.angle() - s0.angle() - expected
    dphi = dphi - 2 * math.pi * torch.round(dphi / (2 * math.pi)) + expected
    phase = torch.cat([spec[..., :1].angle(), dphi[..., :-1]], dim=-1).cumsum(-1)
    mag = (1 - alpha) * s0.abs() + alpha * s1.abs()
    return torch.polar(mag, phase)


def time_stretch_(x: torch.Tensor, factor: float, n_fft: int = 512, hop: int = 128) -> torch.Tensor:
    """Make ``x`` (B, N) ``factor`` times longer (pitch kept) with a phase vocoder; returns round(N·factor).

    One row at a time, for the reason of :func:`_by_rows`: a batched STFT rounds differently from the same row
    alone on some CPUs (seen on AVX-512 machines), and the vocoder's phase sums make that audible."""
    n = x.shape[-1]
    window = torch.hann_window(n_fft, device=x.device, dtype=x.dtype)

    def stretch(row: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(row, n_fft, hop_length=hop, window=window, center=True, return_complex=True)
        stretched = phase_vocoder_(spec, 1.0 / factor, hop)
        return torch.istft(
            stretched, n_fft, hop_length=hop, window=window, center=True, length=round(n * factor)
        )

    rows = x.reshape(-1, n)
    if len(rows) == 0:
        return x.new_zeros(*x.shape[:-1], round(n * factor))
    return torch.stack([stretch(r) for r in rows]).reshape(*x.shape[:-1], -1)


def pitch_shift_(x: torch.Tensor, semitones: float) -> torch.Tensor:
    """Shift pitch by ``semitones`` keeping duration: phase-vocoder stretch by r = 2^(s/12), resample back."""
    ratio = 2.0 ** (semitones / 12.0)
    n = x.shape[-1]
    return fit_length(resample(time_stretch_(x, ratio), n), n)


def exponential_rir_(noise: torch.Tensor, rt60_s: float | torch.Tensor) -> torch.Tensor:
    """Room impulse response: a unit direct path then ``noise`` decaying by 60 dB over ``rt60_s`` seconds.

    ``rt60_s`` is a float or a (B, 1) tensor. The tail's initial level is fixed (-27.6 dB re the direct path per sample), so its energy grows with
    ``rt60_s`` as in one room with more reflective walls; direct-to-reverberant ratio ≈ 0 dB at 0.5 s.
    """
    length = noise.shape[-1]
    t = torch.arange(length, device=noise.device, dtype=noise.dtype) / SAMPLE_RATE
    rir = 0.0415 * noise * torch.exp(-3.0 * math.log(10.0) * t / rt60_s)
    rir[..., 0] = 1.0
    return rir


# --------------------------------------------------------------------------------------------------------------
# background files


@lru_cache(maxsize=8)
def _wav_files(directory: str) -> tuple[str, ...]:
    files = tuple(sorted(str(p) for p in Path(directory).glob("*.wav")))
    if not files:
        raise ValueError(f"noise source {directory!r}: no .wav files found")
    return files


@lru_cache(maxsize=256)
def read_wav_16k(path: str) -> torch.Tensor:
    """Mono float waveform at 16 kHz in [-1, 1] (resampled when the file has another rate)."""
    from scipy.io import wavfile

    try:
        rate, data = wavfile.read(path)
    except Exception as err:
        raise ValueError(f"noise source file {path!r}: cannot read as WAV ({err})") from None
    if data.dtype.kind in "iu":
        bits = data.dtype.itemsize * 8
        offset = 2 ** (bits - 1) if data.dtype.kind == "u" else 0
        data = (data.astype(np.float64) - offset) / 2 ** (bits - 1)
    data = data.astype(np.float32)
    if data.ndim == 2:
        data = data.mean(1)
    wave = torch.from_numpy(np.ascontiguousarray(data))
    if rate != SAMPLE_RATE:
        wave = resample(wave, round(len(wave) * SAMPLE_RATE / rate))
    if len(wave) == 0:
        raise ValueError(f"noise source file {path!r} is empty")
    return wave


def segment(wave: torch.Tensor, u: float, n: int) -> torch.Tensor:
    """A length-``n`` segment of ``wave`` at relative position ``u`` in [0, 1) (tiled when it is shorter)."""
    if len(wave) < n:
        wave = wave.repeat(n // len(wave) + 1)
    start = int(u * (len(wave) - n + 1))
    return wave[start : start + n]


# --------------------------------------------------------------------------------------------------------------
# waveform transforms


@register
class AudioNoise(Transform):
    """Additive noise at a signal-to-noise ratio in dB (per sample, over the whole clip).

    ``color``: ``"white"``; ``"pink"`` (power ∝ 1/f) and ``"brown"`` (1/f²), both zero below 20 Hz;
    ``"babble"`` (six synthetic speech-shaped talkers, or six clips from ``source`` when given);
    ``"hum"`` (mains hum: 50 or 60 Hz and 20 harmonics, random phases);
    ``"background"`` (a random segment of a random ``.wav`` in ``source``, e.g. ``_background_noise_``).
    A silent input stays silent (no signal, so no SNR to keep).
    """

    name = "audio_noise"
    param = Param("snr_db", "dB", -40.0, 120.0, math.inf)
    domain = "waveform"
    random = True
    babble_talkers = 6

    def __init__(
        self, values=None, *, name: str | None = None, color: str = "white", source: str | None = None
    ):
        if color not in NOISE_COLORS:
            raise ValueError(f"audio_noise: color = {color!r}; expected one of {NOISE_COLORS}")
        if color == "background" and source is None:
            raise ValueError("audio_noise: color='background' needs source=<directory of .wav files>")
        if source is not None:
            if not Path(source).is_dir():
                raise ValueError(f"audio_noise: source = {source!r} is not a directory")
            _wav_files(str(source))
        self.color = color
        self.source = None if source is None else str(source)
        super().__init__(values, name=name)

    def options(self) -> dict:
        return {"color": self.color, "source": self.source}

    def make_noise(self, n: int, generator: BatchGenerator) -> torch.Tensor:
        """Unscaled noise of this colour, shape (B, n)."""
        if self.color == "white":
            return generator.randn(n)
        if self.color in ("pink", "brown"):
            return shape_spectrum_(generator.randn(n), 1.0 if self.color == "pink" else 2.0)
        if self.color == "hum":
            return mains_hum_(generator.rand(21), n)
        if self.source is None:  # synthetic babble
            k = self.babble_talkers
            return speech_shaped_babble_(generator.randn(k, n), generator.randn(k, n))
        files = _wav_files(self.source)
        if self.color == "background":
            pick = generator.rand(2)
            return torch.stack(
                [segment(read_wav_16k(files[int(p[0] * len(files))]), float(p[1]), n) for p in pick]
            )
        pick = generator.rand(self.babble_talkers, 2)
        out = []
        for row in pick:
            clips = [segment(read_wav_16k(files[int(p[0] * len(files))]), float(p[1]), n) for p in row]
            clips = [c / c.pow(2).mean().sqrt().clamp_min(1e-8) for c in clips]
            out.append(torch.stack(clips).sum(0))
        return torch.stack(out)

    def transform(self, x: torch.Tensor, value: float, generator: BatchGenerator) -> torch.Tensor:
        _check_wave(self.name, x)
        noise = self.make_noise(x.shape[-1], generator).to(dtype=x.dtype, device=x.device)
        return mix_at_snr_(x, noise, value)


@register
class Shift(Transform):
    """Time shift in milliseconds (positive: later), zero fill; the clip length is kept."""

    name = "shift"
    param = Param("shift_ms", "ms", -1000.0, 1000.0, 0.0)
    domain = "waveform"

    def transform(self, x: torch.Tensor, value: float, generator: BatchGenerator) -> torch.Tensor:
        _check_wave(self.name, x)
        samples = torch.full((x.shape[0],), round(value * SAMPLE_RATE / 1000.0))
        return shift_(x, samples)


@register
class Speed(Transform):
    """Speed change by band-limited resampling (pitch moves with it); centre crop / zero pad back to length.

    ``factor`` 2 plays twice as fast (half the duration, an octave up).
    """

    name = "speed"
    param = Param("factor", "×", 0.25, 4.0, 1.0)
    domain = "waveform"

    def transform(self, x: torch.Tensor, value: float, generator: BatchGenerator) -> torch.Tensor:
        _check_wave(self.name, x)
        n = x.shape[-1]
        return fit_length(resample(x, max(1, round(n / value))), n)


@register
class Pitch(Transform):
    """Pitch shift in semitones with the duration kept (phase-vocoder time stretch, then resampling)."""

    name = "pitch"
    param = Param("semitones", "semitones", -24.0, 24.0, 0.0)
    domain = "waveform"

    def transform(self, x: torch.Tensor, value: float, generator: BatchGenerator) -> torch.Tensor:
        _check_wave(self.name, x)
        return pitch_shift_(x, value)


@register
class Reverb(Transform):
    """Reverberation with a synthetic room: exponentially decaying noise impulse response of a given RT60.

    The impulse response (up to ``rt60_s`` long, at most the clip length) is drawn per sample from the
    generator; the output keeps the first ``N`` samples and the input's RMS, so reverb is not a gain change.
    """

    name = "reverb"
    param = Param("rt60_s", "s", 0.0, 4.0, 0.0)
    domain = "waveform"
    random = True

    def transform(self, x: torch.Tensor, value: float, generator: BatchGenerator) -> torch.Tensor:
        _check_wave(self.name, x)
        n = x.shape[-1]
        length = max(2, min(n, math.ceil(value * SAMPLE_RATE)))
        rir = exponential_rir_(generator.randn(length).to(dtype=x.dtype, device=x.device), value)
        size = n + length
        wet = irfft(rfft(x, n=size) * rfft(rir, n=size), n=size)[..., :n]
        scale = torch.sqrt(power(x) / power(wet).clamp_min(1e-20))
        return wet * scale[:, None]


@register
class Lowpass(Transform):
    """Band limiting: remove everything above ``cutoff_hz`` (zero-phase, 200 Hz raised-cosine edge below it).

    Option ``highpass_hz`` also removes everything below it; a telephone channel is
    ``get("lowpass", cutoff_hz=[3400], highpass_hz=300)``. At the identity (8000 Hz) the input is returned
    unchanged, high-pass included.
    """

    name = "lowpass"
    param = Param("cutoff_hz", "Hz", 50.0, 8000.0, 8000.0)
    domain = "waveform"

    def __init__(self, values=None, *, name: str | None = None, highpass_hz: float = 0.0):
        if not 0.0 <= float(highpass_hz) < SAMPLE_RATE / 2:
            raise ValueError(f"lowpass.highpass_hz = {highpass_hz}: expected 0 <= highpass_hz < 8000 Hz")
        self.highpass_hz = float(highpass_hz)
        super().__init__(values, name=name)
        for v in self.values:
            if v != self.param.identity and v <= self.highpass_hz:
                raise ValueError(
                    f"lowpass.cutoff_hz = {v} Hz: must be above highpass_hz = {self.highpass_hz} Hz"
                )

    def options(self) -> dict:
        return {"highpass_hz": self.highpass_hz}

    def transform(self, x: torch.Tensor, value: float, generator: BatchGenerator) -> torch.Tensor:
        _check_wave(self.name, x)
        return band_filter_(x, self.highpass_hz, value)


# --------------------------------------------------------------------------------------------------------------
# feature-domain masks (SpecAugment-style)


def mask_(x: torch.Tensor, start: torch.Tensor, width: int, axis: int) -> torch.Tensor:
    """Replace ``width`` rows (axis 1) or columns (axis 2) from ``start[b]`` with each sample's mean.

    The fill is the mean over all of the sample's features, so a mask carries no energy cue of its own
    (a zero fill would read as -0 dB, loud, in log-mel space).
    """
    size = x.shape[axis]
    idx = torch.arange(size, device=x.device)[None, :]
    start = start.to(x.device).long()[:, None]
    inside = (idx >= start) & (idx < start + width)
    inside = inside[:, :, None] if axis == 1 else inside[:, None, :]
    fill = x.flatten(1).mean(1).view(-1, 1, 1)
    return torch.where(inside, fill.expand_as(x), x)


class _Mask(Transform):
    domain = "feature"
    random = True
    axis = 2

    def transform(self, x: torch.Tensor, value: float, generator: BatchGenerator) -> torch.Tensor:
        _check_feature(self.name, x)
        size = x.shape[self.axis]
        width = min(int(round(value)), size)
        if width == 0:
            return x
        start = (generator.rand() * (size - width + 1)).floor().clamp(max=size - width)
        return mask_(x, start, width, self.axis)


@register
class TimeMask(_Mask):
    """Mask ``width_frames`` consecutive frames at a random position with the sample's mean feature value."""

    name = "time_mask"
    param = Param("width_frames", "frames", 0.0, 1000.0, 0.0)
    axis = 2


@register
class FreqMask(_Mask):
    """Mask ``width_bins`` consecutive mel bins at a random position with the sample's mean feature value."""

    name = "freq_mask"
    param = Param("width_bins", "bins", 0.0, 256.0, 0.0)
    axis = 1

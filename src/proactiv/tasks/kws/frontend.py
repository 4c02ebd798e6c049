"""Log-mel frontend written in torch, so projection can run on waveforms *through* it, plus Griffin-Lim.

The frontend turns a 16 kHz waveform ``(B, samples)`` into log-mel power in dB ``(B, n_mels, frames)``.
Everything is differentiable (``torch.stft`` and a matrix product), so a projection on waveforms gets
gradients through the features. :func:`griffin_lim` (:meth:`LogMel.invert`) goes the other way
(approximately) so that feature-domain results can be listened to.
"""

from __future__ import annotations

import math

import torch
from torch import nn

MEL_SCALES = ("htk", "slaney")


def hz_to_mel(freq: torch.Tensor, scale: str = "htk") -> torch.Tensor:
    """Hertz → mel; ``"htk"``: 2595·log10(1 + f/700); ``"slaney"``: linear below 1 kHz, log above."""
    freq = torch.as_tensor(freq, dtype=torch.float64)
    if scale == "htk":
        return 2595.0 * torch.log10(1.0 + freq / 700.0)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    lin = freq / f_sp
    log = min_log_mel + torch.log(freq.clamp_min(min_log_hz) / min_log_hz) / logstep
    return torch.where(freq >= min_log_hz, log, lin)


def mel_to_hz(mel: torch.Tensor, scale: str = "htk") -> torch.Tensor:
    """Mel → hertz, the inverse of :func:`hz_to_mel`."""
    mel = torch.as_tensor(mel, dtype=torch.float64)
    if scale == "htk":
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    lin = mel * f_sp
    log = min_log_hz * torch.exp(logstep * (mel - min_log_mel))
    return torch.where(mel >= min_log_mel, log, lin)


def mel_filterbank(
    n_freqs: int, n_mels: int, sample_rate: int, f_min: float, f_max: float, scale: str = "htk"
) -> torch.Tensor:
    """Triangular mel filters ``(n_mels, n_freqs)`` with peak 1, over the rFFT bin frequencies."""
    if scale not in MEL_SCALES:
        raise ValueError(f"mel_scale = {scale!r}: expected one of {MEL_SCALES}")
    bins = torch.linspace(0.0, sample_rate / 2.0, n_freqs, dtype=torch.float64)
    mels = torch.linspace(float(hz_to_mel(f_min, scale)), float(hz_to_mel(f_max, scale)), n_mels + 2)
    edges = mel_to_hz(mels, scale)  # (n_mels + 2,)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None, :] - lower) / (centre - lower)
    falling = (upper - bins[None, :]) / (upper - centre)
    return torch.clamp(torch.minimum(rising, falling), min=0.0).to(torch.float32)


class LogMel(nn.Module):
    """Waveform ``(B, samples)`` at ``sample_rate`` → log-mel power in dB ``(B, n_mels, frames)``.

    Defaults: 40 mels over 20–8000 Hz (HTK formula), 25 ms Hann window, 10 ms hop, 512-point FFT,
    ``center=True`` (reflect padding), so a 1 s clip gives 101 frames. Power is ``|STFT|²`` of the raw
    waveform (full-scale sine ≈ +40 dB); dB = ``10·log10(max(power, floor_power))`` with floor 1e-10
    (-100 dB), so digital silence is -100 dB and the gradient is zero only below the floor.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        n_fft: int = 512,
        win_length: int = 400,
        hop_length: int = 160,
        n_mels: int = 40,
        f_min: float = 20.0,
        f_max: float | None = None,
        mel_scale: str = "htk",
        floor_power: float = 1e-10,
        center: bool = True,
    ):
        super().__init__()
        f_max = sample_rate / 2.0 if f_max is None else float(f_max)
        if win_length > n_fft:
            raise ValueError(f"win_length = {win_length} must not exceed n_fft = {n_fft}")
        if not 0 <= f_min < f_max <= sample_rate / 2:
            raise ValueError(f"mel band f_min = {f_min}, f_max = {f_max}: need 0 <= f_min < f_max <= sr/2")
        self.sample_rate, self.n_fft, self.win_length, self.hop_length = (
            sample_rate,
            n_fft,
            win_length,
            hop_length,
        )
        self.n_mels, self.f_min, self.f_max, self.mel_scale = n_mels, float(f_min), f_max, mel_scale
        self.floor_power, self.center = float(floor_power), bool(center)
        self.register_buffer("window", torch.hann_window(win_length, periodic=True), persistent=False)
        fb = mel_filterbank(n_fft // 2 + 1, n_mels, sample_rate, self.f_min, f_max, mel_scale)
        self.register_buffer("fb", fb, persistent=False)

    def config(self) -> dict:
        """Constructor arguments as a plain dict (stored with a model; ``LogMel(**config)`` rebuilds it)."""
        return {
            "sample_rate": self.sample_rate,
            "n_fft": self.n_fft,
            "win_length": self.win_length,
            "hop_length": self.hop_length,
            "n_mels": self.n_mels,
            "f_min": self.f_min,
            "f_max": self.f_max,
            "mel_scale": self.mel_scale,
            "floor_power": self.floor_power,
            "center": self.center,
        }

    @classmethod
    def from_config(cls, config: dict) -> LogMel:
        return cls(**config)

    @property
    def floor_db(self) -> float:
        return 10.0 * math.log10(self.floor_power)

    def n_frames(self, n_samples: int) -> int:
        """Number of frames for a clip of ``n_samples`` samples."""
        if self.center:
            return 1 + n_samples // self.hop_length
        return 1 + (n_samples - self.n_fft) // self.hop_length

    def stft(self, wave: torch.Tensor) -> torch.Tensor:
        """Complex STFT ``(B, n_fft//2 + 1, frames)``."""
        return torch.stft(
            wave,
            self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window=self.window.to(wave.device, wave.dtype),
            center=self.center,
            pad_mode="reflect",
            return_complex=True,
        )

    def power_to_db(self, power: torch.Tensor) -> torch.Tensor:
        return 10.0 * torch.log10(power.clamp_min(self.floor_power))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if wave.dim() == 1:
            wave = wave[None]
        if wave.dim() != 2:
            raise ValueError(f"LogMel expects a waveform batch (B, samples); got shape {tuple(wave.shape)}")
        spec = self.stft(wave)
        power = spec.real.square() + spec.imag.square()
        mel = torch.matmul(self.fb.to(power.dtype), power)
        return self.power_to_db(mel)

    def centre_frequencies(self) -> torch.Tensor:
        """Centre frequency (Hz) of each mel filter."""
        mels = torch.linspace(
            float(hz_to_mel(self.f_min, self.mel_scale)),
            float(hz_to_mel(self.f_max, self.mel_scale)),
            self.n_mels + 2,
        )
        return mel_to_hz(mels, self.mel_scale)[1:-1].to(torch.float32)

    def invert(self, logmel: torch.Tensor, n_iter: int = 32) -> torch.Tensor:
        """Waveforms ``(B, samples)`` that sound like log-mel dB ``(B, n_mels, frames)``, by :func:`griffin_lim`
        (approximate; 32 iterations take about a second on 2 cores). How a view plays a spectrogram."""
        return griffin_lim(logmel, self, n_iter=n_iter)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.config().items())


def griffin_lim(
    logmel: torch.Tensor,
    frontend: LogMel,
    n_iter: int = 32,
    momentum: float = 0.99,
    length: int | None = None,
    seed: int = 0,
) -> torch.Tensor:
    """Approximate waveform ``(B, length)`` from log-mel dB ``(B, n_mels, frames)``.

    The mel power is mapped back to linear-frequency power with the (non-negative clipped) pseudo-inverse
    of the filterbank, then the phase is recovered by fast Griffin-Lim (Perraudin et al. 2013, with
    ``momentum``). Good enough to *listen to* a feature-domain result, not a faithful inverse. The initial
    phase is drawn from a generator seeded by ``seed``, so the output is deterministic.
    """
    single = logmel.dim() == 2
    if single:
        logmel = logmel[None]
    if logmel.dim() != 3 or logmel.shape[1] != frontend.n_mels:
        raise ValueError(
            f"griffin_lim expects log-mel (B, {frontend.n_mels}, frames); got {tuple(logmel.shape)}"
        )
    frames = logmel.shape[-1]
    if length is None:
        length = (frames - 1) * frontend.hop_length if frontend.center else None
    with torch.no_grad():
        mel_power = 10.0 ** (logmel.double() / 10.0)
        pinv = torch.linalg.pinv(frontend.fb.double())  # (n_freqs, n_mels)
        power = torch.matmul(pinv, mel_power).clamp_min(0.0)
        mag = power.sqrt()
        window = frontend.window.double()
        gen = torch.Generator().manual_seed(seed)
        phase = torch.rand(mag.shape, generator=gen, dtype=torch.float64) * (2 * math.pi)
        angles = torch.polar(torch.ones_like(mag), phase)
        kw = dict(hop_length=frontend.hop_length, win_length=frontend.win_length, window=window)
        kw["center"] = frontend.center
        previous = torch.zeros_like(angles)
        wave = torch.istft(mag * angles, frontend.n_fft, length=length, **kw)
        for _ in range(n_iter):
            rebuilt = torch.stft(wave, frontend.n_fft, return_complex=True, pad_mode="reflect", **kw)
            accelerated = rebuilt - (momentum / (1 + momentum)) * previous
            angles = accelerated / accelerated.abs().clamp_min(1e-16)
            previous = rebuilt
            wave = torch.istft(mag * angles, frontend.n_fft, length=length, **kw)
    wave = wave.to(logmel.dtype)
    return wave[0] if single else wave

"""Minimal WAV reading, writing and resampling shared by corpus synthesis and the Speech Commands loader.

Built on the standard-library ``wave`` module and numpy, so reading audio needs no extra dependency.
Only integer PCM is supported (8-bit unsigned, 16-, 24- and 32-bit signed), which covers Speech Commands
and every text-to-speech engine used here; anything else is rejected with a ``ValueError`` naming the file.
"""

from __future__ import annotations

import os
import wave
from fractions import Fraction
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

from proactiv.io import atomic_write

__all__ = ["read_wav", "resample", "write_wav"]


def read_wav(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Read an integer-PCM WAV file as float32 samples in [-1, 1).

    Returns
    -------
    samples
        Shape ``(frames,)`` for mono, ``(frames, channels)`` otherwise.
    sample_rate
        In Hz, as stored in the header.

    Raises
    ------
    ValueError
        Naming the file and the problem: missing, empty, not a RIFF/WAVE file, not integer PCM,
        no audio frames, or truncated (fewer bytes than the header announces).
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ValueError(f"{path}: cannot read WAV file ({exc.strerror or exc})") from exc
    if size == 0:
        raise ValueError(f"{path}: empty file (0 bytes), not a WAV file")
    try:
        with wave.open(str(path), "rb") as handle:
            channels = handle.getnchannels()
            width = handle.getsampwidth()
            rate = handle.getframerate()
            frames = handle.getnframes()
            raw = handle.readframes(frames)
    except wave.Error as exc:
        reason = str(exc)
        if "unknown format" in reason:
            reason += (
                " (only integer PCM is supported; convert e.g. with `sox in.wav -e signed -b 16 out.wav`)"
            )
        raise ValueError(f"{path}: not a readable PCM WAV file: {reason}") from exc
    except EOFError as exc:
        raise ValueError(f"{path}: truncated WAV header ({size} bytes)") from exc
    if frames == 0:
        raise ValueError(f"{path}: WAV file holds no audio frames")
    if width not in (1, 2, 3, 4):
        raise ValueError(f"{path}: unsupported sample width of {8 * width} bits")
    got = len(raw) // (width * channels)
    if got < frames:
        raise ValueError(f"{path}: truncated WAV data: header announces {frames} frames, file holds {got}")
    samples = _decode(raw, width).reshape(frames, channels)
    return (samples[:, 0] if channels == 1 else samples), rate


def _decode(raw: bytes, width: int) -> np.ndarray:
    """Little-endian integer PCM bytes to float32 in [-1, 1)."""
    if width == 1:  # 8-bit WAV is unsigned with a 128 offset
        return (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    if width == 3:  # no numpy 24-bit type: place the three bytes in the top of an int32
        triples = np.frombuffer(raw, np.uint8).reshape(-1, 3)
        padded = np.zeros((len(triples), 4), np.uint8)
        padded[:, 1:] = triples
        return (padded.view("<i4")[:, 0].astype(np.float64) / 2.0**31).astype(np.float32)
    if (
        width == 2
    ):  # float32 holds every 16-bit value / 2**15 exactly: no float64 copy (an hour is 460 MB of it)
        return np.frombuffer(raw, "<i2").astype(np.float32) / np.float32(32768.0)
    return (np.frombuffer(raw, "<i4").astype(np.float64) / 2.0**31).astype(np.float32)


def write_wav(path: str | os.PathLike, samples: np.ndarray, sample_rate: int) -> None:
    """Write float samples in [-1, 1) (clipped) as a 16-bit PCM WAV file, atomically.

    ``samples`` is ``(frames,)`` or ``(frames, channels)``. The file is written to a temporary name in the
    same folder and renamed into place, so a killed writer never leaves a partial file under ``path``.
    """
    data = np.asarray(samples, dtype=np.float64)
    channels = 1 if data.ndim == 1 else data.shape[1]
    pcm = np.clip(np.round(data * 32768.0), -32768, 32767).astype("<i2")  # the inverse of read_wav

    def write(tmp: Path) -> None:
        with wave.open(str(tmp), "wb") as handle:
            handle.setnchannels(channels)
            handle.setsampwidth(2)
            handle.setframerate(int(sample_rate))
            handle.writeframes(pcm.tobytes())

    atomic_write(path, write)


def resample(samples: np.ndarray, rate_in: float, rate_out: int) -> np.ndarray:
    """Polyphase resampling (``scipy.signal.resample_poly``) along the first axis, as float32.

    ``rate_in`` may be fractional: treating a signal as if it had been recorded at ``rate * k`` and
    resampling it to ``rate`` shifts its pitch and formants by the factor ``k`` (corpus synthesis uses this
    for pseudo-speakers). The rate ratio is approximated by a fraction with a denominator of at most 1000.
    """
    ratio = (Fraction(rate_out) / Fraction(rate_in)).limit_denominator(1000)
    if ratio == 1:
        return np.asarray(samples, dtype=np.float32)
    out = resample_poly(np.asarray(samples, dtype=np.float64), ratio.numerator, ratio.denominator, axis=0)
    return out.astype(np.float32)

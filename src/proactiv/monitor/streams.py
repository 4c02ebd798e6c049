"""Streams a monitor reads: a long waveform cut into windows with a hop, or any iterable of inputs.

A stream hands out its steps in chunks (``chunks(start, size)``: step indices, start and end times in seconds,
and the batch of inputs), can start at any step (a resumed monitor skips what is stored), and describes itself
for the store's header, so a resumed monitor refuses a different stream. Bad input is refused here, naming the
file or the field and the value.
"""

from __future__ import annotations

import hashlib
import math
import os
import wave
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Chunk:
    """Consecutive steps of a stream: their indices, window start and end times (s) and inputs (steps, ...)."""

    steps: np.ndarray
    start_s: np.ndarray
    end_s: np.ndarray
    inputs: torch.Tensor


def positive_seconds(name: str, value: float) -> float:
    """``value`` as a float when it is a positive, finite number of seconds (``name`` names it otherwise)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"{name} = {value!r}: expected a positive number of seconds")
    return float(value)


class WaveStream:
    """A long mono waveform seen through windows of ``window_s`` seconds every ``hop_s`` seconds; the last
    window is padded with silence. ``source``: the WAV file the samples were read from, kept in the store so a
    dashboard can play any window without a copy of the audio (a stream without one keeps its samples)."""

    def __init__(
        self,
        wave: np.ndarray | torch.Tensor,
        sample_rate: int,
        window_s: float = 1.0,
        hop_s: float = 0.1,
        *,
        name: str = "waveform",
        source: str | None = None,
    ):
        samples = torch.as_tensor(np.asarray(wave, dtype=np.float32))
        if samples.dim() != 1:
            raise ValueError(
                f"stream {name}: expected a mono waveform (samples,), got shape {tuple(samples.shape)}"
            )
        if samples.numel() == 0:
            raise ValueError(f"stream {name}: empty (0 samples); nothing to monitor")
        if not torch.isfinite(samples).all():
            bad = int((~torch.isfinite(samples)).nonzero()[0, 0])
            raise ValueError(f"stream {name}: sample {bad} is not finite ({float(samples[bad])})")
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
            raise ValueError(
                f"stream {name}: sample_rate = {sample_rate!r}: expected a positive integer (Hz)"
            )
        self.window_s = positive_seconds("window_s", window_s)
        self.hop_s = positive_seconds("hop_s", hop_s)
        if self.hop_s > self.window_s:
            raise ValueError(f"hop_s = {hop_s}: longer than window_s = {window_s} (windows would skip audio)")
        self.wave, self.sample_rate, self.name, self.source = samples, sample_rate, name, source
        self.window = round(self.window_s * sample_rate)
        self.hop = round(self.hop_s * sample_rate)
        self.length = max(1, math.ceil(max(0, len(samples) - self.window) / self.hop) + 1)

    @property
    def seconds(self) -> float:
        return len(self.wave) / self.sample_rate

    def __len__(self) -> int:
        return self.length

    def chunks(self, start: int, size: int) -> Iterator[Chunk]:
        for first in range(start, self.length, size):
            steps = np.arange(first, min(first + size, self.length))
            lo, hi = int(steps[0]) * self.hop, int(steps[-1]) * self.hop + self.window
            piece = self.wave[lo:hi]
            if len(piece) < hi - lo:
                piece = torch.nn.functional.pad(piece, (0, hi - lo - len(piece)))
            windows = piece.unfold(0, self.window, self.hop)[: len(steps)]
            begin = steps * self.hop / self.sample_rate
            yield Chunk(steps, begin, begin + self.window / self.sample_rate, windows)

    def samples(self, step: int) -> np.ndarray:
        """The samples of one window (padded with silence at the end of the stream)."""
        out = np.zeros(self.window, dtype=np.float32)
        piece = self.wave[step * self.hop : step * self.hop + self.window].numpy()
        out[: len(piece)] = piece
        return out

    def describe(self) -> dict:
        """What identifies the stream (its samples' digest, not only its name) and how it is windowed."""
        digest = hashlib.blake2b(self.wave.numpy(), digest_size=12).hexdigest()  # the buffer, not a copy
        return {
            "kind": "waveform", "name": self.name, "source": self.source, "sample_rate": self.sample_rate,
            "samples": len(self.wave), "seconds": self.seconds, "window_s": self.window_s, "hop_s": self.hop_s,
            "steps": self.length, "digest": digest,
        }  # fmt: skip


class InputStream:
    """Any iterable of model inputs (one input per item, without a batch dimension), one step each, ``hop_s``
    seconds apart (the time axis of the store and the views; 1 s unless given) and lasting ``window_s``
    (default ``hop_s``). ``length`` is shown by the progress bar when the iterable has no ``len``."""

    def __init__(
        self,
        inputs: Iterable,
        hop_s: float = 1.0,
        window_s: float | None = None,
        *,
        name: str = "inputs",
        length: int | None = None,
    ):
        self.inputs, self.name = inputs, name
        self.hop_s = positive_seconds("hop_s", hop_s)
        self.window_s = positive_seconds("window_s", window_s) if window_s is not None else self.hop_s
        self.length = length if length is not None else (len(inputs) if hasattr(inputs, "__len__") else None)
        self.source = None

    def __len__(self) -> int:
        if self.length is None:
            raise TypeError(f"stream {self.name}: length unknown")
        return self.length

    def chunks(self, start: int, size: int) -> Iterator[Chunk]:
        batch: list[torch.Tensor] = []
        first = start
        seen = 0
        for i, item in enumerate(self.inputs):
            seen = i + 1
            if i < start:  # a resumed monitor: these steps are stored
                continue
            batch.append(torch.as_tensor(np.asarray(item, dtype=np.float32)))
            if len(batch) == size:
                yield self._chunk(first, batch)
                first, batch = first + size, []
        if seen == 0:
            raise ValueError(f"stream {self.name}: empty (the iterable gave no inputs); nothing to monitor")
        if batch:
            yield self._chunk(first, batch)

    def _chunk(self, first: int, batch: list[torch.Tensor]) -> Chunk:
        shapes = {tuple(x.shape) for x in batch}
        if len(shapes) > 1:
            raise ValueError(
                f"stream {self.name}: inputs of different shapes {sorted(shapes)} from step {first}"
            )
        steps = np.arange(first, first + len(batch))
        begin = steps * self.hop_s
        return Chunk(steps, begin, begin + self.window_s, torch.stack(batch))

    def describe(self) -> dict:
        return {"kind": "inputs", "name": self.name, "hop_s": self.hop_s, "window_s": self.window_s,
                "steps": self.length}  # fmt: skip


def read_window(path: str | os.PathLike, start: int, count: int) -> np.ndarray:
    """``count`` samples of a mono 16-bit WAV file from sample ``start`` (zero-padded past its end), read
    without loading the file: what a dashboard plays when a window is clicked."""
    out = np.zeros(count, dtype=np.float32)
    with wave.open(str(path), "rb") as handle:
        if handle.getsampwidth() != 2 or handle.getnchannels() != 1:
            raise ValueError(f"{path}: not mono 16-bit PCM; its windows cannot be read in place")
        start = min(max(0, int(start)), handle.getnframes())
        handle.setpos(start)
        raw = handle.readframes(count)
    piece = np.frombuffer(raw, "<i2").astype(np.float32) / 32768
    out[: len(piece)] = piece[:count]
    return out

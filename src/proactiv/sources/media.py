"""Image and WAV files as inputs, for the sources that read them (a folder, a Hugging Face dataset).

Images are decoded with Pillow, converted to one mode (RGB, or L for one gray channel) and, when a size is
given, resized to it: inputs (C, H, W) in [0, 1]. WAV files are read with ``scipy.io.wavfile`` (integer PCM of
any depth, or float), mixed to mono and scaled to [-1, 1]; a clip is zero-padded at its end or cut around its
middle to the given duration (as the Speech Commands loader of the keyword task does): inputs (samples,), the
waveforms the audio transforms act on. Nothing is resampled, and no other audio format is decoded: that needs
ffmpeg, which proactiv does not require. Within one pass over the data every image must have the size of the
first and every clip its length unless a size or duration conforms them: the error names both files.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from proactiv.extras import require

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")
AUDIO_EXTENSIONS = (".wav",)
#: what an image or audio file is given as: a path, or its bytes
File = str | os.PathLike | bytes

#: a reader of one pass: (file, its name in errors) → the input
Reader = Callable[[File, str], torch.Tensor]


@dataclass(frozen=True)
class Images:
    """How image files become inputs: Pillow ``mode`` "RGB" (3 channels) or "L" (1), resized to ``size``
    (H, W) with bilinear filtering when given."""

    size: int | tuple[int, int] | None = None
    mode: str = "RGB"
    input_kind = "image"
    pixel_range = 1.0
    sample_rate = None

    def __post_init__(self):
        if self.mode not in ("RGB", "L"):
            raise ValueError(f"mode={self.mode!r}: expected 'RGB' (3 channels) or 'L' (1 gray channel)")
        if self.size is not None:
            size = (self.size, self.size) if isinstance(self.size, int) else tuple(self.size)
            if len(size) != 2 or not all(isinstance(s, int) and s > 0 for s in size):
                raise ValueError(
                    f"size={self.size!r}: expected (height, width) in pixels, or one int for both"
                )
            object.__setattr__(self, "size", size)

    def describe(self) -> dict:
        return {"size": list(self.size) if self.size else None, "mode": self.mode}

    def reader(self) -> Reader:
        image_module = require("PIL.Image", "data", "reading images")
        first = _First("pass size=(height, width) to resize every image")

        def read(file: File, name: str) -> torch.Tensor:
            try:
                with image_module.open(io.BytesIO(file) if isinstance(file, bytes) else file) as opened:
                    image = opened.convert(self.mode)
            except (OSError, ValueError) as err:
                raise ValueError(f"{name}: not a readable image ({err})") from None
            if self.size is not None:
                image = image.resize(self.size[::-1], image_module.Resampling.BILINEAR)
            else:
                first.check(f"{image.height}×{image.width} pixels (height×width)", name)
            return image_tensor(image)

        return read


def image_tensor(image) -> torch.Tensor:
    """A PIL image as floats (C, H, W) in [0, 1]."""
    pixels = np.asarray(image, dtype=np.float32).reshape(image.height, image.width, -1) / 255.0
    return torch.from_numpy(pixels).permute(2, 0, 1).contiguous()


@dataclass(frozen=True)
class Clips:
    """How WAV files become inputs: mono waveforms at ``sample_rate`` (a file at another rate is an error),
    padded or cut to ``seconds`` when given."""

    sample_rate: int
    seconds: float | None = None
    input_kind = "waveform"
    pixel_range = None

    def __post_init__(self):
        if not (isinstance(self.sample_rate, (int, np.integer)) and self.sample_rate > 0):
            raise ValueError(f"sample_rate={self.sample_rate!r}: expected samples per second, an int > 0")
        if self.seconds is not None and not (np.isfinite(self.seconds) and self.seconds > 0):
            raise ValueError(f"seconds={self.seconds!r}: expected a clip duration > 0")

    def describe(self) -> dict:
        return {"sample_rate": int(self.sample_rate), "seconds": self.seconds}

    def reader(self) -> Reader:
        first = _First("pass seconds= to pad or cut every clip to one duration")
        length = None if self.seconds is None else round(self.seconds * self.sample_rate)

        def read(file: File, name: str) -> torch.Tensor:
            samples, rate = read_wav(file, name)
            if rate != self.sample_rate:
                raise ValueError(
                    f"{name}: sampled at {rate} Hz, expected {self.sample_rate} Hz like the other clips "
                    "(clips are not resampled: convert the file, or pass sample_rate= for its rate)"
                )
            if length is None:
                first.check(f"{len(samples)} samples", name)
            elif len(samples) >= length:
                start = (len(samples) - length) // 2
                samples = samples[start : start + length]
            else:
                samples = np.pad(samples, (0, length - len(samples)))
            return torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))

        return read


def read_wav(file: File, name: str) -> tuple[np.ndarray, int]:
    """A WAV file (path or bytes) as mono float32 samples in [-1, 1] and its sample rate."""
    from scipy.io import wavfile

    try:
        rate, data = wavfile.read(io.BytesIO(file) if isinstance(file, bytes) else file)
    except (OSError, ValueError, EOFError) as err:
        raise ValueError(
            f"{name}: not a readable WAV file ({err}); only WAV audio is read (other formats need ffmpeg: "
            "convert them to WAV)"
        ) from None
    if data.dtype == np.uint8:  # 8-bit WAV is unsigned around 128
        samples = (data.astype(np.float32) - 128.0) / 128.0
    elif np.issubdtype(data.dtype, np.integer):  # read left-justified: full scale is the type's
        samples = data.astype(np.float32) / float(-np.iinfo(data.dtype).min)
    else:
        samples = data.astype(np.float32)
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    if samples.size == 0:
        raise ValueError(f"{name}: the WAV file holds no samples")
    return samples, int(rate)


class _First:
    """Every item of one pass must match the first one read in a property (image size, clip length)."""

    def __init__(self, remedy: str):
        self.remedy, self.seen = remedy, None

    def check(self, value: str, name: str) -> None:
        if self.seen is None:
            self.seen = (value, name)
        elif value != self.seen[0]:
            raise ValueError(f"{name}: {value}, but {self.seen[1]} has {self.seen[0]}: {self.remedy}")

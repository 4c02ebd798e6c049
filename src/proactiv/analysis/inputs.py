"""What a run's model inputs are — a spectrogram, an image, or a 1-D signal — and how to draw them.

The one place that decides it; the report and the dashboard both ask here. Spectrograms are drawn with
frequency up (origin at the bottom, stretched to the panel); images upright (row 0 at the top) with square
pixels in grey; x̂T − xT and bias maps always on a diverging scale centred on 0.
"""

from __future__ import annotations

from dataclasses import dataclass

from proactiv.analysis.arrays import input_shape
from proactiv.store import Run


@dataclass(frozen=True)
class InputKind:
    """How to draw one model input: axis names, unit, matplotlib ``origin``/``aspect`` and colormap."""

    name: str  # "spectrogram" | "image" | "signal"
    row_label: str
    column_label: str
    unit: str
    origin: str
    aspect: str
    cmap: str

    @property
    def image(self) -> bool:
        return self.name == "image"

    @property
    def spectrogram(self) -> bool:
        return self.name == "spectrogram"


SIGNAL = InputKind("signal", "", "sample", "input units", "lower", "auto", "viridis")
SPECTROGRAM = InputKind("spectrogram", "mel band", "frame", "dB", "lower", "auto", "magma")


def _image(run: Run) -> InputKind:
    unit = "pixel value" if run.config.get("pixel_range") is not None else "input units"
    return InputKind("image", "row", "column", unit, "upper", "equal", "gray")


def image_evidence(run: Run) -> bool:
    """The run says it is about images: a ``pixel_range``, or a transform of the image domain."""
    return run.config.get("pixel_range") is not None or any(t.domain == "image" for t in run.grid.transforms)


def input_kind(run: Run, shape: tuple[int, ...] | None = None) -> InputKind:
    """Decide from the input shape (read from the kept arrays when not given), ``pixel_range`` and the
    transform domains: 1-D → signal; image evidence → image; a (log-)mel frontend, a feature-domain KWS
    run or feature-domain transforms → spectrogram; any other 2-D input → image (a matrix, row 0 on top)."""
    shape = input_shape(run) if shape is None else tuple(shape)
    if shape is not None and len([d for d in shape if d > 1]) <= 1:
        return SIGNAL
    if image_evidence(run):
        return _image(run)
    cfg = run.config
    frontend = str(cfg.get("frontend") or "").lower()
    feature_transforms = any(t.domain == "feature" for t in run.grid.transforms)
    if (
        "mel" in frontend
        or (cfg.get("task") == "kws" and cfg.get("domain", "feature") != "waveform")
        or feature_transforms
    ):
        return SPECTROGRAM
    return _image(run)


def is_image_run(run: Run, shape: tuple[int, ...] | None = None) -> bool:
    """Whether the run's inputs are drawn as images (grey, upright, square pixels)."""
    return input_kind(run, shape).image

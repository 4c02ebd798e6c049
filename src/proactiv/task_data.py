"""What a task hands to a sweep (:class:`TaskData`) and where re-creatable artefacts are cached: on the ground
floor, so the engine rebuilds a run's task without importing the task layer."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch
from torch import nn


@dataclass
class TaskData:
    """A model plus the instances to sweep. ``inputs`` are raw inputs; ``frontend`` turns them into model inputs."""

    model: nn.Module
    inputs: torch.Tensor
    labels: torch.Tensor
    class_names: list[str] | None = None
    metadata: pd.DataFrame | None = None
    frontend: Callable[[torch.Tensor], torch.Tensor] | None = None
    projection_defaults: dict = field(default_factory=dict)
    description: dict = field(default_factory=dict)
    #: span of valid pixel values for image tasks (adds PSNR/SSIM to the records); None otherwise
    pixel_range: float | None = None
    #: what the model inputs are (see :class:`proactiv.schema.InputSpec`); None: the default rule
    input_kind: str | None = None
    #: samples per second of audio inputs (waveforms, or the audio a spectrogram was made from)
    sample_rate: int | None = None


def cache_dir() -> Path:
    """Where trained toy models and other re-creatable artefacts are cached (``$PROACTIV_CACHE``)."""
    path = Path(os.environ.get("PROACTIV_CACHE", Path.home() / ".cache" / "proactiv"))
    path.mkdir(parents=True, exist_ok=True)
    return path

"""What a task hands to a sweep (:class:`TaskData`) and where re-creatable artefacts are cached: on the ground
floor, so the engine rebuilds a run's task without importing the task layer."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import torch
from torch import nn

from proactiv.sources import Source, as_source

if TYPE_CHECKING:
    from proactiv.schema import RunSchema


@dataclass
class TaskData:
    """The instances to sweep and what travels with them (the ``data`` of :func:`proactiv.sweep.sweep`): raw
    ``inputs`` (N, ...) — a tensor, or a :class:`~proactiv.sources.Source` read a unit at a time — their
    ``labels`` (class indices (N,), or target tensors for image-to-image and regression; None: the source's),
    and everything else the run needs to know about them. ``frontend`` turns raw inputs into model inputs. A task
    hands over its model with them (``model``)."""

    inputs: torch.Tensor | Source
    labels: torch.Tensor | None = None
    class_names: list[str] | None = None
    #: one row per instance, stored in the records as ``meta.*`` columns
    metadata: pd.DataFrame | None = None
    frontend: Callable[[torch.Tensor], torch.Tensor] | None = None
    #: projection settings a sweep takes where its projection options leave a field out
    projection_defaults: dict = field(default_factory=dict)
    description: dict = field(default_factory=dict)
    #: span of valid pixel values for image tasks (adds PSNR/SSIM to the records); None otherwise
    pixel_range: float | None = None
    #: what the model inputs are (see :class:`proactiv.schema.InputSpec`); None: the default rule
    input_kind: str | None = None
    #: samples per second of audio inputs (waveforms, or the audio a spectrogram was made from)
    sample_rate: int | None = None
    #: how later analyses rebuild the model (``{"source": "spec", "model": {"torchscript": …}}``, or a config's
    #: ``{"source": "config", "config": …}``); None: the run keeps a copy of the swept model
    model_spec: dict | None = None
    #: the run's whole :class:`~proactiv.schema.RunSchema`, when the caller knows better than the sweep's rules
    schema: RunSchema | None = None
    #: settings recorded in run.json's config beside the sweep's own (e.g. the YAML task, model and data)
    config: dict = field(default_factory=dict)
    #: the task's model; a sweep projects through the model it is given, not this one
    model: nn.Module | None = field(default=None, kw_only=True)


def as_task_data(data) -> TaskData:
    """What a sweep's ``data`` means: a :class:`TaskData` as it is, an ``(inputs, labels)`` pair as the
    TaskData of just those two, a source or torch dataset (:func:`proactiv.sources.as_source`) as the TaskData
    of its instances and what it knows of them (class names, input kind, sample rate, pixel range)."""
    if isinstance(data, TaskData):
        source = as_source(data.inputs)
        return data if source is None or source is data.inputs else replace(data, inputs=source)
    source = as_source(data)
    if source is not None:
        return TaskData(inputs=source, class_names=source.class_names, input_kind=source.input_kind,
                        sample_rate=source.sample_rate, pixel_range=source.pixel_range)  # fmt: skip
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return TaskData(inputs=data[0], labels=data[1])
    raise TypeError(
        f"data: expected (inputs, labels), a TaskData, a torch Dataset or a proactiv source, got {type(data).__name__}"
        + (f" of length {len(data)}" if isinstance(data, (tuple, list)) else "")
    )


def cache_dir() -> Path:
    """Where trained toy models and other re-creatable artefacts are cached (``$PROACTIV_CACHE``)."""
    path = Path(os.environ.get("PROACTIV_CACHE", Path.home() / ".cache" / "proactiv"))
    path.mkdir(parents=True, exist_ok=True)
    return path

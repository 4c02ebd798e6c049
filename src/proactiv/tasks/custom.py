"""The ``custom`` task: a user's own model (ONNX or TorchScript file, or ``module:function``) and tensors from files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from proactiv.config import ConfigError, ModelSpec, SweepConfig
from proactiv.tasks.base import TaskData, pick_per_class


def load_model(spec: ModelSpec) -> nn.Module:
    """Build the model a config names (see :func:`proactiv.models.load_model`); errors name the field and the file
    or the import path."""
    from proactiv.models import load_model as load

    return load(spec)


def _read_tensor(path: Path, field: str) -> torch.Tensor:
    if path is None:
        raise ConfigError(f"data.{field}: the custom task needs a .pt or .npy file")
    if not path.exists():
        raise ConfigError(f"data.{field}: file not found: {path}")
    try:
        if path.suffix == ".npy":
            return torch.from_numpy(np.load(path))
        value = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # any unreadable file gets the same clear message
        raise ConfigError(f"data.{field}: cannot read {path} ({err})") from None
    if not isinstance(value, torch.Tensor):
        raise ConfigError(f"data.{field}: {path} holds a {type(value).__name__}, expected a tensor")
    return value


def load_task(cfg: SweepConfig) -> TaskData:
    if cfg.model is None:
        raise ConfigError(
            "model: the custom task needs a model (onnx: FILE, torchscript: FILE or factory: module:function)"
        )
    inputs = _read_tensor(cfg.data.inputs, "inputs")
    labels = _read_tensor(cfg.data.labels, "labels")
    if labels.dim() == 0 or labels.shape[0] != inputs.shape[0]:
        count = "a single value" if labels.dim() == 0 else f"{labels.shape[0]} labels"
        raise ConfigError(
            f"data.labels: {cfg.data.labels} holds {count} for the {inputs.shape[0]} inputs of {cfg.data.inputs}; "
            "expected one per input"
        )
    if not inputs.is_floating_point():
        inputs = inputs.float()
    chosen = torch.arange(inputs.shape[0])
    if not labels.is_floating_point() and labels.dim() == 1:  # class indices (not multi-label 0/1 rows)
        chosen = pick_per_class(labels, cfg.data.instances_per_class, cfg.data.seed)
    return TaskData(
        model=load_model(cfg.model),
        inputs=inputs[chosen],
        labels=labels[chosen],
        class_names=cfg.data.class_names,
        description={"task": "custom", "indices": chosen.tolist()},
        input_kind=cfg.data.input_kind,
        sample_rate=cfg.data.sample_rate,
    )

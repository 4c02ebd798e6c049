"""The keyword-spotting task as a sweep config sees it: a trained model, test clips, voice metadata.

``domain: feature`` (default) projects log-mel features: waveform transforms act on the clip, the model's
frontend turns it into features, feature transforms (masks) act on those, and projection moves the features.
``domain: waveform`` projects the waveform itself through frontend + model.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from proactiv.checkpoints import TrainingSet
from proactiv.config import ConfigError, SweepConfig
from proactiv.models import from_onnx
from proactiv.tasks.base import TaskData, pick_per_class
from proactiv.tasks.kws.models import load_model
from proactiv.tasks.kws.onnx import keyword_model
from proactiv.tasks.kws.speech_commands import SpeechCommands

#: metadata columns carried into records as ``meta.*`` when the corpus has them
META_COLUMNS = (
    "path",
    "speaker",
    "engine",
    "voice",
    "variant",
    "gender",
    "rate",
    "pitch",
    "amplitude",
    "word",
    "kind",
    "resembles",
)


def load_task(cfg: SweepConfig) -> TaskData:
    if cfg.model is None or (cfg.model.path is None and cfg.model.onnx is None):
        raise ConfigError(
            "model.path: the kws task needs a model file made by `proactiv kws train` "
            "(or model.onnx: a keyword model exported with proactiv.models.export_onnx)"
        )
    if cfg.data.root is None:
        raise ConfigError("data.root: the kws task needs a corpus folder (Speech Commands layout)")
    field = "path" if cfg.model.onnx is None else "onnx"
    try:
        if field == "onnx":
            model = keyword_model(from_onnx(cfg.model.onnx))
        else:
            model = load_model(cfg.model.path / "model.pt" if cfg.model.path.is_dir() else cfg.model.path)
    except ValueError as err:
        raise ConfigError(f"model.{field}: {err}") from None
    domain = cfg.domain or "feature"
    grid = cfg.build_grid()
    if domain == "waveform" and grid.has_stage("feature"):
        raise ConfigError("grid: feature-domain transforms (masks) need domain: feature, not waveform")
    try:
        data = SpeechCommands(cfg.data.root, split=cfg.data.split, seed=cfg.data.seed)
    except (FileNotFoundError, ValueError) as err:
        raise ConfigError(f"data.root: {err}") from None
    chosen = pick_per_class(data.labels, cfg.data.instances_per_class, cfg.data.seed)
    waves = data.waveforms()[chosen]
    meta = data.metadata.iloc[chosen.numpy()].reset_index(drop=True)
    meta = meta[[c for c in META_COLUMNS if c in meta.columns]]
    if domain == "feature":
        net, frontend = model, model.frontend
    else:
        net, frontend = model.waveform_model(), None
    return TaskData(
        model=net,
        inputs=waves,
        labels=data.labels[chosen],
        class_names=list(model.class_names),
        metadata=meta,
        frontend=frontend,
        description={"task": "kws", "domain": domain, "arch": model.arch, "split": cfg.data.split},
        input_kind="spectrogram" if domain == "feature" else "waveform",
        sample_rate=int(model.frontend.sample_rate),
    )


def training_set(spec: dict, folder: Path) -> TrainingSet:
    """The clips a keyword model was trained on (a ``speech_commands`` training-set spec of
    :mod:`proactiv.checkpoints`: corpus root, split, seed, excluded engines), with their metadata; the clips are
    read when asked."""
    data = SpeechCommands(spec["root"], split=spec.get("split", "train"), seed=int(spec.get("seed", 0)))
    meta = data.metadata
    keep = ~meta.get("engine", pd.Series("", index=meta.index)).isin(list(spec.get("exclude_engines", [])))
    rows = keep.to_numpy().nonzero()[0]
    wanted = [c for c in META_COLUMNS if c in meta.columns]

    def read(indices):
        if indices is None:
            return data.waveforms()[torch.as_tensor(rows)]
        return torch.stack([data[int(rows[i])][0] for i in indices])

    return TrainingSet(data.labels[rows], meta.iloc[rows][wanted].reset_index(drop=True), read)

"""Training checkpoints: a few snapshots of a network's weights along its training, and how to rebuild the
training set it learnt from — what TracIn (:mod:`proactiv.analysis.influence`) needs to name the training
examples that support or oppose a prediction.

The format, a folder next to the trained model (``MODEL_DIR/checkpoints/`` for ``proactiv kws train``,
``$PROACTIV_CACHE/<cached model>.checkpoints/`` for the cached digits CNN)::

    checkpoints.json    the manifest, written last (atomically): a folder without one holds no checkpoints
    epoch-<k>.pt        the network's state dict after epoch k (``torch.save`` of tensors only)
    training.pt         only for a training set given as tensors: {"inputs", "labels", "metadata"}

``checkpoints.json``::

    {"format": "proactiv.checkpoints/1",
     "model": "<model_hash of the trained network>", "network": "DSCNN",
     "checkpoints": [{"epoch": 6, "file": "epoch-6.pt", "lr": 0.0029, "epochs": 6}, ...],
     "training": {"kind": "speech_commands", "root": "/abs/data/kws", "split": "train", "seed": 0,
                  "exclude_engines": [], "n": 3900},
     "frontend": {...} or null,
     "bytes": 530000}

``model`` is the fingerprint (:func:`proactiv.fingerprint.model_hash`) of the network the training returned,
so checkpoints are matched to the module of a run's model they belong to by content, never by name. ``lr`` is
the mean end-of-epoch learning rate over the ``epochs`` epochs since the previous checkpoint: TracIn weighs a
checkpoint by ``lr × epochs``, the length of training it stands for. ``training`` says how to rebuild the
training set (``kind``: ``speech_commands`` — a Speech Commands-layout corpus split; ``digits`` — the training
split of scikit-learn's digits; ``tensors`` — ``training.pt``) with ``n`` examples; ``frontend`` is the config
of the frontend the network's inputs came through during training (kept for the record: TracIn maps training
examples into a run's model inputs with the run's own frontend). A few checkpoints (:data:`KEEP`, evenly
spaced over the epochs) keep the folder small: ~1 MB for the demo's 45 k-parameter DS-CNN.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from proactiv.fingerprint import model_hash
from proactiv.io import write_json, write_torch
from proactiv.rebuild import register_training_set, training_set_reader
from proactiv.task_data import cache_dir

FORMAT = "proactiv.checkpoints/1"
MANIFEST = "checkpoints.json"
TRAINING_FILE = "training.pt"
#: a cached model's checkpoint folder is its weights file's name with this suffix instead of ``.pt``
CACHE_SUFFIX = ".checkpoints"
#: how many checkpoints a training keeps (evenly spaced, the last epoch included)
KEEP = 5


class CheckpointError(ValueError):
    """Checkpoints that cannot be used: missing, unreadable, or not of the model asked about."""


def checkpoint_epochs(planned: int, keep: int = KEEP) -> list[int]:
    """The epochs (1-based) after which a training of ``planned`` epochs saves a checkpoint: ``keep`` of them,
    evenly spaced, the last one included."""
    return sorted({max(1, round(planned * (i + 1) / keep)) for i in range(keep)})


# --------------------------------------------------------------------------------------------- training sets
@dataclass
class TrainingSet:
    """The examples a network was trained on, in training order: labels, one metadata row each, and their raw
    inputs (read on demand: a corpus of clips is loaded only when asked)."""

    labels: torch.Tensor
    metadata: pd.DataFrame
    read: Callable[[Sequence[int] | None], torch.Tensor]

    def __len__(self) -> int:
        return len(self.labels)

    def raw(self, indices: Sequence[int] | None = None) -> torch.Tensor:
        """Raw inputs of the examples ``indices`` (all when None), as the training read them before any
        augmentation or frontend."""
        return self.read(None if indices is None else [int(i) for i in indices])


def tensors_training_set(spec: dict, folder: Path) -> TrainingSet:
    """A training set saved with the checkpoints (``training.pt``: inputs, labels, optional metadata)."""
    path = folder / spec.get("file", TRAINING_FILE)
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
        x, y = data["inputs"], data["labels"]
    except Exception as err:  # torch raises many types for corrupt files
        raise CheckpointError(f"{path}: cannot read the training set ({type(err).__name__})") from None
    meta = pd.DataFrame(data.get("metadata") or {}, index=range(len(y)))
    return TrainingSet(y, meta, lambda idx: x if idx is None else x[idx])


register_training_set("tensors", tensors_training_set)


# --------------------------------------------------------------------------------------------- reading
@dataclass(frozen=True)
class Checkpoint:
    """One saved state of the network: after ``epoch``, standing for ``epochs`` epochs at mean rate ``lr``."""

    epoch: int
    file: Path
    lr: float
    epochs: int

    @property
    def weight(self) -> float:
        """TracIn's weight of this checkpoint: the length of training it stands for (``lr × epochs``)."""
        return self.lr * self.epochs

    def state_dict(self) -> dict[str, torch.Tensor]:
        try:
            return torch.load(self.file, map_location="cpu", weights_only=True)
        except Exception as err:  # torch raises many types for corrupt files
            raise CheckpointError(f"checkpoint {self.file}: cannot read it ({type(err).__name__})") from None


@dataclass(frozen=True)
class Checkpoints:
    """A checkpoint folder read back (see the module docstring)."""

    folder: Path
    model: str
    network: str
    entries: tuple[Checkpoint, ...]
    training: dict | None
    frontend: dict | None
    bytes: int

    def __len__(self) -> int:
        return len(self.entries)

    def network_in(self, model: nn.Module) -> nn.Module | None:
        """The module of ``model`` (itself or a submodule) whose weights are those this training returned, or
        None: checkpoints load into it, whatever wraps it (a frontend, a feature model)."""
        for _, module in model.named_modules():
            if type(module).__qualname__ == self.network and model_hash(module) == self.model:
                return module
        return None

    def training_set(self) -> TrainingSet:
        """The training set these checkpoints were trained on, rebuilt from the manifest (checked: as many
        examples as were trained on)."""
        spec = self.training
        where = self.folder / MANIFEST
        if not spec:
            raise CheckpointError(
                f"{where}: says nothing about the training set (training: null); save the checkpoints with "
                "CheckpointWriter(folder, training=...)"
            )
        kind = spec.get("kind")
        try:
            read = training_set_reader(kind)
        except LookupError as err:
            raise CheckpointError(f"{where}: training.kind={kind!r}: {err}") from None
        try:
            data = read(spec, self.folder)
        except CheckpointError:
            raise
        except (FileNotFoundError, KeyError, ValueError) as err:
            raise CheckpointError(f"{where}: cannot rebuild the training set ({err})") from None
        if spec.get("n") is not None and len(data) != int(spec["n"]):
            raise CheckpointError(
                f"{where}: the training set rebuilt from {spec.get('root', kind)} has {len(data)} examples, the "
                f"checkpoints were trained on {spec['n']}: has the data changed since training?"
            )
        return data


def read_checkpoints(folder: str | os.PathLike) -> Checkpoints:
    """The checkpoints in ``folder`` (or of its ``checkpoints.json``); errors name the file and the field."""
    import json

    folder = Path(folder)
    if folder.name == MANIFEST:
        folder = folder.parent
    path = folder / MANIFEST
    if not path.exists():
        raise CheckpointError(f"{folder}: no {MANIFEST} (no checkpoints, or a training that did not finish)")
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path}: unreadable ({err})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        got = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise CheckpointError(f"{path}: format {got!r}, expected {FORMAT!r}")
    try:
        entries = tuple(
            Checkpoint(int(c["epoch"]), folder / c["file"], float(c["lr"]), int(c["epochs"]))
            for c in data["checkpoints"]
        )
        found = Checkpoints(folder, str(data["model"]), str(data["network"]), entries, data.get("training"),
                            data.get("frontend"), int(data.get("bytes", 0)))  # fmt: skip
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: bad or missing field ({type(err).__name__}: {err})") from None
    if not entries:
        raise CheckpointError(f"{path}: lists no checkpoints")
    missing = [c.file.name for c in entries if not c.file.exists()]
    if missing:
        raise CheckpointError(f"{path}: checkpoint files missing: {', '.join(missing)}")
    return found


def _spec_folders(model_spec: dict | None, config: dict) -> list[Path]:
    """The folders holding the files a run's model spec names (model path, weights, TorchScript file)."""
    spec = model_spec or {}
    if spec.get("source") == "spec":
        model = spec.get("model") or {}
    elif spec.get("source") == "config":
        model = (spec.get("config") or config).get("model") or {}
    else:
        return []
    folders = []
    for key in ("path", "weights", "torchscript"):
        if model.get(key):
            path = Path(model[key])
            folders.append(path if path.is_dir() else path.parent)
    return folders


def find_checkpoints(model: nn.Module, model_spec: dict | None = None, config: dict | None = None,
                     given: str | os.PathLike | Checkpoints | None = None) -> Checkpoints:  # fmt: skip
    """The checkpoints of ``model``'s training: ``given`` (a folder, checked), else the first checkpoint folder
    whose trained network is found inside ``model`` — next to the files of the run's ``model_spec`` (and
    ``config``, for runs that keep their model config there), then the cached models' folders. The error says
    what is needed when there are none."""
    if given is not None:
        found = given if isinstance(given, Checkpoints) else read_checkpoints(given)
        if found.network_in(model) is None:
            raise CheckpointError(
                f"{found.folder}: these checkpoints were saved while training another network ({found.network} "
                f"with final weights {found.model}), not one inside this {type(model).__name__}"
            )
        return found
    beside = [f / "checkpoints" for f in _spec_folders(model_spec, config or {})]
    others = []
    for folder in beside + sorted(p.parent for p in cache_dir().glob(f"*{CACHE_SUFFIX}/{MANIFEST}")):
        if not (folder / MANIFEST).exists():
            continue
        found = read_checkpoints(folder)
        if found.network_in(model) is not None:
            return found
        others.append(str(folder))
    looked = ", ".join([*map(str, beside), f"{cache_dir()}/*{CACHE_SUFFIX}"])
    near = f"; those in {', '.join(others[:3])} belong to other trainings" if others else ""
    raise CheckpointError(
        f"the model ({type(model).__name__}) has no training checkpoints (looked in {looked}{near}): TracIn "
        "needs a few saved along its training. Retrain it with this proactiv (`proactiv kws train --force ...` writes "
        "MODEL_DIR/checkpoints/; the cached digits CNN writes its own when trained again, e.g. with a fresh "
        "$PROACTIV_CACHE), or save your own with proactiv.checkpoints.CheckpointWriter and pass "
        "checkpoints=FOLDER"
    )


# --------------------------------------------------------------------------------------------- writing
class CheckpointWriter:
    """Saves :data:`KEEP` evenly spaced checkpoints during a training and, at its end, the manifest.

    ``training`` says how to rebuild the training set: a spec (``{"kind": "speech_commands", ...}`` or
    ``{"kind": "digits", ...}``, see the module docstring) or the tensors themselves, ``(inputs, labels)`` or
    ``(inputs, labels, metadata)`` (stored in ``training.pt``). Call :meth:`epoch_done` after every epoch and
    :meth:`finish` with the network the training returns. A folder being rewritten has no manifest until
    :meth:`finish`, so a killed training leaves no checkpoints that look valid.
    """

    def __init__(self, folder: str | os.PathLike, training=None, keep: int = KEEP,
                 frontend: dict | None = None):  # fmt: skip
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / MANIFEST).unlink(missing_ok=True)
        self.keep = int(keep)
        self.frontend = frontend
        self.training = training
        self.entries: list[dict] = []
        self._lrs: list[float] = []

    def epoch_done(self, epoch: int, planned: int, network: nn.Module, lr: float) -> None:
        """After epoch ``epoch`` of ``planned`` at learning rate ``lr``: save a checkpoint if it is one of the
        evenly spaced epochs."""
        self._lrs.append(float(lr))
        if epoch not in checkpoint_epochs(planned, self.keep):
            return
        name = f"epoch-{int(epoch)}.pt"
        state = {k: v.detach().cpu().clone() for k, v in network.state_dict().items()}
        write_torch(self.folder / name, state)
        self.entries.append({"epoch": int(epoch), "file": name, "lr": sum(self._lrs) / len(self._lrs),
                             "epochs": len(self._lrs)})  # fmt: skip
        self._lrs = []

    def _training_spec(self) -> dict | None:
        if self.training is None or isinstance(self.training, dict):
            return self.training
        inputs, labels, *meta = self.training
        metadata = meta[0] if meta else None
        payload = {"inputs": inputs.detach().cpu(), "labels": labels.detach().cpu()}
        if metadata is not None:
            payload["metadata"] = {str(c): metadata[c].tolist() for c in metadata.columns}
        torch.save(payload, self.folder / TRAINING_FILE)
        return {"kind": "tensors", "file": TRAINING_FILE, "n": len(labels)}

    def finish(self, network: nn.Module) -> Checkpoints:
        """Write the manifest for ``network`` (the trained network: its fingerprint ties the checkpoints to
        it), drop checkpoint files of an earlier training in this folder, and return the checkpoints."""
        if not self.entries:
            raise CheckpointError(f"{self.folder}: no checkpoint was saved (was epoch_done called?)")
        training = self._training_spec()
        listed = {e["file"] for e in self.entries}
        for old in self.folder.glob("epoch-*.pt"):
            if old.name not in listed:
                old.unlink()
        files = [self.folder / f for f in listed] + ([self.folder / TRAINING_FILE] if training and
                                                     training.get("kind") == "tensors" else [])  # fmt: skip
        write_json(self.folder / MANIFEST, {
            "format": FORMAT,
            "model": model_hash(network),
            "network": type(network).__qualname__,
            "checkpoints": self.entries,
            "training": training,
            "frontend": self.frontend,
            "bytes": sum(f.stat().st_size for f in files),
        })  # fmt: skip
        return read_checkpoints(self.folder)


__all__ = [
    "KEEP",
    "Checkpoint",
    "CheckpointError",
    "CheckpointWriter",
    "Checkpoints",
    "TrainingSet",
    "checkpoint_epochs",
    "find_checkpoints",
    "read_checkpoints",
]

"""Rebuilding what a run or a training used from what it stored: a task by its name (the config's ``task:``),
a training set by its kind (a checkpoint manifest's ``training.kind``).

The task layer registers how (:mod:`proactiv.tasks` on import, which the package ``__init__`` does), and the
sweep, the store and the checkpoints look it up here, so generic code never imports a specific task.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from proactiv.config import ConfigError, SweepConfig
from proactiv.outputs import adapt_spec
from proactiv.task_data import TaskData

#: task name → ``loader(cfg) -> TaskData``
_TASKS: dict[str, Callable[[SweepConfig], TaskData]] = {}
#: training-set kind → ``reader(spec, folder) -> TrainingSet`` (see :mod:`proactiv.checkpoints`)
_TRAINING_SETS: dict[str, Callable[[dict, Path], Any]] = {}


def register_task(name: str, loader: Callable[[SweepConfig], TaskData]) -> None:
    """Let configs name the task ``name``: ``loader(cfg)`` builds its model and instances."""
    _TASKS[name] = loader


def register_training_set(kind: str, reader: Callable[[dict, Path], Any]) -> None:
    """Let checkpoint manifests name training sets of ``kind``: ``reader(spec, folder)`` rebuilds one as a
    :class:`~proactiv.checkpoints.TrainingSet` from the manifest's ``training`` spec."""
    _TRAINING_SETS[kind] = reader


def _lookup(table: dict, name: str, what: str):
    if name not in table:
        raise LookupError(f"unknown {what} {name!r}; known {what}s: {', '.join(sorted(table)) or '(none)'}")
    return table[name]


def load_task(cfg: SweepConfig) -> TaskData:
    """The model and instances a config asks for, the model read as the config's ``model.output``,
    ``output_key`` and ``preprocess`` say (:func:`proactiv.outputs.adapt_spec`); an unknown task is a
    ``ConfigError`` naming the known ones."""
    try:
        loader = _lookup(_TASKS, cfg.task, "task")
    except LookupError as err:
        raise ConfigError(f"task: {err}") from None
    task = loader(cfg)
    return replace(task, model=adapt_spec(task.model, cfg.model))


def training_set_reader(kind: str) -> Callable[[dict, Path], Any]:
    """The reader of training sets of ``kind``; ``LookupError`` names the known kinds."""
    return _lookup(_TRAINING_SETS, kind, "training-set kind")

"""Tasks: a model + a dataset + how raw inputs become model inputs. ``load_task(cfg)`` picks one by name."""

from __future__ import annotations

import importlib

from proactiv.config import ConfigError, SweepConfig
from proactiv.tasks.base import TaskData

#: task name → ``module:function`` with ``function(cfg: SweepConfig) -> TaskData`` (imported only when used)
TASKS = {
    "digits": "proactiv.tasks.digits.task:load_digits",
    "emnist": "proactiv.tasks.digits.task:load_emnist_task",
    "denoise": "proactiv.tasks.digits.task:load_denoise",
    "kws": "proactiv.tasks.kws.task:load_task",
    "custom": "proactiv.tasks.custom:load_task",
}


def load_task(cfg: SweepConfig) -> TaskData:
    """The model and instances a config asks for."""
    if cfg.task not in TASKS:
        raise ConfigError(f"task: unknown task {cfg.task!r}; known tasks: {', '.join(sorted(TASKS))}")
    module, function = TASKS[cfg.task].split(":")
    return getattr(importlib.import_module(module), function)(cfg)


def __getattr__(name: str):
    """``pv.tasks.kws`` and friends, imported on first use (they pull in heavier dependencies)."""
    if name in ("kws", "digits", "custom"):
        return importlib.import_module(f"proactiv.tasks.{name}")
    raise AttributeError(f"module 'proactiv.tasks' has no attribute {name!r}")


__all__ = ["TASKS", "TaskData", "load_task"]

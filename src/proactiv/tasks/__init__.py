"""Tasks: a model + a dataset + how raw inputs become model inputs. ``load_task(cfg)`` picks one by name.

Importing this package (``import proactiv`` does) registers the built-in tasks where generic code looks them up:
each task by name and the training sets its checkpoints name (:mod:`proactiv.rebuild`), the keyword task's model
files and ONNX exports (:mod:`proactiv.models`). A task's modules are imported only when first used (they pull
in heavier dependencies).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from proactiv.models import register_file_reader, register_onnx_wrapper
from proactiv.rebuild import load_task, register_task, register_training_set
from proactiv.task_data import TaskData

#: task name → ``module:function`` with ``function(cfg: SweepConfig) -> TaskData``
TASKS = {
    "digits": "proactiv.tasks.digits.task:load_digits",
    "emnist": "proactiv.tasks.digits.task:load_emnist_task",
    "denoise": "proactiv.tasks.digits.task:load_denoise",
    "kws": "proactiv.tasks.kws.task:load_task",
    "custom": "proactiv.tasks.custom:load_task",
}
#: training-set kind of a checkpoint manifest → ``module:function`` with ``function(spec, folder) -> TrainingSet``
TRAINING_SETS = {
    "speech_commands": "proactiv.tasks.kws.task:training_set",
    "digits": "proactiv.tasks.digits:training_set",
}


def _on_first_use(target: str) -> Callable:
    """The function ``module:function``, its module imported when first called."""
    module, name = target.split(":")

    def call(*args, **kwargs):
        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    return call


for _name, _target in TASKS.items():
    register_task(_name, _on_first_use(_target))
for _kind, _target in TRAINING_SETS.items():
    register_training_set(_kind, _on_first_use(_target))
register_file_reader(
    "a keyword model (proactiv kws train)", _on_first_use("proactiv.tasks.kws.models:read_model_file")
)
register_onnx_wrapper("proactiv.kws.", _on_first_use("proactiv.tasks.kws.onnx:keyword_model"))


def __getattr__(name: str):
    """``pv.tasks.kws`` and friends, imported on first use (they pull in heavier dependencies)."""
    if name in ("kws", "digits", "custom"):
        return importlib.import_module(f"proactiv.tasks.{name}")
    raise AttributeError(f"module 'proactiv.tasks' has no attribute {name!r}")


__all__ = ["TASKS", "TRAINING_SETS", "TaskData", "load_task"]

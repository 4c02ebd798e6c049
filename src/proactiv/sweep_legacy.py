"""The spelling :func:`proactiv.sweep.sweep` had in proactiv 0.1, before its options were grouped (23 parameters:
the instances' fields one by one, then the projector, arrays, units and execution settings), kept for one release.

Each old keyword, and the old positional form ``sweep(model, inputs, labels, grid, out, ...)``, is translated to
the new spelling with a :class:`DeprecationWarning` naming it; the records are the same. An old and a new
spelling of the same thing together is a :class:`TypeError` naming both.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch

from proactiv.config import ArraysSpec, ExecutionSpec, UnitsSpec
from proactiv.task_data import TaskData

#: the old parameters after ``model``, in their old positional order
OLD_POSITIONS = (
    "inputs", "labels", "grid", "out", "projector", "class_names", "metadata", "seed", "resume", "frontend",
    "keep_arrays", "arrays_per_class", "instances_per_unit", "projections_per_unit", "progress", "config",
    "pixel_range", "input_kind", "sample_rate", "model_spec", "schema", "executor",
)  # fmt: skip
#: the new positional parameters after ``model``
NEW_POSITIONS = ("data", "grid", "out")


#: the old keywords that are fields of :class:`~proactiv.task_data.TaskData` now, by the same names
DATA_FIELDS = ("inputs", "labels", "class_names", "metadata", "frontend", "pixel_range", "input_kind",
               "sample_rate", "model_spec", "schema", "config")  # fmt: skip


@dataclass(frozen=True)
class Group:
    """The old keywords one new parameter replaces: ``fields`` maps each to its field of the new value, which
    ``build`` makes from those fields (as keywords); ``say`` tells how to write given fields now (default: the
    option object's call)."""

    new: str
    fields: dict[str, str]
    build: Callable[..., object]
    say: Callable[[list[str]], str] | None = None

    def spelling(self, fields: list[str]) -> str:
        """How to write the given fields now."""
        if self.say is not None:
            return self.say(fields)
        return f"{self.new}={self.build.__name__}({', '.join(f'{f}=...' for f in fields)})"


def _task_data(**fields) -> TaskData:
    missing = [f for f in ("inputs", "labels") if f not in fields]
    if missing:
        raise TypeError(f"sweep() missing {' and '.join(missing)}: pass data=(inputs, labels) or a TaskData")
    return TaskData(**fields)


def _say_data(fields: list[str]) -> str:
    rest = [f for f in fields if f not in ("inputs", "labels")]
    if not rest:
        return "data=(inputs, labels) or a TaskData"
    return f"data=TaskData(inputs, labels, {', '.join(f'{f}=...' for f in rest)})"


GROUPS = (
    Group("data", {f: f for f in DATA_FIELDS}, _task_data, _say_data),
    Group(
        "projection",
        {"projector": "projector"},
        lambda projector: projector,
        lambda _: "projection=<the Projector> (or a ProjectionSpec of its settings)",
    ),
    Group("arrays", {"keep_arrays": "keep", "arrays_per_class": "per_class"}, ArraysSpec),
    Group("units", {"instances_per_unit": "instances", "projections_per_unit": "projections"}, UnitsSpec),
    Group("execution", {"executor": "executor", "progress": "progress"}, ExecutionSpec),
)


def accepts_old_keywords(sweep: Callable) -> Callable:
    """``sweep`` that also takes its old keywords and positional form, with a DeprecationWarning for each group
    of them (its signature stays the new one)."""

    @functools.wraps(sweep)
    def wrapper(model, *args, **kwargs):
        if args and isinstance(args[0], torch.Tensor):  # sweep(model, inputs, labels, grid, out, ...)
            kwargs = {**_named(args, kwargs), **kwargs}
            args = ()
        given = set(kwargs) | set(NEW_POSITIONS[: len(args)])
        for group in GROUPS:
            old = {k: kwargs.pop(k) for k in group.fields if k in kwargs}
            if old:
                kwargs[group.new] = _translate(group, old, group.new in given)
        return sweep(model, *args, **kwargs)

    return wrapper


def _named(args: tuple, kwargs: dict) -> dict:
    """The old positional arguments by their old names."""
    if len(args) > len(OLD_POSITIONS):
        raise TypeError(
            f"sweep() takes at most {len(OLD_POSITIONS) + 1} positional arguments in its old form"
        )
    named = dict(zip(OLD_POSITIONS, args, strict=False))
    for name in named.keys() & kwargs.keys():
        raise TypeError(f"sweep() got multiple values for argument {name!r}")
    return named


def _translate(group: Group, old: dict, new_given: bool):
    """The new value of ``group`` from its old keywords ``old``, with the warning; a TypeError when the new
    spelling was given too."""
    names = ", ".join(f"{k}=" for k in old)
    if new_given:
        raise TypeError(
            f"sweep() got both {group.new}= and {names}: they say the same thing; pass only {group.new}="
        )
    fields = {group.fields[k]: v for k, v in old.items()}
    value = group.build(**fields)  # a spelling that was never valid fails without a warning
    warnings.warn(
        f"sweep({names}) is deprecated: pass {group.spelling(list(fields))}",
        DeprecationWarning,
        stacklevel=3,  # the caller of sweep (1: here, 2: the wrapper)
    )
    return value

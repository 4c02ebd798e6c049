"""Deprecated: what a run's inputs are now comes from its schema (``run.schema.input``, :mod:`proactiv.schema`).

``input_kind`` and ``is_image_run`` keep working for code written against them, with a warning.
"""

from __future__ import annotations

import warnings

from proactiv.schema import InputSpec
from proactiv.store import Run

#: the old name of :class:`proactiv.schema.InputSpec`
InputKind = InputSpec


def input_kind(run: Run, shape: tuple[int, ...] | None = None) -> InputSpec:
    """Deprecated: use ``run.schema.input``."""
    warnings.warn("input_kind(run) is deprecated; use run.schema.input", DeprecationWarning, stacklevel=2)
    return run.schema.input


def is_image_run(run: Run, shape: tuple[int, ...] | None = None) -> bool:
    """Deprecated: use ``run.schema.input.image``."""
    warnings.warn(
        "is_image_run(run) is deprecated; use run.schema.input.image", DeprecationWarning, stacklevel=2
    )
    return run.schema.input.image

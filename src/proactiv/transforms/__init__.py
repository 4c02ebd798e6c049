"""Transforms ``T_θ`` and the grid that combines them; ``get(name, **values)`` builds one by name."""

from proactiv.transforms import audio, generic, image  # noqa: F401  (registers the transforms by name)
from proactiv.transforms.base import BatchGenerator, Param, Transform, derive_seed, get, names, register
from proactiv.transforms.grid import Grid, GridPoint

__all__ = [
    "BatchGenerator",
    "Grid",
    "GridPoint",
    "Param",
    "Transform",
    "derive_seed",
    "get",
    "names",
    "register",
]

"""Plug-ins from other installed packages: each registry loads its own entry-point group once, on first use.

A package adds an analysis by declaring, in its ``pyproject.toml``::

    [project.entry-points."proactiv.steps"]
    my_step = "my_package.step"          # registers the Step (analysis floor)
    [project.entry-points."proactiv.views"]
    my_step = "my_package.view"          # registers its report section
    [project.entry-points."proactiv.panels"]
    my_step = "my_package.panel"         # registers its dashboard panel

Each floor loads only its own group, so computing steps never imports a dashboard. Loading an entry point
imports the module (or object) it names; the import registers what it defines.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import pkgutil
import warnings

_LOADED: set[str] = set()


def load_entry_points(group: str) -> list[str]:
    """Import every entry point of ``group`` (once per process); returns the names loaded now. One that fails
    to import is skipped with a warning naming it, its package and the error, so a broken plug-in does not take
    the others down with it."""
    if group in _LOADED:
        return []
    _LOADED.add(group)
    loaded = []
    for entry in importlib.metadata.entry_points(group=group):
        try:
            entry.load()
        except Exception as err:  # noqa: BLE001 - any failure of foreign code is reported, not raised
            package = f"{entry.dist.name} {entry.dist.version}" if entry.dist else "an unknown package"
            warnings.warn(
                f"proactiv plug-in {entry.name!r} = {entry.value!r} of {package} (entry-point group {group}) "
                f"failed to load and is skipped: {type(err).__name__}: {err}",
                RuntimeWarning,
                stacklevel=2,
            )
            continue
        loaded.append(entry.name)
    return loaded


def forget(group: str) -> None:
    """Let ``group`` load again on next use (for tests that install a plug-in while the process runs)."""
    _LOADED.discard(group)


def import_package(name: str, path) -> None:
    """Import every module of the package ``name`` (its ``__path__``): each registers what it defines, so a new
    step, section or panel module of proactiv itself needs no line anywhere else."""
    for module in pkgutil.iter_modules(path):
        importlib.import_module(f"{name}.{module.name}")

"""Whether a run's kept copy of its model (or data) can be unpickled here, read without unpickling it.

``pv.sweep`` keeps an in-memory model by pickling it, and pickle stores a class by reference (``module.Name``),
not by code. A class defined in the user's own script or module (``mymodel.MyNet``) is only found again where that
module can be imported: ``proactiv report`` run from another folder fails on it deep inside ``torch.load``. This
reads the classes a torch file names from its pickle opcodes and imports each, so the report can say which
analyses are missing and which module to make importable, before or instead of loading the model.
"""

from __future__ import annotations

import _compat_pickle
import importlib
import os
import pickletools
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from proactiv.store import DATA_FILE, MODEL_FILE, Run, RunError

T = TypeVar("T")


class UnimportableClass(RunError):
    """A run's kept copy of its model or data needs a class that cannot be imported here; ``module`` is the module
    that could not be found ("" when none was missing), so what was skipped for it can be redone once it is."""

    def __init__(self, message: str, module: str):
        super().__init__(message)
        self.module = module


@dataclass(frozen=True)
class MissingClass:
    """A class a pickle names that cannot be found in this process: its module and name, the module that could
    not be found (empty when none: the module fails on import or has no such class), and the error."""

    module: str
    name: str
    not_found: str
    error: str

    @property
    def why(self) -> str:
        """Why the class cannot be found, in a clause."""
        if self.module == "__main__":
            return (
                f"its class {self.name} was defined in the script that ran the sweep (module __main__), "
                "which no other program can import"
            )
        if self.not_found:
            verb = "is in" if self.not_found == self.module else "needs"
            return f"its class {self.module}.{self.name} {verb} module {self.not_found}, which cannot be imported"
        return f"its class {self.module}.{self.name} cannot be imported ({self.error})"

    @property
    def remedy(self) -> str:
        """What makes the class importable, in a clause."""
        if self.module == "__main__":
            return (
                f"move {self.name} into a module of its own (e.g. models.py beside the script), import it from "
                "there and sweep again"
            )
        if self.not_found:
            top = self.not_found.split(".")[0]
            where = (
                f"run from the folder that has {top}.py (or the package {top}/), or put that folder on "
                "PYTHONPATH: PYTHONPATH=/path/to/that/folder proactiv report RUN"
            )
            # a library the user's module imports is more likely installed elsewhere than kept in a folder
            return where if top == self.module.split(".")[0] else f"install {top}, or {where}"
        return f"make {self.module}.{self.name} importable as it was when the run was swept, or sweep again"


def pickled_classes(file: str | os.PathLike) -> list[tuple[str, str]]:
    """The (module, name) pairs a file written by ``torch.save`` refers to, in order of first use, read from its
    pickle's ``GLOBAL`` opcodes without running it (``torch.save`` pickles with protocol 2, which names every class
    that way); empty for a file that is not a torch zip archive."""
    try:
        with zipfile.ZipFile(file) as archive:
            name = next((n for n in archive.namelist() if n.endswith("/data.pkl")), None)
            data = archive.read(name) if name else b""
    except (OSError, zipfile.BadZipFile):
        return []
    found: dict[tuple[str, str], None] = {}
    proto = 0
    for op, arg, _ in pickletools.genops(data):
        if op.name == "PROTO":
            proto = arg
        elif op.name == "GLOBAL":
            module, _, name = arg.partition(" ")
            if proto < 3:  # Python 2 names (__builtin__.set), mapped back as pickle's own find_class does
                module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
                module = _compat_pickle.IMPORT_MAPPING.get(module, module)
            found[(module, name)] = None
    return list(found)


def missing_class(file: str | os.PathLike) -> MissingClass | None:
    """The first class ``file`` (a ``torch.save`` file) pickles by reference that cannot be imported in this
    process, or None when every one can (importing their modules, as unpickling would)."""
    if not Path(file).exists():
        return None
    for module, qualname in pickled_classes(file):
        try:
            found = importlib.import_module(module)
            for part in qualname.split("."):
                found = getattr(found, part)
        except ModuleNotFoundError as err:
            return MissingClass(module, qualname, err.name or module, str(err))
        except Exception as err:  # a module failing on import, or without the class: unpickling fails alike
            return MissingClass(module, qualname, "", f"{type(err).__name__}: {err}")
    return None


def load_copy(run: Run, load: Callable[[], T]) -> T:
    """``load()`` (``run.model`` or ``run.task``), with an unpickling failure on a class that the run's kept copy
    needs and that cannot be imported here raised as :class:`UnimportableClass`, naming it and the remedy."""
    try:
        return load()
    except (ImportError, AttributeError) as err:  # how unpickling fails on a class it cannot find
        missing = next(filter(None, (missing_class(run.path / f) for f in (MODEL_FILE, DATA_FILE))), None)
        if missing is None:
            raise
        raise UnimportableClass(
            f"the copy it kept cannot be loaded here: {missing.why}; {missing.remedy}", missing.not_found
        ) from err

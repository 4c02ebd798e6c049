"""Atomic writes, the one way proactiv writes a file: to a temporary name in the same folder, then renamed.

The rename is atomic on POSIX, so a reader sees the old file or the whole new one, and a killed or failing
writer leaves no half-written file under the real name and no temporary file beside it.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd


def temporary_name(path: str | os.PathLike) -> Path:
    """Where ``path`` is written before the rename: hidden, in its folder, unique per process and thread, and
    ending in ``.tmp`` so a resumed writer can sweep up what a killed one left."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}-{threading.get_native_id()}.tmp")


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Write via ``write(tmp_path)`` then rename onto ``path``; on failure the temporary file is removed and
    an existing ``path`` is left as it was. Every writer uses this."""
    path = Path(path)
    tmp = temporary_name(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(path: str | os.PathLike, obj) -> Path:
    """``obj`` as indented JSON; what JSON cannot hold (dates, paths) is written as its ``str``."""
    return write_text(path, json.dumps(obj, indent=2, default=str))


def write_parquet(path: str | os.PathLike, table: pd.DataFrame) -> Path:
    return atomic_write(path, lambda tmp: table.to_parquet(tmp, index=False))


def write_npz(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> Path:
    """Arrays by name as an uncompressed ``.npz`` under exactly ``path`` (``np.savez`` given a name would add
    ``.npz`` to it)."""

    def save(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)

    return atomic_write(path, save)


def write_torch(path: str | os.PathLike, obj) -> Path:
    """``torch.save(obj)``; torch is imported only by the runs and models that use it."""
    import torch

    return atomic_write(path, lambda tmp: torch.save(obj, tmp))

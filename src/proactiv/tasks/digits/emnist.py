"""EMNIST in its distributed form: gzip IDX files (``emnist-letters-test-images-idx3-ubyte.gz`` …).

The IDX format (LeCun's MNIST format): a big-endian header — two zero bytes, a type code (0x08 = unsigned
byte), the number of dimensions — then one big-endian 32-bit size per dimension, then the data. EMNIST images
are stored transposed relative to MNIST, so they are transposed back here; the letters split numbers its 26
classes 1…26 (upper and lower case merged), shifted here to 0…25.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import torch

#: IDX type code → numpy dtype (big-endian where it matters)
IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
#: class names of the EMNIST splits whose labels need no mapping file
SPLIT_CLASSES = {
    "letters": [chr(ord("A") + i) for i in range(26)],
    "digits": [str(d) for d in range(10)],
    "mnist": [str(d) for d in range(10)],
}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """An IDX file (gzip-compressed when it ends in .gz) as a numpy array; errors name the file."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: IDX file not found") from None
    except (OSError, EOFError) as err:
        raise ValueError(
            f"{path}: cannot read as {'gzip ' if opener is gzip.open else ''}IDX ({err})"
        ) from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES:
        raise ValueError(
            f"{path}: not an IDX file (expected a header 00 00 <type> <ndim>, got {raw[:4].hex()})"
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(raw)} bytes for {ndim} dimensions)")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(IDX_TYPES[raw[2]])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(
            f"{path}: IDX data holds {len(raw) - header} bytes, the header's shape {shape} needs {expected}"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def _find(root: Path, subset: str, split: str, kind: str) -> Path:
    """``emnist-<subset>-<split>-<kind>-ubyte[.gz]`` in ``root`` or its ``gzip/`` folder (the official zip)."""
    stem = f"emnist-{subset}-{split}-{kind}-ubyte"
    for folder in (root, root / "gzip"):
        for name in (stem + ".gz", stem):
            if (folder / name).exists():
                return folder / name
    raise FileNotFoundError(f"{root}: no {stem}.gz (nor {stem}) here or in {root / 'gzip'}")


def class_names(root: Path, subset: str, n_labels: int) -> list[str]:
    """Names from ``emnist-<subset>-mapping.txt`` (label → character code) when present, else the known ones."""
    for folder in (root, root / "gzip"):
        mapping = folder / f"emnist-{subset}-mapping.txt"
        if mapping.exists():
            rows = [line.split() for line in mapping.read_text().splitlines() if line.strip()]
            names = {int(r[0]): chr(int(r[1])) for r in rows}
            first = min(names)
            return [names.get(first + i, str(first + i)) for i in range(max(names) - first + 1)]
    return SPLIT_CLASSES.get(subset, [str(i) for i in range(n_labels)])


def load_emnist(
    root: str | os.PathLike, split: str = "test", subset: str = "letters"
) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Images (N, 1, 28, 28) in [0, 1] (transposed to upright), labels from 0, and the class names."""
    root = Path(root)
    if split not in ("train", "test"):
        raise ValueError(f"data.split={split!r}: EMNIST has the splits 'train' and 'test'")
    images_path = _find(root, subset, split, "images-idx3")
    labels_path = _find(root, subset, split, "labels-idx1")
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3:
        raise ValueError(f"{images_path}: expected images (N, rows, cols), got shape {images.shape}")
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise ValueError(
            f"{labels_path}: expected {images.shape[0]} labels (one per image in {images_path.name}), "
            f"got shape {labels.shape}"
        )
    offset = 1 if subset == "letters" else 0
    labels = labels.astype(np.int64) - offset
    names = class_names(root, subset, int(labels.max()) + 1 if labels.size else 0)
    if labels.size and (labels.min() < 0 or labels.max() >= len(names)):
        raise ValueError(
            f"{labels_path}: labels run from {labels.min() + offset} to {labels.max() + offset}; "
            f"the {subset} split has {len(names)} classes numbered from {offset}"
        )
    x = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 2, 1))).float().div_(255.0).unsqueeze(1)
    return x, torch.from_numpy(labels), names

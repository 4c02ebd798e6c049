"""Content hashes that tie a run to the exact model and data it was made from (checked on resume)."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import torch
from torch import nn


def _update(h, tensor: torch.Tensor) -> None:
    t = tensor.detach().cpu().contiguous().reshape(-1)
    h.update(f"{tensor.dtype}{tuple(tensor.shape)}".encode())
    h.update(memoryview(t.view(torch.uint8).numpy()) if t.numel() else b"")  # no copy: 12 GB of inputs were 24


def model_hash(model: nn.Module) -> str:
    """SHA-256 over the class name and every parameter and buffer (name, dtype, shape, bytes)."""
    h = hashlib.sha256(type(model).__qualname__.encode())
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        _update(h, tensor)
    return h.hexdigest()[:16]


def data_hash(inputs, labels: torch.Tensor, metadata: pd.DataFrame | None) -> str:
    """SHA-256 over inputs, labels and the metadata table. A source's inputs were hashed by its scan, the same
    way as a tensor of them (:meth:`proactiv.sources.Source.input_hasher`)."""
    if hasattr(inputs, "input_hasher"):
        h = inputs.input_hasher()
    else:
        h = hashlib.sha256()
        _update(h, inputs)
    _update(h, labels)
    if metadata is not None:
        h.update(pd.util.hash_pandas_object(metadata, index=True).to_numpy(np.uint64).tobytes())
        h.update(",".join(map(str, metadata.columns)).encode())
    return h.hexdigest()[:16]

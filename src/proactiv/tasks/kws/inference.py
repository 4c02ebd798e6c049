"""Features and decisions of a keyword model over many clips, batch by batch: what training, its evaluation and
the open-set evaluation share (kept apart from training so the evaluation does not import the trainer)."""

from __future__ import annotations

import torch
from torch import nn

from proactiv.tasks.kws.frontend import LogMel


@torch.no_grad()
def compute_features(
    frontend: LogMel, waves: torch.Tensor, device: str = "cpu", batch: int = 256
) -> torch.Tensor:
    """Log-mel features of many clips, batch by batch."""
    return torch.cat([frontend(waves[i : i + batch].to(device)).cpu() for i in range(0, len(waves), batch)])


@torch.no_grad()
def logits_of(model: nn.Module, feats: torch.Tensor, device: str = "cpu", batch: int = 512) -> torch.Tensor:
    """Logits of feature batches (model put in eval mode)."""
    model.eval()
    return torch.cat([model(feats[i : i + batch].to(device)).cpu() for i in range(0, len(feats), batch)])


def predict(model: nn.Module, feats: torch.Tensor, device: str = "cpu", batch: int = 512) -> torch.Tensor:
    """Predicted class indices of feature batches (model put in eval mode)."""
    return logits_of(model, feats, device, batch).argmax(1)

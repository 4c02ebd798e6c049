"""Per-sample losses ``L(f(z), y)``: each returns one value per sample, so their sum has per-sample gradients."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

#: Losses whose target is a class label (the rest compare against a target tensor).
LABEL_LOSSES = ("cross_entropy", "own_prediction")


def cross_entropy(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of logits (N, C) to integer labels (N,)."""
    return F.cross_entropy(outputs, targets, reduction="none")


def binary_cross_entropy(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of independent logits (N, L) to 0/1 targets (N, L), averaged over the labels."""
    return F.binary_cross_entropy_with_logits(outputs, targets, reduction="none").flatten(1).mean(1)


def mse(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean squared error per sample, averaged over all non-batch dimensions."""
    return (outputs - targets).pow(2).flatten(1).mean(1)


def l1(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean absolute error per sample."""
    return (outputs - targets).abs().flatten(1).mean(1)


_NAMED: dict[str, LossFn] = {
    "cross_entropy": cross_entropy,
    "own_prediction": cross_entropy,
    "binary_cross_entropy": binary_cross_entropy,
    "mse": mse,
    "l1": l1,
}


def resolve_loss(loss: str | LossFn) -> LossFn:
    """A loss by name (``cross_entropy``, ``own_prediction``, ``binary_cross_entropy``, ``mse``, ``l1``) or a
    user callable."""
    if callable(loss):
        return loss
    if loss not in _NAMED:
        raise ValueError(
            f"loss={loss!r}: expected one of {sorted(_NAMED)} or a callable (outputs, targets) -> (N,)"
        )
    return _NAMED[loss]


def input_penalty(kind: str, change: torch.Tensor) -> torch.Tensor:
    """Regulariser on the input change ``z - xT`` per sample: ``l2`` (mean square), ``l1`` or ``tv``.

    Total variation sums absolute differences along the last two dimensions (the last one for 1-D inputs).
    """
    if kind == "l2":
        return change.pow(2).flatten(1).mean(1)
    if kind == "l1":
        return change.abs().flatten(1).mean(1)
    if kind == "tv":
        tv = (change[..., 1:] - change[..., :-1]).abs().flatten(1).mean(1)
        if change.dim() >= 3:
            tv = tv + (change[..., 1:, :] - change[..., :-1, :]).abs().flatten(1).mean(1)
        return tv
    raise ValueError(f"regularizer={kind!r}: expected 'l2', 'l1' or 'tv'")

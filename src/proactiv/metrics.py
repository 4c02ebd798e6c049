"""The difference vector of each (instance, grid point): how far the input moved, how the output changed.

Column names are part of the run-store contract (see DESIGN.md): ``d_x`` (RMS distance x̂T–xT, i.e. L2
normalised by the square root of the input size), ``d_x_l2``, ``d_x_mse``, ``d_x_clean`` (RMS distance x̂T–x),
``d_t`` (RMS distance xT–x: how far the transform moved the input), ``d_y`` (L2 distance of the outputs, on
log-softmax for classifiers), ``loss_t`` (d_g), ``loss_proj`` (d̂_g), ``loss_change``; for classifiers also
``pred_*``, ``correct_*`` and ``flipped``.
"""

from __future__ import annotations

import numpy as np
import torch


def _rms(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).double().flatten(1).pow(2).mean(1).sqrt()


def differences(
    clean: torch.Tensor,
    transformed: torch.Tensor,
    projected: torch.Tensor,
    out_clean: torch.Tensor,
    out_t: torch.Tensor,
    out_proj: torch.Tensor,
    loss_t: torch.Tensor,
    loss_proj: torch.Tensor,
    labels: torch.Tensor | None,
) -> dict[str, np.ndarray]:
    """Difference metrics for N projections; ``labels`` (N,) for classifiers, ``None`` otherwise."""
    size = transformed[0].numel()
    d_x = _rms(projected, transformed)
    cols = {
        "d_x": d_x,
        "d_x_l2": d_x * size**0.5,
        "d_x_mse": d_x.pow(2),
        "d_x_clean": _rms(projected, clean),
        "d_t": _rms(transformed, clean),
    }
    classifier = labels is not None
    if classifier:
        lt, lp = torch.log_softmax(out_t.double(), 1), torch.log_softmax(out_proj.double(), 1)
        cols["d_y"] = (lt - lp).flatten(1).norm(dim=1)
    else:
        cols["d_y"] = _rms(out_t, out_proj)
    cols["loss_t"] = loss_t.double()
    cols["loss_proj"] = loss_proj.double()
    cols["loss_change"] = loss_t.double() - loss_proj.double()
    if classifier:
        pred_clean, pred_t, pred_proj = out_clean.argmax(1), out_t.argmax(1), out_proj.argmax(1)
        cols.update(
            pred_clean=pred_clean,
            pred_t=pred_t,
            pred_proj=pred_proj,
            correct_clean=pred_clean == labels,
            correct_t=pred_t == labels,
            correct_proj=pred_proj == labels,
            flipped=pred_t != pred_proj,
        )
    return {k: v.cpu().numpy() for k, v in cols.items()}

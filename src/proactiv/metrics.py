"""The difference vector of each (instance, grid point): how far the input moved, how the output changed.

Column names are part of the run-store contract (see DESIGN.md): ``d_x`` (RMS distance x̂T–xT, i.e. L2
normalised by the square root of the input size), ``d_x_l2``, ``d_x_mse``, ``d_x_clean`` (RMS distance x̂T–x),
``d_t`` (RMS distance xT–x: how far the transform moved the input), ``d_y`` (L2 distance of the outputs, on
log-softmax for classifiers), ``loss_t`` (d_g), ``loss_proj`` (d̂_g), ``loss_change``; for classifiers also
``pred_*``, ``correct_*`` and ``flipped``; multi-label records ``correct_*`` (every label decided right: logit
> 0 exactly when the label is 1) and ``flipped`` (some label's decision changed). Image-to-image / regression records have ``correct_t`` /
``correct_proj`` too: the output's loss is below the projection cutoff (the criterion the projection aims at), so
accuracy curves, breakpoints and error slices read the same way for both kinds of task.

For images (a ``pixel_range`` given), ``psnr_*`` / ``ssim_*`` compare xT (``_t``) and x̂T (``_proj``) with the
clean input and, when the target is an image, the outputs f(xT) (``_out_t``) and f(x̂T) (``_out_proj``) with it.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

#: SSIM constants and window of Wang et al. (2004), as scikit-image uses them with ``gaussian_weights=True``.
SSIM_K1, SSIM_K2, SSIM_SIGMA, SSIM_WIN = 0.01, 0.03, 1.5, 11


def _rms(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).double().flatten(1).pow(2).mean(1).sqrt()


def psnr(a: torch.Tensor, b: torch.Tensor, data_range: float) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per sample, ``10 log10(range² / MSE)``; +inf for identical images."""
    mse = (a - b).double().flatten(1).pow(2).mean(1)
    return 10.0 * torch.log10(data_range**2 / mse)


def _ssim_window(height: int, width: int) -> torch.Tensor:
    """The normalised 1-D Gaussian of the SSIM window (11×11, σ 1.5: the outer product of this with itself),
    shrunk to an odd size that fits a smaller image."""
    size = min(SSIM_WIN, height - (1 - height % 2), width - (1 - width % 2))
    if size < 3:
        raise ValueError(f"SSIM: images of {height}×{width} pixels are too small (need at least 3×3)")
    ax = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(ax**2) / (2 * SSIM_SIGMA**2))
    return g / g.sum()


#: images whose SSIM is computed at once: the float64 local statistics of a 3×224×224 chunk take ~20 MB each
SSIM_CHUNK = 16


def ssim(a: torch.Tensor, b: torch.Tensor, data_range: float) -> torch.Tensor:
    """Mean structural similarity per sample of images (N, C, H, W) or (N, H, W), channels averaged.

    Gaussian-weighted local statistics with population (co)variances over the windows that fit inside the image
    (no padding), the convention of scikit-image's ``structural_similarity(gaussian_weights=True,
    use_sample_covariance=False)``. The window is applied as two 1-D passes (it is separable; a 2-D depthwise
    float64 convolution was 5× slower) on chunks of :data:`SSIM_CHUNK` images, so memory stays bounded.
    """
    if a.dim() == 3:
        a, b = a.unsqueeze(1), b.unsqueeze(1)
    if a.dim() != 4:
        raise ValueError(f"SSIM: expected images (N, C, H, W), got shape {tuple(a.shape)}")
    g = _ssim_window(a.shape[2], a.shape[3]).to(a.device)
    rows, cols = g.view(1, 1, 1, -1), g.view(1, 1, -1, 1)
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2

    def local_mean(x):
        return F.conv2d(F.conv2d(x, rows), cols)

    out = []
    for start in range(0, a.shape[0], SSIM_CHUNK):
        x, y = (t[start : start + SSIM_CHUNK].double().flatten(0, 1).unsqueeze(1) for t in (a, b))
        mu_x, mu_y = local_mean(x), local_mean(y)
        var_x = local_mean(x * x) - mu_x**2
        var_y = local_mean(y * y) - mu_y**2
        cov = local_mean(x * y) - mu_x * mu_y
        s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
        out.append(s.reshape(-1, a.shape[1] * s.shape[2] * s.shape[3]).mean(1))
    return torch.cat(out) if out else torch.empty(0, dtype=torch.float64)


def image_quality(prefix: str, image: torch.Tensor, reference: torch.Tensor, data_range: float) -> dict:
    """``{prefix}psnr…`` and ``ssim`` columns of ``image`` against ``reference`` (same shape)."""
    return {
        f"psnr{prefix}": psnr(image, reference, data_range),
        f"ssim{prefix}": ssim(image, reference, data_range),
    }


def labels_right(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Whether every label of a multi-label output is decided right (logit > 0 exactly when its 0/1 target is 1),
    per sample: the correct rule of ``multilabel_logits`` runs."""
    return ((outputs > 0) == (targets > 0.5)).flatten(1).all(1)


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
    targets: torch.Tensor | None = None,
    cutoff: float | None = None,
    pixel_range: float | None = None,
    multilabel: bool = False,
) -> dict[str, np.ndarray]:
    """Difference metrics for N projections.

    ``labels`` (N,) for classifiers, ``None`` otherwise; then ``targets`` (the desired outputs) and the
    projection ``cutoff`` give ``correct_t``/``correct_proj``, or with ``multilabel`` the label decisions of the
    outputs (logits) against the 0/1 ``targets`` give ``correct_*`` and ``flipped``. ``pixel_range`` (e.g. 1.0 for images in [0, 1])
    adds PSNR/SSIM columns for 4-D image inputs, and for image-shaped targets.
    """
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
    elif multilabel:
        cols.update(
            correct_clean=labels_right(out_clean, targets),
            correct_t=labels_right(out_t, targets),
            correct_proj=labels_right(out_proj, targets),
            flipped=((out_t > 0) != (out_proj > 0)).flatten(1).any(1),
        )
    elif cutoff is not None:
        cols.update(correct_t=loss_t < cutoff, correct_proj=loss_proj < cutoff)
    if pixel_range is not None and transformed.dim() == 4:
        cols.update(image_quality("_t", transformed, clean, pixel_range))
        cols.update(image_quality("_proj", projected, clean, pixel_range))
        if not classifier and targets is not None and targets.dim() == 4 and out_t.shape == targets.shape:
            cols.update(image_quality("_out_t", out_t, targets, pixel_range))
            cols.update(image_quality("_out_proj", out_proj, targets, pixel_range))
    return {k: v.cpu().numpy() for k, v in cols.items()}

"""Attribution maps of model inputs: where in an input a model finds its evidence for a score (Captum).

Methods: ``saliency`` (|∂ score / ∂ input|), ``integrated_gradients`` (from a baseline without the content,
:func:`baseline_for`: an image's background value, a sound's spectrum without its time course), ``gradcam``
(Grad-CAM on the last Conv1d/Conv2d, or a named layer, upsampled to the input; a 2-D layer map under a 1-D input,
e.g. a log-mel layer of a waveform model, is averaged over its frequency rows first) and ``occlusion`` (the drop
of the score when about an eighth of each axis is replaced by the baseline). The score is the logit of a class
(classifier runs: the desired class, or the model's own prediction on that input) or, for runs whose target is a
tensor (image-to-image), the negative per-sample projection loss toward the target tensor: what makes the output
closer to what it should be.

The maps know nothing of runs: :mod:`proactiv.analysis.record_attributions` computes them on a run's kept
records.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from proactiv.analysis.runview import AnalysisError
from proactiv.extras import require
from proactiv.losses import resolve_loss
from proactiv.schema import InputSpec

METHODS = ("saliency", "integrated_gradients", "gradcam", "occlusion")
CONV_TYPES = (nn.Conv1d, nn.Conv2d)
#: integrated-gradients steps (Gauss-Legendre): completeness within 1 % on smooth models
N_STEPS = 32
#: occlusion: about this many windows along each axis of the input's layout
OCCLUSION_WINDOWS = 8


def last_conv_layer(model: nn.Module, name: str | None = None) -> tuple[str, nn.Module]:
    """(name, module) of the last Conv1d/Conv2d of ``model`` in module order, or of the module called ``name``
    (a dotted name as in ``named_modules``); an :class:`AnalysisError` names the model class and its
    convolution layers when there is none or no such name."""
    if isinstance(model, torch.jit.ScriptModule):
        raise AnalysisError(
            f"{type(model).__name__}: a TorchScript model's layers cannot be hooked for Grad-CAM; attribute the "
            "nn.Module it was scripted from, or use saliency, integrated_gradients or occlusion"
        )
    named = dict(model.named_modules())
    convs = [n for n, m in named.items() if isinstance(m, CONV_TYPES)]
    listing = ", ".join(n or "(the model itself)" for n in convs) if convs else "none"
    if name is not None:
        if name not in named:
            raise AnalysisError(
                f"{type(model).__name__} has no layer {name!r}; its convolution layers: {listing}"
            )
        return name, named[name]
    if not convs:
        raise AnalysisError(
            f"{type(model).__name__} has no Conv1d/Conv2d layer for Grad-CAM (convolution layers: none); "
            "name a layer (layer='...') or use another method"
        )
    return convs[-1], named[convs[-1]]


def spatial_rank(shape: Sequence[int]) -> int:
    """How many trailing axes of one input (batch axis excluded) hold its layout: 2 for (40, 101) or
    (1, 28, 28), 1 for (16000,), (1, 16000) or a feature vector."""
    rank = 0
    for size in reversed(tuple(shape)):
        if size <= 1 or rank == 2:
            break
        rank += 1
    return max(rank, 1)


def _to_input(cam: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """A layer map (B, 1, *layer axes) on the input's layout: extra leading layer axes averaged, the rest
    interpolated to the input's trailing axes, broadcast over the input's other axes."""
    shape = tuple(shape)
    rank = spatial_rank(shape)
    extra = cam.dim() - 2 - rank
    if extra > 0:
        cam = cam.mean(dim=tuple(range(2, 2 + extra)))
    k = cam.dim() - 2
    if k not in (1, 2):
        raise AnalysisError(
            f"the Grad-CAM layer's output has {k} spatial axes (shape {tuple(cam.shape[1:])}); name a Conv1d/Conv2d"
        )
    size = shape[len(shape) - k :]
    mode = {1: "linear", 2: "bilinear"}[k]
    cam = F.interpolate(cam, size=size, mode=mode, align_corners=False)
    return cam.reshape(len(cam), *[1] * (len(shape) - k), *size).expand(len(cam), *shape)


def occlusion_window(size: int, windows: int = OCCLUSION_WINDOWS) -> tuple[int, int]:
    """(window, stride) of occlusion along an axis of ``size``: about ``windows`` windows that cover the axis
    exactly, the last one ending at its end (strides that leave a remainder would never occlude the end)."""
    stride = max(1, size // windows)
    steps = (size - stride) // stride
    return size - stride * steps, stride


def _device(model: nn.Module) -> torch.device:
    for t in [*model.parameters(), *model.buffers()]:
        return t.device
    return torch.device("cpu")


def _tensor(a) -> torch.Tensor:
    return a if isinstance(a, torch.Tensor) else torch.from_numpy(np.array(a))


def attribution_maps(
    model: nn.Module,
    inputs: torch.Tensor,
    targets,
    method: str = "saliency",
    layer: str | None = None,
    target_kind: str = "label",
    *,
    loss: str | Callable = "mse",
    baseline: float | torch.Tensor = 0.0,
    n_steps: int = N_STEPS,
) -> torch.Tensor:
    """Attributions of a batch of model ``inputs`` (B, *input): the same shape, on the model's device.

    ``target_kind="label"``: ``targets`` are class indices (B,) and the score is that class's logit.
    ``target_kind="tensor"`` (image-to-image / regression runs): ``targets`` are the desired outputs and the
    score is the negative per-sample ``loss`` (a name of :mod:`proactiv.losses` or a callable) between the
    model's output and them. ``layer``: Grad-CAM's layer (default :func:`last_conv_layer`); ``baseline``: what
    integrated gradients start from and occlusion fills in (a number or a tensor broadcastable to the inputs);
    ``n_steps``: integrated-gradients steps. Saliency is the gradient's magnitude, Grad-CAM keeps the positive
    evidence (ReLU), integrated gradients and occlusion are signed.
    """
    attr = require("captum.attr", "explain", "the attribution step")

    if method not in METHODS:
        raise ValueError(f"method={method!r}: expected one of {', '.join(METHODS)}")
    if target_kind not in ("label", "tensor"):
        raise ValueError(f"target_kind={target_kind!r}: expected 'label' (class indices) or 'tensor'")
    device = _device(model)
    x = inputs.detach().to(device).float().clone().requires_grad_(method != "occlusion")
    if target_kind == "label":
        target = _tensor(targets).to(device).long().reshape(-1)
        if len(target) != len(x):
            raise ValueError(f"targets: {len(target)} class indices for {len(x)} inputs")
        forward, extra = model, None
    else:
        wanted = _tensor(targets).to(device).float()
        if len(wanted) != len(x):
            raise ValueError(f"targets: {len(wanted)} target tensors for {len(x)} inputs")
        loss_fn = resolve_loss(loss)

        def forward(z, y):
            return -loss_fn(model(z), y)

        target, extra = None, (wanted,)
    if isinstance(baseline, torch.Tensor):
        baseline = baseline.to(device).float()
    if not torch.isfinite(x).all():
        raise ValueError(f"inputs: {int((~torch.isfinite(x)).sum())} values are NaN or infinite; attributions "
                         "need finite inputs")  # fmt: skip
    try:
        if method == "saliency":
            maps = attr.Saliency(forward).attribute(x, target=target, additional_forward_args=extra)
        elif method == "integrated_gradients":
            maps = attr.IntegratedGradients(forward).attribute(
                x,
                baselines=baseline,
                target=target,
                additional_forward_args=extra,
                n_steps=n_steps,
                internal_batch_size=max(len(x), 128),
            )
        elif method == "gradcam":
            _, module = last_conv_layer(model, layer)
            cam = attr.LayerGradCam(forward, module).attribute(
                x, target=target, additional_forward_args=extra, relu_attributions=True
            )
            maps = _to_input(cam, x.shape[1:])
        else:
            rank = spatial_rank(x.shape[1:])
            shape = x.shape[1:]
            lead = tuple(shape[: len(shape) - rank])
            cut = [occlusion_window(s) for s in shape[len(shape) - rank :]]
            maps = attr.Occlusion(forward).attribute(
                x,
                sliding_window_shapes=(*lead, *[w for w, _ in cut]),
                strides=(*lead, *[s for _, s in cut]),
                baselines=baseline,
                target=target,
                additional_forward_args=extra,
                perturbations_per_eval=max(1, 256 // max(len(x), 1)),
            )
    except AnalysisError:  # a layer that cannot be found says so itself
        raise
    except RuntimeError as err:  # the model refuses the batch (a wrong shape, a device mismatch …)
        raise ValueError(
            f"{type(model).__name__} cannot attribute inputs of shape {tuple(inputs.shape)} with {method} ({err})"
        ) from err
    return maps.detach()


def baseline_for(spec: InputSpec, x: torch.Tensor) -> float | torch.Tensor:
    """What integrated gradients start from and occlusion fills in: an image's lower value bound (its
    background), zero for vectors, and for sound the clip without its time course — a spectrogram's band means
    over time, a waveform with its spectrum kept and its phases drawn at random (seeded). Not silence: a constant
    spectrogram is where models that normalise each utterance (as the KWS models do) are singular, and the path
    of integrated gradients from there misses most of the change (KWS demo, 32 steps: median completeness error
    72 % from the spectrogram's floor, 3.6 % from its band means; 100 % from a silent waveform, 4 % from the
    phase-scrambled one)."""
    if spec.image:
        return spec.value_range[0] if spec.value_range is not None else 0.0
    if spec.spectrogram:
        return x.mean(-1, keepdim=True).expand_as(x).contiguous()
    if spec.kind == "waveform":
        spectrum = torch.fft.rfft(x.detach().float(), dim=-1)
        phase = (
            torch.rand(spectrum.shape, generator=torch.Generator().manual_seed(0)).to(x.device) * 2 * torch.pi
        )
        return torch.fft.irfft(spectrum.abs() * torch.exp(1j * phase), n=x.shape[-1], dim=-1)
    return 0.0

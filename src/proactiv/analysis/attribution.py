"""Attributions: where in an input the model finds its evidence, on x, xT and x̂T of kept records, and how that
evidence moved between them (attribution shift).

Methods (Captum): ``saliency`` (|∂ score / ∂ input|), ``integrated_gradients`` (from a baseline without the
content, :func:`baseline_for`: an image's background value, a sound's spectrum without its time course),
``gradcam`` (Grad-CAM on the last Conv1d/Conv2d, or a named layer, upsampled to the input; a 2-D layer map under
a 1-D input, e.g. a log-mel layer of a waveform model, is averaged over its frequency rows first) and
``occlusion`` (the drop of the score when about an eighth of each axis is replaced by the baseline). The score
is the logit of a class (classifier runs: the desired label, or the model's own prediction on that input) or,
for runs whose target is a tensor (image-to-image), the negative per-sample projection loss toward the target
tensor: what makes the output closer to what it should be.

Attribution shift per record, from |attribution| normalised to unit mass per input (where the evidence is,
whatever its sign): ``attr.shift_t_proj`` (total-variation distance of the xT and x̂T masses: 0 = the same
place, 1 = disjoint) and ``attr.spearman_t_proj`` (their rank correlation), the same between x and xT
(``_x_t``), the share of mass per region of a coarse grid along the input's axes (``attr.share_<input>.r<i>c<j>``:
row band i (low mel bands / top image rows first) × column band j (early frames / left first); 1-D inputs
``c<j>`` only), and the share of mass outside the clean input's support (``attr.outside_<input>``, see
:func:`support_mask`): e.g. frames outside the spoken word, pixels off the strokes.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from proactiv.analysis.arrays import clean_inputs, kept_pairs, load_arrays
from proactiv.analysis.runview import AnalysisError, RunView, open_view, q
from proactiv.analysis.steps import StepContext, TableStep, register
from proactiv.losses import resolve_loss
from proactiv.schema import InputSpec
from proactiv.store import Run

METHODS = ("saliency", "integrated_gradients", "gradcam", "occlusion")
TARGETS = ("desired", "predicted")
INPUTS = ("x", "x_t", "x_proj")
#: record columns of each input's predicted class (classifier runs)
PREDICTIONS = {"x": "pred_clean", "x_t": "pred_t", "x_proj": "pred_proj"}
#: how an input is named in shift columns (as in loss_t / loss_proj)
SUFFIX = {"x": "x", "x_t": "t", "x_proj": "proj"}
PREFIX = "attr."
CONV_TYPES = (nn.Conv1d, nn.Conv2d)
#: integrated-gradients steps (Gauss-Legendre): completeness within 1 % on smooth models
N_STEPS = 32
#: occlusion: about this many windows along each axis of the input's layout
OCCLUSION_WINDOWS = 8
#: support of a spectrogram or waveform: frames (10 ms windows) within this many dB of the loudest one
SUPPORT_DB = 30.0
#: support of an image: pixels departing from its median (the background) by this fraction of the value range
SUPPORT_FRACTION = 0.1
#: overlays the report shows: the worst kept record of this many top error slices
SHOWCASE = 3


# ------------------------------------------------------------------------------------------------ maps
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
    from captum.attr import IntegratedGradients, LayerGradCam, Occlusion, Saliency

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
            maps = Saliency(forward).attribute(x, target=target, additional_forward_args=extra)
        elif method == "integrated_gradients":
            maps = IntegratedGradients(forward).attribute(
                x,
                baselines=baseline,
                target=target,
                additional_forward_args=extra,
                n_steps=n_steps,
                internal_batch_size=max(len(x), 128),
            )
        elif method == "gradcam":
            _, module = last_conv_layer(model, layer)
            cam = LayerGradCam(forward, module).attribute(
                x, target=target, additional_forward_args=extra, relu_attributions=True
            )
            maps = _to_input(cam, x.shape[1:])
        else:
            rank = spatial_rank(x.shape[1:])
            shape = x.shape[1:]
            lead = tuple(shape[: len(shape) - rank])
            cut = [occlusion_window(s) for s in shape[len(shape) - rank :]]
            maps = Occlusion(forward).attribute(
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


# ------------------------------------------------------------------------------------------------ records
@dataclass
class Attributions:
    """Attribution maps of kept records: ``maps[name]`` and the attributed ``inputs[name]``, (N, *input) per
    input name (``x``, ``x_t``, ``x_proj``); ``targets[name]`` the class attributed toward (classifier runs)."""

    instance: np.ndarray
    point: np.ndarray
    maps: dict[str, np.ndarray]
    inputs: dict[str, np.ndarray]
    targets: dict[str, np.ndarray] = field(default_factory=dict)
    method: str = "saliency"
    target: str = "desired"
    layer: str | None = None

    def __len__(self) -> int:
        return len(self.instance)

    @property
    def names(self) -> list[str]:
        return list(self.maps)


def record_pairs(records) -> pd.DataFrame:
    """(instance, point) pairs from a DataFrame with those columns or a list of (instance, point)."""
    if isinstance(records, pd.DataFrame):
        missing = [c for c in ("instance", "point") if c not in records.columns]
        if missing:
            raise ValueError(f"records: the table has no columns {missing}; expected instance and point")
        frame = records[["instance", "point"]]
    else:
        rows = [tuple(r) for r in records]
        if any(len(r) != 2 for r in rows):
            raise ValueError("records: expected (instance, point) pairs")
        frame = pd.DataFrame(rows, columns=["instance", "point"])
    return frame.astype("int64").reset_index(drop=True)


def _view(run: Run | str | os.PathLike | RunView) -> RunView:
    return run if isinstance(run, RunView) else open_view(run)


def _record_rows(view: RunView, pairs: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """The records of ``pairs`` (in their order) with ``columns``."""
    frame = pairs.assign(_order=np.arange(len(pairs)))
    cols = ", ".join(f"r.{q(c)}" for c in columns)
    with view.frames(_attr_pairs=frame):
        rows = view.query(
            f"SELECT p._order, {cols} FROM _attr_pairs p JOIN records r USING (instance, point) ORDER BY p._order"
        )
    if len(rows) != len(pairs):
        lost = [tuple(map(int, p)) for p in pairs.drop(index=rows._order)[["instance", "point"]].to_numpy()]
        raise AnalysisError(f"run {view.run.path} has no records (instance, point) {lost[:5]}")
    return rows


def _check(method: str, target: str, inputs: Sequence[str]) -> list[str]:
    if method not in METHODS:
        raise ValueError(f"method={method!r}: expected one of {', '.join(METHODS)}")
    if target not in TARGETS:
        raise ValueError(f"target={target!r}: expected one of {', '.join(TARGETS)}")
    names = list(inputs)
    unknown = [n for n in names if n not in INPUTS]
    if unknown or not names:
        raise ValueError(f"inputs={names!r}: expected some of {list(INPUTS)}")
    return names


def _kept_inputs(run: Run, pairs: pd.DataFrame, names: Sequence[str]) -> dict[str, np.ndarray]:
    """The ``names`` inputs of each record of ``pairs``, in their order; an :class:`AnalysisError` names
    the records without kept arrays (and the instances without a stored clean input when x is asked)."""
    kept = load_arrays(run, instances=pairs.instance.unique(), points=pairs.point.unique())
    keys = [(int(i), int(p)) for i, p in zip(pairs.instance, pairs.point, strict=True)]
    found = (
        {}
        if kept is None
        else {(int(i), int(p)): k for k, (i, p) in enumerate(zip(kept.instance, kept.point, strict=True))}
    )
    missing = [key for key in keys if key not in found]
    if missing:
        keep = (run.config.get("arrays") or {}).get("keep")
        raise AnalysisError(
            f"run {run.path}: no arrays kept for (instance, point) {missing[:5]}"
            f"{' and more' if len(missing) > 5 else ''} (arrays.keep = {keep!r}); attributions need the kept xT "
            "and x̂T: pick kept records (proactiv.analysis.arrays.kept_pairs) or sweep with keep_arrays='all'"
        )
    rows = np.array([found[key] for key in keys], dtype=int)
    out = {n: getattr(kept, n)[rows] for n in names if n != "x"} if len(keys) else {}
    if "x" in names and len(keys):
        clean = clean_inputs(run, pairs.instance.unique())
        lost = sorted(set(pairs.instance.astype(int)) - set(clean))
        if lost:
            raise AnalysisError(
                f"run {run.path}: no clean input x stored for instances {lost[:5]}; attribute inputs=('x_t', 'x_proj')"
            )
        out["x"] = np.stack([clean[int(i)] for i in pairs.instance])
    return {n: np.asarray(out[n], dtype=np.float32) for n in names if n in out}


def _targets(view: RunView, pairs: pd.DataFrame, names: Sequence[str], target: str) -> dict[str, np.ndarray]:
    """What each input is attributed toward: class indices per input name (classifiers: the label, or the
    prediction on that input), or the target tensor under every name (tensor targets)."""
    run = view.run
    if run.schema.classifier:
        wanted = ["label"] + ([PREDICTIONS[n] for n in names] if target == "predicted" else [])
        facts = _record_rows(view, pairs, wanted)
        return {n: facts[PREDICTIONS[n] if target == "predicted" else "label"].to_numpy() for n in names}
    if target == "predicted":
        raise ValueError(
            f"target='predicted': run {run.path} has a tensor target (no predicted class); attributions there "
            "are toward the target tensor: use target='desired'"
        )
    if pairs.empty:
        return {n: np.zeros(0) for n in names}
    stored = clean_inputs(run, pairs.instance.unique(), key="y")
    lost = sorted(set(pairs.instance.astype(int)) - set(stored))
    if lost:
        raise AnalysisError(f"run {run.path}: no target tensor y stored for instances {lost[:5]}")
    y = np.stack([stored[int(i)] for i in pairs.instance]).astype(np.float32)
    return {n: y for n in names}


def iter_attributions(
    run: Run | str | os.PathLike | RunView,
    records=None,
    method: str = "saliency",
    target: str = "desired",
    inputs: Sequence[str] = INPUTS,
    layer: str | None = None,
    device: str = "auto",
    batch_size: int = 32,
    model: nn.Module | None = None,
) -> Iterator[Attributions]:
    """:func:`attribute`, ``batch_size`` records at a time (the maps of one batch in memory at a time)."""
    names = _check(method, target, inputs)
    view = _view(run)
    run, schema = view.run, view.run.schema
    pairs = kept_pairs(run) if records is None else record_pairs(records)
    goal = _targets(view, pairs, names, target)
    values = _kept_inputs(run, pairs, names)
    model = model if model is not None else StepContext(run, device=device).model()
    kind = "label" if schema.classifier else "tensor"
    loss = (
        "mse" if schema.classifier else _loss((run.config.get("projection") or {}).get("loss") or "mse", run)
    )
    layer_name = last_conv_layer(model, layer)[0] if method == "gradcam" else None
    step = max(1, int(batch_size))
    for start in range(0, len(pairs), step):
        part = slice(start, start + step)
        maps = {}
        for n in names:
            xb = torch.from_numpy(values[n][part])
            try:
                maps[n] = (
                    attribution_maps(
                        model,
                        xb,
                        goal[n][part],
                        method,
                        layer_name,
                        kind,
                        loss=loss,
                        baseline=baseline_for(schema.input, xb),
                    )
                    .cpu()
                    .numpy()
                )
            except AnalysisError:
                raise
            except RuntimeError as err:  # e.g. a model that is not differentiable, or a shape it refuses
                raise AnalysisError(f"run {run.path}: {method} failed on the model ({err})") from err
        yield Attributions(
            pairs.instance.to_numpy()[part],
            pairs.point.to_numpy()[part],
            maps,
            {n: values[n][part] for n in names},
            {n: goal[n][part] for n in names} if schema.classifier else {},
            method,
            target,
            layer_name,
        )


def _loss(name, run: Run):
    try:
        return resolve_loss(name)
    except ValueError:
        raise AnalysisError(
            f"run {run.path}: its projection loss {name!r} cannot be rebuilt; attributions toward a target "
            "tensor use the run's loss"
        ) from None


def attribute(
    run: Run | str | os.PathLike | RunView,
    records=None,
    method: str = "saliency",
    target: str = "desired",
    inputs: Sequence[str] = INPUTS,
    layer: str | None = None,
    device: str = "auto",
    batch_size: int = 32,
    model: nn.Module | None = None,
) -> Attributions:
    """Attribution maps of kept records (default: every kept record; or a list of (instance, point), or a
    table with those columns) on their ``inputs`` (x, xT, x̂T), with ``method`` (see the module docstring)
    toward the ``target``: ``"desired"`` (the label, or the target tensor of image-to-image runs) or
    ``"predicted"`` (the model's prediction on each input: pred_clean, pred_t, pred_proj). ``layer`` names
    Grad-CAM's layer (default: the last convolution); ``model`` replaces the run's rebuilt model (e.g. one
    already on a device). A record without kept arrays is an :class:`AnalysisError` naming it."""
    parts = list(iter_attributions(run, records, method, target, inputs, layer, device, batch_size, model))
    if not parts:
        return Attributions(np.zeros(0, np.int64), np.zeros(0, np.int64), {}, {}, {}, method, target)
    first = parts[0]

    def joined(key: str) -> dict[str, np.ndarray]:
        return {n: np.concatenate([getattr(p, key)[n] for p in parts]) for n in getattr(first, key)}

    return Attributions(
        np.concatenate([p.instance for p in parts]),
        np.concatenate([p.point for p in parts]),
        joined("maps"),
        joined("inputs"),
        joined("targets"),
        method,
        target,
        first.layer,
    )


# ------------------------------------------------------------------------------------------------ shift
def _mass(maps: np.ndarray) -> np.ndarray:
    """|maps| per record normalised to unit sum, (N, D); NaN rows where a map has no mass."""
    a = np.abs(maps.reshape(len(maps), -1)).astype(np.float64)
    total = a.sum(1, keepdims=True)
    return a / np.where(total > 0, total, np.nan)


def spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rank correlation of each row of ``a`` with the same row of ``b`` (ties share their mean rank; NaN where
    a row is constant)."""
    from scipy.stats import rankdata

    ra = rankdata(a.reshape(len(a), -1), axis=1)
    rb = rankdata(b.reshape(len(b), -1), axis=1)
    ra -= ra.mean(1, keepdims=True)
    rb -= rb.mean(1, keepdims=True)
    den = np.sqrt((ra * ra).sum(1) * (rb * rb).sum(1))
    return (ra * rb).sum(1) / np.where(den > 0, den, np.nan)


def layout_rank(spec: InputSpec) -> int:
    """Axes the region grid splits: rows × columns of spectrograms and images, time of waveforms and vectors."""
    return 2 if spec.kind in ("spectrogram", "image") else 1


def region_shares(maps: np.ndarray, spec: InputSpec, regions: int = 3) -> dict[str, np.ndarray]:
    """Share of |attribution| mass per region: ``regions`` near-equal bands along each layout axis, keyed
    ``r<i>c<j>`` (2-D) or ``c<j>`` (1-D); row 0 is the first row of the array (lowest mel band, top image row)."""
    mass = _mass(maps).reshape(maps.shape)
    rank = min(layout_rank(spec), maps.ndim - 1)
    lead = tuple(range(1, maps.ndim - rank))
    if lead:
        mass = mass.sum(lead)
    for axis in range(1, rank + 1):
        size = mass.shape[axis]
        edges = [int(e) for e in np.linspace(0, size, min(regions, size) + 1)[:-1].round()]
        mass = np.add.reduceat(mass, edges, axis=axis)
    if rank == 1:
        return {f"c{j}": mass[:, j] for j in range(mass.shape[1])}
    return {f"r{i}c{j}": mass[:, i, j] for i in range(mass.shape[1]) for j in range(mass.shape[2])}


def support_mask(x: np.ndarray, spec: InputSpec) -> np.ndarray | None:
    """Where each clean input (N, *input) carries its content, as a boolean array of its shape (None for
    vectors, which have no layout):

    - spectrograms (dB): every band of the frames whose loudest band is within :data:`SUPPORT_DB` of the
      loudest frame's — the spoken word;
    - waveforms: the samples of 10 ms windows whose RMS is within :data:`SUPPORT_DB` of the loudest window's;
    - images: pixels departing from the image's median (its background) by more than
      :data:`SUPPORT_FRACTION` of the value range (of the image's own range without one) — the strokes.
    """
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    if spec.spectrogram:
        loudness = x.max(axis=-2)
        if loudness.ndim > 2:
            loudness = loudness.reshape(n, -1, loudness.shape[-1]).max(1)
        on = loudness >= loudness.max(1, keepdims=True) - SUPPORT_DB
        return np.broadcast_to(on.reshape(n, *[1] * (x.ndim - 2), on.shape[-1]), x.shape).copy()
    if spec.kind == "waveform":
        flat = x.reshape(n, -1)
        width = max(1, int(spec.sample_rate or flat.shape[1]) // 100)
        pad = (-flat.shape[1]) % width
        windows = np.pad(flat, ((0, 0), (0, pad))).reshape(n, -1, width)
        level = 10 * np.log10((windows**2).mean(2) + 1e-20)
        on = level >= level.max(1, keepdims=True) - SUPPORT_DB
        return np.repeat(on, width, axis=1)[:, : flat.shape[1]].reshape(x.shape)
    if spec.image:
        flat = x.reshape(n, -1)
        span = (
            np.full(n, spec.value_range[1] - spec.value_range[0])
            if spec.value_range is not None
            else np.ptp(flat, axis=1)
        )
        background = np.median(flat, axis=1, keepdims=True)
        return (np.abs(flat - background) > SUPPORT_FRACTION * span[:, None]).reshape(x.shape)
    return None


def attribution_shift(att: Attributions, spec: InputSpec, regions: int = 3) -> pd.DataFrame:
    """Per record of ``att``: instance, point and the shift columns of the module docstring (those its inputs
    allow: xT vs x̂T needs both, x vs xT and the support need x)."""
    table = pd.DataFrame({"instance": att.instance, "point": att.point})
    maps = att.maps
    for a, b in (("x_t", "x_proj"), ("x", "x_t")):
        if a in maps and b in maps:
            tag = f"{SUFFIX[a]}_{SUFFIX[b]}"
            table[f"{PREFIX}shift_{tag}"] = 0.5 * np.abs(_mass(maps[a]) - _mass(maps[b])).sum(1)
            table[f"{PREFIX}spearman_{tag}"] = spearman(np.abs(maps[a]), np.abs(maps[b]))
    support = support_mask(att.inputs["x"], spec) if "x" in att.inputs else None
    for name, m in maps.items():
        if support is not None:
            outside = (~support).reshape(len(m), -1)
            table[f"{PREFIX}outside_{SUFFIX[name]}"] = (_mass(m) * outside).sum(1)
        for key, share in region_shares(m, spec, regions).items():
            table[f"{PREFIX}share_{SUFFIX[name]}.{key}"] = share
    return table


def spread(pairs: pd.DataFrame, k: int | None) -> pd.DataFrame:
    """At most ``k`` of ``pairs``, spread evenly over them (sorted by instance, point)."""
    pairs = pairs.drop_duplicates().sort_values(["instance", "point"], ignore_index=True)
    if k is None or k >= len(pairs):
        return pairs
    return pairs.iloc[np.unique(np.linspace(0, len(pairs) - 1, int(k)).round().astype(int))].reset_index(
        drop=True
    )


def attribution_table(
    run: Run | str | os.PathLike | RunView,
    records=None,
    method: str = "saliency",
    target: str = "desired",
    layer: str | None = None,
    device: str = "auto",
    batch_size: int = 32,
    regions: int = 3,
    model: nn.Module | None = None,
    progress: Callable[[float], None] | None = None,
) -> pd.DataFrame:
    """The attribution shift (:func:`attribution_shift`) of kept records (default: all), batch by batch; x is
    attributed when its clean input is stored. ``attrs`` say the method, target, layer and inputs."""
    view = _view(run)
    pairs = kept_pairs(view.run) if records is None else record_pairs(records)
    names = list(INPUTS)
    if len(clean_inputs(view.run, pairs.instance.unique())) < pairs.instance.nunique():
        names = ["x_t", "x_proj"]
    parts, layer_name = [], None
    for att in iter_attributions(view, pairs, method, target, names, layer, device, batch_size, model):
        parts.append(attribution_shift(att, view.run.schema.input, regions))
        layer_name = att.layer
        if progress:
            progress(sum(len(p) for p in parts) / max(len(pairs), 1))
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame({"instance": [], "point": []})
    table.attrs.update(method=method, target=target, layer=layer_name, inputs=names, regions=int(regions))
    return table


# ------------------------------------------------------------------------------------------------ summaries
#: the per-record figures aggregated per transform value, with what they mean
SUMMARY = {
    "outside_x": "outside the support, x",
    "outside_t": "outside the support, xT",
    "outside_proj": "outside the support, x̂T",
    "spearman_x_t": "Spearman ρ(x, xT)",
    "spearman_t_proj": "Spearman ρ(xT, x̂T)",
    "shift_x_t": "shift x → xT",
    "shift_t_proj": "shift xT → x̂T",
}


def shift_by_value(table: pd.DataFrame, run: Run) -> pd.DataFrame:
    """Mean of each shift figure of :data:`SUMMARY` per value of each grid column with several values (the
    other columns pooled): columns ``column``, ``value``, ``metric``, ``mean``, ``n``."""
    grid = pd.DataFrame([p.values for p in run.grid])
    grid["point"] = np.arange(len(grid))
    frame = table.merge(grid, on="point", how="left")
    metrics = [m for m in SUMMARY if PREFIX + m in frame]
    rows = []
    for column in run.grid.columns:
        if frame[column].nunique() < 2:
            continue
        means = frame.groupby(column)[[PREFIX + m for m in metrics]].agg(["mean", "count"])
        for value, row in means.iterrows():
            for m in metrics:
                rows.append(
                    {
                        "column": column,
                        "value": float(value),
                        "metric": m,
                        "mean": float(row[(PREFIX + m, "mean")]),
                        "n": int(row[(PREFIX + m, "count")]),
                    }
                )
    return pd.DataFrame(rows, columns=["column", "value", "metric", "mean", "n"])


def shift_sentence(summary: pd.DataFrame) -> str:
    """One sentence from the data: the transform value under which xT's evidence lies most outside the clean
    input's support, against x's (or, without x, where xT and x̂T agree least)."""
    out = summary[summary.metric == "outside_t"].dropna(subset=["mean"])
    if not out.empty:
        top = out.loc[out["mean"].idxmax()]
        ref = summary[(summary.metric == "outside_x") & (summary.column == top.column)]["mean"].mean()
        than = f" (x: {ref:.0%})" if np.isfinite(ref) else ""
        return (
            f"Most evidence outside the clean input's support: under {top.column} = {top.value:g}, "
            f"{top['mean']:.0%} of the attribution on xT lies outside it{than}."
        )
    rho = summary[summary.metric == "spearman_t_proj"].dropna(subset=["mean"])
    if rho.empty:
        return "No attribution shift was computed."
    low = rho.loc[rho["mean"].idxmin()]
    return (
        f"The evidence moves most between xT and x̂T under {low.column} = {low.value:g} "
        f"(mean Spearman ρ {low['mean']:.2f})."
    )


def showcase(view: RunView, slices: pd.DataFrame | None, k: int = SHOWCASE) -> pd.DataFrame:
    """The worst kept record (failures first, then by loss on xT) of each of the top ``k`` error slices
    (columns slice, conditions, instance, point); without slices, the ``k`` worst kept records."""
    from proactiv.analysis.interim import worst_records

    if slices is None or slices.empty or "where" not in slices:
        worst = worst_records(view, k)
        return worst.assign(slice=0, conditions="worst kept records")[
            ["slice", "conditions", "instance", "point"]
        ]
    pairs = kept_pairs(view.run)
    wrong = "(NOT r.correct_t)::INT" if view.correct_metric else "0"
    rows = []
    with view.frames(_attr_kept=pairs):
        for _, s in slices.head(k).iterrows():
            try:
                hit = view.query(
                    f"SELECT r.instance, r.point FROM records r JOIN _attr_kept USING (instance, point) "
                    f"WHERE ({s['where']}) ORDER BY {wrong} DESC, r.loss_t DESC LIMIT 1"
                )
            except duckdb.Error:  # the clause names per-instance columns this view has not joined
                continue
            if not hit.empty:
                rows.append(
                    {
                        "slice": int(s["slice"]),
                        "conditions": str(s["conditions"]),
                        "instance": int(hit.instance[0]),
                        "point": int(hit.point[0]),
                    }
                )
    return pd.DataFrame(rows, columns=["slice", "conditions", "instance", "point"])


def _settings(run: Run) -> dict:
    from proactiv.analysis.pipeline import read_manifest

    return (read_manifest(run)["steps"].get("attributions") or {}).get("settings") or {}


class AttributionsStep(TableStep):
    """Attribution shift per kept record (:func:`attribution_table`), the worst records of the top error
    slices always among them."""

    name = "attributions"
    title = "Attributions: where the evidence moved"
    command = "attributions"
    needs = frozenset({"arrays", "model"})
    uses = ("slices",)
    #: (named apart from the embeddings' ``method`` and influence's ``layer``: flat settings reach every step
    #: that has one of the name)
    settings = {
        "attribution_method": "saliency",
        "target": "desired",
        "max_records": 1000,
        "gradcam_layer": None,
        "batch_size": 32,
        "regions": 3,
    }
    files = ("attributions.parquet",)

    def compute(self, ctx, settings, progress):
        model = ctx.model()  # first: a run without a rebuildable model skips the step before any reading
        pairs = spread(kept_pairs(ctx.run), settings["max_records"])
        shown = showcase(ctx.view, ctx.results.get("slices"))[["instance", "point"]]
        pairs = pd.concat([pairs, shown], ignore_index=True).drop_duplicates(ignore_index=True)
        return attribution_table(
            ctx.view,
            pairs,
            settings["attribution_method"],
            settings["target"],
            settings["gradcam_layer"],
            ctx.device,
            settings["batch_size"],
            settings["regions"],
            model,
            progress,
        )

    def note(self, table):
        a = table.attrs
        text = f"{len(table)} records; {a.get('method')} toward the {a.get('target')} target"
        if a.get("layer"):
            text += f" (layer {a['layer']})"
        rho = table.get(f"{PREFIX}spearman_t_proj")
        if rho is not None and rho.notna().any():
            text += f"; median Spearman ρ(xT, x̂T) {rho.median():.2f}"
        out = table.get(f"{PREFIX}outside_t")
        if out is not None and out.notna().any():
            text += f"; median share outside the clean support on xT {out.median():.0%}"
        return text

    def _figure(self, table, ctx):
        from proactiv.views.attribution import attribution_shift_figure

        summary = shift_by_value(table, ctx.run)
        return attribution_shift_figure(summary, ctx.view), shift_sentence(summary)

    def report_section(self, table, ctx):
        from proactiv.views.attribution import attribution_overlay

        fig, sentence = self._figure(table, ctx)
        alt = "attribution shift per transform value: share outside the clean support and rank correlation"
        parts = [f"<p class='attributions'>{html.escape(sentence)}</p>", ctx.figure(fig, sentence, alt)]
        shown = showcase(ctx.view, ctx.results.get("slices"))
        if shown.empty:
            return "".join(parts)
        chosen = _settings(ctx.run)
        try:
            att = attribute(
                ctx.view,
                shown,
                chosen.get("attribution_method", "saliency"),
                chosen.get("target", "desired"),
                layer=chosen.get("gradcam_layer"),
                model=ctx.model(),
            )
        except AnalysisError as err:
            return "".join(parts) + f"<p class='note'>No attribution overlays: {html.escape(str(err))}</p>"
        rows = table.set_index(["instance", "point"])
        for k, s in enumerate(shown.itertuples()):
            facts = f"slice {s.slice}: {s.conditions} · record ({s.instance}, {s.point}): {ctx.view.describe_point(s.point)}"
            if (s.instance, s.point) in rows.index and f"{PREFIX}spearman_t_proj" in rows:
                facts += (
                    f" · Spearman ρ(xT, x̂T) {rows.loc[(s.instance, s.point), f'{PREFIX}spearman_t_proj']:.2f}"
                )
            inputs = {n: v[k] for n, v in att.inputs.items()}
            over = attribution_overlay(inputs, {n: m[k] for n, m in att.maps.items()}, ctx.run.schema.input)
            parts.append(ctx.figure(over, facts, f"{att.method} attributions on x, xT and x̂T of a record"))
        return "".join(parts)

    def panel(self, table, ctx):
        from dash import dcc
        from dash import html as dhtml

        fig, sentence = self._figure(table, ctx)
        return dhtml.Div(
            [dhtml.P(sentence, id="attributions-sentence"), dcc.Graph(figure=fig, id="attributions-graph")]
        )


register(AttributionsStep())

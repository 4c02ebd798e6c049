"""How far an attribution map can be trusted: four measures of one batch of maps against the model they explain.

- **Infidelity** (Yeh et al. 2019, Captum's :func:`captum.metrics.infidelity`): a random share of the features
  is set to the baseline, and the map must predict the score's drop — summed over the removed features for maps
  that already carry the input's change (integrated gradients, occlusion), or weighed by it for local maps
  (saliency, Grad-CAM). Normalised (Captum's ``normalize``: the map's best scale), so methods on different
  scales compare; also reported relative to the drop's own mean square (0: every drop predicted, 1: no better
  than a map of zeros).
- **Max-sensitivity** (Yeh et al. 2019, :func:`captum.metrics.sensitivity_max`): the largest change of the map,
  relative to its norm, when the input moves uniformly by a small radius (a share of the input's spread).
- **Deletion** (after Petsiuk et al. 2018): the most-attributed features are set to the baseline first, in
  steps, and the model's probability of the explained class (tensor targets: minus the loss toward the target)
  is recorded; its area against the same curve for random deletion orders, both measured above the score with
  everything deleted. A map that knows where the evidence is falls far faster than random (ratio ≪ 1).
- **Model randomisation** (Adebayo et al. 2018, "Sanity checks for saliency maps"): the top parameterised
  layers of a copy of the model are re-initialised one after another (cascading from the top) and the maps
  recomputed; a map that barely changes (Spearman ρ of |map| above a stated threshold) does not depend on what
  the model learned, and is flagged.

Captum has no deletion curve and no randomisation test, so both are written here; the perturbations Captum's
metrics draw are ours too, each record's from a generator seeded by (seed, instance, point), so a record's
figures do not depend on the batch it shares or on global random state.

Explainers are registered by name (:func:`register_explainer`): the attribution methods of
:mod:`proactiv.analysis.attribution_maps`, and any other (e.g. a plug-in's, or a planted one in a test).
"""

from __future__ import annotations

import copy
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from proactiv.analysis.attribution_maps import METHODS, attribution_maps, last_conv_layer
from proactiv.analysis.attribution_shift import spearman
from proactiv.analysis.runview import AnalysisError
from proactiv.extras import require
from proactiv.losses import resolve_loss

#: infidelity: each perturbation removes a share of the features drawn uniformly from this range
REMOVED = (0.05, 0.5)
#: deletion: a record whose score falls by less than this (probability; tensor targets: this share of its
#: magnitude) when every feature is deleted says nothing about the order, and gets NaN with the reason
DELETION_MIN = 0.05
#: randomisation: a method whose median Spearman ρ of |map| after the cascade is at least this is flagged
RANDOMISATION_THRESHOLD = 0.5
#: deletion: a method whose median area ratio (its curve over random's) is at least this is flagged: removing
#: what it ranks first lowers the score hardly faster than removing features at random
DELETION_THRESHOLD = 0.8
#: randomisation: the share of the largest |map| features whose overlap is reported
TOP_SHARE = 0.1


@dataclass(frozen=True)
class Explainer:
    """An attribution method by name: ``explain(model, inputs, targets, target_kind=, loss=, baseline=, layer=)``
    returns maps of the inputs' shape. ``multiplies_input``: its maps already carry the input's change from the
    baseline (integrated gradients, occlusion), so infidelity perturbs them by a 0/1 mask rather than by the
    change itself. ``needs_conv``: it needs a convolution layer (Grad-CAM)."""

    name: str
    explain: Callable[..., torch.Tensor]
    multiplies_input: bool = False
    needs_conv: bool = False


_EXPLAINERS: dict[str, Explainer] = {}


def register_explainer(explainer: Explainer) -> Explainer:
    """Add an explainer (refused when one of that name is registered); returns it."""
    if explainer.name in _EXPLAINERS:
        raise ValueError(f"an explainer named {explainer.name!r} is already registered")
    _EXPLAINERS[explainer.name] = explainer
    return explainer


def unregister_explainer(name: str) -> None:
    """Remove an explainer (e.g. one a test registered); the built-in methods stay."""
    if name in METHODS:
        raise ValueError(f"{name!r} is a built-in attribution method")
    if _EXPLAINERS.pop(name, None) is None:
        raise KeyError(f"no explainer {name!r}; registered: {', '.join(_EXPLAINERS)}")


def explainer(name: str) -> Explainer:
    try:
        return _EXPLAINERS[name]
    except KeyError:
        raise ValueError(f"method {name!r}: expected one of {', '.join(_EXPLAINERS)}") from None


def explainers() -> tuple[str, ...]:
    return tuple(_EXPLAINERS)


def _captum(method: str) -> Callable[..., torch.Tensor]:
    def explain(model, inputs, targets, *, target_kind, loss, baseline, layer):
        return attribution_maps(
            model, inputs, targets, method, layer, target_kind, loss=loss, baseline=baseline
        )

    return explain


for _m in METHODS:
    register_explainer(
        Explainer(_m, _captum(_m), _m in ("integrated_gradients", "occlusion"), needs_conv=_m == "gradcam")
    )


def has_conv(model: nn.Module, layer: str | None = None) -> bool:
    try:
        last_conv_layer(model, layer)
    except AnalysisError:
        return False
    return True


def scorer(model: nn.Module, target_kind: str, loss="mse", probability: bool = False):
    """``score(z, t)`` per sample: the logit of class ``t`` (``probability``: its softmax probability), or for
    tensor targets minus the per-sample ``loss`` between the output and ``t`` — what the maps explain."""
    if target_kind == "label":

        def score(z, t):
            out = model(z)
            out = out.softmax(1) if probability else out
            return out.gather(1, t.long().reshape(-1, 1)).squeeze(1)

        return score
    loss_fn = resolve_loss(loss)
    return lambda z, t: -loss_fn(model(z), t)


def full_baseline(baseline: float | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """The baseline as a tensor of ``like``'s shape (a number fills it; a tensor is broadcast)."""
    if isinstance(baseline, torch.Tensor):
        return baseline.to(like.device, like.dtype).expand_as(like).contiguous()
    return torch.full_like(like, float(baseline))


def record_seeds(seed: int, instance: Sequence[int], point: Sequence[int], salt: str) -> list[int]:
    """One seed per record, from (seed, instance, point) and what it draws for (``salt``)."""
    return [
        zlib.crc32(f"{int(seed)}:{int(i)}:{int(p)}:{salt}".encode())
        for i, p in zip(instance, point, strict=True)
    ]


def _generators(seeds: Sequence[int]) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(int(s)) for s in seeds]


def _per_record(inputs: torch.Tensor, gens: list[torch.Generator], draw) -> torch.Tensor:
    """``draw(generator, rows, shape)`` for each record's rows of ``inputs`` (Captum repeats each record's
    perturbations next to each other: ``repeat_interleave``)."""
    n = len(inputs) // len(gens)
    parts = [draw(g, n, inputs.shape[1:]) for g in gens]
    return torch.cat(parts).to(inputs.device)


def infidelity(
    model,
    inputs,
    targets,
    maps,
    baseline,
    seeds,
    *,
    multiplies_input,
    target_kind="label",
    loss="mse",
    samples=16,
) -> tuple[np.ndarray, np.ndarray]:
    """(infidelity, relative infidelity) per record: Captum's normalised infidelity of ``maps``, and that over
    the mean square of the score's drops under the same perturbations (a map of zeros scores 1)."""
    captum_infidelity = require("captum.metrics", "explain", "the infidelity of attributions").infidelity

    score = scorer(model, target_kind, loss)
    base = full_baseline(baseline, inputs)

    def perturb(x, b):
        b = b.expand_as(x)

        def draw(g, n, shape):
            share = torch.empty(n).uniform_(*REMOVED, generator=g)
            return torch.rand(n, *shape, generator=g) < share.view(-1, *[1] * len(shape))

        mask = _per_record(x, gens_now, draw)
        perturbed = torch.where(mask, b, x)
        change = mask.to(x.dtype) if multiplies_input else x - perturbed
        return change, perturbed

    out = []
    for attr, normalize in ((maps, True), (torch.zeros_like(maps), False)):
        gens_now = _generators(seeds)  # the same perturbations for both
        with torch.no_grad():
            value = captum_infidelity(score, perturb, inputs, attr, baselines=base, additional_forward_args=(targets,),
                                      n_perturb_samples=samples, normalize=normalize)  # fmt: skip
        out.append(value.detach().cpu().double().numpy())
    fidelity, drop = (np.maximum(v, 0.0) for v in out)  # a mean square: below 0 only by rounding (float32)
    return fidelity, np.divide(fidelity, drop, out=np.full_like(fidelity, np.nan), where=drop > 1e-12)


def max_sensitivity(explain, inputs, targets, baseline, seeds, radius, samples=8) -> np.ndarray:
    """Captum's max-sensitivity of ``explain(z, targets, baseline)`` per record, each record's input moved
    uniformly within ``radius[record]`` (its own scale); NaN where the map is zero (no relative change)."""
    sensitivity_max = require("captum.metrics", "explain", "max-sensitivity").sensitivity_max

    radius = torch.as_tensor(radius, dtype=inputs.dtype)
    gens = _generators(seeds)

    def perturb(x):
        def draw(g, n, shape):
            return torch.rand(n, *shape, generator=g) * 2 - 1

        noise = _per_record(x, gens, draw)
        return x + noise * radius.to(x.device).repeat_interleave(len(x) // len(gens)).view(
            -1, *[1] * (x.dim() - 1)
        )

    base = full_baseline(baseline, inputs)

    def run(z, additional_forward_args):
        t, b = additional_forward_args
        if isinstance(z, tuple):  # the unperturbed inputs come as a tuple, and their maps must go back as one
            return (explain(z[0], t, b),)
        return explain(z, t, b)

    value = sensitivity_max(
        run, inputs, perturb, n_perturb_samples=samples, additional_forward_args=(targets, base)
    )
    return value.detach().cpu().double().numpy()


def deletion_order(maps: torch.Tensor) -> torch.Tensor:
    """Each feature's place in the deletion order (0: deleted first): the largest attribution first (signed
    maps: the strongest evidence for the target), ties in index order."""
    flat = maps.flatten(1)
    order = torch.argsort(-flat, dim=1, stable=True)
    place = torch.empty_like(order)
    place.scatter_(1, order, torch.arange(flat.shape[1], device=flat.device).expand_as(order).contiguous())
    return place


def random_order(seeds: Sequence[int], features: int) -> torch.Tensor:
    """A random deletion order per record (a permutation of the features drawn from its seed)."""
    return torch.stack([torch.randperm(features, generator=g) for g in _generators(seeds)])


def deletion_curve(score, inputs, targets, baseline, place, steps: int = 20, chunk: int = 256) -> np.ndarray:
    """The score (``score(z, t)``) of each record with the first k/``steps`` of its features (by ``place``)
    set to the baseline, k = 0 … steps: (records, steps + 1)."""
    n, shape = len(inputs), inputs.shape[1:]
    features = int(np.prod(shape))
    cut = torch.from_numpy(np.round(np.linspace(0, features, steps + 1)).astype(np.int64)).to(inputs.device)
    base = full_baseline(baseline, inputs)
    gone = place.view(n, 1, -1).to(inputs.device) < cut.view(1, -1, 1)  # (n, steps + 1, features)
    x = inputs.reshape(n, 1, -1)
    z = torch.where(gone, base.reshape(n, 1, -1), x).reshape(n * (steps + 1), *shape)
    t = targets.repeat_interleave(steps + 1, dim=0)
    with torch.no_grad():
        out = torch.cat([score(z[k : k + chunk], t[k : k + chunk]) for k in range(0, len(z), chunk)])
    return out.view(n, steps + 1).double().cpu().numpy()


def area(curves: np.ndarray) -> np.ndarray:
    """The area under each curve over the deleted share [0, 1] (trapezoids)."""
    fractions = np.linspace(0, 1, curves.shape[1])
    return np.trapezoid(curves, fractions, axis=1)


def parameterised_layers(model: nn.Module) -> list[str]:
    """Names of the modules that hold parameters of their own, in module order (the last is the top)."""
    return [n for n, m in model.named_modules() if any(True for _ in m.parameters(recurse=False))]


def _reinitialise(module: nn.Module) -> None:
    """The layer's own initialisation (``reset_parameters``), or each parameter drawn anew from a normal of its
    own spread when the layer has none."""
    if hasattr(module, "reset_parameters"):
        module.reset_parameters()
        return
    with torch.no_grad():
        for p in module.parameters(recurse=False):
            spread = float(p.std()) if p.numel() > 1 else 0.0
            p.normal_(0.0, spread or 1.0)


def randomised_cascade(
    model: nn.Module, layers: int, seed: int = 0
) -> tuple[list[tuple[str, nn.Module]], str]:
    """Copies of ``model`` with its top 1, 2, … ``layers`` parameterised layers re-initialised (each copy keeps
    the previous ones re-initialised: the cascade of Adebayo et al.), as (name of the last layer re-initialised,
    model); with the reason when there is none (no parameterised layer, a model that cannot be copied)."""
    names = parameterised_layers(model)
    if not names:
        return [], f"{type(model).__name__} has no layer with parameters to re-initialise"
    try:
        current = copy.deepcopy(model)
    except Exception as err:  # e.g. a TorchScript model holding what cannot be copied
        return [], f"{type(model).__name__} cannot be copied to re-initialise its layers ({err})"
    device = next(model.parameters()).device
    out = []
    for k, name in enumerate(reversed(names[-max(1, int(layers)) :])):
        current = copy.deepcopy(current)
        modules = dict(current.named_modules())
        with torch.random.fork_rng(devices=[] if device.type == "cpu" else [device]):
            torch.manual_seed(int(seed) * 1000 + k)
            _reinitialise(modules[name])
        out.append((name, current.eval()))
    return out, ""


def similarity(
    original: np.ndarray, other: np.ndarray, top: float = TOP_SHARE
) -> tuple[np.ndarray, np.ndarray]:
    """(Spearman ρ of |map|, share of the largest ``top`` of the original's |map| features also among the other's
    largest) per record; ρ is NaN where a map is constant."""
    a = np.abs(original.reshape(len(original), -1))
    b = np.abs(other.reshape(len(other), -1))
    rho = spearman(a, b)
    k = max(1, int(round(top * a.shape[1])))
    ta = np.argpartition(-a, k - 1, axis=1)[:, :k]
    tb = np.argpartition(-b, k - 1, axis=1)[:, :k]
    overlap = np.array([len(np.intersect1d(x, y)) / k for x, y in zip(ta, tb, strict=True)])
    return rho, overlap

"""Certified lower bounds on the radius: the largest ε whose L2/L∞ ball around x provably keeps the prediction.

Bounds are CROWN-IBP (Zhang et al. 2020): interval bounds (IBP) forward give every ReLU's pre-activation range;
then linear bounds (CROWN, Zhang et al. 2018) of the margins z_pred − z_j are propagated backward from the
logits and concretised on the ε-ball (dual norm) or, where the first layer has no linear relaxation here but a
bound rule a task registered (:mod:`proactiv.bounds`: the KWS per-utterance normalisation), on that layer's
interval box. The larger of the CROWN and plain IBP margin bounds
is used (both are sound). A bisection on ε keeps the largest ε whose margin bound is positive for every j.

Written here because auto_LiRPA 0.3 (the maintained CROWN library on PyPI) requires torch < 1.13; our models
are chains of a few layer types, which a torch.fx trace turns into the ops below.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import fx, nn

from proactiv.bounds import bound_rule, bounded_layers

_AFFINE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.BatchNorm1d, nn.BatchNorm2d)
#: linear maps with non-negative coefficients: |L| = L, so interval radii go through them unchanged
_POSITIVE = (nn.Flatten, nn.Dropout, nn.Identity, nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d,
             nn.AdaptiveAvgPool2d)  # fmt: skip
_SHAPE_METHODS = {"flatten", "unsqueeze", "squeeze", "view", "reshape", "contiguous", "mean"}


class UnsupportedModel(ValueError):
    """The model has a layer or a wiring the bounds here cannot handle soundly."""


class _Op:
    """One layer of the chain: ``ibp`` maps an interval; ``back`` maps linear bound coefficients backward."""

    kind = "affine"  # "affine" | "relu" | "maxpool" | "box"

    def __init__(self, fn, abs_fn=None, module=None):
        self.fn, self.abs_fn, self.module = fn, abs_fn or fn, module

    def ibp(self, lo, hi):
        mid, rad = (hi + lo) / 2, (hi - lo) / 2
        out_mid, out_rad = self.fn(mid), self.abs_fn(rad) - self.abs_fn(torch.zeros_like(rad))
        return out_mid - out_rad, out_mid + out_rad

    def back(self, a, c, lo, hi):
        """Coefficients ``a`` (B, S, *out) on this op's output → on its input, constant ``c`` (B, S) updated."""
        shape = lo.shape[1:]
        zero = torch.zeros(1, *shape, dtype=a.dtype, device=a.device)
        bias, vjp = torch.func.vjp(self.fn, zero)
        c = c + (a * bias).flatten(2).sum(2)
        flat = a.reshape(-1, 1, *a.shape[2:])
        (back,) = torch.func.vmap(vjp)(flat)
        return back.reshape(*a.shape[:2], *shape), c


class _ReLU(_Op):
    kind = "relu"

    def __init__(self):
        super().__init__(F.relu)

    def ibp(self, lo, hi):
        return lo.clamp_min(0), hi.clamp_min(0)

    def back(self, a, c, lo, hi):
        lo, hi = lo.unsqueeze(1), hi.unsqueeze(1)
        unstable = (lo < 0) & (hi > 0)
        up_slope = torch.where(unstable, hi / (hi - lo).clamp_min(1e-12), (lo >= 0).to(a.dtype))
        up_bias = torch.where(unstable, -lo * up_slope, torch.zeros_like(lo))
        low_slope = torch.where(unstable, (hi > -lo).to(a.dtype), (lo >= 0).to(a.dtype))
        pos, neg = a.clamp_min(0), a.clamp_max(0)
        c = c + (neg * up_bias).flatten(2).sum(2)
        return pos * low_slope + neg * up_slope, c


class _MaxPool(_Op):
    """Max over non-overlapping windows: below by the element with the largest lower bound, above by that
    element when it dominates its window, else by the window's largest upper bound (a constant)."""

    kind = "maxpool"

    def __init__(self, module: nn.MaxPool2d):
        k, s = _pair(module.kernel_size), _pair(module.stride or module.kernel_size)
        if k != s or _pair(module.padding) != (0, 0) or _pair(module.dilation) != (1, 1) or module.ceil_mode:
            raise UnsupportedModel(f"{module}: only non-overlapping max pooling without padding is supported")
        super().__init__(module)
        self.k = k

    def ibp(self, lo, hi):
        return F.max_pool2d(lo, self.k), F.max_pool2d(hi, self.k)

    def back(self, a, c, lo, hi):
        best_lo, index = F.max_pool2d(lo, self.k, return_indices=True)
        top_hi = F.max_pool2d(hi, self.k)
        others_hi = F.max_pool2d(torch.where(_scatter_mask(lo, index), -math.inf, hi), self.k)
        dominated = (best_lo >= others_hi).unsqueeze(1)
        pos, neg = a.clamp_min(0), a.clamp_max(0)
        to_elem = pos + torch.where(dominated, neg, torch.zeros_like(neg))
        c = c + torch.where(dominated, torch.zeros_like(neg), neg * top_hi.unsqueeze(1)).flatten(2).sum(2)
        b, s = a.shape[:2]
        idx = index.unsqueeze(1).expand_as(a).reshape(b * s, *index.shape[1:])
        back = F.max_unpool2d(to_elem.reshape(b * s, *a.shape[2:]), idx, self.k, output_size=lo.shape[-2:])
        return back.reshape(b, s, *lo.shape[1:]), c


class _Box(_Op):
    """A layer bounded by its registered rule (:mod:`proactiv.bounds`): an interval over the input ball only."""

    kind = "box"

    def __init__(self, module: nn.Module, rule):
        super().__init__(module, module=module)
        self.rule = rule

    def box(self, x, eps, p: str):
        return self.rule(self.module, x, eps, p)


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _scatter_mask(lo, index):
    """True at each window's arg-max element (of ``lo``)."""
    flat = torch.zeros_like(lo).flatten(2)
    flat.scatter_(2, index.flatten(2), 1.0)
    return flat.view_as(lo).bool()


class _Tracer(fx.Tracer):
    def is_leaf_module(self, m, qualname):
        return bound_rule(m) is not None or super().is_leaf_module(m, qualname)


def _affine(module):
    """The op of an affine module: itself for the centre, |W| (or |scale|) for interval radii."""
    if isinstance(module, nn.Linear):
        return _Op(module, lambda r: F.linear(r, module.weight.abs()), module)
    if isinstance(module, (nn.Conv1d, nn.Conv2d)):
        if module.padding_mode != "zeros":
            raise UnsupportedModel(f"{module}: padding mode {module.padding_mode!r} is not supported")
        return _Op(module, lambda r: module._conv_forward(r, module.weight.abs(), None), module)
    if module.training or module.running_var is None:
        raise UnsupportedModel(f"{module}: BatchNorm must be in eval mode with running statistics")
    scale = (module.weight if module.affine else 1) / torch.sqrt(module.running_var + module.eps)
    return _Op(module, lambda r: r * scale.abs().view(-1, *([1] * (r.dim() - 2))), module)


def chain(model: nn.Module, example: torch.Tensor) -> list[_Op]:
    """The model as a chain of ops, or :class:`UnsupportedModel` naming what is not supported."""
    try:
        graph = _Tracer().trace(model)
    except Exception as err:  # fx raises many types on dynamic control flow or scripted modules
        raise UnsupportedModel(f"cannot trace {type(model).__name__} with torch.fx ({err})") from None
    modules = dict(model.named_modules())
    ops: list[_Op] = []
    prev = None
    for node in graph.nodes:
        if node.op == "placeholder":
            prev = node
            continue
        if node.op == "output":
            if node.args[0] is not prev:
                raise UnsupportedModel("the model's output is not the end of a single chain of layers")
            break
        tensors = [a for a in (*node.args, *node.kwargs.values()) if isinstance(a, fx.Node)]
        if tensors != [prev]:
            raise UnsupportedModel(f"{node.name}: only single chains of layers are supported (no branches)")
        ops.append(_node_op(node, modules))
        prev = node
    for op in ops[1:]:
        if op.kind == "box":
            raise UnsupportedModel(f"{type(op.module).__name__} is bounded only as the model's first layer")
    return ops


def _node_op(node: fx.Node, modules) -> _Op:
    if node.op == "call_module":
        m = modules[node.target]
        rule = bound_rule(m)
        if rule is not None:
            return _Box(m, rule)
        if isinstance(m, _AFFINE):
            return _affine(m)
        if isinstance(m, nn.ReLU):
            return _ReLU()
        if isinstance(m, nn.MaxPool2d):
            return _MaxPool(m)
        if isinstance(m, _POSITIVE):
            return _Op(m)
        raise UnsupportedModel(
            f"layer {node.target} ({type(m).__name__}) is not supported by the bounds (layers with a registered "
            f"bound rule, proactiv.bounds: {', '.join(bounded_layers()) or 'none'})"
        )
    args, kwargs = node.args[1:], dict(node.kwargs)
    if node.op == "call_method" and node.target in _SHAPE_METHODS:
        kwargs.pop("memory_format", None)
        return _Op(lambda t, name=node.target: getattr(t, name)(*args, **kwargs))
    if node.op == "call_method" and node.target == "relu" or node.target in (F.relu, torch.relu):
        return _ReLU()
    if node.target is torch.flatten:
        return _Op(lambda t: torch.flatten(t, *args, **kwargs))
    raise UnsupportedModel(f"operation {node.target} is not supported by the bounds")


def margin_bounds(ops: list[_Op], x, pred, eps, p: str, value_range=None, n_classes: int | None = None):
    """Lower bounds (B, K) on z_pred − z_j over the ε-balls (per-sample ``eps``) around ``x`` (+inf at j = pred)."""
    e = eps.view(-1, *([1] * (x.dim() - 1)))
    lo, hi = x - e, x + e
    if value_range is not None:
        lo, hi = lo.clamp(*value_range), hi.clamp(*value_range)
    bounds = []  # (lo, hi) at each op's input
    for op in ops:
        bounds.append((lo, hi))
        lo, hi = op.box(x, eps, p) if op.kind == "box" else op.ibp(lo, hi)
    k = n_classes or lo.shape[1]
    spec = F.one_hot(pred, k).to(x.dtype).unsqueeze(1) - torch.eye(k, dtype=x.dtype, device=x.device)
    ibp = (spec.clamp_min(0) * lo.unsqueeze(1) + spec.clamp_max(0) * hi.unsqueeze(1)).sum(2)
    a, c = spec, torch.zeros(x.shape[0], k, dtype=x.dtype, device=x.device)
    for i in range(len(ops) - 1, -1, -1):
        if ops[i].kind == "box":
            crown = _concretise_box(a, c, *ops[i].box(x, eps, p))
            break
        a, c = ops[i].back(a, c, *bounds[i])
    else:
        flat = a.flatten(2)
        dual = flat.norm(dim=2) if p == "l2" else flat.abs().sum(2)
        crown = (flat * x.flatten(1).unsqueeze(1)).sum(2) + c - eps.view(-1, 1) * dual
        if value_range is not None:
            crown = torch.maximum(crown, _concretise_box(a, c, *bounds[0]))
    out = torch.maximum(crown, ibp)
    return out.masked_fill(F.one_hot(pred, k).bool(), math.inf)


def _concretise_box(a, c, lo, hi):
    lo, hi = lo.unsqueeze(1), hi.unsqueeze(1)
    low = a.clamp_min(0) * lo + a.clamp_max(0) * hi
    return torch.nan_to_num(low, nan=-math.inf).flatten(2).sum(2) + c


@torch.no_grad()
def certified_radius(ops, x, pred, p: str, upper, value_range=None, iterations: int = 16) -> torch.Tensor:
    """The largest ε (bisection on [0, ``upper``], per sample) whose margin bounds are all positive."""
    lo = torch.zeros(len(x), dtype=x.dtype, device=x.device)
    hi = upper.clone().to(x.dtype)
    hi = torch.where(torch.isfinite(hi), hi, torch.full_like(hi, float(x.abs().max()) + 1))
    for _ in range(iterations):
        mid = (lo + hi) / 2
        proved = margin_bounds(ops, x, pred, mid, p, value_range).amin(1) > 0
        lo, hi = torch.where(proved, mid, lo), torch.where(proved, hi, mid)
    return lo

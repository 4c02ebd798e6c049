"""Bound rules for layer types the certified radius (:mod:`proactiv.analysis.certify`) has no linear
relaxation of, registered by the task whose models hold them (the keyword task's per-utterance normalisation),
so certify bounds such a layer without importing the task.

A rule gives a sound interval of the layer's output over the input ball; certify uses it for the model's first
layer, and concretises the backward (CROWN) bounds on that interval.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

#: ``box(layer, x, eps, p) -> (lo, hi)``: bounds on ``layer``'s output for every input within ‖δ‖_p ≤ ``eps``
#: (one radius per sample; p ``"l2"`` or ``"linf"``) of the model input ``x``
BoxRule = Callable[[nn.Module, torch.Tensor, torch.Tensor, str], tuple[torch.Tensor, torch.Tensor]]

_RULES: dict[type, BoxRule] = {}


def register_bound_rule(layer_type: type, box: BoxRule) -> None:
    """Bound layers of ``layer_type`` (and of its subclasses) with ``box``, as the model's first layer."""
    _RULES[layer_type] = box


def bound_rule(layer: nn.Module) -> BoxRule | None:
    """The rule for ``layer`` (that of its nearest registered class), or None when it has none."""
    return next((_RULES[cls] for cls in type(layer).__mro__ if cls in _RULES), None)


def bounded_layers() -> list[str]:
    """The names of the layer types with a rule, for messages."""
    return sorted(cls.__name__ for cls in _RULES)

"""Targeted PGD: push each input toward a chosen class within an ε-ball (L2 or L∞), the attack that builds the
relabelled training sets of the non-robust-features experiment (Ilyas et al. 2019, after Madry et al. 2018).

The radius step's PGD (:mod:`proactiv.analysis.radius`) climbs the margin of the current prediction to find the
smallest flip; here the budget is fixed and the loss is the cross-entropy to a *target*, which the attack lowers.
The norm, the steepest step and the ball projection are the radius step's own.
"""

from __future__ import annotations

import torch
from torch import nn

from proactiv.analysis.radius import NORMS, project_to_ball, steepest


def check_budget(eps: float, steps: int, norm: str) -> None:
    """Refuse a budget the attack cannot use, naming the setting and what it expects."""
    if not eps > 0:
        raise ValueError(f"eps={eps}: expected a number > 0 (the attack's budget, in input units)")
    if steps < 1:
        raise ValueError(f"steps={steps}: expected a whole number >= 1")
    if norm not in NORMS:
        raise ValueError(f"norm={norm!r}: expected one of {', '.join(NORMS)}")


def targeted_pgd(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    eps: float,
    steps: int = 50,
    norm: str = "l2",
    step_size: float | None = None,
    value_range: tuple[float, float] | None = (0.0, 1.0),
) -> torch.Tensor:
    """``x`` moved toward the classes ``target`` (one per sample): ``steps`` steepest-descent steps on the
    cross-entropy to the target, each of ``step_size`` (default 2.5 ε / steps, Madry's rule) in the norm,
    projected back into the ε-ball around ``x`` and into ``value_range``. Starts at ``x`` (no random start), so
    the same inputs give the same result. Returns the moved inputs (detached)."""
    check_budget(eps, steps, norm)
    alpha = 2.5 * eps / steps if step_size is None else step_size
    radius = torch.full((len(x),), float(eps), device=x.device, dtype=x.dtype)
    delta = torch.zeros_like(x)
    for _ in range(steps):
        delta.requires_grad_(True)
        loss = nn.functional.cross_entropy(model(x + delta), target, reduction="sum")  # sum: per-sample steps
        (grad,) = torch.autograd.grad(loss, delta)
        with torch.no_grad():
            delta = project_to_ball(delta - alpha * steepest(grad, norm), radius, norm)
            if value_range is not None:
                delta = (x + delta).clamp(*value_range) - x
    return (x + delta).detach()

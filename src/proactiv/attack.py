"""PGD inside an ε-ball (L2 or L∞) around each input, and the geometry it shares with the radius step.

Two uses: robust training pushes each training input *away from its label* within the budget and trains on the
result (untargeted, Madry et al. 2018; :mod:`proactiv.robust_training`), and the non-robust-features experiment
pushes each input *toward a chosen class* to build its relabelled sets (targeted, Ilyas et al. 2019). The norm,
the steepest step and the ball projection are also what the radius step's search moves by
(:mod:`proactiv.analysis.radius`). On the ground floor because the task trainers use it.
"""

from __future__ import annotations

import math

import torch
from torch import nn

#: the norms a change is measured in
NORMS = ("l2", "linf")


def change_norm(d: torch.Tensor, p: str) -> torch.Tensor:
    """Per sample, the size of a change ``d`` in norm ``p`` ("l2" or "linf")."""
    flat = d.flatten(1)
    return flat.norm(dim=1) if p == "l2" else flat.abs().amax(1)


def steepest(grad: torch.Tensor, p: str) -> torch.Tensor:
    """The change of unit size in norm ``p`` that raises a loss fastest to first order, per sample: the
    normalised gradient (L2) or its sign (L∞)."""
    if p == "l2":
        return grad / grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *[1] * (grad.dim() - 1))
    return grad.sign()


def project_to_ball(delta: torch.Tensor, eps: torch.Tensor, p: str) -> torch.Tensor:
    """Each sample's change pulled back into its ε-ball of norm ``p`` (``eps``: one radius per sample)."""
    shape = (-1, *[1] * (delta.dim() - 1))
    if p == "linf":
        return torch.maximum(torch.minimum(delta, eps.view(shape)), -eps.view(shape))
    size = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
    return delta * torch.clamp(eps / size, max=1).view(shape)


def check_budget(eps: float, steps: int, norm: str) -> None:
    """Refuse a budget the attack cannot use, naming the setting and what it expects."""
    if not 0 < eps < math.inf:
        raise ValueError(f"eps={eps}: expected a finite number > 0 (the attack's budget, in model-input units)")
    if steps < 1:
        raise ValueError(f"steps={steps}: expected a whole number >= 1")
    if norm not in NORMS:
        raise ValueError(f"norm={norm!r}: expected one of {', '.join(NORMS)}")


def random_start(x: torch.Tensor, eps: float, p: str, generator: torch.Generator) -> torch.Tensor:
    """A change drawn inside the ε-ball (uniform per coordinate for L∞; a random direction at a uniform share of
    ε for L2), so training does not always attack from the clean point (Madry's random restart)."""
    if p == "linf":
        return (torch.rand(x.shape, generator=generator) * 2 - 1).to(x) * eps
    direction = torch.randn(x.shape, generator=generator).to(x)
    size = torch.rand(len(x), generator=generator).to(x) * eps
    return steepest(direction, "l2") * size.view(-1, *[1] * (x.dim() - 1))


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    labels: torch.Tensor,
    eps: float,
    steps: int = 10,
    norm: str = "l2",
    *,
    targeted: bool = False,
    step_size: float | None = None,
    value_range: tuple[float, float] | None = None,
    start: torch.Generator | None = None,
) -> torch.Tensor:
    """``x`` moved within the ε-ball of norm ``norm``: ``steps`` steepest steps of ``step_size`` (default
    2.5 ε / steps, Madry's rule) on the cross-entropy to ``labels`` — up (away from them), or down (toward them)
    when ``targeted`` — each projected back into the ball and into ``value_range``. Starts at ``x`` (the same
    inputs give the same result) or, given a generator ``start``, at a random point of the ball. Returns the
    moved inputs, detached; the model's parameters get no gradient."""
    check_budget(eps, steps, norm)
    alpha = 2.5 * eps / steps if step_size is None else step_size
    radius = torch.full((len(x),), float(eps), device=x.device, dtype=x.dtype)
    delta = torch.zeros_like(x) if start is None else random_start(x, eps, norm, start)
    sign = -1.0 if targeted else 1.0
    x = x.detach()
    for _ in range(steps):
        delta.requires_grad_(True)
        loss = nn.functional.cross_entropy(model(x + delta), labels, reduction="sum")  # sum: per-sample steps
        (grad,) = torch.autograd.grad(loss, delta)
        with torch.no_grad():
            delta = project_to_ball(delta + sign * alpha * steepest(grad, norm), radius, norm)
            if value_range is not None:
                delta = (x + delta).clamp(*value_range) - x
    return (x + delta).detach()

"""Planted radii, known exactly: the ``radius`` step's found (adversarial) radius must be a verified flip — never
closer than the true minimal radius — and its certified radius a sound bound — never above it, finite, not
negative — in L2 and L∞.

- ``linear_radius``: a 3-class linear classifier of 6-D vectors, whose minimal radius is closed-form: the distance
  to the nearest decision boundary, min over classes j of (z_pred − z_j) / ‖w_pred − w_j‖ (L2) or ‖·‖₁ (L∞, the
  dual norm). DeepFool is exact there and CROWN has nothing to relax, so both radii must also be tight.
- ``relu_radius``: a ReLU network of 2-D vectors (8 hidden units, 3 classes), whose minimal radius comes from
  :func:`exact_radius`, an exact method; the found radius must be tight for most instances (a heuristic attack may
  miss the nearest flip on some), the certified one positive on every instance.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import torch
from torch import nn

from proactiv.analysis.pipeline import Analysis
from proactiv.config import ArraysSpec, ExecutionSpec
from proactiv.optimize import Projector
from proactiv.selftest import Check, Plant, register_plant
from proactiv.store import Run
from proactiv.sweep import sweep
from proactiv.transforms import Grid, get

NORMS = ("l2", "linf")
#: relative float32 slack: a found radius this much below the exact one, or a certified one this much above it,
#: is still taken as equal (measured: certified radii 1e-6 … 1.4e-5 below the closed form, found ones 1e-4 above)
ROUNDING = 1e-5
#: on the linear model, found and certified radii lie within this share of the closed form (the found radius's
#: bisection stops within 1e-3)
TIGHT = 2e-3
#: on the ReLU network, at least this share of the instances must have a found radius this close to the exact one
TIGHT_SHARE, RELU_TIGHT = 0.5, 0.05


def linear_plant() -> tuple[nn.Module, torch.Tensor]:
    """The linear model (6 features → 3 classes) and its 16 inputs."""
    gen = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 3))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    return model.eval(), torch.randn(16, 6, generator=gen)


def relu_plant() -> tuple[nn.Module, torch.Tensor]:
    """The ReLU network (2 → 8 → 3) and its 16 inputs."""
    gen = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 3))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    return model.eval(), torch.randn(16, 2, generator=torch.Generator().manual_seed(1))


def closed_form_radius(model: nn.Module, x: torch.Tensor, p: str) -> np.ndarray:
    """The exact minimal radius of a linear classifier ``model[0]`` around each row of ``x`` (float64)."""
    w, b = (t.detach().double().numpy() for t in (model[0].weight, model[0].bias))
    logits = x.double().numpy() @ w.T + b
    pred = logits.argmax(1)
    diff = w[pred][:, None, :] - w[None]  # (n, classes, features)
    dual = np.linalg.norm(diff, axis=2) if p == "l2" else np.abs(diff).sum(2)
    with np.errstate(divide="ignore", invalid="ignore"):
        dist = (logits[np.arange(len(x)), pred][:, None] - logits) / dual
    dist[np.arange(len(x)), pred] = np.inf
    return dist.min(1)


def exact_radius(model: nn.Module, x: torch.Tensor, p: str) -> np.ndarray:
    """The exact minimal L2 or L∞ radius that flips each prediction of a one-hidden-layer ReLU network
    (``Linear → ReLU → Linear``) of 2-D inputs, in float64.

    Within one activation pattern the network is affine, so the inputs that flip the prediction to class j form
    a convex polygon bounded by hidden units' lines and one margin line; the point of a polygon nearest to x is
    one of its vertices or, on one of its edges' lines, the orthogonal projection of x (L2) or the point at
    x ± t·(±1, ±1) (L∞: where the square around x first touches a line). Every such point of every pattern and
    class is a candidate; the smallest distance to a candidate the real network flips (margin ≥ 0, up to
    rounding) is the exact radius — each candidate that flips is a real flip, and the nearest flip is among
    them. 2^hidden patterns: fine for a handful of hidden units."""
    w1, b1, w2, b2 = (t.detach().double().numpy() for t in (model[0].weight, model[0].bias, model[2].weight,
                                                           model[2].bias))  # fmt: skip
    if w1.shape[1] != 2:
        raise ValueError(f"exact_radius: 2-D inputs only, got {w1.shape[1]} features")
    hidden, classes = w1.shape[0], w2.shape[0]

    def logits(z):
        return np.maximum(z @ w1.T + b1, 0) @ w2.T + b2

    patterns = np.array(list(itertools.product([0.0, 1.0], repeat=hidden)))
    out = []
    for xi in x.double().numpy():
        pred = int(logits(xi[None]).argmax())
        others = [j for j in range(classes) if j != pred]
        coef = (patterns[:, None, :] * (w2[others] - w2[pred])[None]).reshape(-1, hidden)
        u = np.concatenate([w1, coef @ w1])  # every line: the hidden units', then each pattern's margins
        c = np.concatenate([b1, coef @ b1 + np.tile(b2[others] - b2[pred], len(patterns))])
        keep = np.abs(u).sum(1) > 1e-12
        u, c = u[keep], c[keep]
        value = u @ xi + c
        if p == "l2":
            nearest = xi - (value / (u * u).sum(1))[:, None] * u
        else:
            nearest = xi - (value / np.abs(u).sum(1))[:, None] * np.sign(u)
        # vertices: each hidden unit's line against every line (two margin lines never bound one polygon)
        size = (hidden, len(u))
        pair = np.stack([np.broadcast_to(w1[:, None], (*size, 2)), np.broadcast_to(u[None], (*size, 2))], 2)
        rhs = -np.stack([np.broadcast_to(b1[:, None], size), np.broadcast_to(c[None], size)], 2)
        solvable = np.abs(np.linalg.det(pair)) > 1e-12
        vertices = np.linalg.solve(pair[solvable], rhs[solvable][..., None])[..., 0]
        points = np.concatenate([nearest, vertices])
        z = logits(points)
        margin = np.delete(z, pred, 1).max(1) - z[:, pred]
        flips = margin >= -1e-9 * (1 + np.abs(z).max(1))
        gap = np.abs(points[flips] - xi)
        out.append((np.sqrt((gap**2).sum(1)) if p == "l2" else gap.max(1)).min())
    return np.asarray(out)


def _sweep(build, path: Path, device: str) -> Run:
    model, x = build()
    with torch.no_grad():
        y = model(x).argmax(1)
    grid = Grid([get("gain", gain_db=[0.0, -6.0])])
    return sweep(model, (x, y), grid, path, projection=Projector(model, max_steps=10, device=device),
                 arrays=ArraysSpec(keep="none"), execution=ExecutionSpec(progress=False), resume=True)  # fmt: skip


def plant_linear(path: Path, device: str = "auto") -> Run:
    """The linear run: 16 vectors labelled with the model's clean prediction (the radius reads clean inputs)."""
    return _sweep(linear_plant, path, device)


def plant_relu(path: Path, device: str = "auto") -> Run:
    """The ReLU run: 16 vectors labelled with the network's clean prediction."""
    return _sweep(relu_plant, path, device)


def _judge(analysis: Analysis, model: nn.Module, x: torch.Tensor, exact, linear: bool) -> tuple[str, bool]:
    """Per norm: found radii finite and never below the exact one (a verified flip); certified radii finite,
    not negative and never above it (sound); on the linear model both within :data:`TIGHT` of it, on the ReLU
    network the found one within :data:`RELU_TIGHT` on :data:`TIGHT_SHARE` of the instances and the certified
    one positive everywhere."""
    table = analysis["radius"]
    if table is None:
        return f"no result ({analysis.notes.get('radius', 'no note')})", False
    missing = [c for p in NORMS for c in (f"radius_{p}", f"certified_{p}") if c not in table]
    if missing:
        return f"no columns {missing} ({analysis.notes.get('radius', 'no note')})", False
    table = table.sort_values("instance")
    with torch.no_grad():
        pred = model(x).argmax(1).numpy()
    ok = list(table.instance) == list(range(len(x))) and (table.pred.to_numpy() == pred).all()
    parts = []
    for p in NORMS:
        truth = exact(model, x, p)
        found, proved = table[f"radius_{p}"].to_numpy(), table[f"certified_{p}"].to_numpy()
        over, under = found / truth, proved / truth
        verified = np.isfinite(found).all() and (found >= truth * (1 - ROUNDING)).all()
        sound = np.isfinite(proved).all() and (proved >= 0).all() and (proved <= truth * (1 + ROUNDING)).all()
        if linear:
            tight = (over <= 1 + TIGHT).all() and (under >= 1 - TIGHT).all()
        else:
            tight = (over <= 1 + RELU_TIGHT).mean() >= TIGHT_SHARE and (proved > 0).all()
        ok = ok and bool(verified and sound and tight)
        parts.append(f"{p}: found/exact {_span(over)}, certified/exact {_span(under)}")
    return "; ".join(parts), bool(ok)


def _span(ratios: np.ndarray) -> str:
    """Smallest … largest (median) of the ratios that are numbers."""
    known = ratios[~np.isnan(ratios)]
    if not len(known):
        return "not a number"
    return f"{known.min():.5f} … {known.max():.5f} (median {np.median(known):.5f})"


def judge_linear(run: Run, analysis: Analysis) -> tuple[str, bool]:
    """The linear run's radii against the closed form."""
    return _judge(analysis, *linear_plant(), closed_form_radius, linear=True)


def judge_relu(run: Run, analysis: Analysis) -> tuple[str, bool]:
    """The ReLU run's radii against :func:`exact_radius`."""
    return _judge(analysis, *relu_plant(), exact_radius, linear=False)


register_plant(
    Plant(
        "linear_radius",
        plant_linear,
        (
            Check(
                "radius",
                "a linear classifier: exact radius |margin| / ‖w_pred − w_j‖₂ (L2), ‖·‖₁ (L∞)",
                judge_linear,
            ),
        ),
        settings={"radius": {"certified": True}},
    )
)
register_plant(
    Plant(
        "relu_radius",
        plant_relu,
        (Check("radius", "a 2-D ReLU network: exact radius by enumerating its linear pieces", judge_relu),),
        settings={"radius": {"certified": True}},
    )
)

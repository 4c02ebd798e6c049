"""Radius: the smallest input change that flips each instance's prediction, found (adversarial, an upper bound)
and proved (certified, a lower bound), in L2 and L∞, in the model's input domain (what the projection moves).

The adversarial radius is written here rather than taken from torchattacks 3.5.1 or ART 1.20.1: torchattacks
pins ``requests~=2.25.1`` and needs torchvision (neither fits our pinned environment) and assumes inputs in
[0, 1] (log-mel dB features are not); ART's DeepFool is L2-only and works on NumPy copies. Here: multi-class
DeepFool (Moosavi-Dezfooli et al. 2016) finds a flipping change fast (exactly, for a linear model), then a
per-sample bisection on the radius, each probe a PGD attack on the margin warm-started from the best flip
found, shrinks it. Batched over instances; samples stop on their own. The reported radius is the norm of a
change that was checked to flip the prediction (after clamping to the input's value range).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from proactiv.analysis.certify import UnsupportedModel, certified_radius, chain
from proactiv.analysis.runview import AnalysisError, RunView
from proactiv.analysis.steps import StepContext, TableStep, register
from proactiv.attack import NORMS, change_norm, project_to_ball, steepest
from proactiv.device import model_device
from proactiv.store import Run, open_run

BISECTIONS = 12
CHUNK = 16


def _margin(logits: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
    """Best wrong logit minus the predicted one: positive once the prediction flipped."""
    own = logits.gather(1, pred[:, None])[:, 0]
    return logits.scatter(1, pred[:, None], -math.inf).amax(1) - own


def _clamp(x, value_range):
    return x if value_range is None else x.clamp(*value_range)


def deepfool(model, x, pred, p: str, value_range=None, iterations: int = 50, overshoot: float = 0.02):
    """DeepFool changes δ (per sample; zero where no flip was found) and whether each flips the prediction."""
    n_classes = model(x[:1]).shape[1]
    total = torch.zeros_like(x)
    flipped = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    for _ in range(iterations):
        todo = (~flipped).nonzero()[:, 0]
        if len(todo) == 0:
            break
        z = x[todo] + (1 + overshoot) * total[todo]
        z = _clamp(z, value_range).requires_grad_(True)
        logits = model(z)
        own = logits.gather(1, pred[todo, None])[:, 0]
        best = torch.full((len(todo),), math.inf, device=x.device)
        step = torch.zeros_like(z)
        for k in range(n_classes):
            diff = logits[:, k] - own
            (grad,) = torch.autograd.grad(diff.sum(), z, retain_graph=k < n_classes - 1)
            flat = grad.flatten(1)
            scale = flat.norm(dim=1) if p == "l2" else flat.abs().sum(1)
            dist = diff.detach().abs() / scale.clamp_min(1e-12)
            better = (pred[todo] != k) & (dist < best)
            if p == "l2":
                cand = grad * ((diff.detach().abs() + 1e-4) / scale.clamp_min(1e-12) ** 2).view(
                    -1, *[1] * (x.dim() - 1)
                )
            else:
                cand = grad.sign() * ((diff.detach().abs() + 1e-4) / scale.clamp_min(1e-12)).view(
                    -1, *[1] * (x.dim() - 1)
                )
            step = torch.where(better.view(-1, *[1] * (x.dim() - 1)), cand, step)
            best = torch.where(better, dist, best)
        total[todo] += step.detach()
        with torch.no_grad():
            delta = _clamp(x[todo] + (1 + overshoot) * total[todo], value_range) - x[todo]
            flipped[todo] = _margin(model(x[todo] + delta), pred[todo]) > 0
    with torch.no_grad():
        delta = _clamp(x + (1 + overshoot) * total, value_range) - x
    return delta * flipped.view(-1, *[1] * (x.dim() - 1)), flipped


def _pgd(model, x, pred, eps, start, p: str, value_range, steps: int):
    """PGD ascent on the margin inside the per-sample ε-balls from ``start``: the flipping change of smallest
    norm met on the way per sample (None rows where none flipped) as (delta, norm)."""
    shape = (-1, *[1] * (x.dim() - 1))
    delta = project_to_ball(start, eps, p)
    alpha = 2.5 * eps / steps
    found = torch.full((len(x),), math.inf, device=x.device)
    best = torch.zeros_like(x)
    for _ in range(steps + 1):
        delta = (_clamp(x + delta, value_range) - x).detach().requires_grad_(True)
        margin = _margin(model(x + delta), pred)
        with torch.no_grad():
            size = change_norm(delta, p)
            better = (margin > 0) & (size < found)
            best = torch.where(better.view(shape), delta, best)
            found = torch.where(better, size, found)
        (grad,) = torch.autograd.grad(margin.sum(), delta)
        with torch.no_grad():
            delta = project_to_ball(delta + alpha.view(shape) * steepest(grad, p), eps, p)
    return best, found


def adversarial_radius(
    model, x, pred, p: str, value_range=None, steps: int = 20, bisections: int = BISECTIONS
):
    """Per sample, the norm of the smallest flipping change found (inf where none was), and the change."""
    delta, flipped = deepfool(model, x, pred, p, value_range)
    found = torch.where(flipped, change_norm(delta, p), torch.full_like(flipped, math.inf, dtype=x.dtype))
    if not flipped.all():  # DeepFool stalled (e.g. at the value range's edge): grow a PGD ball until it flips
        eps = torch.full((len(x),), float(change_norm(x, p).median()) * 0.05 + 1e-6, device=x.device)
        for _ in range(12):
            todo = (~torch.isfinite(found)).nonzero()[:, 0]
            if len(todo) == 0:
                break
            d, n = _pgd(
                model, x[todo], pred[todo], eps[todo], torch.zeros_like(x[todo]), p, value_range, steps
            )
            hit = torch.isfinite(n)
            delta[todo[hit]], found[todo[hit]] = d[hit], n[hit]
            eps = eps * 2
    lo = torch.zeros_like(found)
    hi = found.clone()
    for _ in range(bisections):
        todo = (torch.isfinite(hi) & (hi - lo > 1e-3 * hi)).nonzero()[:, 0]
        if len(todo) == 0:
            break
        mid = (lo[todo] + hi[todo]) / 2
        d, n = _pgd(model, x[todo], pred[todo], mid, delta[todo], p, value_range, steps)
        hit = torch.isfinite(n)
        lo[todo[~hit]] = mid[~hit]
        hi[todo[hit]] = torch.minimum(mid[hit], n[hit])
        better = hit & (n < found[todo])
        delta[todo[better]], found[todo[better]] = d[better], n[better]
    return found, delta


def _ids(n: int, max_instances: int | None) -> np.ndarray:
    """Every instance, or ``max_instances`` spread evenly over them (classes are usually interleaved or blocked)."""
    if max_instances is None or max_instances >= n:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_instances).round().astype(int))


def _norms(norms: str | Sequence[str]) -> list[str]:
    norms = [norms] if isinstance(norms, str) else list(norms)
    unknown = sorted(set(norms) - set(NORMS))
    if unknown or not norms:
        raise ValueError(f"norms {unknown or norms}: expected some of {list(NORMS)}")
    return norms


def radius_table(
    run: Run,
    task,
    norms: Sequence[str] = NORMS,
    certified: bool | None = False,
    max_instances: int | None = None,
    steps: int = 20,
    progress: Callable[[float], None] | None = None,
) -> tuple[pd.DataFrame, str]:
    """One row per instance: label, clean prediction, ``radius_<norm>`` (found) and, when certified,
    ``certified_<norm>`` (proved), with the seconds spent on it; and a note (e.g. why nothing was certified).
    ``certified=None``: certify when the model is supported."""
    from proactiv.sweep import model_inputs

    norms = _norms(norms)
    if not run.schema.classifier:
        raise AnalysisError(
            f"run {run.path} has no class labels; the radius is the change that flips a class"
        )
    model = task.model.eval()
    device = model_device(model)
    ids = _ids(len(task.inputs), max_instances)
    value_range = run.schema.input.value_range
    seed = int(run.config.get("seed", 0) or 0)
    x_all = model_inputs(run.grid, task.frontend, task.inputs[ids], ids, seed).to(device).float()
    note, ops = "", None
    if certified is not False:
        try:
            ops = chain(model, x_all[:1])
        except UnsupportedModel as err:
            if certified:
                raise AnalysisError(f"cannot certify this model: {err}") from err
            note = f"not certified: {err}"
    columns: dict[str, list] = {"seconds": []}
    preds = []
    for start in range(0, len(ids), CHUNK):
        x = x_all[start : start + CHUNK]
        began = time.perf_counter()
        with torch.no_grad():
            pred = model(x).argmax(1)
        preds.append(pred.cpu())
        for p in norms:
            found, _ = adversarial_radius(model, x, pred, p, value_range, steps)
            columns.setdefault(f"radius_{p}", []).append(found.cpu())
            if ops is not None:
                proved = certified_radius(ops, x, pred, p, found, value_range)
                columns.setdefault(f"certified_{p}", []).append(proved.cpu())
        columns["seconds"].append(torch.full((len(x),), (time.perf_counter() - began) / len(x)))
        if progress:
            progress(min(1.0, (start + len(x)) / len(ids)))
    labels = task.labels[ids]
    names = task.class_names or []
    pred = torch.cat(preds).numpy()
    table = pd.DataFrame({
        "instance": ids,
        "label": labels.numpy(),
        "label_name": [names[int(y)] if int(y) < len(names) else str(int(y)) for y in labels],
        "pred": pred,
        "correct": pred == labels.numpy(),
    })  # fmt: skip
    for name in (
        [f"radius_{p}" for p in norms] + [f"certified_{p}" for p in norms if ops is not None] + ["seconds"]
    ):
        table[name] = torch.cat(columns[name]).numpy().astype(float)
    return table, note


def radius(
    run: Run | str,
    norm: str | Sequence[str] = "l2",
    certified: bool = False,
    max_instances: int | None = None,
    steps: int = 20,
    device: str = "cpu",
) -> pd.DataFrame:
    """Per instance of a classifier run, the smallest change of its model input found to flip the clean
    prediction (``radius_l2`` / ``radius_linf``: upper bounds on the true minimal radius) and, with
    ``certified=True``, the largest radius proved not to flip it (``certified_l2`` / ``certified_linf``)."""
    run = run if isinstance(run, Run) else open_run(run)
    norm = _norms(norm)  # checked before the model is rebuilt
    table, _ = radius_table(
        run, StepContext(run, device=device).task(), norm, certified, max_instances, steps
    )
    return table


def fragility_sentence(table: pd.DataFrame, dx: pd.Series | None) -> str:
    """One sentence from the data: how the found L2 radius compares with the projection distance d_x_l2."""
    if dx is None or "radius_l2" not in table or dx.empty:
        r = table.filter(like="radius_").median()
        return (
            "Median radius found: "
            + ", ".join(f"{c.removeprefix('radius_')} {v:.3g}" for c, v in r.items())
            + "."
        )
    ratio = (table.set_index("instance").radius_l2 / dx).replace([np.inf, -np.inf], np.nan).dropna()
    if ratio.empty:
        return "No instance has both a found radius and a projection distance."
    med = float(ratio.median())
    if med < 1:
        what = (f"fragile to meaningless change: a change {1 / med:.3g}× smaller (L2) than the one the projection "
                f"needed flips the median instance")  # fmt: skip
    else:
        what = (f"not fragile to meaningless change: flipping the median instance takes {med:.3g}× the L2 change "
                f"the projection needed")  # fmt: skip
    return f"The model is {what} (median radius_l2 / d_x_l2 = {med:.3g} over {len(ratio)} instances)."


def projection_distance(view: RunView) -> pd.Series | None:
    """Per instance, the median ``d_x_l2`` of its records (None when the records have no such column)."""
    if not view.schema.has("d_x_l2"):
        return None
    frame = view.query("SELECT instance, median(d_x_l2) AS d FROM records GROUP BY instance")
    return frame.set_index("instance").d


def stored_instance_breakpoints(run: Run):
    """The stored per-instance transform breakpoints (their long table), or None when not computed."""
    from proactiv.analysis.pipeline import load_analysis

    try:
        result = load_analysis(run)["instance_breakpoints"]
    except KeyError:  # that step is not registered
        return None
    return getattr(result, "table", None)


class RadiusStep(TableStep):
    """Adversarial and certified radius per instance (:func:`radius_table`)."""

    name = "radius"
    title = "Radius: how small a change flips each instance"
    command = "radius"
    needs = frozenset({"model"})
    settings = {"norms": list(NORMS), "certified": None, "max_instances": 200, "steps": 20}
    files = ("radius.parquet",)
    volatile = ("seconds",)
    targets = frozenset({"label"})  # the radius is the change that flips a class

    def compute(self, ctx, settings, progress):
        table, _ = radius_table(ctx.run, ctx.task(), settings["norms"], settings["certified"],
                                settings["max_instances"], settings["steps"], progress)  # fmt: skip
        return table

    def note(self, table):
        found = ", ".join(
            f"{c.removeprefix('radius_')} {table[c].median():.3g}" for c in table.filter(like="radius_")
        )
        proved = ", ".join(f"{c.removeprefix('certified_')} {table[c].median():.3g}"
                           for c in table.filter(like="certified_"))  # fmt: skip
        text = f"{len(table)} instances; median radius found: {found}"
        text += (
            f"; median certified: {proved}"
            if proved
            else "; not certified (model unsupported or certified=False)"
        )
        return text


register(RadiusStep())

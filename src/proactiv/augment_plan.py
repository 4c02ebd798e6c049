"""An augmentation plan: which transforms at which values a retraining adds to its training set, and applying it.

:meth:`AugmentPlan.apply` draws ``share × N`` training examples uniformly (so a condition tells nothing about
the class: drawing a slice's failing classes only would teach the model that noise means that class) and
transforms each with the run's own transforms (:meth:`proactiv.transforms.Grid.apply_values`, seeded), so the
training sees exactly the conditions the sweep measured. The augmented examples are *added* to the clean ones,
which stay, so clean accuracy has every clean example to hold on to.

A plan is made from a run's analyses (:func:`proactiv.mitigation.augmentation_plan`, a floor above the tasks that
train with it): the task commands' ``--augment-from RUN`` asks :func:`plan_toward`, which calls the planner the
entry floor registers (:mod:`proactiv.cli`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from proactiv.io import write_json
from proactiv.schema import build_frontend
from proactiv.transforms import Grid

#: the file a trained model's folder keeps its plan in (what the model was trained toward)
PLAN_FILE = "augment_plan.json"
#: augmented examples per clean training example: a third of what the training sees is then augmented, enough
#: to move the worst slices while every clean example stays in the training set
SHARE = 0.5


@dataclass(frozen=True)
class Condition:
    """One condition to train under: transform column → value (columns left out stay at their identity),
    its weight (share of the augmented examples) and where it comes from (``slice 1``, ``breakpoint``)."""

    values: dict[str, float]
    weight: float
    source: str


@dataclass
class AugmentPlan:
    """Which transforms at which values a retraining adds, and why (see the module docstring)."""

    run: str
    fingerprint: str
    model: str | None
    grid: list[dict]
    class_names: list[str] | None
    input_shape: list[int]
    frontend: dict | None
    slices: list[dict]
    conditions: list[Condition]
    share: float = SHARE
    seed: int = 0
    why: str = ""
    _grid: Grid | None = field(default=None, repr=False, compare=False)

    @property
    def transform_grid(self) -> Grid:
        if self._grid is None:
            self._grid = Grid.from_spec(self.grid)
        return self._grid

    # ------------------------------------------------------------------------------------------ storage
    def to_dict(self) -> dict:
        out = asdict(self)
        out.pop("_grid")
        return out

    @classmethod
    def from_dict(cls, data: dict) -> AugmentPlan:
        data = dict(data)
        data["conditions"] = [Condition(**c) for c in data["conditions"]]
        return cls(**data)

    def save(self, folder: str | os.PathLike) -> Path:
        """Write the plan as ``FOLDER/augment_plan.json`` (a trained model says what it was trained toward)."""
        return write_json(Path(folder) / PLAN_FILE, self.to_dict())

    @classmethod
    def load(cls, folder: str | os.PathLike) -> AugmentPlan:
        path = Path(folder)
        path = path / PLAN_FILE if path.is_dir() else path
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
            raise ValueError(f"{path}: not an augmentation plan ({type(err).__name__}: {err})") from None

    def key(self) -> str:
        """A digest of the plan (the run's records and model, the conditions, share and seed): part of a
        training's cache key, so another run or plan trains again."""
        text = json.dumps(self.to_dict(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    # ------------------------------------------------------------------------------------------ applying
    def check(self, inputs: torch.Tensor, class_names: list[str] | None = None) -> None:
        """Refuse training inputs this plan cannot act on, naming the problem: another task's classes, raw inputs
        that do not become the run's model inputs, or a transform that fails on them."""
        where = f"augmentation plan from run {self.run}"
        if class_names is not None and self.class_names is not None and list(class_names) != self.class_names:
            raise ValueError(
                f"{where}: the run's classes {self.class_names} differ from the training's {list(class_names)}; "
                "the run is of another task"
            )
        if inputs.dim() < 2 or len(inputs) == 0:
            raise ValueError(f"{where}: expected a batch of training inputs, got shape {tuple(inputs.shape)}")
        frontend = build_frontend(self.frontend)
        sample = inputs[:2].float()
        with torch.no_grad():
            seen = frontend(sample) if frontend is not None else sample
        if list(seen.shape[1:]) != self.input_shape:
            through = " through the run's frontend" if frontend is not None else ""
            raise ValueError(
                f"{where}: training inputs of shape {tuple(inputs.shape[1:])} become model inputs of shape "
                f"{tuple(seen.shape[1:])}{through}, the run's are {tuple(self.input_shape)}; the run is of "
                "another task"
            )
        grid = self.transform_grid
        for t in grid.transforms:
            used = [c.values[t.column] for c in self.conditions if t.column in c.values]
            if not used:
                continue
            if frontend is not None and t.domain == "feature":
                raise ValueError(
                    f"{where}: {t.column} acts on the model inputs after the frontend (domain feature), but the "
                    "training is given raw inputs; sweep without feature-domain transforms to retrain toward it"
                )
            try:
                out = grid.apply_values(sample, [0, 1], {t.column: used[0]}, self.seed, stage="input")
                if frontend is None:
                    out = grid.apply_values(out, [0, 1], {t.column: used[0]}, self.seed, stage="feature")
            except (RuntimeError, ValueError, IndexError, TypeError) as err:
                raise ValueError(
                    f"{where}: {t.column} = {used[0]:g} cannot act on training inputs of shape "
                    f"{tuple(inputs.shape[1:])} ({t.domain} transform: {err})"
                ) from None
            if out.shape != sample.shape or not torch.isfinite(out).all():
                raise ValueError(
                    f"{where}: {t.column} = {used[0]:g} turns training inputs of shape {tuple(sample.shape[1:])} "
                    f"into {tuple(out.shape[1:])}" + ("" if torch.isfinite(out).all() else " with NaN/Inf")
                )

    def apply(
        self,
        inputs: torch.Tensor,
        labels: torch.Tensor,
        class_names: list[str] | None = None,
        batch: int = 256,
    ) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        """The augmented examples for raw training ``inputs``: ``round(share × N)`` of them, each a uniformly
        drawn example under a condition drawn by weight, transformed by the run's transforms (random draws
        seeded by the plan's seed and the augmented example's position). Returns the inputs, their labels and
        the index of the training example each came from."""
        self.check(inputs, class_names)
        n = round(self.share * len(inputs))
        if n == 0 or not self.conditions:
            return inputs[:0], labels[:0], np.zeros(0, dtype=int)
        rng = np.random.default_rng(self.seed)
        source = rng.choice(len(inputs), size=n, replace=n > len(inputs))
        weights = np.asarray([c.weight for c in self.conditions], dtype=float)
        which = rng.choice(len(self.conditions), size=n, p=weights / weights.sum())
        grid, frontend = self.transform_grid, build_frontend(self.frontend)
        out = torch.empty((n, *inputs.shape[1:]), dtype=inputs.dtype)
        for c in np.unique(which):
            at = np.flatnonzero(which == c)
            values = self.conditions[c].values
            for lo in range(0, len(at), batch):
                ids = at[lo : lo + batch]
                with torch.no_grad():
                    x = grid.apply_values(inputs[source[ids]], ids.tolist(), values, self.seed, stage="input")
                    if frontend is None:
                        x = grid.apply_values(x, ids.tolist(), values, self.seed, stage="feature")
                out[torch.as_tensor(ids)] = x.to(inputs.dtype)
        return out, labels[torch.as_tensor(source)], source

    def describe(self) -> str:
        """A few lines for people: the slices targeted and the heaviest conditions."""
        lines = [
            f"augmentation plan from {self.run}: {self.share:g} augmented example(s) per training example, "
            f"seed {self.seed}"
        ]
        for s in self.slices:
            lines.append(
                f"  slice {s['slice']}: {s['conditions']} ({s['errors']} of {s['size']} records failing, "
                f"{s['error_rate']:.0%}; {s['weight']:.0%} of the augmented examples)"
            )
        top = sorted(self.conditions, key=lambda c: -c.weight)[:5]
        for c in top:
            shown = ", ".join(f"{k}={v:g}" for k, v in c.values.items())
            lines.append(f"  {c.weight:6.1%}  {shown}  ({c.source})")
        return "\n".join(lines)


#: run → the plan toward its worst slices (see :func:`register_planner`)
_planner: Callable[[str | os.PathLike], AugmentPlan] | None = None


def register_planner(planner: Callable[[str | os.PathLike], AugmentPlan]) -> None:
    """Make ``planner(run)`` the way a run becomes a plan (the entry floor registers
    :func:`proactiv.mitigation.augmentation_plan`)."""
    global _planner
    _planner = planner


def plan_toward(run: str | os.PathLike) -> AugmentPlan:
    """The plan toward ``run``'s worst slices, from the registered planner (what ``--augment-from RUN`` does)."""
    if _planner is None:
        raise RuntimeError(
            "no augmentation planner is registered: run the `proactiv` command, or register one with "
            "proactiv.augment_plan.register_planner(proactiv.mitigation.augmentation_plan)"
        )
    return _planner(run)

"""Planted level faults: :class:`LevelGate` calls an input "loud" while the mean of its features stays above a
threshold.

- ``breakpoint``: every instance's mean is set so that it flips at its own gain in :data:`FLIPS_DB` (-6.55 …
  -8.35 dB), between the grid values -6 and -9 dB. The breakpoints view must name -9 dB (the first broken value)
  after -6 dB, and nothing along the noise beside it; per-instance breakpoints must recover each instance's flip
  value to one lattice step.
- ``group``: the same gate, with a mark that sends every input of speaker ``s3`` to the wrong class whatever the
  gain. The top error slice must be that speaker; the surrogate must rank ``meta.speaker`` first.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from proactiv.analysis.pipeline import Analysis
from proactiv.config import ArraysSpec, ExecutionSpec
from proactiv.optimize import Projector
from proactiv.selftest import Check, Plant, register_plant
from proactiv.store import Run
from proactiv.sweep import sweep
from proactiv.task_data import TaskData
from proactiv.transforms import Grid, get

#: the planted per-instance flip values along gain (dB): none on the resolution lattice, all inside (-9, -6)
FLIPS_DB = tuple(float(v) for v in -6.55 - 0.12 * np.arange(16))
#: the gain grid of the breakpoint run: the model breaks between -6 and -9 dB, never above the identity
BREAK_GRID_DB = (6.0, 3.0, 0.0, -3.0, -6.0, -9.0, -12.0)
#: lattice step of the per-instance search along gain (dB)
RESOLUTION_DB = 0.1
#: the speaker the group run's model fails on, among its four speakers
BAD_SPEAKER = "s3"
GAIN = "gain.gain_db"


class LevelGate(nn.Module):
    """Class 1 ("loud") while the mean of all features but the last stays above ``threshold``, class 0 below;
    a 1 in the last feature (a speaker's mark) pushes any input to class 0 (values below 0.5 there, such as
    added noise, count for nothing). Under a gain of ``v`` dB an unmarked input of mean ``m`` flips exactly at
    ``v = 20·log10(threshold / m)``."""

    def __init__(self, threshold: float = 0.5, scale: float = 4.0, mark: float = 10.0):
        super().__init__()
        self.register_buffer("threshold", torch.tensor(threshold))
        self.register_buffer("scale", torch.tensor(scale))
        self.register_buffer("mark", torch.tensor(mark))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        margin = x[:, :-1].mean(1) - self.threshold - self.mark * torch.relu(x[:, -1] - 0.5)
        return self.scale * torch.stack([-margin, margin], 1)


def level_inputs(means: np.ndarray, marked: np.ndarray, width: int = 8, seed: int = 0) -> torch.Tensor:
    """Positive random features whose mean is exactly ``means[i]``, plus the mark feature (1 where
    ``marked``)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(len(means), width, generator=gen, dtype=torch.float64) + 0.5
    x = x / x.mean(1, keepdim=True) * torch.as_tensor(means, dtype=torch.float64)[:, None]
    return torch.cat([x, torch.as_tensor(marked, dtype=torch.float64)[:, None]], 1).float()


# planting ---------------------------------------------------------------------------------------------
def plant_breakpoint(path: Path, device: str = "auto") -> Run:
    """The breakpoint run: 16 instances, each flipping at its own gain in :data:`FLIPS_DB`; noise at 30 dB
    beside it moves no flip across a grid value (it shifts a mean by about 1 %, a flip by about 0.1 dB)."""
    model = LevelGate()
    means = float(model.threshold) * 10 ** (-np.asarray(FLIPS_DB) / 20)
    x = level_inputs(means, np.zeros(len(means)))
    grid = Grid([get("gain", gain_db=list(BREAK_GRID_DB)), get("noise", snr_db=[math.inf, 30.0])])
    data = TaskData(x, torch.ones(len(x), dtype=torch.long), class_names=["quiet", "loud"])
    return sweep(model, data, grid, path, projection=Projector(model, max_steps=50, device=device),
                 arrays=ArraysSpec(keep="none"), execution=ExecutionSpec(progress=False), resume=True)  # fmt: skip


def plant_group(path: Path, device: str = "auto") -> Run:
    """The group run: 24 instances of four speakers, well above the flip at every gain of the grid, except
    that the model fails on every input of :data:`BAD_SPEAKER`; a session column is a decoy."""
    model = LevelGate()
    n = 24
    speaker = np.asarray([f"s{i % 4}" for i in range(n)])
    means = np.linspace(0.9, 1.1, n)
    x = level_inputs(means, speaker == BAD_SPEAKER, seed=1)
    meta = pd.DataFrame({"speaker": speaker, "session": [f"day{i % 3}" for i in range(n)]})
    grid = Grid([get("gain", gain_db=[-4.0, -2.0, 0.0, 2.0, 4.0])])
    data = TaskData(x, torch.ones(n, dtype=torch.long), class_names=["quiet", "loud"], metadata=meta)
    return sweep(model, data, grid, path, projection=Projector(model, max_steps=50, device=device),
                 arrays=ArraysSpec(keep="none"), execution=ExecutionSpec(progress=False), resume=True)  # fmt: skip


# judging ----------------------------------------------------------------------------------------------
def judge_breakpoints(run: Run, analysis: Analysis) -> tuple[str, bool]:
    """The overall accuracy breakpoint along gain must be -9 dB after -6 dB; none above the identity, none along
    noise."""
    table = analysis.breakpoints
    if table is None:
        return f"no result ({analysis.notes.get('breakpoints', 'no note')})", False
    marginal = table[(table.scope == "all") & (table.condition == "")]
    found = "; ".join(
        f"{r.column} {r.side}: {r.previous:g} → {r.value:g} ({r.metric} {r.before:.2f} → {r.after:.2f})"
        for r in marginal.itertuples()
    )
    below = marginal[(marginal.column == GAIN) & (marginal.side == "below")]
    ok = (
        len(marginal) == 1
        and len(below) == 1
        and below.value.iloc[0] <= min(FLIPS_DB)
        and below.previous.iloc[0] >= max(FLIPS_DB)
    )
    return found or "no breakpoint", ok


def judge_curves(run: Run, analysis: Analysis) -> tuple[str, bool]:
    """Accuracy along gain must be exactly the share of instances whose planted flip lies below each grid value
    (1 down to -6 dB, 0 from -9 dB), and flat along the noise beside it (each instance's mean over the gains)."""
    table = analysis.curves
    if table is None:
        return f"no result ({analysis.notes.get('curves', 'no note')})", False
    acc = table[(table.metric == "accuracy") & (table.scope == "all") & (table.condition == "")]
    gain = acc[acc.column == GAIN].set_index("value")["mean"]
    planted = {v: float(np.mean(np.asarray(FLIPS_DB) < v)) for v in BREAK_GRID_DB}
    noise = acc[acc.column != GAIN]["mean"]
    unbroken = float(np.mean([planted[v] for v in BREAK_GRID_DB]))
    found = "accuracy along gain " + ", ".join(f"{v:g}: {gain.get(v, math.nan):.2f}" for v in BREAK_GRID_DB)
    found += "; along noise " + ", ".join(f"{m:.3f}" for m in noise)
    ok = (
        all(math.isclose(gain.get(v, math.nan), planted[v], abs_tol=1e-9) for v in BREAK_GRID_DB)
        and len(noise) == 2
        and np.allclose(noise, unbroken)
    )
    return found, bool(ok)


def judge_instance_breakpoints(run: Run, analysis: Analysis) -> tuple[str, bool]:
    """Each instance's first flip going down must lie within one lattice step below its planted value; going
    up none flips."""
    result = analysis["instance_breakpoints"]
    if result is None:
        return f"no result ({analysis.notes.get('instance_breakpoints', 'no note')})", False
    t = result.table[result.table.column == GAIN]
    down = t[t.side == "down"].set_index("instance").breakpoint.reindex(range(len(FLIPS_DB)))
    error = down.to_numpy() - np.asarray(FLIPS_DB)
    hits = (error <= 1e-6) & (error > -RESOLUTION_DB - 1e-6)
    up_flips = int(t[t.side == "up"].breakpoint.notna().sum())
    worst = np.nanmax(np.abs(error)) if np.isfinite(error).any() else math.nan
    found = (
        f"{int(hits.sum())}/{len(FLIPS_DB)} within {RESOLUTION_DB:g} dB below the planted flip "
        f"(largest error {worst:.3f} dB); {up_flips} flip above"
    )
    return found, bool(hits.all() and up_flips == 0)


def judge_slices(run: Run, analysis: Analysis) -> tuple[str, bool]:
    """The top error slice must be the bad speaker, every one of its records failing."""
    table = analysis.slices
    if table is None or table.empty:
        return f"no slices ({analysis.notes.get('slices', 'no note')})", False
    top = table.iloc[0]
    found = f"top slice: {top.conditions} (error rate {top.error_rate:.2f}, {top.errors} errors)"
    named = f"meta.speaker = {BAD_SPEAKER}" in top.conditions.split(" and ")
    return found, bool(named and top.error_rate == 1.0 and top.coverage == 1.0)


def judge_surrogate(run: Run, analysis: Analysis) -> tuple[str, bool]:
    """The EBM surrogate's most important feature must be ``meta.speaker``."""
    fitted = analysis["surrogate"]
    if fitted is None:
        return f"no result ({analysis.notes.get('surrogate', 'no note')})", False
    ranking = fitted.importance
    top = str(ranking.feature.iloc[0])
    shown = ", ".join(
        f"{f} {v:.3g}" for f, v in zip(ranking.feature[:3], ranking.importance[:3], strict=False)
    )
    fidelity = fitted.fidelity
    found = f"importance: {shown}; held-out {fidelity['metric']} {fidelity['score']:.2f}"
    return found, top == "meta.speaker"


register_plant(
    Plant(
        "breakpoint",
        plant_breakpoint,
        (
            Check(
                "curves", "accuracy along gain: 1 down to -6 dB, 0 from -9 dB; flat along noise", judge_curves
            ),
            Check("breakpoints", "accuracy 1 → 0 between gain -6 and -9 dB", judge_breakpoints),
            Check(
                "instance_breakpoints",
                f"each instance flips at its own gain in {max(FLIPS_DB):g} … {min(FLIPS_DB):g} dB",
                judge_instance_breakpoints,
            ),
        ),
        settings={"instance_breakpoints": {"resolution": {GAIN: RESOLUTION_DB}}},
    )
)
register_plant(
    Plant(
        "group",
        plant_group,
        (
            Check("slices", f"every record of meta.speaker = {BAD_SPEAKER} fails", judge_slices),
            Check("surrogate", f"meta.speaker = {BAD_SPEAKER} drives failure", judge_surrogate),
        ),
        settings={"surrogate": {"learner": "ebm"}},
    )
)

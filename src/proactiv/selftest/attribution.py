"""Planted evidence (``attr_<method>``, one case per attribution method): :class:`SpeckDetector` finds class 1 in
bright pixels — a 3×3 detector of bright squares and a detector of single bright specks — and the clean images
are dark grey but for a bright 4×4 patch, so on them the patch is the only evidence for class 1 (class 0 reads
every pixel, so attributions toward the wrong class spread over the whole image, even for methods that weigh
the gradient by the input). Under image noise, bright specks appear all over the image and the model responds
to them.

Each method's ``attributions`` step must put the mass of x's maps on the patch (its region of a 4 × 4 grid) and
show the evidence moving onto the noise: under noise the share of xT's mass outside the clean input's support
(the patch) must rise well above x's, and the step's sentence must name that noise level; at the identity it
must not move.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn

from proactiv.analysis.attribution import METHODS, PREFIX, shift_by_value, shift_sentence, stored_settings
from proactiv.analysis.pipeline import Analysis
from proactiv.config import ArraysSpec, ExecutionSpec
from proactiv.optimize import Projector
from proactiv.selftest import Check, Plant, register_plant
from proactiv.store import Run
from proactiv.sweep import sweep
from proactiv.task_data import TaskData
from proactiv.transforms import Grid, get

#: the images, the patch (rows 4–7, columns 8–11: region r1c2 of a 4 × 4 grid, off the diagonal so that a
#: transposed map misses it) and that grid
SHAPE, PATCH, REGIONS, REGION = (16, 16), (slice(4, 8), slice(8, 12)), 4, "r1c2"
NOISE = "image_noise.level"
#: the noise level that scatters specks (std half the pixel range)
LEVEL = 0.5
#: the cue found: at least this share of every x map's mass on the patch (1/16 of the area; measured 1.0)
CUE_MASS = 0.9
#: the evidence moved: under noise, xT's mass outside the support exceeds x's by this much on average
#: (measured 0.57 … 0.68 over the methods); at the identity, by at most :data:`STILL`
MOVED, STILL = 0.3, 0.01


class SpeckDetector(nn.Module):
    """Class 1: ``evidence`` = 4 × ReLU(3×3 mean − 0.8) (a bright square) + 2 × ReLU(pixel − 0.5) (a bright speck),
    summed over the image; class 0 reads the whole image weakly (16 × its mean). Grad-CAM's layer is
    ``evidence``, whose map is where the model finds its evidence."""

    def __init__(self):
        super().__init__()
        self.detect = nn.Conv2d(1, 2, 3, padding=1)
        self.evidence = nn.Conv2d(2, 1, 1, bias=False)
        with torch.no_grad():
            self.detect.weight.zero_()
            self.detect.weight[0, 0] = 1 / 9
            self.detect.weight[1, 0, 1, 1] = 1.0
            self.detect.bias.copy_(torch.tensor([-0.8, -0.5]))
            self.evidence.weight.copy_(torch.tensor([4.0, 2.0]).view(1, 2, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cue = self.evidence(torch.relu(self.detect(x))).sum((1, 2, 3))
        return torch.stack([16.0 * x.flatten(1).mean(1), cue], 1)


def patch_images(n: int = 8, seed: int = 0) -> torch.Tensor:
    """Dark grey images (0.25 … 0.35: no detector fires, and no pixel departs from the background by a tenth of
    the range, so the patch is the clean support) with the patch at 0.9 … 1."""
    gen = torch.Generator().manual_seed(seed)
    x = 0.25 + 0.1 * torch.rand(n, 1, *SHAPE, generator=gen)
    x[(slice(None), 0, *PATCH)] = 0.9 + 0.1 * torch.rand(n, 4, 4, generator=gen)
    return x


def plant_specks(path: Path, device: str = "auto") -> Run:
    """The speck run: 8 patch images of class 1 (the model calls them so), clean and under noise."""
    model = SpeckDetector()
    x = patch_images()
    grid = Grid([get("image_noise", level=[0.0, LEVEL], value_range=[0.0, 1.0])])
    data = TaskData(x, torch.ones(len(x), dtype=torch.long), class_names=["whole", "cue"], pixel_range=1.0)
    return sweep(model, data, grid, path, projection=Projector(model, max_steps=20, device=device),
                 arrays=ArraysSpec(keep="all"), execution=ExecutionSpec(progress=False), resume=True)  # fmt: skip


def _table(run: Run, analysis: Analysis, method: str):
    """The step's table, or why there is none to judge (also when it was computed with another method)."""
    table = analysis["attributions"]
    if table is None:
        return None, f"no result ({analysis.notes.get('attributions', 'no note')})"
    used = stored_settings(run).get("attribution_method")
    if used != method:
        return None, f"computed with {used!r}, not {method!r}"
    if table.empty:
        return None, "no record attributed"
    return table, ""


def judge_cue(run: Run, analysis: Analysis, method: str) -> tuple[str, bool]:
    """Every record's map of x must hold at least :data:`CUE_MASS` of its mass on the patch."""
    table, why = _table(run, analysis, method)
    if table is None:
        return why, False
    share = table.get(f"{PREFIX}share_x.{REGION}")
    if share is None:
        return f"no share of x's mass in region {REGION} (columns: {', '.join(table.columns[:8])} …)", False
    if share.isna().all():
        return "x's maps carry no mass", False
    share = share.to_numpy()
    found = f"patch holds {np.nanmin(share):.0%} … {np.nanmax(share):.0%} of x's mass over {len(share)} records " \
            f"(1/{REGIONS**2} of the area)"  # fmt: skip
    return found, bool(not np.isnan(share).any() and (share >= CUE_MASS).all())


def judge_shift(run: Run, analysis: Analysis, method: str) -> tuple[str, bool]:
    """Under noise, xT's mass outside the support must exceed x's by :data:`MOVED` on average and the step's
    sentence name that level; at the identity it must not move (at most :data:`STILL`)."""
    table, why = _table(run, analysis, method)
    if table is None:
        return why, False
    columns = [f"{PREFIX}outside_x", f"{PREFIX}outside_t"]
    missing = [c for c in columns if c not in table]
    if missing:
        return f"no share outside the support (no columns {', '.join(missing)})", False
    if table[columns].isna().all().any():
        return "the maps of x or xT carry no mass", False
    level = np.asarray([run.grid[int(p)].values[NOISE] for p in table.point])
    rise = (table[columns[1]] - table[columns[0]]).to_numpy()
    noisy, clean = rise[level == LEVEL], rise[level == 0.0]
    if not len(noisy) or not len(clean):
        return f"records at {NOISE} = 0 and {LEVEL:g} needed; got {len(clean)} and {len(noisy)}", False
    sentence = shift_sentence(shift_by_value(table, run))
    found = (
        f"outside the support: xT − x {np.mean(noisy):+.0%} at level {LEVEL:g}, {np.max(np.abs(clean)):.1%} at "
        f"most at the identity; “{sentence}”"
    )
    ok = (
        np.mean(noisy) >= MOVED
        and np.max(np.abs(clean)) <= STILL
        and f"under {NOISE} = {LEVEL:g}," in sentence
    )
    return found, bool(ok)


for _method in METHODS:
    register_plant(
        Plant(
            f"attr_{_method}",
            plant_specks,
            (
                Check(
                    "attributions",
                    f"{_method}: class cue's only evidence on x is a 4×4 patch",
                    partial(judge_cue, method=_method),
                ),
                Check(
                    "attributions",
                    f"{_method}: noise scatters bright specks the model responds to",
                    partial(judge_shift, method=_method),
                ),
            ),
            settings={"attributions": {"attribution_method": _method, "regions": REGIONS}},
        )
    )

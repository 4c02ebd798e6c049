"""Planted shortcuts: a class whose only evidence is a 3×3 patch of a 16×16 image (``patch``), or 2 of 24 mel bands
of the log-mel map behind the keyword-spotting frontend (``band``), both from
:func:`proactiv.testing.planted_cue`; that class's bias map must hold the cue's place."""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn

from proactiv.analysis.pipeline import Analysis
from proactiv.optimize import Projector
from proactiv.selftest import Check, Plant, register_plant
from proactiv.store import Run
from proactiv.sweep import sweep
from proactiv.testing import cue_shares, planted_cue
from proactiv.transforms import Grid, get

#: the patch run's images and where its class's only cue lies
PATCH_SHAPE, PATCH = (16, 16), (slice(5, 8), slice(9, 12))
#: the band run's mel bands and the two its class's only cue lies in (every frame)
MELS, BAND = 24, (slice(9, 11), slice(None))
#: a cue found: it holds the largest elements of its class's bias map and more than this share of its mass
CUE_MASS = 0.5


def plant_patch(path: Path, device: str = "auto") -> Run:
    """The patch run: class ``cue``'s only evidence is a 3×3 patch of a 16×16 image, under brightness."""
    model, x, y = planted_cue(PATCH_SHAPE, PATCH, n=16)
    grid = Grid([get("brightness", delta=[0.0, 0.1], value_range=[0.0, 1.0])])
    return sweep(model, x, y, grid, path, class_names=["whole", "cue"],
                 projector=Projector(model, max_steps=300, device=device), keep_arrays="all", pixel_range=1.0,
                 progress=False, resume=True)  # fmt: skip


def plant_band(path: Path, device: str = "auto") -> Run:
    """The band run, shaped like a keyword-spotting run: quiet noise clips (0.25 s at 16 kHz) through the
    log-mel frontend, under audio noise, projected on the log-mel map; class ``cue``'s only evidence is 2 of its
    24 mel bands (the :func:`~proactiv.testing.planted_cue` model on the map)."""
    from proactiv.tasks.kws.frontend import LogMel

    frontend = LogMel(n_mels=MELS)
    waves = 0.01 * torch.randn(16, 4000, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        shape = tuple(frontend(waves[:1]).shape[1:])
    cue, _, y = planted_cue(shape, BAND, n=len(waves))
    model = nn.Sequential(nn.Unflatten(1, (1, MELS)), cue)
    grid = Grid([get("audio_noise", snr_db=[math.inf, 20.0])])
    return sweep(model, waves, y, grid, path, frontend=frontend, class_names=["whole", "cue"],
                 projector=Projector(model, max_steps=300, device=device), keep_arrays="all", progress=False,
                 resume=True)  # fmt: skip


def judge_bias(run: Run, analysis: Analysis, region: tuple[slice, slice]) -> tuple[str, bool]:
    """Class ``cue``'s bias map must hold the cue in ``region``: its largest elements all inside, and most of
    its mass."""
    maps = analysis.bias
    if maps is None:
        return f"no bias maps ({analysis.notes.get('bias_maps', 'no note')})", False
    mean = np.asarray(maps.mean("cue"), dtype=np.float64)
    shape = mean.shape[-2:]
    rank, mass = cue_shares(torch.from_numpy(mean.reshape(1, 1, *shape)), region)
    area = np.zeros(shape, dtype=bool)
    area[region] = True
    found = (
        f"cue holds {rank:.0%} of the map's top elements and {mass:.0%} of its mass ({area.mean():.1%} of "
        "the area)"
    )
    return found, bool(rank == 1.0 and mass > CUE_MASS)


register_plant(
    Plant(
        "patch",
        plant_patch,
        (
            Check(
                "bias_maps",
                "class cue's only cue: a 3×3 patch of a 16×16 image",
                partial(judge_bias, region=PATCH),
            ),
        ),
    )
)
register_plant(
    Plant(
        "band",
        plant_band,
        (
            Check(
                "bias_maps",
                f"class cue's only cue: 2 of {MELS} mel bands of a log-mel frontend",
                partial(judge_bias, region=BAND),
            ),
        ),
    )
)

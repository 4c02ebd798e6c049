"""Planted shortcuts: a class whose only evidence is a 3×3 patch of a 16×16 image (``patch``), or 2 of 24 mel bands
of the log-mel map behind the keyword-spotting frontend (``band``), both on hand-set models
(:func:`proactiv.testing.planted_cue`), and a patch a small CNN *learnt* as its class's cue (``trained_patch``,
:func:`proactiv.testing.shortcut.trained_cue`: trained models read their cue through noisy, spread gradients,
which a hand-set model does not show); that class's bias map must hold the cue's place."""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn

from proactiv.analysis.arrays import clean_inputs
from proactiv.analysis.pipeline import Analysis
from proactiv.config import ArraysSpec, ExecutionSpec
from proactiv.optimize import Projector
from proactiv.selftest import Check, Plant, register_plant
from proactiv.store import Run
from proactiv.sweep import sweep
from proactiv.task_data import TaskData
from proactiv.testing import cue_shares, planted_cue
from proactiv.testing.shortcut import CLASSES, PLACE, cue_places, trained_cue, window_rank
from proactiv.transforms import Grid, get

#: the patch run's images and where its class's only cue lies
PATCH_SHAPE, PATCH = (16, 16), (slice(5, 8), slice(9, 12))
#: the band run's mel bands and the two its class's only cue lies in (every frame)
MELS, BAND = 24, (slice(9, 11), slice(None))
#: a cue found: it holds the largest elements of its class's bias map and more than this share of its mass
CUE_MASS = 0.5
#: the learnt cue found: its window ranks among the first few of the 196 windows of the class's bias map and
#: holds this multiple of its share of the area (9/256) of the map's mass (measured on seeds 0–2 under the
#: default engine: rank 1, 7–8×; under Adam: rank 1–15, 1.1–1.5×)
TRAINED_RANK, TRAINED_MASS = 3, 3.0
#: the contrast factors of the trained run: at 0.4 and 0.3 most held-out ``cue`` images lose their class
CONTRASTS = [1.0, 0.4, 0.3]


def plant_patch(path: Path, device: str = "auto") -> Run:
    """The patch run: class ``cue``'s only evidence is a 3×3 patch of a 16×16 image, under brightness."""
    model, x, y = planted_cue(PATCH_SHAPE, PATCH, n=16)
    grid = Grid([get("brightness", delta=[0.0, 0.1], value_range=[0.0, 1.0])])
    return sweep(model, TaskData(x, y, class_names=["whole", "cue"], pixel_range=1.0), grid, path,
                 projection=Projector(model, max_steps=300, device=device), arrays=ArraysSpec(keep="all"),
                 execution=ExecutionSpec(progress=False), resume=True)  # fmt: skip


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
    return sweep(model, TaskData(waves, y, class_names=["whole", "cue"], frontend=frontend), grid, path,
                 projection=Projector(model, max_steps=300, device=device), arrays=ArraysSpec(keep="all"),
                 execution=ExecutionSpec(progress=False), resume=True)  # fmt: skip


def plant_trained_patch(path: Path, device: str = "auto") -> Run:
    """The trained run: a small CNN learnt that class ``cue`` is a bright 3×3 patch at one place of a 16×16 image
    (a distractor patch elsewhere in every image); its held-out ``cue`` images under falling contrast. The model
    is kept with the run, so the judge can probe it."""
    model, x, y = trained_cue(n=48, seed=0)
    grid = Grid([get("contrast", factor=CONTRASTS)])
    return sweep(model, TaskData(x, y, class_names=list(CLASSES), pixel_range=1.0), grid, path,
                 projection=Projector(model, max_steps=300, device=device), arrays=ArraysSpec(keep="all"),
                 execution=ExecutionSpec(progress=False), resume=True)  # fmt: skip


def judge_trained(run: Run, analysis: Analysis) -> tuple[str, bool]:
    """The learnt cue must be planted (every place of a patch that makes the model say ``cue`` overlaps the
    planted place: otherwise the model learnt another cue, and its bias map has nothing to be judged on), and
    class ``cue``'s bias map must rank the planted window among its first :data:`TRAINED_RANK` windows, with
    :data:`TRAINED_MASS` × its area share of the mass."""
    maps = analysis.bias
    if maps is None:
        return f"no bias maps ({analysis.notes.get('bias_maps', 'no note')})", False
    clean = clean_inputs(run, range(run.config["n_instances"]))
    probs = cue_places(run.model(device="cpu"), torch.from_numpy(np.stack(list(clean.values()))))
    places = (probs > 0.5).nonzero().tolist()
    top, left = PLACE[0].start, PLACE[1].start
    stray = [(r, c) for r, c in places if abs(r - top) > 2 or abs(c - left) > 2]
    if not places or stray:
        return f"the cue was not learnt at its place: a patch makes the model say cue at {places[:5]}", False
    mean = torch.from_numpy(np.asarray(maps.mean("cue"), dtype=np.float32))
    rank, mass = window_rank(mean.reshape(1, 1, *PATCH_SHAPE))
    share = 9 / math.prod(PATCH_SHAPE)
    found = (
        f"the learnt cue's window ranks {rank} of {(PATCH_SHAPE[0] - 2) * (PATCH_SHAPE[1] - 2)} and holds "
        f"{mass:.0%} of the map's mass ({mass / share:.1f}× its area share); {len(places)} patch places near it "
        "make the model say cue, none elsewhere"
    )
    return found, bool(rank <= TRAINED_RANK and mass >= TRAINED_MASS * share)


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
register_plant(
    Plant(
        "trained_patch",
        plant_trained_patch,
        (
            Check(
                "bias_maps",
                "class cue's learnt cue: a 3×3 patch a trained CNN reads at one place",
                judge_trained,
            ),
        ),
    )
)

"""Planted failing groups for the difference embeddings (``groups``): the :class:`~proactiv.selftest.level.LevelGate`
over 24 instances of four speakers and 16 gains (+6 … -9 dB in 1 dB steps). Every instance flips between -3 and
-4 dB (each at its own gain in -3.35 … -3.65 dB), so the 6 grid points from -4 dB down break; and the model fails on
every input of speaker ``s3`` at every gain.

The embeddings (t-SNE, the step's default method) must separate each planted group from the rest: on the 2-D
coordinates a leave-one-out 1-nearest-neighbour classifier recovers the group (grid points below the break in the
per-point embedding; instances of ``s3`` in the per-instance one) with accuracy at least :data:`MIN_ACCURACY`,
while the same classifier on shuffled labellings of the same sizes (:data:`SHUFFLES` seeded permutations)
averages below :data:`MAX_SHUFFLED` — so the accuracy is the embedding's, not the group sizes'.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from proactiv.analysis.pipeline import Analysis
from proactiv.config import ArraysSpec, ExecutionSpec
from proactiv.optimize import Projector
from proactiv.selftest import Check, Plant, register_plant
from proactiv.selftest.level import GAIN, LevelGate, level_inputs
from proactiv.store import Run
from proactiv.sweep import sweep
from proactiv.task_data import TaskData
from proactiv.transforms import Grid, get

#: the gain grid (dB) and the gain below which every instance is wrong
GAINS_DB = tuple(float(g) for g in range(6, -10, -1))
BREAK_DB = -3.5
#: each instance's flip along gain (dB): all strictly between the grid values -3 and -4
FLIPS_DB = tuple(float(v) for v in BREAK_DB + np.linspace(-0.15, 0.15, 24))
#: the speaker the model fails on, among four
BAD_SPEAKER = "s3"
#: a group is separated when leave-one-out 1-NN on the embedding recovers it at least this well …
MIN_ACCURACY = 0.9
#: … while shuffled labellings of the same sizes average below this
MAX_SHUFFLED = 0.75
SHUFFLES = 20


def plant_groups(path: Path, device: str = "auto") -> Run:
    """The groups run: 24 instances, 16 gains; a break below -3.5 dB and a speaker always wrong."""
    model = LevelGate()
    n = len(FLIPS_DB)
    speaker = np.asarray([f"s{i % 4}" for i in range(n)])
    means = float(model.threshold) * 10 ** (-np.asarray(FLIPS_DB) / 20)
    x = level_inputs(means, speaker == BAD_SPEAKER, seed=2)
    meta = pd.DataFrame({"speaker": speaker})
    data = TaskData(x, torch.ones(n, dtype=torch.long), class_names=["quiet", "loud"], metadata=meta)
    return sweep(model, data, Grid([get("gain", gain_db=list(GAINS_DB))]), path,
                 projection=Projector(model, max_steps=50, device=device), arrays=ArraysSpec(keep="none"),
                 execution=ExecutionSpec(progress=False), resume=True)  # fmt: skip


def separation(coords: np.ndarray, group: np.ndarray, shuffles: int = SHUFFLES) -> tuple[float, float]:
    """Leave-one-out 1-nearest-neighbour accuracy of ``group`` (booleans) on ``coords`` (rows × 2), and its mean
    over ``shuffles`` seeded permutations of ``group``."""
    d = np.linalg.norm(coords[:, None] - coords[None], axis=2)
    np.fill_diagonal(d, np.inf)
    nearest = d.argmin(1)
    rng = np.random.default_rng(0)
    shuffled = [np.mean(g[nearest] == g) for g in (rng.permutation(group) for _ in range(shuffles))]
    return float(np.mean(group[nearest] == group)), float(np.mean(shuffled))


def judge_embedding(run: Run, analysis: Analysis, by: str) -> tuple[str, bool]:
    """The planted group of ``by`` rows is separated on the embedding (see the module docstring)."""
    name = f"embedding_{by}s"
    table = analysis[name]
    if table is None or table.empty:
        return f"no embedding ({analysis.notes.get(name, 'no note')})", False
    if by == "point":
        group = np.asarray([run.grid[int(p)].values[GAIN] < BREAK_DB for p in table.point])
        what, rows = f"points below {BREAK_DB:g} dB", len(GAINS_DB)
    else:
        group = (table["meta.speaker"] == BAD_SPEAKER).to_numpy()
        what, rows = f"instances of {BAD_SPEAKER}", len(FLIPS_DB)
    accuracy, shuffled = separation(table[["x", "y"]].to_numpy(dtype=float), group)
    found = (
        f"{table.attrs.get('method')}: 1-NN recovers the {int(group.sum())} {what} with accuracy "
        f"{accuracy:.2f} (shuffled labels {shuffled:.2f})"
    )
    ok = len(table) == rows and accuracy >= MIN_ACCURACY and shuffled < MAX_SHUFFLED
    return found, bool(ok)


register_plant(
    Plant(
        "groups",
        plant_groups,
        (
            Check(
                "embedding_points",
                f"every instance breaks below {BREAK_DB:g} dB gain",
                partial(judge_embedding, by="point"),
            ),
            Check(
                "embedding_instances",
                f"every input of meta.speaker = {BAD_SPEAKER} fails",
                partial(judge_embedding, by="instance"),
            ),
        ),
        settings={"embedding_points": {"method": "tsne"}, "embedding_instances": {"method": "tsne"}},
    )
)

"""A run whose failures depend on one transform parameter alone, at known thresholds: the planted answer of the
anchor (:func:`proactiv.analysis.anchor.anchor`) and of its view and benchmark.

The model is the selftest's :class:`~proactiv.selftest.level.LevelGate`: instance ``i`` is called "loud" (its
label) exactly while the gain stays above ``flips_db[i]``. The grid crosses gain with additive noise at 20-40 dB,
which the gate barely feels (zero-mean noise moves a flip by about 0.3 dB at 20 dB SNR).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from proactiv.config import ArraysSpec, ExecutionSpec
from proactiv.optimize import Projector
from proactiv.store import Run
from proactiv.sweep import sweep
from proactiv.task_data import TaskData
from proactiv.transforms import Grid, get

GAIN, NOISE = "gain.gain_db", "noise.snr_db"
#: where each instance flips along gain (dB): none on a grid value
THRESHOLDS_DB = (-6.55, -2.3)
GAINS_DB = (6.0, 3.0, 0.0, -3.0, -6.0, -9.0, -12.0)
SNRS_DB = (40.0, 30.0, 20.0)


def plant_threshold_run(
    path: str | Path, thresholds_db=THRESHOLDS_DB, device: str = "cpu", metadata: pd.DataFrame | None = None
) -> Run:
    """The planted run at ``path`` (resumed when it is there): one instance per threshold, gain × noise, with
    ``metadata`` (one row per instance) when given."""
    # here, not at the top: the selftest's anchor case imports this module while the selftest package loads
    from proactiv.selftest.level import LevelGate, level_inputs

    model = LevelGate()
    flips = np.asarray(thresholds_db, float)
    x = level_inputs(float(model.threshold) * 10 ** (-flips / 20), np.zeros(len(flips)))
    grid = Grid([get("gain", gain_db=list(GAINS_DB)), get("noise", snr_db=list(SNRS_DB))])
    data = TaskData(x, torch.ones(len(x), dtype=torch.long), class_names=["quiet", "loud"], metadata=metadata)
    return sweep(model, data, grid, Path(path), projection=Projector(model, max_steps=5, device=device),
                 arrays=ArraysSpec(keep="none"), execution=ExecutionSpec(progress=False), resume=True)  # fmt: skip


def point_of(run: Run, gain_db: float, snr_db: float = SNRS_DB[0]) -> int:
    """The grid point at these values."""
    return next(p.id for p in run.grid if p.values == {GAIN: gain_db, NOISE: snr_db})

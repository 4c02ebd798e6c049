"""Planted passing partners (``partners``): the :class:`~proactiv.selftest.level.LevelGate` under five gains
(0 … -8 dB), with four failing instances ``A0``-``A3`` that flip at -1, -3, -5 and -7 dB, each paired with a
partner ``Bk`` that passes at every gain, and two decoys that pass everywhere too.

By construction, for every failing record of ``Ak`` (whichever grid point the counterexamples pick):

- the nearest passing grid point of the same instance is the gain just above its flip (0, -2, -4, -6 dB);
- the closest passing instance of the same class at that point is ``Bk``: the inputs of pair ``k`` share a
  zero-mean pattern of their own (+3 on feature ``2k``, -3 on feature ``2k + 1``, which the gate, reading the
  features' mean, ignores; the decoys have none) and differ only in level, by less than any pattern apart.

The counterexamples table must name both partners on every row of a failing instance, and list every ``Ak``.
Its settings take every error slice (at most a handful here), so the rows judged do not depend on how the
slices step ranks them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from proactiv.analysis.pipeline import Analysis
from proactiv.config import ArraysSpec, ExecutionSpec
from proactiv.optimize import Projector
from proactiv.selftest import Check, Plant, register_plant
from proactiv.selftest.level import LevelGate
from proactiv.store import Run
from proactiv.sweep import sweep
from proactiv.task_data import TaskData
from proactiv.transforms import Grid, get

GAINS_DB = (0.0, -2.0, -4.0, -6.0, -8.0)
#: the failing instances' flips along gain (dB), one between each two neighbouring grid values
FLIPS_DB = (-1.0, -3.0, -5.0, -7.0)
#: the partners' and decoys' flip: below the grid, so they pass everywhere
PASS_DB = -10.0
#: the failing instance k is instance k, its partner instance PAIRS + k; the decoys come last
PAIRS = len(FLIPS_DB)
DECOYS = 2
#: features (two per pair) and the size of each pair's pattern
WIDTH, PATTERN = 2 * PAIRS, 3.0
#: failing instance → (its nearest passing grid point, its passing partner): known by construction
EXPECTED = {k: (k, PAIRS + k) for k in range(PAIRS)}


def partner_inputs(threshold: float = 0.5) -> torch.Tensor:
    """The clean inputs: ``Ak`` (0-3), ``Bk`` (4-7), two decoys (8-9). Each one's feature mean sets its flip gain
    (``LevelGate``: an input of mean ``m`` flips at ``20·log10(threshold / m)``); the mark feature is 0."""
    flips = [*FLIPS_DB, *[PASS_DB] * (PAIRS + DECOYS)]
    x = np.repeat(threshold * 10 ** (-np.asarray(flips)[:, None] / 20), WIDTH, axis=1)
    for k in range(PAIRS):
        x[[k, PAIRS + k], 2 * k] += PATTERN
        x[[k, PAIRS + k], 2 * k + 1] -= PATTERN
    return torch.from_numpy(np.hstack([x, np.zeros((len(x), 1))])).float()


def plant_partners(path: Path, device: str = "auto") -> Run:
    """The partners run: ten instances of one class under five gains."""
    model = LevelGate()
    x = partner_inputs(float(model.threshold))
    names = [f"{kind}{k}" for kind, n in (("A", PAIRS), ("B", PAIRS), ("decoy", DECOYS)) for k in range(n)]
    data = TaskData(
        x,
        torch.ones(len(x), dtype=torch.long),
        class_names=["quiet", "loud"],
        metadata=pd.DataFrame({"name": names}),
    )
    return sweep(model, data, Grid([get("gain", gain_db=list(GAINS_DB))]), path,
                 projection=Projector(model, max_steps=50, device=device), arrays=ArraysSpec(keep="none"),
                 execution=ExecutionSpec(progress=False), resume=True)  # fmt: skip


def judge_counterexamples(run: Run, analysis: Analysis) -> tuple[str, bool]:
    """Every failing instance is listed, and each of its rows names the planted partners."""
    table = analysis["counterexamples"]
    if table is None or table.empty:
        return f"no counterexamples ({analysis.notes.get('counterexamples', 'no note')})", False
    rows = table.drop_duplicates(["instance", "point"])
    wrong = []
    for r in rows.itertuples():
        planted = EXPECTED.get(int(r.instance))
        named = tuple(None if pd.isna(v) else int(v) for v in (r.same_instance_point, r.same_class_instance))
        if named != planted:
            wrong.append(f"instance {r.instance} at point {r.point}: partners {named}, planted {planted}")
    missing = sorted(set(EXPECTED) - set(rows.instance.astype(int)))
    found = (
        f"{len(rows)} failing records of {rows.instance.nunique()} instances; "
        + ("; ".join(wrong) if wrong else "each names its nearest passing point and its pair's partner")
        + (f"; instances {missing} missing" if missing else "")
    )
    return found, not wrong and not missing


register_plant(
    Plant(
        "partners",
        plant_partners,
        (
            Check(
                "counterexamples",
                "A0-A3 fail below their own gain; each has a known nearest passing point and a passing twin",
                judge_counterexamples,
            ),
        ),
        settings={"counterexamples": {"per_group": 2 * PAIRS, "slices": 2 * PAIRS}},
    )
)

"""A planted word → keyword confusion (``confusion``): a keyword-spotting-shaped run of the classes ``yes``,
``no`` and ``_unknown_``, whose unknown inputs are the words ``bed``, ``cat`` and ``dog``; :class:`WordModel`
takes every ``bed`` for ``yes`` below 0 dB gain (3 of the 4 grid points) and every ``dog`` for ``no`` at -9 dB
only (1 of 4), and gets everything else right.

The confusions table must name inputs by ``meta.word`` (the column finer than the class; a speaker column that
spans classes is a decoy) and show exactly the planted confusions: ``bed`` (``_unknown_``) → ``yes`` first, with
the share of its records planted (3/4), then ``dog`` → ``no`` (1/4), and no other.
"""

from __future__ import annotations

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

CLASSES = ("yes", "no", "_unknown_")
#: word → class; four instances of each
WORDS = {"yes": 0, "no": 1, "bed": 2, "cat": 2, "dog": 2}
PER_WORD = 4
GAINS_DB = (0.0, -3.0, -6.0, -9.0)
#: the planted confusions: (word, its class, what it is taken for) → share of its records (grid points)
PLANTED = {("bed", "_unknown_", "yes"): 0.75, ("dog", "_unknown_", "no"): 0.25}


class WordModel(nn.Module):
    """Features: evidence for each class (0-2), a ``bed`` mark (3), a ``dog`` mark (4), a level channel (5, 1 on
    the clean input). The class evidence decides, except that a marked input whose level falls below ``bed_level``
    (``dog_level``) is pushed to ``yes`` (``no``): every gain of the grid scales all features alike."""

    def __init__(self, bed_level: float = 0.9, dog_level: float = 0.45, push: float = 40.0):
        super().__init__()
        self.register_buffer("levels", torch.tensor([bed_level, dog_level]))
        self.push = push

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        marked = torch.clamp(4 * x[:, 3:5], 0, 1)  # a mark counts whole at any gain of the grid
        pushes = self.push * marked * torch.relu(self.levels - x[:, 5:6])
        return 4 * x[:, :3] + torch.nn.functional.pad(pushes, (0, 1))


def word_inputs() -> tuple[torch.Tensor, torch.Tensor, pd.DataFrame]:
    """Inputs, labels and metadata (word, speaker) of the 20 instances."""
    words = [w for w in WORDS for _ in range(PER_WORD)]
    labels = torch.tensor([WORDS[w] for w in words])
    gen = torch.Generator().manual_seed(0)
    x = torch.zeros(len(words), 6)
    x[:, :3] = 0.1 * torch.rand(len(words), 3, generator=gen)
    x[torch.arange(len(words)), labels] = 1.0
    x[:, 3] = torch.tensor([w == "bed" for w in words], dtype=torch.float32)
    x[:, 4] = torch.tensor([w == "dog" for w in words], dtype=torch.float32)
    x[:, 5] = 1.0
    meta = pd.DataFrame({"word": words, "speaker": [f"s{i % PER_WORD}" for i in range(len(words))]})
    return x, labels, meta


def plant_confusion(path: Path, device: str = "auto") -> Run:
    """The confusion run: 20 instances of five words under four gains."""
    model = WordModel()
    x, y, meta = word_inputs()
    data = TaskData(x, y, class_names=list(CLASSES), metadata=meta)
    return sweep(model, data, Grid([get("gain", gain_db=list(GAINS_DB))]), path,
                 projection=Projector(model, max_steps=50, device=device), arrays=ArraysSpec(keep="none"),
                 execution=ExecutionSpec(progress=False), resume=True)  # fmt: skip


def judge_confusions(run: Run, analysis: Analysis) -> tuple[str, bool]:
    """Rows by ``meta.word``; the first row the planted ``bed`` → ``yes`` at its planted share; the wrong rows
    exactly the planted confusions."""
    table = analysis["confusions"]
    if table is None or table.empty:
        return f"no confusions ({analysis.notes.get('confusions', 'no note')})", False
    top = table.iloc[0]
    wrong = table[table.predicted != table["class"]]
    found = {(r.value, r["class"], r.predicted): round(float(r.share), 6) for _, r in wrong.iterrows()}
    shown = ", ".join(f"{v} ({c}) → {p} {s:.0%}" for (v, c, p), s in found.items())
    told = f"rows by {top.by}; top: {top.value} ({top['class']}) → {top.predicted} {top.share:.0%}; wrong: {shown}"
    first = next(iter(PLANTED))
    ok = (
        top.by == "meta.word"
        and (top.value, top["class"], top.predicted) == first
        and found == PLANTED
        and list(found) == list(PLANTED)
        and np.isclose(top.share, PLANTED[first])
    )
    return told, bool(ok)


register_plant(
    Plant(
        "confusion",
        plant_confusion,
        (
            Check(
                "confusions",
                "the unknown word bed is taken for yes below 0 dB gain (dog for no at -9 dB)",
                judge_confusions,
            ),
        ),
    )
)

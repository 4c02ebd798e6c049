"""Planted mislabelled training examples (``mislabel``): a small network *trained* here, with TracIn checkpoints
(:class:`~proactiv.checkpoints.CheckpointWriter`), on two Gaussian blobs of which :data:`N_FLIPPED` of
:data:`N_TRAIN` examples (5 %) carry the other blob's label.

- Self-influence must rank the mislabelled examples first: at least :data:`TOP_SHARE` of the top ``k`` examples
  (``k`` = how many were planted) are planted ones; a random ranking holds about ``k²/n`` (0.3 of 6).
- A record's proponents share its class: for each of three records — one clean test point per blob, and the
  second blob's centre labelled with the first blob's class, so its prediction on xT (the second class) differs
  from its desired label — the :data:`K` strongest proponents of xT all carry its prediction and those of x̂T its
  desired label, and the :data:`K` strongest opponents the other class. With two classes and a ReLU before the
  last layer this holds for every correct last-layer TracIn score: a training example's score toward class ``c``
  is Σ weight × (p − e_c)·(p' − e_y) × h·h', where h·h' ≥ 0 and the first product is positive exactly when its
  label ``y`` is ``c`` (the same sign at every checkpoint).

The network and its checkpoints are kept in ``PATH/model``, beside the run (``PATH/run``); the step's setting
``checkpoints`` names that folder.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from proactiv.analysis.influence import TracIn
from proactiv.analysis.pipeline import Analysis
from proactiv.analysis.steps import StepContext
from proactiv.checkpoints import MANIFEST, CheckpointWriter
from proactiv.config import ArraysSpec, ExecutionSpec
from proactiv.io import write_torch
from proactiv.optimize import Projector
from proactiv.selftest import Check, Plant, register_plant
from proactiv.store import Run
from proactiv.sweep import sweep
from proactiv.task_data import TaskData
from proactiv.transforms import Grid, get

#: training examples (two blobs, alternating) and the mislabelled ones among them
N_TRAIN, N_FLIPPED = 120, 6
#: at least this share of the top-k self-influence examples (k = N_FLIPPED) must be planted ones
TOP_SHARE = 0.75
#: proponents and opponents judged per record input
K = 10
#: the blobs' centres (two classes in six features) and the spread around them
CENTRES, SPREAD = 3.0 * torch.eye(2, 6), 0.8
#: the three records (instances): (blob the input sits at, desired label)
RECORDS = ((0, 0), (1, 1), (1, 0))
EPOCHS, LR = 40, 0.5


def network() -> nn.Module:
    """The untrained network."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 2))


def training_set() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Inputs, labels (with the planted flips) and the indices of the flipped examples."""
    gen = torch.Generator().manual_seed(0)
    truth = torch.arange(N_TRAIN) % 2
    x = CENTRES[truth] + SPREAD * torch.randn(N_TRAIN, 6, generator=gen)
    flipped = torch.randperm(N_TRAIN, generator=gen)[:N_FLIPPED].sort().values
    y = truth.clone()
    y[flipped] = 1 - truth[flipped]
    return x, y, flipped


def train(folder: Path) -> nn.Module:
    """Full-batch gradient descent with a checkpoint writer beside the saved weights (reused when both are
    there)."""
    model, weights, checkpoints = network(), folder / "weights.pt", folder / "checkpoints"
    if weights.exists() and (checkpoints / MANIFEST).exists():
        model.load_state_dict(torch.load(weights, weights_only=True))
        return model.eval()
    x, y, _ = training_set()
    writer = CheckpointWriter(checkpoints, training=(x, y))
    for epoch in range(1, EPOCHS + 1):
        # plain gradient steps: the first torch.optim optimiser of a process imports torch._dynamo (about 4 s)
        grads = torch.autograd.grad(nn.functional.cross_entropy(model(x), y), list(model.parameters()))
        with torch.no_grad():
            for p, g in zip(model.parameters(), grads, strict=True):
                p -= LR * g
        writer.epoch_done(epoch, EPOCHS, model, LR)
    writer.finish(model)
    write_torch(weights, model.state_dict())
    return model.eval()


def plant_mislabel(path: Path, device: str = "auto") -> Run:
    """Train the network (``PATH/model``), then sweep the three records under a small gain (``PATH/run``)."""
    folder = path / "model"
    folder.mkdir(parents=True, exist_ok=True)
    model = train(folder)
    x = torch.stack([CENTRES[blob] for blob, _ in RECORDS])
    y = torch.tensor([label for _, label in RECORDS])
    return sweep(model, TaskData(x, y, class_names=["a", "b"]), Grid([get("gain", gain_db=[0.0, -3.0])]),
                 path / "run", projection=Projector(model, max_steps=50, device=device),
                 arrays=ArraysSpec(keep="all"), execution=ExecutionSpec(progress=False), resume=True)  # fmt: skip


def checkpoints(run: Run) -> Path:
    """The checkpoint folder of the planted run's training."""
    return run.path.parent / "model" / "checkpoints"


def _proponents(run: Run) -> tuple[str, bool]:
    """Whether each record's strongest proponents carry its target class and its strongest opponents the other."""
    tracin = TracIn(run, StepContext(run, device="cpu").task(), checkpoints(run))
    wrong, seen = [], []
    for instance, (blob, label) in enumerate(RECORDS):
        table = tracin.record(instance, 0, k=K)
        targets = {"x_t": blob, "x_proj": label}  # the model predicts the blob a record sits at
        for (on, role), part in table.groupby(["on", "role"]):
            same = part.label.to_numpy() == targets[on]
            share = same.mean() if role == "proponent" else 1 - same.mean()
            if role == "proponent":
                seen.append(f"{instance} {on}→{part.target_name.iloc[0]}")
            if len(part) != K or share < 1 or (part.target != targets[on]).any():
                wrong.append(f"record {instance} {on} → {part.target.iloc[0]} (planted {targets[on]}): "
                             f"{share:.0%} of its {role}s carry the class they should")  # fmt: skip
    found = f"top {K} proponents carry the target class, opponents the other ({', '.join(seen)})"
    return ("; ".join(wrong) if wrong else found), not wrong


def judge_self_influence(run: Run, analysis: Analysis) -> tuple[str, bool]:
    """At least :data:`TOP_SHARE` of the top-k self-influence examples are planted (k = :data:`N_FLIPPED`), and
    each record's strongest proponents and opponents carry the class they should (see the module docstring)."""
    table = analysis["self_influence"]
    if table is None:
        return f"no result ({analysis.notes.get('self_influence', 'no note')})", False
    _, _, flipped = training_set()
    top = table.train_index.to_numpy()[:N_FLIPPED]
    hits = int(sum(int(i) in set(flipped.tolist()) for i in top))
    ranked = hits >= math.ceil(TOP_SHARE * N_FLIPPED) and len(table) == N_TRAIN
    told, agree = _proponents(run)
    found = f"{hits}/{N_FLIPPED} of the top {N_FLIPPED} are the planted mislabelled examples; {told}"
    return found, bool(ranked and agree)


register_plant(
    Plant(
        "mislabel",
        plant_mislabel,
        (
            Check(
                "self_influence",
                f"{N_FLIPPED} of {N_TRAIN} training labels flipped (a trained network, TracIn checkpoints)",
                judge_self_influence,
            ),
        ),
        settings=lambda run: {"self_influence": {"checkpoints": str(checkpoints(run))}},
    )
)

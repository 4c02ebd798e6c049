"""Planted evidence and a planted unfaithful explanation (``faith_handset``, ``faith_trained``): the ``faithfulness``
step must tell attributions that know where a model's evidence is from one that does not.

The images are grey (0.3 … 0.5) with a bright 4×4 patch (0.9 … 1) in one place; the baseline is black (0).

- ``faith_handset``: :class:`PatchReader`, a model linear in its input whose only evidence for class 1 is the mean
  of the patch's cell. Integrated gradients and saliency are exact there (its weights are not negative), so their
  infidelity must vanish, and saliency's maps cannot move under a small perturbation (max-sensitivity 0).
- ``faith_trained``: a small CNN *trained* here (seeded, about a second) on images whose class is whether the
  patch is where :data:`PATCH` says (class 1) or elsewhere (class 0); trained models are where planted cues have
  been lost before.

On both, the planted explanation ``planted_noise`` — Gaussian noise seeded by the input's bytes, which ignores the
model and jumps with any change of the input — is measured beside saliency, integrated gradients and Grad-CAM:

- deletion: the real methods' curves must fall far faster than random deletion (median ratio ≤ :data:`FAST`)
  while the noise's must be flagged (no faster than random) — on the trained model saliency's and integrated
  gradients', since Grad-CAM averages each channel's gradient over the image and this model weighs the patch's
  place against the decoy's (measured: worse than random there, which the step reports);
- randomisation: the noise must be flagged (its maps do not change when the model's top layers are
  re-initialised), the gradient methods must not be (nor Grad-CAM on the trained model; on the hand-set one its
  single channel makes it blind to the top layer by construction);
- (hand-set model) infidelity and max-sensitivity: near 0 for the exact methods, the noise no better than a map
  of zeros and its maps moving by about √2 of their norm.
"""

from __future__ import annotations

import zlib
from functools import partial
from pathlib import Path

import torch
from torch import nn

from proactiv.analysis.faithfulness import faithfulness_summary
from proactiv.analysis.faithfulness_metrics import Explainer, explainers, register_explainer
from proactiv.analysis.pipeline import Analysis
from proactiv.config import ArraysSpec, ExecutionSpec
from proactiv.optimize import Projector
from proactiv.selftest import Check, Plant, register_plant
from proactiv.store import Run
from proactiv.sweep import sweep
from proactiv.task_data import TaskData
from proactiv.transforms import Grid, get

#: the images, the patch of class 1 (rows 4–7, columns 8–11: the cell (1, 2) of a 4 × 4 grid of 4×4 cells)
#: and where the trained model's class 0 puts it instead (cell (2, 1))
SHAPE, PATCH, DECOY = (16, 16), (slice(4, 8), slice(8, 12)), (slice(8, 12), slice(4, 8))
REAL = ("saliency", "integrated_gradients", "gradcam")
NOISE = "planted_noise"
#: a real method's median deletion ratio (its area above the fully deleted score over random's) is at most
#: this (measured: hand-set 0.03 … 0.17, trained 0.05 … 0.25)
FAST = 0.5
#: hand-set model: the exact methods' relative infidelity and saliency's max-sensitivity are at most this
EXACT = 0.01
#: the noise: relative infidelity at least this (measured 0.66: its best scale still fits the drops' growth with
#: the share removed a little) and max-sensitivity at least this (two independent noise maps: √2)
NOISY_FIDELITY, NOISY_SENSITIVITY = 0.3, 1.0
RECORDS = 8
SETTINGS = {"faithfulness": {"faithfulness_methods": [*REAL, NOISE], "faithfulness_records": RECORDS}}


def noise_maps(model, inputs, targets, **_) -> torch.Tensor:
    """The planted unfaithful explanation: standard normal noise seeded by each input's bytes."""
    maps = []
    for x in inputs.detach().cpu().float():
        gen = torch.Generator().manual_seed(zlib.crc32(x.numpy().tobytes()))
        maps.append(torch.randn(x.shape, generator=gen))
    return torch.stack(maps).to(inputs.device)


if NOISE not in explainers():
    register_explainer(Explainer(NOISE, noise_maps))


class PatchReader(nn.Module):
    """Class 1's logit is 8 × the patch cell's mean − 4 (a 4×4 convolution of stride 4 takes the cells' means, a
    linear layer reads the patch's); class 0's is 0. Linear in the input."""

    def __init__(self):
        super().__init__()
        self.cells = nn.Conv2d(1, 1, 4, stride=4, bias=False)
        self.read = nn.Linear(16, 2)
        with torch.no_grad():
            self.cells.weight.fill_(1 / 16)
            self.read.weight.zero_()
            self.read.weight[1, 1 * 4 + 2] = 8.0
            self.read.bias.copy_(torch.tensor([0.0, -4.0]))

    def forward(self, x):
        return self.read(self.cells(x).flatten(1))


def patch_images(n: int, where=PATCH, seed: int = 0) -> torch.Tensor:
    """Grey images (0.3 … 0.5) with a bright 4×4 patch (0.9 … 1) at ``where``."""
    gen = torch.Generator().manual_seed(seed)
    x = 0.3 + 0.2 * torch.rand(n, 1, *SHAPE, generator=gen)
    x[(slice(None), 0, *where)] = 0.9 + 0.1 * torch.rand(n, 4, 4, generator=gen)
    return x


def small_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AvgPool2d(4), nn.Flatten(), nn.Linear(64, 2)
    )


def train_cnn(steps: int = 150, lr: float = 0.5) -> nn.Module:
    """The CNN trained on 32 images of each class (patch at :data:`PATCH`: 1, at :data:`DECOY`: 0) by full-batch
    gradient descent (plain steps: the first torch.optim optimiser of a process imports torch._dynamo, ~4 s)."""
    model = small_cnn()
    x = torch.cat([patch_images(32, PATCH, seed=1), patch_images(32, DECOY, seed=2)])
    y = torch.cat([torch.ones(32), torch.zeros(32)]).long()
    for _ in range(steps):
        loss = nn.functional.cross_entropy(model(x), y)
        grads = torch.autograd.grad(loss, list(model.parameters()))
        with torch.no_grad():
            for p, g in zip(model.parameters(), grads, strict=True):
                p -= lr * g
    return model.eval()


def _sweep(model: nn.Module, path: Path, device: str) -> Run:
    x = patch_images(RECORDS)
    grid = Grid([get("image_noise", level=[0.0, 0.05], value_range=[0.0, 1.0])])
    data = TaskData(
        x, torch.ones(len(x), dtype=torch.long), class_names=["elsewhere", "patch"], pixel_range=1.0
    )
    return sweep(model, data, grid, path, projection=Projector(model, max_steps=20, device=device),
                 arrays=ArraysSpec(keep="all"), execution=ExecutionSpec(progress=False), resume=True)  # fmt: skip


def plant_handset(path: Path, device: str = "auto") -> Run:
    return _sweep(PatchReader(), path, device)


def plant_trained(path: Path, device: str = "auto") -> Run:
    return _sweep(train_cnn(), path, device)


def _summary(analysis: Analysis):
    """The step's summary by method, or why there is none to judge (also when a method was not measured)."""
    table = analysis["faithfulness"]
    if table is None:
        return None, f"no result ({analysis.notes.get('faithfulness', 'no note')})"
    summary = faithfulness_summary(table).set_index("method")
    missing = [m for m in (*REAL, NOISE) if m not in summary.index]
    if missing:
        return None, f"methods {missing} not measured (measured: {list(summary.index)})"
    return summary, ""


def judge_deletion(run: Run, analysis: Analysis, faithful: tuple[str, ...] = REAL) -> tuple[str, bool]:
    """The ``faithful`` methods fall far faster than random deletion; the noise is flagged."""
    summary, why = _summary(analysis)
    if summary is None:
        return why, False
    ratio = summary.deletion_ratio
    found = ", ".join(f"{m} {ratio[m]:.2f}" for m in (*REAL, NOISE)) + f" (noise: {summary.deletion[NOISE]})"
    ok = all(ratio[m] <= FAST and summary.deletion[m] == "passes" for m in faithful)
    return f"deletion / random area: {found}", bool(ok and summary.deletion[NOISE] == "flagged")


def judge_randomisation(run: Run, analysis: Analysis, sensitive: tuple[str, ...] = REAL) -> tuple[str, bool]:
    """The noise is flagged by the model-randomisation check; the ``sensitive`` methods are not."""
    summary, why = _summary(analysis)
    if summary is None:
        return why, False
    rho, verdict = summary.randomised_spearman, summary.randomisation
    found = ", ".join(f"{m} ρ {rho[m]:.2f} ({verdict[m]})" for m in (*REAL, NOISE))
    ok = verdict[NOISE] == "flagged" and all(verdict[m] == "passes" for m in sensitive)
    return found, bool(ok)


def judge_closed_form(run: Run, analysis: Analysis) -> tuple[str, bool]:
    """On the linear model: integrated gradients and saliency are exact (relative infidelity ≤ :data:`EXACT`)
    and saliency does not move (max-sensitivity ≤ :data:`EXACT`); the noise is no better than zeros and jumps."""
    summary, why = _summary(analysis)
    if summary is None:
        return why, False
    fid, sens = summary.infidelity_rel, summary.max_sensitivity
    found = (f"relative infidelity: IG {fid['integrated_gradients']:.3f}, saliency {fid['saliency']:.3f}, noise "
             f"{fid[NOISE]:.2f}; max-sensitivity: saliency {sens['saliency']:.3f}, noise {sens[NOISE]:.2f}")  # fmt: skip
    ok = (
        fid["integrated_gradients"] <= EXACT
        and fid["saliency"] <= EXACT
        and sens["saliency"] <= EXACT
        and fid[NOISE] >= NOISY_FIDELITY
        and sens[NOISE] >= NOISY_SENSITIVITY
    )
    return found, bool(ok)


GRADIENTS = ("saliency", "integrated_gradients")
DELETION = "real maps fall faster than random deletion; a noise map does not"
RANDOMISED = "a noise map ignores the model (unchanged when its top layers are re-initialised)"
register_plant(
    Plant(
        "faith_handset",
        plant_handset,
        (
            Check("faithfulness", DELETION, judge_deletion),
            # Grad-CAM is blind to the top layer here by construction (one channel: a new weight rescales its map)
            Check("faithfulness", RANDOMISED, partial(judge_randomisation, sensitive=GRADIENTS)),
            Check(
                "faithfulness",
                "linear model: integrated gradients and saliency are exact and steady; noise is neither",
                judge_closed_form,
            ),  # fmt: skip
        ),
        settings=SETTINGS,
    )
)
register_plant(
    Plant(
        "faith_trained",
        plant_trained,
        (
            # Grad-CAM averages each channel's gradient over the image, and this model weighs the patch's place
            # against the decoy's: its maps are reported, not required to be faithful
            Check("faithfulness", DELETION, partial(judge_deletion, faithful=GRADIENTS)),
            Check("faithfulness", RANDOMISED, judge_randomisation),
        ),
        settings=SETTINGS,
    )
)

__all__ = ["NOISE", "PatchReader", "noise_maps", "patch_images", "train_cnn"]

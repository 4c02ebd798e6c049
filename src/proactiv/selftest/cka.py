"""Planted representation change (``twist``): under gain, :class:`TwistNet`'s first two layers change only by an
isotropic scale and an orthogonal rotation — CKA must stay 1 there — and its third layer re-mixes a fast sinusoid
of the second with random weights, which the gain scrambles as a re-initialised layer would — CKA must fall near 0
there, and the ``cka`` step must name it as the layer where the representation departs.

Why those layers and not a trained model: CKA is invariant to exactly an orthogonal transform and an isotropic
scale (Kornblith et al. 2019), so the planted layers hit the invariance on the nose (a measure that is not
rotation-invariant, such as the mean correlation of each unit with itself, gives about 0.2 on ``rotate``) and the
departure is known by construction rather than by training.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from proactiv.analysis.cka import DEPARTURE, departure_sentence, departures
from proactiv.analysis.pipeline import Analysis
from proactiv.config import ArraysSpec, ExecutionSpec
from proactiv.optimize import Projector
from proactiv.selftest import Check, Plant, register_plant
from proactiv.store import Run
from proactiv.sweep import sweep
from proactiv.transforms import Grid, get

#: the swept gains (dB): the identity and one step either side
GAINS_DB = (6.0, 0.0, -6.0)
GAIN = "gain.gain_db"
#: layers whose representation under gain is the clean one rotated and scaled (CKA 1), and those it scrambles
KEPT, SCRAMBLED = ("scale", "rotate"), ("remix", "head")
#: CKA of a layer kept up to rotation and scale (exactly 1 but for float32 rounding)
SAME = 0.999
#: CKA of a scrambled layer: near 0, as between unrelated representations (about 0.03 measured)
UNRELATED = 0.3


class TwistNet(nn.Module):
    """Four linear layers over a vector input x (d features):

    - ``scale`` = W₁x (no bias): under a gain g, g·W₁x — the clean representation scaled;
    - ``rotate`` = B·R(k ln‖x‖)·W₁x, R turning each pair of units by an angle that grows with the log of the
      input's norm and B a fixed scaled block rotation (commuting with R): under a gain g the whole
      representation turns by k ln g and scales by g — the clean one rotated (k ln 0.5 ≈ 79° at -6 dB);
    - ``remix`` = random weights on sin(ω · rotate): the phases move by many periods under any gain, so its
      representation is unrelated to the clean one;
    - ``head``: two logits from ReLU(remix)."""

    def __init__(
        self, features: int = 8, width: int = 16, turn: float = 2.0, freq: float = 6.0, seed: int = 0
    ):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.turn, self.freq = turn, freq
        self.scale = nn.Linear(features, width, bias=False)
        self.rotate = nn.Linear(width, width, bias=False)
        self.remix = nn.Linear(width, width)
        self.head = nn.Linear(width, 2)
        with torch.no_grad():
            self.scale.weight.copy_(torch.randn(width, features, generator=gen) / math.sqrt(features))
            angles = torch.rand(width // 2, generator=gen) * 2 * math.pi
            self.rotate.weight.copy_(1.5 * torch.block_diag(*(_turn(a) for a in angles)))
            self.remix.weight.copy_(torch.randn(width, width, generator=gen) / math.sqrt(width))
            self.remix.bias.copy_(torch.randn(width, generator=gen))
            self.head.weight.copy_(torch.randn(2, width, generator=gen) / math.sqrt(width))
            self.head.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.scale(x)
        angle = self.turn * torch.log(x.norm(dim=1, keepdim=True))
        cos, sin = torch.cos(angle), torch.sin(angle)
        pairs = h.view(len(h), -1, 2)
        h = torch.stack(
            [cos * pairs[..., 0] - sin * pairs[..., 1], sin * pairs[..., 0] + cos * pairs[..., 1]], -1
        )
        z = self.rotate(h.flatten(1))
        return self.head(torch.relu(self.remix(torch.sin(self.freq * z))))


def _turn(angle: torch.Tensor) -> torch.Tensor:
    c, s = torch.cos(angle), torch.sin(angle)
    return torch.stack([torch.stack([c, -s]), torch.stack([s, c])])


def plant_twist(path: Path, device: str = "auto") -> Run:
    """The twist run: 96 random vectors under gain, labelled with the model's own clean prediction."""
    model = TwistNet()
    x = torch.randn(96, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = model(x).argmax(1)
    grid = Grid([get("gain", gain_db=list(GAINS_DB))])
    return sweep(model, (x, y), grid, path, projection=Projector(model, max_steps=10, device=device),
                 arrays=ArraysSpec(keep="none"), execution=ExecutionSpec(progress=False), resume=True)  # fmt: skip


def judge_cka(run: Run, analysis: Analysis) -> tuple[str, bool]:
    """At the identity every layer's CKA must be 1; at every other gain ``scale`` and ``rotate`` must stay 1
    (rotated and scaled), ``remix`` and ``head`` fall near 0; the departures must name ``remix`` first, in the
    table and in the report's sentence."""
    table = analysis["cka"]
    if table is None:
        return f"no result ({analysis.notes.get('cka', 'no note')})", False
    t = table[table.column == GAIN]
    at = {v: dict(zip(part.layer, part.cka, strict=True)) for v, part in t.groupby("value")}
    layers = [*KEPT, *SCRAMBLED]
    if sorted(at) != sorted(GAINS_DB) or any(sorted(c) != sorted(layers) for c in at.values()):
        return f"expected layers {layers} at gains {list(GAINS_DB)}; got {sorted(t.layer.unique())} at " \
               f"{sorted(at)}", False  # fmt: skip
    identity = all(v >= SAME for v in at[0.0].values())
    moved = [g for g in GAINS_DB if g != 0.0]
    kept = all(at[g][name] >= SAME for g in moved for name in KEPT)
    scrambled = all(at[g][name] < min(UNRELATED, DEPARTURE) for g in moved for name in SCRAMBLED)
    first = departures(t).set_index("column").layer.get(GAIN)
    sentence = departure_sentence(t)
    named = first == "remix" and f"at remix (layer 3 of {len(layers)}" in sentence
    shown = "; ".join(f"{g:g} dB: " + ", ".join(f"{n} {at[g][n]:.3f}" for n in layers) for g in GAINS_DB)
    found = f"{shown}; first departure: {first}"
    return found, bool(identity and kept and scrambled and named)


register_plant(
    Plant(
        "twist",
        plant_twist,
        (
            Check(
                "cka",
                "under gain, layers scale and rotate only scale and turn (CKA 1); remix scrambles (CKA near 0)",
                judge_cka,
            ),
        ),
    )
)

"""A shortcut planted by training, not by hand: a small CNN learns that class ``cue`` is the images with a bright
3×3 patch in one place, while every image also has a bright 3×3 distractor patch somewhere else, so brightness
alone is no evidence and the place is. A hand-set model (:func:`~proactiv.testing.planted_cue`) reads its cue
exactly; a trained one reads it through noisy, spread gradients — the case where a projection engine that
follows the gradient could lose the cue in a bias map (issue 27).

:func:`trained_cue` trains the model (seconds on one core, seeded) and returns held-out ``cue`` images;
:func:`cue_places` probes which places of a patch make the model say ``cue`` (the planted fault is only planted
when that is the planted place alone); :func:`window_rank` ranks the planted place's window in a bias map.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: the images' shape, the planted place (rows 5–7, columns 9–11) and the patches' brightness
SHAPE, PLACE, BRIGHT = (16, 16), (slice(5, 8), slice(9, 12)), 0.9
#: the classes: three stripe textures, and ``cue`` (any texture with the patch at the planted place)
CLASSES = ("rows", "columns", "diagonals", "cue")


def _images(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images of the four classes (a quarter ``cue``), each with a distractor patch away from the place."""
    size = SHAPE[0]
    rows, cols = torch.meshgrid(torch.arange(size * 1.0), torch.arange(size * 1.0), indexing="ij")
    texture = torch.randint(0, 3, (n,), generator=gen)
    phase = torch.rand(n, 1, 1, generator=gen) * 6.28
    freq = 0.6 + 0.4 * torch.rand(n, 1, 1, generator=gen)
    stripes = torch.stack([rows * freq, cols * freq, (rows + cols) * freq * 0.7], 1) + phase.unsqueeze(1)
    x = (
        0.25
        + 0.12 * torch.sin(stripes[torch.arange(n), texture])
        + 0.05 * torch.rand(n, size, size, generator=gen)
    )
    top, left = PLACE[0].start, PLACE[1].start
    for i in range(n):
        while True:  # the distractor never overlaps the place (nor touches it)
            r, c = torch.randint(0, size - 2, (2,), generator=gen).tolist()
            if abs(r - top) > 3 or abs(c - left) > 3:
                break
        x[i, r : r + 3, c : c + 3] = BRIGHT
    cue = torch.rand(n, generator=gen) < 0.25
    x[cue, PLACE[0], PLACE[1]] = BRIGHT
    return x.unsqueeze(1), torch.where(cue, len(CLASSES) - 1, texture)


def network() -> nn.Module:
    """Two convolutions and a linear read-out of every place (no global pooling: the place can matter)."""
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * (SHAPE[0] // 2) * (SHAPE[1] // 2), len(CLASSES)),
    )


def trained_cue(n: int = 48, seed: int = 0, n_train: int = 2000, epochs: int = 8):
    """A :func:`network` trained (Adam, seeded, the global RNG untouched) on ``n_train`` images, and ``n``
    held-out ``cue`` images with their labels: ``(model, x, y)``. Returns the model in eval mode."""
    gen = torch.Generator().manual_seed(seed)
    x, y = _images(n_train, gen)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = network()
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    for _ in range(epochs):
        order = torch.randperm(n_train, generator=gen)
        for start in range(0, n_train, 64):
            batch = order[start : start + 64]
            opt.zero_grad()
            F.cross_entropy(model(x[batch]), y[batch]).backward()
            opt.step()
    model.eval()
    held, labels = _images(4 * n, gen)
    held = held[labels == len(CLASSES) - 1][:n]
    return model, held, torch.full((len(held),), len(CLASSES) - 1)


@torch.no_grad()
def cue_places(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """For every place of a 3×3 patch (rows × columns of top-left corners), the mean probability of ``cue`` over
    ``x`` with the planted place dimmed to the background and the patch put there instead."""
    base = x.clone()
    base[:, 0, PLACE[0], PLACE[1]] = x[:, 0].mean((1, 2)).view(-1, 1, 1)
    h, w = SHAPE[0] - 2, SHAPE[1] - 2
    probs = torch.zeros(h, w)
    for r in range(h):
        for c in range(w):
            z = base.clone()
            z[:, 0, r : r + 3, c : c + 3] = BRIGHT
            probs[r, c] = torch.softmax(model(z), 1)[:, -1].mean()
    return probs


def window_rank(change: torch.Tensor, region=PLACE) -> tuple[int, float]:
    """In the bias map of ``change`` (x̂T − xT, (N, 1, H, W): |its mean over N|), the rank of ``region``'s 3×3
    window among all 3×3 windows by summed magnitude (1 = first), and the share of the map's mass in it."""
    bias = change.mean(0)[0].abs()
    windows = F.avg_pool2d(bias[None, None], 3, 1)[0, 0]
    place = windows[region[0].start, region[1].start]
    return int((windows > place).sum()) + 1, float(bias[region].sum() / bias.sum().clamp_min(1e-30))


__all__ = ["CLASSES", "PLACE", "cue_places", "network", "trained_cue", "window_rank"]

"""A second architecture for the digits: a one-hidden-layer MLP on the flattened image.

It shares no convolution, pooling or weight with :class:`~proactiv.tasks.digits.model.DigitsCNN`, so whether an
adversarial image made on the CNN also fools it says whether the features the attack changed belong to the data
rather than to one network (the transfer rate of the non-robust-features experiment).
"""

from __future__ import annotations

import torch
from torch import nn

from proactiv.tasks.digits.model import fit_digits


class DigitsMLP(nn.Module):
    """Flatten, ``hidden`` ReLU units, a linear read-out: (N, 1, S, S) images in [0, 1] → class logits."""

    def __init__(self, n_classes: int = 10, image_size: int = 28, hidden: int = 256):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(image_size * image_size, hidden), nn.ReLU(), nn.Linear(hidden, n_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def train_digits_mlp(
    images: torch.Tensor,
    labels: torch.Tensor,
    seed: int = 0,
    epochs: int = 30,
    n_classes: int | None = None,
    progress: bool = False,
) -> DigitsMLP:
    """Train with the CNN's recipe (:func:`~proactiv.tasks.digits.model.fit_digits`), deterministic for a seed
    on the CPU, so the two architectures differ in shape only."""
    n = n_classes or int(labels.max()) + 1
    return fit_digits(lambda: DigitsMLP(n, images.shape[-1]), images, labels, seed, epochs, progress,
                      what="the MLP")  # fmt: skip

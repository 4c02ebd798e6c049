"""A second architecture for the digits: a one-hidden-layer MLP on the flattened image.

It shares no convolution, pooling or weight with :class:`~proactiv.tasks.digits.model.DigitsCNN`, so whether an
adversarial image made on the CNN also fools it says whether the features the attack changed belong to the data
rather than to one network (the transfer rate of the non-robust-features experiment).
"""

from __future__ import annotations

import torch
from torch import nn

from proactiv.progress import progress_bar


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
    """Train with the CNN's recipe (Adam at 3e-3, shuffled minibatches of 64), deterministic for a seed on the
    CPU, so the two architectures differ in shape only."""
    torch.manual_seed(seed)
    model = DigitsMLP(n_classes or int(labels.max()) + 1, images.shape[-1])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(seed)
    with progress_bar("images", progress) as bar:
        task = bar.add_task("training the MLP", total=epochs * images.shape[0])
        for _ in range(epochs):
            for batch in torch.randperm(images.shape[0], generator=gen).split(64):
                opt.zero_grad()
                nn.functional.cross_entropy(model(images[batch]), labels[batch]).backward()
                opt.step()
                bar.advance(task, len(batch))
    return model.eval()

"""A small CNN for 8×8 digits, trained in seconds and cached: the toy task's model."""

from __future__ import annotations

import torch
from torch import nn

from proactiv.tasks.base import cache_dir


class DigitsCNN(nn.Module):
    """Two 3×3 convolutions and a linear read-out on (N, 1, 8, 8) images in [0, 1]; ~7 k parameters."""

    def __init__(self, n_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Linear(32 * 4 * 4, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


def train_digits_cnn(
    images: torch.Tensor, labels: torch.Tensor, seed: int = 0, epochs: int = 30
) -> DigitsCNN:
    """Train with Adam on full-batch-shuffled minibatches; deterministic for a seed on the CPU."""
    torch.manual_seed(seed)
    model = DigitsCNN(int(labels.max()) + 1)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for batch in torch.randperm(images.shape[0], generator=gen).split(64):
            opt.zero_grad()
            nn.functional.cross_entropy(model(images[batch]), labels[batch]).backward()
            opt.step()
    return model.eval()


def cached_digits_cnn(images: torch.Tensor, labels: torch.Tensor, seed: int = 0) -> DigitsCNN:
    """The trained toy model, from the cache when it was trained before with the same seed."""
    path = cache_dir() / f"digits-cnn-seed{seed}-torch{torch.__version__}.pt"
    model = DigitsCNN(int(labels.max()) + 1)
    if path.exists():
        try:
            model.load_state_dict(torch.load(path, weights_only=True))
            return model.eval()
        except (RuntimeError, OSError, EOFError):
            path.unlink(missing_ok=True)  # corrupt cache entry: train again
    model = train_digits_cnn(images, labels, seed)
    tmp = path.with_suffix(".tmp")
    torch.save(model.state_dict(), tmp)
    tmp.replace(path)
    return model

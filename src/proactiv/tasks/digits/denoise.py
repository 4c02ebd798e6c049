"""The image-to-image example: a small denoising autoencoder for the 28×28 digits.

It is trained to remove additive Gaussian noise only, so a sweep over noise, blur, rotation … shows which
corruptions it undoes and which it cannot: projection asks what the corrupted input would have needed to look
like for the output to match the clean digit (MSE toward the clean image, the target tensor).
"""

from __future__ import annotations

import torch
from torch import nn

from proactiv.progress import progress_bar
from proactiv.tasks.digits.model import cached_model, training_key

#: the noise levels (std as a fraction of the [0, 1] range) the denoiser sees in training
TRAIN_NOISE = (0.0, 0.5)


class DenoisingAutoencoder(nn.Module):
    """Two strided convolutions down to 7×7×32, two transposed convolutions back up, a sigmoid output.

    ~15 k parameters, ~3.5 M multiply-adds per 28×28 image; the output is an image in [0, 1].
    """

    def __init__(self, width: int = 16):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, width, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1),
            nn.ReLU(),
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(width, width // 2, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(width // 2, 1, 3, padding=1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def add_training_noise(clean: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Each image gets Gaussian noise of its own level drawn from :data:`TRAIN_NOISE`, clipped to [0, 1]."""
    low, high = TRAIN_NOISE
    level = low + (high - low) * torch.rand(clean.shape[0], 1, 1, 1, generator=gen)
    return (clean + level * torch.randn(clean.shape, generator=gen)).clamp(0, 1)


def train_denoiser(
    images: torch.Tensor, seed: int = 0, epochs: int = 30, progress: bool = False
) -> DenoisingAutoencoder:
    """Train with Adam (minibatches of 32) on the MSE between the output for a noisy copy and the clean image; seeded."""
    torch.manual_seed(seed)
    model = DenoisingAutoencoder()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)  # 3e-3 can collapse to a constant output
    gen = torch.Generator().manual_seed(seed)
    with progress_bar("images", progress) as bar:
        task = bar.add_task("training the denoiser", total=epochs * images.shape[0])
        for _ in range(epochs):
            for batch in torch.randperm(images.shape[0], generator=gen).split(32):
                clean = images[batch]
                opt.zero_grad()
                nn.functional.mse_loss(model(add_training_noise(clean, gen)), clean).backward()
                opt.step()
                bar.advance(task, len(batch))
    return model.eval()


def cached_denoiser(
    images: torch.Tensor, seed: int = 0, epochs: int = 30, progress: bool = False
) -> DenoisingAutoencoder:
    """The trained denoiser for these images and settings, from the cache when it was trained before."""
    key = training_key(images, torch.zeros(0), seed=seed, epochs=epochs, noise=TRAIN_NOISE)
    return cached_model(
        f"digits-denoiser-{key}",
        lambda: train_denoiser(images, seed, epochs, progress),
        DenoisingAutoencoder,
    )

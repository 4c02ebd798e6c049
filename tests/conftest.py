"""Shared fixtures: tiny models whose behaviour is known, and an isolated cache directory."""

import pytest
import torch
from torch import nn


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("PROACTIV_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    torch.set_num_threads(2)


class SmallCNN(nn.Module):
    """A fixed random CNN on (N, 1, 8, 8) inputs with 4 classes."""

    def __init__(self, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(1, 6, 3, padding=1)
        self.head = nn.Linear(6 * 8 * 8, 4)

    def forward(self, x):
        return self.head(torch.tanh(self.conv(x)).flatten(1)) * 3.0


@pytest.fixture
def small_cnn():
    return SmallCNN()

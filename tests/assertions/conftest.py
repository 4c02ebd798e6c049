"""Tiny models with known robustness to gain, their runs, and a project folder (model files, data, sweep config,
checks file) for the command line and the pytest plugin."""

from types import SimpleNamespace

import pytest
import torch
from torch import nn

import proactiv as pv

#: gain values of every run here: the identity, mild, strong attenuation, and amplification
GAIN_DB = [0, -6, -20, 20]
CLASSES = ["a", "b", "c"]


def weights() -> torch.Tensor:
    torch.manual_seed(0)
    return nn.Linear(6, 3, bias=False).weight.detach() * 10


def linear(bias: float | None) -> nn.Linear:
    """Without a bias, argmax(W·gx) = argmax(W·x) for every gain g > 0: the model is exactly gain-invariant.
    With a bias on class 'a', attenuated inputs drift to 'a': accuracy holds at -6 dB and collapses at -20 dB."""
    model = nn.Linear(6, 3, bias=bias is not None)
    with torch.no_grad():
        model.weight.copy_(weights())
        if bias is not None:
            model.bias.copy_(torch.tensor([bias, 0.0, 0.0]))
    return model.eval()


class Band(nn.Module):
    """Gain-invariant, except that inputs whose norm lies in a band (reached at -20 dB, left again at -40 dB)
    are called 'a': accuracy dips at -20 dB and recovers at -40 dB."""

    def __init__(self):
        super().__init__()
        self.lin = linear(None)

    def forward(self, x):
        norm = x.flatten(1).norm(dim=1)
        band = ((norm > 0.08) & (norm < 0.45)).float()
        return self.lin(x) + 100.0 * band[:, None] * torch.tensor([1.0, 0.0, 0.0])


def data(n: int = 60):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(n, 6, generator=gen)
    with torch.no_grad():
        return x, linear(None)(x).argmax(1)


def sweep_model(model, path, gain_db=GAIN_DB):
    x, y = data()
    grid = pv.Grid([pv.transforms.get("gain", gain_db=gain_db)])
    projector = pv.Projector(model, max_steps=10)
    return pv.sweep(model, x, y, grid, path, projector=projector, class_names=CLASSES, progress=False)


@pytest.fixture(scope="package")
def robust_run(tmp_path_factory):
    return sweep_model(linear(None), tmp_path_factory.mktemp("robust") / "run")


@pytest.fixture(scope="package")
def broken_run(tmp_path_factory):
    return sweep_model(linear(1.0), tmp_path_factory.mktemp("broken") / "run")


CHECKS = """\
config: sweep.yaml
checks:
  - {kind: accuracy_at, point: {gain_db: 0}, at_least: 0.8, name: clean accuracy}
  - {kind: accuracy_at, point: {gain_db: -20}, at_least: 0.8, name: quiet accuracy}
  - {kind: breakpoint_beyond, transform: gain_db, value: -20}
  - {kind: monotonic, transform: gain, tolerance: 0.05}
  - {kind: invariant, transform: {type: gain, gain_db: [-20, 20]}, max_flip_rate: 0.05}
  - {kind: moves_at_most, d_x: 0.5}
"""


def write_project(folder, checks: str = CHECKS):
    """Model files (robust.pt, broken.pt: TorchScript), data tensors, a custom-task sweep config and a checks
    file in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    x, y = data()
    torch.save(x, folder / "x.pt")
    torch.save(y, folder / "y.pt")
    torch.jit.script(linear(None)).save(str(folder / "robust.pt"))
    torch.jit.script(linear(1.0)).save(str(folder / "broken.pt"))
    (folder / "sweep.yaml").write_text(
        "task: custom\n"
        "model: {torchscript: robust.pt}\n"
        f"data: {{inputs: x.pt, labels: y.pt, instances_per_class: 8, class_names: {CLASSES}}}\n"
        f"grid:\n  - {{type: gain, gain_db: {GAIN_DB}}}\n"
        "projection: {max_steps: 10}\n"
    )
    (folder / "CHECKS.yaml").write_text(checks)
    return SimpleNamespace(
        root=folder,
        checks=folder / "CHECKS.yaml",
        robust=folder / "robust.pt",
        broken=folder / "broken.pt",
    )


@pytest.fixture
def project(tmp_path):
    return write_project(tmp_path / "project")

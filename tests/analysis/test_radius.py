"""Radius: the found (adversarial) radius is an upper bound that is tight on linear models, the certified
radius a sound lower bound (exact on linear models, never above the found one, never crossed by sampling),
and the step reaches the CLI and the report."""

import pandas as pd
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import proactiv as pv
from proactiv.analysis.certify import UnsupportedModel, certified_radius, chain, margin_bounds
from proactiv.analysis.radius import adversarial_radius, radius
from proactiv.cli import app
from proactiv.report import write_report
from proactiv.tasks.kws.models import DSCNN

torch.set_num_threads(1)
GRID = pv.Grid([pv.transforms.get("gain", gain_db=[0, -6])])


def _linear_run(tmp_path, n=30):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 4))
    x = torch.randn(n, 1, 6, 6)
    with torch.no_grad():
        labels = model(x).argmax(1)
    run = pv.sweep(model, x, labels, GRID, tmp_path / "lin", projector=pv.Projector(model, lr=0.05, max_steps=5),
                   progress=False)  # fmt: skip
    return run, model, x, labels


def _closed_form(model, x, pred, p):
    """Distance to the nearest decision boundary of a linear classifier: min_j margin_j / ‖w_pred − w_j‖_dual."""
    w, b = model[1].weight.detach(), model[1].bias.detach()
    flat = x.flatten(1)
    logits = flat @ w.T + b
    diff = w[pred].unsqueeze(1) - w.unsqueeze(0)  # (B, K, D)
    margin = logits.gather(1, pred[:, None]) - logits
    dual = diff.norm(dim=2) if p == "l2" else diff.abs().sum(2)
    dist = margin / dual
    dist[torch.arange(len(x)), pred] = float("inf")
    return dist.amin(1)


@pytest.mark.parametrize("p", ["l2", "linf"])
def test_linear_radius_matches_the_closed_form(tmp_path, p):
    run, model, x, labels = _linear_run(tmp_path)
    table = radius(run, norm=p, certified=True)
    exact = _closed_form(model, x, labels, p).numpy()
    assert list(table.instance) == list(range(len(x)))
    found, proved = table[f"radius_{p}"].to_numpy(), table[f"certified_{p}"].to_numpy()
    assert (abs(found / exact - 1) < 0.05).all(), (found, exact)
    assert (found >= exact * (1 - 1e-4)).all()  # a found flip can never be closer than the boundary
    assert (abs(proved / exact - 1) < 1e-3).all(), (proved, exact)
    assert f"radius_{'linf' if p == 'l2' else 'l2'}" not in table


def _bn_cnn(x):
    """A random CNN whose BatchNorm statistics are those of ``x`` (so its predictions vary over ``x``)."""
    torch.manual_seed(1)
    net = nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6, momentum=None), nn.ReLU(),
        nn.Conv2d(6, 6, 3, padding=1, groups=6), nn.BatchNorm2d(6, momentum=None), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 8, 1), nn.ReLU(), nn.Flatten(), nn.Dropout(0.2), nn.Linear(8 * 4 * 4, 5),
    )  # fmt: skip
    with torch.no_grad():
        net.train()(x)
        for m in net:
            if isinstance(m, nn.BatchNorm2d):  # non-trivial affine terms
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return net.eval()


def _never_flips(model, x, pred, eps, p, value_range=None, draws=64):
    """Random changes on the sphere of radius ``eps`` (and the box corners for L∞) keep every prediction."""
    gen = torch.Generator().manual_seed(0)
    shape = (-1, *[1] * (x.dim() - 1))
    for _ in range(draws):
        d = torch.randn(x.shape, generator=gen)
        d = d.sign() if p == "linf" else d / d.flatten(1).norm(dim=1).view(shape)
        z = x + eps.view(shape) * d
        z = z if value_range is None else z.clamp(*value_range)
        with torch.no_grad():
            if not (model(z).argmax(1) == pred).all():
                return False
    return True


@pytest.mark.parametrize("p", ["l2", "linf"])
def test_certified_never_exceeds_found_on_a_cnn_with_batchnorm(p):
    x = torch.rand(60, 1, 8, 8)
    net = _bn_cnn(x)
    with torch.no_grad():
        pred = net(x).argmax(1)
    assert len(pred.unique()) > 1
    found, delta = adversarial_radius(net, x, pred, p, value_range=(0.0, 1.0))
    assert torch.isfinite(found).all()
    with torch.no_grad():  # the found change flips and lies in the value range at the reported norm
        assert (net(x + delta).argmax(1) != pred).all()
        assert ((x + delta) >= 0).all() and ((x + delta) <= 1).all()
    size = delta.flatten(1).norm(dim=1) if p == "l2" else delta.flatten(1).abs().amax(1)
    torch.testing.assert_close(size, found)
    proved = certified_radius(chain(net, x[:1]), x, pred, p, found, value_range=(0.0, 1.0))
    assert (proved <= found).all()
    assert (proved > 0).float().mean() > 0.9  # a certifier that proves nothing would pass the line above
    assert _never_flips(net, x, pred, proved, p, (0.0, 1.0))


def test_margin_bounds_hold_for_sampled_points_of_a_kws_model():
    """The per-utterance normalisation is bounded soundly: sampled margins never fall below the bounds."""
    torch.manual_seed(2)
    net = DSCNN(n_classes=4, width=8, blocks=1).eval()
    x = torch.randn(6, 40, 101) * 20 - 40
    with torch.no_grad():
        pred = net(x).argmax(1)
    ops = chain(net, x[:1])
    assert ops[0].kind == "box"
    eps = torch.full((6,), 0.05)
    with torch.no_grad():
        bound = margin_bounds(ops, x, pred, eps, "linf")
        for _ in range(32):
            logits = net(x + eps.view(-1, 1, 1) * torch.randn(x.shape).sign())
            margin = logits.gather(1, pred[:, None]) - logits
            assert (margin >= bound.nan_to_num(posinf=0) - 1e-4).all()
    found, _ = adversarial_radius(net, x, pred, "l2", steps=10)
    assert (certified_radius(ops, x, pred, "l2", found) <= found).all()


def test_an_unsupported_model_is_named():
    class Skip(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(4, 4)

        def forward(self, x):
            return x + self.a(x)

    with pytest.raises(UnsupportedModel, match="single chains"):
        chain(Skip(), torch.zeros(1, 4))
    with pytest.raises(UnsupportedModel, match="Sigmoid"):
        chain(nn.Sequential(nn.Linear(4, 4), nn.Sigmoid()), torch.zeros(1, 4))


@pytest.fixture
def cnn_run(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 8 * 8, 3)).eval()  # fmt: skip
    x = torch.rand(12, 1, 8, 8)
    with torch.no_grad():
        labels = model(x).argmax(1)
    return pv.sweep(model, x, labels, GRID, tmp_path / "cnn", projector=pv.Projector(model, lr=0.05, max_steps=20),
                    class_names=["a", "b", "c"], pixel_range=1.0, keep_arrays="all", progress=False)  # fmt: skip


def test_the_step_runs_from_the_cli_and_joins_d_x_in_the_report(cnn_run):
    import proactiv.analysis.radius  # noqa: F401  (registers the step)

    out = CliRunner().invoke(app, ["analyze", str(cnn_run.path), "--step", "radius", "--set",
                                   "radius.steps=10", "--no-progress"])  # fmt: skip
    assert out.exit_code == 0, out.output
    table = pd.read_parquet(cnn_run.path / "analysis" / "radius.parquet")
    assert len(table) == 12 and set(table.label_name) <= {"a", "b", "c"}
    for p in ("l2", "linf"):
        assert (table[f"certified_{p}"] <= table[f"radius_{p}"]).all() and (table[f"radius_{p}"] > 0).all()
    page = write_report(cnn_run, gallery=1, method="pca").read_text()
    assert "<section id='radius'>" in page
    dx = cnn_run.records.groupby("instance").d_x_l2.median()
    ratio = (table.set_index("instance").radius_l2 / dx).median()
    assert f"median radius_l2 / d_x_l2 = {ratio:.3g} over 12 instances" in page


class FirstFour(nn.Module):
    """A classifier without parameters: its logits are its first four inputs."""

    def forward(self, x):
        return x.flatten(1)[:, :4]


def test_a_model_without_parameters_gets_its_radius(tmp_path):
    """A fixed function wrapped as a module (its logits: the first four inputs) has no parameter to say where it
    lives; its radius is the closed form of that function: the gap between its top two inputs over √2 (L2)."""
    torch.manual_seed(0)
    model, x = FirstFour(), torch.randn(12, 1, 6, 6)
    labels = model(x).argmax(1)
    run = pv.sweep(model, x, labels, GRID, tmp_path / "fixed", projector=pv.Projector(model, max_steps=2),
                   progress=False)  # fmt: skip
    table = radius(run, norm="l2", device="cpu")
    top2 = model(x).topk(2, dim=1).values
    expected = ((top2[:, 0] - top2[:, 1]) / 2**0.5).numpy()
    assert table.radius_l2.to_numpy() == pytest.approx(expected, rel=0.05, abs=1e-3)

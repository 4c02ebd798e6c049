"""CKA: the estimators' invariances, minibatch CKA against the in-memory one, layers read by hooks, two models
compared layer by layer, and the ``cka`` step on a real (tiny) sweep: table, report section, panel, CLI."""

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import proactiv as pv
from proactiv.analysis.cka import (  # registers the step before proactiv.cli mounts its sub-command
    MinibatchCKA,
    cka,
    compare_models_cka,
    departures,
    layer_activations,
    minibatch_cka,
    model_layers,
    transform_cka,
)
from proactiv.cli import app
from proactiv.sweep import model_inputs
from proactiv.tasks.base import TaskData
from proactiv.views.cka import cka as cka_view
from proactiv.views.cka import cka_figure, compare_figure

torch.set_num_threads(1)


def _data(n=600, d=20, seed=0):
    """A representation and a nonlinear, noisy one of it (CKA well inside (0, 1))."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, d))
    b = np.tanh(a @ rng.standard_normal((d, 30))) + 0.5 * rng.standard_normal((n, 30))
    return a, b


def _orthogonal(d, seed=1):
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))
    return q


@pytest.mark.parametrize("n", [600, 12])  # more inputs than features (d × d form) and fewer (Gram form)
def test_linear_cka_with_itself_is_one_and_ignores_rotation_and_scale_only(n):
    a, b = _data(n)
    base = cka(a, b)
    assert 0.1 < base < 0.95
    assert cka(a, a) == pytest.approx(1.0, abs=1e-12)
    assert cka(torch.as_tensor(a), a) == pytest.approx(1.0, abs=1e-12)  # torch and numpy alike
    moved = 3.7 * a @ _orthogonal(a.shape[1]) + 5.0  # rotation, isotropic scale, shift
    assert cka(moved, a) == pytest.approx(1.0, abs=1e-9)
    assert cka(moved, b) == pytest.approx(base, abs=1e-9)
    stretch = (
        a @ np.diag(np.geomspace(1, 30, a.shape[1])) @ _orthogonal(a.shape[1], 2)
    )  # invertible, not orthogonal
    assert cka(stretch, a) < 0.9
    assert abs(cka(stretch, b) - base) > 0.01


def test_minibatch_cka_matches_the_in_memory_one():
    a, b = _data(4000)
    full = cka(a, b)
    for batch in (100, 256):
        assert minibatch_cka(a, b, batch_size=batch) == pytest.approx(full, abs=0.02)
    assert minibatch_cka(a, a, batch_size=100) == pytest.approx(1.0, abs=1e-12)
    assert minibatch_cka(3 * a @ _orthogonal(a.shape[1]), a, batch_size=100) == pytest.approx(1.0, abs=1e-9)
    # one accumulator per layer pair: a list of layers gives each pair its own CKA
    acc = MinibatchCKA()
    for rows in np.array_split(np.arange(4000), 20):
        acc.update([a[rows], a[rows]], [b[rows], a[rows]])
    assert acc.n == 4000 and acc.value() == pytest.approx([full, 1.0], abs=0.02)


def _unbiased_cka(a, b):
    """CKA of the unbiased HSIC estimates on all rows at once, written out (Song et al. 2012, eq. 5)."""

    def hsic(k, l):  # noqa: E741
        n = len(k)
        k, l = k - np.diag(np.diag(k)), l - np.diag(np.diag(l))  # noqa: E741
        ones = np.ones(n)
        value = np.trace(k @ l) + ones @ k @ ones * (ones @ l @ ones) / ((n - 1) * (n - 2))
        return (value - 2 / (n - 2) * ones @ k @ l @ ones) / (n * (n - 3))

    ka, kb = a @ a.T, b @ b.T
    return hsic(ka, kb) / np.sqrt(hsic(ka, ka) * hsic(kb, kb))


@pytest.mark.parametrize("n", [4, 5, 7, 10, 13, 17, 30])
def test_minibatch_cka_takes_every_batch_size_it_accepts(n):
    a, b = _data(n, d=5, seed=n)
    for batch_size in range(2, 9):
        if batch_size < 4:
            with pytest.raises(ValueError, match="at least 4 inputs per minibatch"):
                minibatch_cka(a, b, batch_size=batch_size)
            continue
        value = minibatch_cka(a, b, batch_size=batch_size)
        assert np.isfinite(value) and -1 - 1e-9 <= value <= 1 + 1e-9, (n, batch_size, value)
        if batch_size >= n:  # one minibatch: the unbiased estimate on all rows
            assert value == pytest.approx(_unbiased_cka(a, b), abs=1e-9)
        assert minibatch_cka(a, a, batch_size=batch_size) == pytest.approx(1.0, abs=1e-9)
    assert compare_models_cka(Net(), Net(1), torch.rand(n, 1, 8, 8), batch_size=4).cka.notna().all()


def test_rbf_cka():
    a, b = _data(500)
    assert cka(a, a, "rbf") == pytest.approx(1.0, abs=1e-12)
    assert cka(2.5 * a @ _orthogonal(a.shape[1]), a, "rbf") == pytest.approx(1.0, abs=1e-9)
    assert 0.1 < cka(a, b, "rbf") < 0.95
    independent = np.random.default_rng(9).standard_normal((500, 20))
    assert cka(a, independent, "rbf") < 0.1
    # a bandwidth far above the distances makes the kernel linear in effect (Kornblith et al., sec. 3)
    assert cka(a, b, "rbf", sigma=100) == pytest.approx(cka(a, b), abs=0.01)
    # a narrow bandwidth sees only neighbours: another similarity than the linear one
    assert abs(cka(a, b, "rbf", sigma=0.2) - cka(a, b)) > 0.05
    a, b = _data(2000)  # enough inputs for the in-memory (biased) estimate to settle
    assert minibatch_cka(a, b, 250, "rbf") == pytest.approx(cka(a, b, "rbf"), abs=0.02)


def test_bad_arguments_are_named():
    a, b = _data(20)
    with pytest.raises(ValueError, match="20 rows in a but 19 in b"):
        cka(a, b[:19])
    with pytest.raises(ValueError, match="kernel 'cosine'"):
        cka(a, b, "cosine")
    with pytest.raises(ValueError, match="linear kernel has none"):
        cka(a, b, sigma=0.5)
    with pytest.raises(ValueError, match="at least 4 inputs per minibatch"):
        minibatch_cka(a, b, batch_size=3)
    with pytest.raises(ValueError, match="NaN/Inf"):
        cka(np.full((4, 2), np.nan), b[:4])
    assert np.isnan(cka(np.ones((20, 3)), b))  # no variance: undefined, not a number that looks like one


class Net(nn.Module):
    """Conv → ReLU (in place) → Linear → ReLU (in place) → Linear, on 1×8×8 images."""

    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.act = nn.ReLU(inplace=True)
        self.fc = nn.Linear(4 * 8 * 8, 16)
        self.out = nn.Linear(16, 3)
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        h = self.act(self.conv(x)).flatten(1)
        return self.out(self.drop(torch.relu_(self.fc(h))))


def test_layer_activations_stream_hooked_layers_in_minibatches():
    model = Net().train()
    x = torch.rand(10, 1, 8, 8)
    assert model_layers(model) == ["conv", "fc", "out"]
    batches = list(layer_activations(model, x, batch_size=4))
    assert [len(b["conv"]) for b in batches] == [5, 5]  # not 4 + 3 + 3: minibatch CKA needs 4 in each
    assert [len(b["conv"]) for b in layer_activations(model, x, batch_size=6)] == [5, 5]
    twelve = torch.rand(12, 1, 8, 8)
    assert [len(b["conv"]) for b in layer_activations(model, twelve, batch_size=4)] == [4, 4, 4]
    assert [tuple(v.shape[1:]) for v in batches[0].values()] == [(256,), (16,), (3,)]
    assert model.training  # the model's mode is restored
    whole = torch.cat([b["fc"] for b in batches])
    assert (whole < 0).any()  # copied before the in-place ReLU after the layer
    with torch.no_grad():
        expected = model.eval().fc(torch.relu(model.conv(x)).flatten(1))
    assert torch.allclose(whole, expected, atol=1e-6)  # eval mode: dropout did not act
    with pytest.raises(ValueError, match="has no layers \\['nope'\\]"):
        next(layer_activations(model, x, ["nope"]))
    with pytest.raises(ValueError, match="TorchScript"):
        next(layer_activations(torch.jit.script(Net()), x))


def test_compare_models_layer_by_layer():
    a = Net(0)
    b = Net(0)
    q = torch.as_tensor(_orthogonal(16), dtype=torch.float32)
    with torch.no_grad():  # b's fc is a's rotated and scaled: the same representation for CKA
        b.fc.weight.copy_(2.0 * q @ a.fc.weight)
        b.fc.bias.copy_(2.0 * q @ a.fc.bias)
    other = Net(5)
    x = torch.rand(2000, 1, 8, 8)  # many more inputs than conv features (256): the biased estimate settles
    table = compare_models_cka(a, b, x, layers_b=["conv", "fc"], batch_size=250)
    assert list(table.columns) == ["layer_a", "index_a", "layer_b", "index_b", "cka", "n"]
    assert len(table) == 3 * 2 and (table.n == 2000).all()
    value = table.set_index(["layer_a", "layer_b"]).cka
    assert value["conv", "conv"] == pytest.approx(1.0, abs=1e-9)
    assert value["fc", "fc"] == pytest.approx(1.0, abs=1e-6)
    assert value["conv", "fc"] < 0.99
    # against the in-memory estimator on every activation at once
    with torch.no_grad():
        full = cka(a.conv(x).flatten(1), other.conv(x).flatten(1))
    direct = compare_models_cka(a, other, x, layers_a=["conv"], layers_b=["conv"], batch_size=250)
    assert 0.1 < full < 0.95 and direct.cka.iloc[0] == pytest.approx(full, abs=0.02)
    fig = compare_figure(table, "A", "B")
    assert fig.data[0].z.shape == (3, 2) and list(fig.data[0].y) == ["conv", "fc", "out"]


class TinyCNN(nn.Sequential):
    """A fixed random CNN on 1×8×8 images, 3 classes (torch classes only: the sweep keeps it with the run)."""

    def __init__(self):
        torch.manual_seed(0)
        super().__init__(nn.Conv2d(1, 6, 3, padding=1), nn.Tanh(), nn.Conv2d(6, 6, 3, padding=1), nn.Tanh(),
                         nn.Flatten(), nn.Linear(6 * 8 * 8, 3))  # fmt: skip


NOISE = [0.0, 0.1, 0.6]


@pytest.fixture(scope="module")
def noise_run(tmp_path_factory):
    model = nn.Sequential(*TinyCNN())
    torch.manual_seed(1)
    x = torch.rand(32, 1, 8, 8)
    with torch.no_grad():
        y = model(x).argmax(1)
    grid = pv.Grid([pv.transforms.get("image_noise", level=NOISE)])
    return pv.sweep(model, x, y, grid, tmp_path_factory.mktemp("cka") / "run", pixel_range=1.0, progress=False,
                    projector=pv.Projector(model, lr=0.05, max_steps=5), keep_arrays="none")  # fmt: skip


def test_the_step_departs_from_one_at_the_identity_as_noise_grows(noise_run):
    result = pv.analysis.analyze(noise_run, steps=["cka"], settings={"cka": {"batch_size": 16}}, device="cpu")
    assert result.computed == ["cka"], result.notes
    table = result["cka"]
    assert list(table.columns) == ["layer", "layer_index", "column", "value", "cka", "n", "points"]
    assert table.layer.unique().tolist() == ["0", "2", "5"]  # the convolutions and the linear layer, in order
    assert (table.column == "image_noise.level").all() and sorted(set(table.value)) == NOISE
    assert (table.n == 32).all() and (table.points == 1).all()
    cell = table.set_index(["layer", "value"]).cka
    for layer in ("0", "2", "5"):
        assert cell[layer, 0.0] == pytest.approx(1.0, abs=1e-9)
    assert cell["5", 0.6] < cell["5", 0.1] < 1.0 and cell["5", 0.6] < 0.9
    assert "32 instances per grid point" in result.notes["cka"]
    stored = pd.read_parquet(noise_run.path / "analysis" / "cka.parquet")
    pd.testing.assert_frame_equal(stored, table)
    mark = departures(table).iloc[0]
    assert mark.value == 0.6 and mark.layer == table[(table.value == 0.6) & (table.cka < 0.9)].layer.iloc[0]


def test_a_value_is_the_mean_over_its_grid_points():
    """Two parameters: each value's CKA is the mean of the minibatch CKA of every grid point at that value
    (the other parameter marginalised); xT is the sweep's own (model_inputs with the run's seed)."""
    model = nn.Sequential(*TinyCNN())
    x = torch.rand(12, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    task = TaskData(model=model, inputs=x, labels=torch.zeros(12, dtype=torch.long))
    grid = pv.Grid(
        [pv.transforms.get("image_noise", level=[0, 0.5]), pv.transforms.get("rotate", degrees=[0, 90, 180])]
    )
    table = transform_cka(task, grid, seed=7, batch_size=6, layers=["5"])
    assert len(table) == 2 + 3
    row = table.set_index(["column", "value"])
    assert (
        row.loc[("image_noise.level", 0.5), "points"] == 3
        and row.loc[("rotate.degrees", 90.0), "n"] == 2 * 12
    )
    per_point = []
    for p in (p.id for p in grid if p.values["image_noise.level"] == 0.5):
        acc = MinibatchCKA()
        for rows in (np.arange(6), np.arange(6, 12)):
            xt = model_inputs(grid, None, x[rows], rows, 7, point=p)
            acc.update(model(x[rows]).detach(), model(xt).detach())
        per_point.append(acc.value()[0])
    assert row.loc[("image_noise.level", 0.5), "cka"] == pytest.approx(np.mean(per_point), abs=1e-9)
    one = transform_cka(task, grid, seed=7, batch_size=6, layers=["5"], points=[grid.identity_point()])
    assert one.cka.tolist() == pytest.approx([1.0, 1.0], abs=1e-9) and len(one) == 2  # the values it has
    assert row.loc[("image_noise.level", 0.0), "cka"] < 1  # rotated points count at noise 0 too


def test_the_step_reaches_the_report_dashboard_notebook_and_cli(noise_run):
    from proactiv.analysis.steps import StepContext
    from proactiv.dashboard.panels.cka import cka_tab
    from proactiv.report import write_report

    runner = CliRunner()
    done = runner.invoke(app, ["cka", str(noise_run.path), "--set", "batch_size=16", "--device", "cpu",
                               "--no-progress"])  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "Representation similarity (CKA):" in done.output and "cka.parquet" in done.output
    table = pd.read_parquet(noise_run.path / "analysis" / "cka.parquet")

    page = write_report(noise_run, method="pca", settings={"cka": {"batch_size": 16}}).read_text()
    assert "<h2>Representation similarity (CKA)</h2>" in page
    assert "image_noise.level = 0.6 CKA first falls below 0.9 at " in page
    assert "heatmap of CKA per layer and transform value" in page

    fig = cka_figure(table)
    heat = fig.data[0]
    assert list(heat.y) == ["0", "2", "5"] and list(heat.x) == ["0", "0.1", "0.6"]
    expected = table.pivot(index="layer_index", columns="value", values="cka").to_numpy()
    np.testing.assert_allclose(np.asarray(heat.z, dtype=float), expected)
    assert fig.data[1].mode == "markers" and fig.data[1].x == ("0.6",)  # the first layer below 0.9, circled

    graph = cka_tab(table, StepContext(noise_run))
    assert graph.figure.data[0].z is not None
    again = cka_view(noise_run)  # the stored result, not recomputed
    np.testing.assert_allclose(np.asarray(again.data[0].z, dtype=float), expected)

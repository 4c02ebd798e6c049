"""Per-instance breakpoints: an adaptive search (coarse scan + bisection, forward passes only) lands within the
resolution of a planted flip, agrees with a dense scan of the same lattice at a fifth of its cost or less,
and reaches the CLI, the report and the dashboard as a registered step."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import proactiv as pv
from proactiv.analysis.instance_breakpoints import (
    instance_boundary,
    instance_breakpoints,
    sides,
)
from proactiv.testing import sweep_image_run

D = 1024
#: planted SNR breakpoints (dB); the last one lies below the noise parameter's range (-40 dB): never flips
PLANTED = np.array([3.3, 7.7, 12.1, 25.9, -10.4, -50.0])


class VarianceGate(nn.Module):
    """Class 0 while the input's variance stays below 1, class 1 above: for a constant input of amplitude a
    under white noise at SNR s (noise power a² / 10^(s/10)), the prediction flips at s = 20·log10(a)."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(4.0))

    def forward(self, x):
        margin = 1.0 - x.var(dim=1, unbiased=False)
        return self.scale * torch.stack([margin, torch.zeros_like(margin)], dim=1)


class SmallMLP(nn.Module):
    """A fixed random 3-class MLP on 16 features."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.net = nn.Sequential(nn.Linear(16, 32), nn.Tanh(), nn.Linear(32, 3))

    def forward(self, x):
        return self.net(x)


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    model = VarianceGate()
    x = torch.from_numpy(10 ** (PLANTED / 20)).float()[:, None] * torch.ones(len(PLANTED), D)
    grid = pv.Grid(
        [pv.transforms.get("noise", snr_db=[math.inf, 20, 0]), pv.transforms.get("gain", gain_db=[0, 6])]
    )
    return pv.sweep(model, x, torch.zeros(len(PLANTED), dtype=torch.long), grid,
                    tmp_path_factory.mktemp("ibp") / "run", projector=pv.Projector(model, max_steps=3),
                    progress=False, input_kind="vector")  # fmt: skip


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory):
    model = SmallMLP()
    torch.manual_seed(0)
    x = torch.randn(24, 16)
    y = model(x).argmax(1)  # every instance right at the identity
    grid = pv.Grid([pv.transforms.get("gain", gain_db=[0, -20, 20]), pv.transforms.get("clip", level=[1.0, 0.3]),
                    pv.transforms.get("noise", snr_db=[math.inf, 10])])  # fmt: skip
    return pv.sweep(model, x, y, grid, tmp_path_factory.mktemp("ibp") / "mlp",
                    projector=pv.Projector(model, max_steps=3), progress=False, input_kind="vector")  # fmt: skip


def test_breakpoint_lands_within_the_resolution_of_the_planted_snr(planted):
    res = 0.25
    result = instance_breakpoints(planted, resolution={"noise.snr_db": res}, device="cpu")
    snr = result.table[result.table.column == "noise.snr_db"].set_index("instance").sort_index()
    assert list(snr.side) == ["down"] * len(PLANTED)  # an infinite identity: searched from +120 dB down
    assert not snr.flipped_at_identity.any() and (snr.resolution == res).all()
    found, expected = snr.breakpoint.to_numpy()[:-1], PLANTED[:-1]
    assert np.all(found <= expected + 1e-3) and np.all(found > expected - res - 1e-3), (found, expected)
    assert math.isnan(snr.breakpoint.iloc[-1])  # -50 dB is outside [-40, 120]
    # the gain alone never raises a constant input's variance: no flip anywhere on that parameter
    assert result.table[result.table.column == "gain.gain_db"].breakpoint.isna().all()
    wide = result.per_instance.set_index("instance")
    np.testing.assert_array_equal(wide["ibp.noise.snr_db"].to_numpy(), snr.breakpoint.to_numpy())
    assert wide["ibp.gain.gain_db"].isna().all()


def test_held_parameters_move_the_breakpoint(planted):
    """Noise comes before a 6 dB gain, which multiplies the noise power by 4: the flip comes 6 dB earlier."""
    res = 0.25
    base = {"noise.snr_db": res}
    held = instance_breakpoints(planted, columns=["noise.snr_db"], resolution=base, held={"gain.gain_db": 6.0},
                                device="cpu").table  # fmt: skip
    at_point = instance_breakpoints(
        planted, columns=["noise.snr_db"], resolution=base, held=3, device="cpu"
    ).table
    expected = PLANTED[:-1] + 6.0
    assert np.all(np.abs(held.breakpoint.to_numpy()[:-1] - expected) <= res + 1e-3)
    # grid point 3 is (20 dB, +6 dB): the searched column starts at its identity, the gain stays at +6 dB
    pd.testing.assert_series_equal(held.breakpoint, at_point.breakpoint)


def test_adaptive_agrees_with_the_dense_lattice_at_a_fifth_of_the_cost(mlp_run):
    adaptive = instance_breakpoints(mlp_run, device="cpu").table
    dense = instance_breakpoints(mlp_run, method="dense", device="cpu").table
    assert adaptive.breakpoint.notna().sum() >= 20  # the comparison has flips to compare
    deterministic = adaptive.column != "noise.snr_db"
    np.testing.assert_array_equal(adaptive.breakpoint[deterministic], dense.breakpoint[deterministic])
    # a search holds its start point's noise draws, so flips rarely come and go along the noise (1 in 24 here)
    same = np.isclose(adaptive.breakpoint, dense.breakpoint) | (
        adaptive.breakpoint.isna() & dense.breakpoint.isna()
    )
    assert same[~deterministic].mean() >= 0.9
    # where they differ, the adaptive value is a later flip, never a value that does not flip
    assert (adaptive.range_fraction[~same] > dense.range_fraction[~same]).all()
    assert dense.evaluations.sum() >= 5 * adaptive.evaluations.sum()
    # the dense scan pays one pass per lattice value of every side (+1 at the identity, once per instance)
    params = {t.column: t.param for t in mlp_run.grid.transforms}
    lattice = sum(s.steps for c, p in params.items() for s in sides(c, p, (p.high - p.low) / 200))
    assert dense.evaluations.sum() == 24 * (lattice + 1)


def test_an_instance_flipped_at_the_identity_gets_no_breakpoint(mlp_run):
    """Relabel one instance: it is wrong at the identity, so no search runs for it."""
    task = mlp_run.task()
    task.labels = task.labels.clone()
    task.labels[0] = (task.labels[0] + 1) % 3
    table = instance_breakpoints(mlp_run, task=task, device="cpu").table
    first = table[table.instance == 0]
    assert first.flipped_at_identity.all() and first.breakpoint.isna().all()
    assert first.evaluations.sum() == 1  # the one pass at the identity, shared by every parameter
    assert not table[table.instance != 0].flipped_at_identity.any()


def test_boundary_curve_follows_the_planted_plane(planted):
    """Gain after noise multiplies the variance by 10^(g/10): at SNR s instance 2 (flips at 12.1 dB) flips at
    g = s − 12.1 dB, and is flipped already (at 0 dB gain) below 12.1 dB."""
    res = 0.1
    curve = instance_boundary(planted, 2, "noise.snr_db", "gain.gain_db", values_a=[30.0, 20.0, 10.0],
                              resolution={"gain.gain_db": res}, device="cpu")  # fmt: skip
    up = curve[curve.side == "up"].set_index("value_a")
    for s in (30.0, 20.0):
        g = s - PLANTED[2]
        assert g <= up.breakpoint[s] < g + res + 1e-3
    assert up.flipped_at_identity[10.0] and math.isnan(up.breakpoint[10.0])
    assert curve[curve.side == "down"].breakpoint.isna().all()  # less gain, less variance: never flips


def test_a_tensor_target_flips_when_its_loss_leaves_the_cutoff(tmp_path):
    run = sweep_image_run(tmp_path / "img")  # identity denoiser: the loss is 0 at the identity
    table = instance_breakpoints(run, device="cpu").table
    assert not table.flipped_at_identity.any()
    blur = table[table.column == "blur.sigma"]
    assert blur.breakpoint.notna().all() and (blur.breakpoint > 0).all()
    assert set(table.group) == {"0", "1", "2"}  # meta.digit groups the instances


def test_the_step_runs_from_the_cli_and_reaches_the_report_and_dashboard(planted):
    from proactiv.cli import app
    from proactiv.dashboard.app import build_app
    from proactiv.report import write_report

    out = CliRunner().invoke(app, ["analyze", str(planted.path), "--step", "instance_breakpoints", "--device", "cpu",
                                   "--no-progress"])  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "computed: instance_breakpoints" in out.output
    assert "instance_breakpoints: 6 instances × 2 parameters" in out.output
    stored = pv.analysis.load(planted)["instance_breakpoints"]
    assert set(stored.per_instance.columns) == {"instance", "ibp.noise.snr_db", "ibp.gain.gain_db"}
    assert not stored.boundary.empty  # the earliest-breaking instance in the (noise, gain) plane
    page = write_report(planted, method="pca").read_text()
    assert "<section id='instance_breakpoints'><h2>Instance breakpoints</h2>" in page
    assert "Instances that break earliest" in page and "box plots of per-instance breakpoints" in page
    tab = next(
        t for t in build_app([planted.path]).layout["tabs"].children if t.label == "Instance breakpoints"
    )
    assert tab["ibp-distribution"].figure.data and tab["ibp-boundary"].figure.data


def test_slices_split_on_the_per_instance_breakpoints(tmp_path):
    """Failures that follow how early instances break are found as a slice on ``ibp.<column>``."""
    from proactiv.analysis.runview import open_view
    from proactiv.analysis.slices import error_slices
    from proactiv.testing import write_synthetic_run

    view = open_view(write_synthetic_run(tmp_path / "run", n_instances=120))
    ids = np.arange(120)
    assert view.attach([pd.DataFrame({"instance": ids, "ibp.noise.snr_db": np.where(ids % 2, 0.8, 0.2)})])
    top = error_slices(view, failure="instance % 2 = 0").iloc[0]
    assert "ibp.noise.snr_db" in top.conditions and top.error_rate == 1.0
    assert view.query(f"SELECT count(*) AS n FROM records WHERE {top['where']}").n[0] == top["size"]


def test_the_dashboard_and_slices_see_each_instances_reach(planted):
    from proactiv.dashboard.data import RunData

    pv.analysis.analyze(planted, method="pca")
    reach = pv.analysis.load(planted)["instance_breakpoints"].table
    assert {"ibp.noise.snr_db", "ibp.gain.gain_db"} <= set(RunData(planted.path, compute=False).columns)
    data = RunData(planted.path, compute=False)
    never = data.sql('SELECT DISTINCT "ibp.noise.snr_db" AS r FROM records WHERE instance = 5').r[0]
    assert (
        never == 1.0
        and reach[(reach.instance == 5) & (reach.column == "noise.snr_db")].breakpoint.isna().all()
    )

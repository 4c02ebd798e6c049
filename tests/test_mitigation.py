"""Mitigation: a plan drawn toward a run's worst slices, applied with the run's own transforms, improves those
slices when a model is retrained with it; bad runs and training inputs get errors that name the problem."""

import dataclasses
import json

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import proactiv as pv
from proactiv.analysis.runview import AnalysisError
from proactiv.config import parse_config
from proactiv.mitigation import PLAN_FILE, AugmentPlan, Condition, augmentation_plan, compare
from proactiv.sweep import sweep_config
from proactiv.testing import sweep_image_run

NAMES = ["a", "b"]
INF = float("inf")


def planted(n: int, seed: int):
    """Two classes in 8-D: a precise cue (x0 = ±0.1) a clean-trained model leans on and noise drowns, and a
    robust but noisy cue (x1 = ±1 + N(0, 1)); the other six dimensions are noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    s = y.float() * 2 - 1
    x = torch.randn(n, 8, generator=g)
    x[:, 0] = 0.1 * s
    x[:, 1] = s + torch.randn(n, generator=g)
    return x, y


def fit(x, y):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 2))
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    for _ in range(300):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model.eval()


GRID = pv.Grid([pv.transforms.get("noise", snr_db=[INF, 10, 0]), pv.transforms.get("gain", gain_db=[0, -6])])


def sweep(model, x, y, path):
    return pv.sweep(model, x, y, GRID, path, projector=pv.Projector(model, max_steps=10), class_names=NAMES,
                    progress=False, keep_arrays="none")  # fmt: skip


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(
        1
    )  # two threads on a busy machine spin-wait: the digits test took minutes, not seconds


@pytest.fixture(scope="module")
def planted_case(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mitigation")
    train, test = planted(2000, 0), planted(60, 1)
    before = sweep(fit(*train), *test, folder / "before")
    return folder, train, test, before


def test_retraining_with_the_plan_improves_the_worst_slices(planted_case):
    folder, (x, y), test, before = planted_case
    plan = augmentation_plan(before)
    # the worst slices are under noise (gain alone never hurts this model), so every condition adds noise
    assert all("noise.snr_db" in s["conditions"] for s in plan.slices)
    assert all(c.values.get("noise.snr_db", INF) <= 10 for c in plan.conditions)
    assert sum(c.weight for c in plan.conditions) == pytest.approx(1.0)
    assert plan.slices[0]["weight"] >= plan.slices[-1]["weight"]
    extra_x, extra_y, source = plan.apply(x, y, NAMES)
    assert len(extra_x) == len(x) // 2 and torch.equal(extra_y, y[torch.as_tensor(source)])
    after = sweep(fit(torch.cat([x, extra_x]), torch.cat([y, extra_y])), *test, folder / "after")
    table = compare(before, after, n_slices=2).set_index("measure")
    slices = table[table.index.str.startswith("slice")]
    assert len(slices) == 2 and (slices.change >= 0.15).all(), table
    assert table.loc["clean (identity point)", "after"] >= 0.95, table
    assert table.loc["whole grid", "change"] >= 0.08, table


def test_plan_applies_the_runs_own_transforms_seeded_and_round_trips(planted_case, tmp_path):
    _, (x, y), _, before = planted_case
    plan = augmentation_plan(before, share=0.1, seed=3)
    first, labels, source = plan.apply(x, y)
    again, _, _ = plan.apply(x, y)
    assert torch.equal(first, again)  # seeded
    other, _, _ = augmentation_plan(before, share=0.1, seed=4).apply(x, y)
    assert not torch.equal(first, other)
    # each augmented example is its source example under one of the plan's conditions, by the run's grid
    conditions = [c.values for c in plan.conditions]
    for k in range(3):
        candidates = [GRID.apply_values(x[source[k]][None], [k], values, plan.seed) for values in conditions]
        assert any(torch.allclose(first[k], c[0]) for c in candidates)
    plan.save(tmp_path)
    back = AugmentPlan.load(tmp_path)
    assert back.to_dict() == plan.to_dict() and back.key() == plan.key()
    assert (
        json.loads((tmp_path / PLAN_FILE).read_text())["slices"][0]["conditions"]
        == plan.slices[0]["conditions"]
    )
    assert augmentation_plan(before, seed=4).key() != augmentation_plan(before, seed=3).key()


def test_training_of_another_task_is_refused(planted_case):
    _, (x, y), _, before = planted_case
    plan = augmentation_plan(before)
    with pytest.raises(ValueError, match=r"classes \['a', 'b'\] differ from the training's \['0', '1'\]"):
        plan.apply(x, y, ["0", "1"])
    with pytest.raises(ValueError, match=r"shape \(5,\).*the run's are \(8,\)"):
        plan.apply(x[:, :5], y)
    rotate = dataclasses.replace(
        plan,
        grid=[{"type": "rotate", "degrees": [0, 30]}],
        conditions=[Condition({"rotate.degrees": 30.0}, 1.0, "x")],
    )
    with pytest.raises(
        ValueError, match=r"rotate.degrees = 30 cannot act on training inputs of shape \(8,\)"
    ):
        rotate.apply(x, y)


def test_runs_without_anything_to_retrain_toward_are_named(tmp_path, planted_case):
    _, (x, y), test, _ = planted_case
    gain_only = pv.Grid([pv.transforms.get("gain", gain_db=[0, -6])])
    model = fit(x, y)
    xs, _ = test
    with torch.no_grad():
        own = model(xs).argmax(1)  # labelled with its own predictions: it fails on nothing
    perfect = pv.sweep(model, xs, own, gain_only, tmp_path / "perfect", projector=pv.Projector(model, max_steps=5),
                       progress=False, keep_arrays="none")  # fmt: skip
    with pytest.raises(AnalysisError, match="fails on no record; nothing to retrain toward"):
        augmentation_plan(perfect)
    with pytest.raises(AnalysisError, match="not a class label"):
        augmentation_plan(sweep_image_run(tmp_path / "denoiser"))
    with pytest.raises(ValueError, match="share=0"):
        augmentation_plan(perfect, share=0)


def test_digits_train_augment_from_a_run(tmp_path, planted_case):
    """`proactiv digits train --augment-from RUN` end to end at the native 8×8: the plan is stored with the model,
    the digits task sweeps it with model: {path: DIR}, and the rotated digits it failed on improve."""
    from proactiv.cli import app

    torch.set_num_threads(
        1
    )  # two threads on a busy machine spin-wait: this test took minutes instead of seconds

    def digits_run(out, model=None):
        cfg = {"task": "digits", "data": {"instances_per_class": 3, "image_size": 8},
               "grid": [{"type": "rotate", "degrees": [0, 45]}], "projection": {"max_steps": 10}}  # fmt: skip
        if model is not None:
            cfg["model"] = {"path": str(model)}
        return sweep_config(parse_config(cfg, "test"), out, progress=False)

    before = digits_run(tmp_path / "before")
    runner = CliRunner()
    args = [
        "digits",
        "train",
        "--out",
        str(tmp_path / "m"),
        "--image-size",
        "8",
        "--epochs",
        "15",
        "--augment-from",
        str(before.path),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "slice 1: rotate.degrees = 45" in result.output
    plan = AugmentPlan.load(tmp_path / "m")
    assert plan.run == str(before.path) and plan.fingerprint == before.fingerprint()
    assert "up to date" in runner.invoke(app, args).output  # cached: same settings, same plan
    after = digits_run(tmp_path / "after", tmp_path / "m")
    table = compare(before, after).set_index("measure")
    assert table.change.iloc[0] >= 0.3, table
    assert table.loc["clean (identity point)", "after"] >= 0.9, table

    _, _, _, vector_run = planted_case
    refused = runner.invoke(app, ["digits", "train", "--out", str(tmp_path / "x"), "--image-size", "8",
                                  "--augment-from", str(vector_run.path)])  # fmt: skip
    assert refused.exit_code == 2 and "the run's classes ['a', 'b'] differ" in refused.output
    missing = runner.invoke(
        app, ["digits", "train", "--out", str(tmp_path / "x"), "--augment-from", str(tmp_path / "nope")]
    )
    assert missing.exit_code == 2 and "--augment-from" in missing.output


def test_plan_draws_toward_per_instance_breakpoints_when_stored(tmp_path, planted_case):
    from proactiv.analysis import analyze

    _, (x, y), test, _ = planted_case
    run = sweep(fit(x, y), *test, tmp_path / "run")
    without = augmentation_plan(run)
    assert {c.source for c in without.conditions} == {f"slice {s['slice']}" for s in without.slices}
    analyze(run, steps=["instance_breakpoints", "slices"], device="cpu")
    plan = augmentation_plan(run)
    found = [c for c in plan.conditions if c.source == "breakpoint"]
    assert found and sum(c.weight for c in found) == pytest.approx(0.25)
    grid_values = set(GRID.transforms[0].values) | set(GRID.transforms[1].values)
    assert any(v not in grid_values for c in found for v in c.values.values())  # between the grid's values
    extra_x, _, _ = plan.apply(x, y)
    assert torch.isfinite(extra_x).all()


def test_kws_training_hook_appends_augmented_clips_after_the_clean_ones(planted_case):
    import numpy as np

    from proactiv.tasks.kws.train import Split, _with_augmented

    _, (x, y), _, before = planted_case
    engines = np.asarray(["espeak", "flite"] * (len(y) // 2))
    train = Split(x, y, engines)
    out = _with_augmented(train, augmentation_plan(before), NAMES)
    extra = len(out) - len(train)
    assert extra == len(train) // 2 and torch.equal(out.waves[: len(train)], x)
    _, labels, source = augmentation_plan(before).apply(x, y)
    assert (
        torch.equal(out.labels[len(train) :], labels) and (out.engines[len(train) :] == engines[source]).all()
    )

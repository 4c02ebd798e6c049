"""Faithfulness on models whose right answers are known: on a linear model integrated gradients (and saliency, where
the weights are not negative) are exact, so their infidelity vanishes, saliency does not move under a perturbation,
deleting by integrated gradients lowers the score monotonically and faster than random; model randomisation flags
a "method" that returns the input itself; what cannot be measured is NaN with a reason and a "not checked"
verdict; a record's figures do not depend on the batch it shares; and the step reaches the CLI."""

import math
import zlib

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from proactiv.analysis import analyze
from proactiv.analysis.faithfulness import (
    Budget,
    FaithfulnessStep,
    default_methods,
    faithfulness_summary,
    faithfulness_table,
)
from proactiv.analysis.faithfulness_metrics import (
    Explainer,
    area,
    deletion_curve,
    deletion_order,
    explainer,
    infidelity,
    max_sensitivity,
    random_order,
    randomised_cascade,
    record_seeds,
    register_explainer,
    scorer,
    similarity,
    unregister_explainer,
)
from proactiv.cli import app
from proactiv.optimize import Projector
from proactiv.sweep import sweep
from proactiv.transforms import Grid, get

torch.set_num_threads(1)
FEATURES = 8


def linear(weights) -> nn.Module:
    """Logits (0, w · x): class 1 reads the features with ``weights``, class 0 is a constant."""
    model = nn.Linear(FEATURES, 2)
    with torch.no_grad():
        model.weight.zero_()
        model.weight[1] = torch.as_tensor(weights, dtype=torch.float32)
        model.bias.copy_(torch.tensor([0.0, -2.0]))
    return model.eval()


POSITIVE = [2.0, 1.5, 1.0, 0.8, 0.5, 0.3, 0.2, 0.1]
MIXED = [2.0, -1.5, 1.0, -0.8, 0.5, -0.3, 0.2, -0.1]


def inputs(n=6, seed=0):
    return 0.5 + torch.rand(n, FEATURES, generator=torch.Generator().manual_seed(seed))


def maps_of(model, method, x, t):
    return explainer(method).explain(model, x, t, target_kind="label", loss="mse", baseline=0.0, layer=None)


def seeds(n, salt="test"):
    return record_seeds(0, range(n), [0] * n, salt)


def itself(model, inputs, targets, **_):
    """The input as its own "explanation": it ignores the model."""
    return inputs.detach().clone()


def noise(model, inputs, targets, **_):
    """Noise seeded by each input's bytes: ignores the model, jumps with the input."""
    out = []
    for x in inputs.detach():
        gen = torch.Generator().manual_seed(zlib.crc32(x.numpy().tobytes()))
        out.append(torch.randn(x.shape, generator=gen))
    return torch.stack(out)


@pytest.fixture
def planted_methods():
    register_explainer(Explainer("input_itself", itself))
    register_explainer(Explainer("noise_test", noise))
    yield
    unregister_explainer("input_itself")
    unregister_explainer("noise_test")


@pytest.mark.parametrize("method, weights", [("integrated_gradients", POSITIVE), ("integrated_gradients", MIXED),
                                             ("saliency", POSITIVE)])  # fmt: skip
def test_exact_methods_have_no_infidelity_on_a_linear_model(method, weights):
    model, x = linear(weights), inputs()
    t = torch.ones(len(x), dtype=torch.long)
    maps = maps_of(model, method, x, t)
    fid, rel = infidelity(model, x, t, maps, torch.zeros_like(x), seeds(len(x)),
                          multiplies_input=explainer(method).multiplies_input, samples=32)  # fmt: skip
    assert np.all(fid < 1e-5) and np.all(rel < 1e-5)  # float32 rounding


def test_saliency_ignores_the_sign_and_infidelity_says_so():
    model, x = linear(MIXED), inputs()
    t = torch.ones(len(x), dtype=torch.long)
    _, rel = infidelity(model, x, t, maps_of(model, "saliency", x, t), torch.zeros_like(x), seeds(len(x)),
                        multiplies_input=False, samples=32)  # fmt: skip
    assert np.median(rel) > 0.1  # |w| takes the negative evidence for positive


def test_perturbations_are_the_records_own():
    """A record's infidelity is the same alone as among others (its perturbations come from its own seed)."""
    model, x = linear(MIXED), inputs()
    t = torch.ones(len(x), dtype=torch.long)
    maps = maps_of(model, "saliency", x, t)
    together = infidelity(model, x, t, maps, torch.zeros_like(x), seeds(len(x)), multiplies_input=False)[0]
    alone = infidelity(model, x[2:3], t[2:3], maps[2:3], torch.zeros_like(x[2:3]), seeds(len(x))[2:3],
                       multiplies_input=False)[0]  # fmt: skip
    assert alone[0] == pytest.approx(together[2])


def test_max_sensitivity_is_zero_for_a_steady_map_and_about_root_two_for_fresh_noise():
    model, x = linear(POSITIVE), inputs()
    t = torch.ones(len(x), dtype=torch.long)
    zero = torch.zeros_like(x)
    steady = max_sensitivity(lambda z, g, b: maps_of(model, "saliency", z, g), x, t, zero, seeds(len(x)),
                             np.full(len(x), 0.02))  # fmt: skip
    jumpy = max_sensitivity(
        lambda z, g, b: noise(model, z, g), x, t, zero, seeds(len(x)), np.full(len(x), 0.02)
    )
    assert np.all(steady < 1e-6)
    assert np.all((jumpy > 1.1) & (jumpy < 2.0)) and abs(np.median(jumpy) - math.sqrt(2)) < 0.35


def test_deleting_by_integrated_gradients_is_monotone_and_beats_random():
    model, x = linear(POSITIVE), inputs()
    t = torch.ones(len(x), dtype=torch.long)
    prob = scorer(model, "label", probability=True)
    zero = torch.zeros_like(x)
    curve = deletion_curve(prob, x, t, zero, deletion_order(maps_of(model, "integrated_gradients", x, t)), 8)
    assert curve.shape == (len(x), 9)
    assert np.all(np.diff(curve, axis=1) <= 1e-7)  # every deleted feature held positive evidence
    np.testing.assert_allclose(curve[:, 0], prob(x, t).detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(curve[:, -1], prob(zero, t).detach().numpy(), rtol=1e-6)
    rand = np.mean([deletion_curve(prob, x, t, zero, random_order(seeds(len(x), f"r{k}"), FEATURES), 8)
                    for k in range(5)], axis=0)  # fmt: skip
    assert np.all(area(curve) < area(rand))


def test_deletion_order_puts_the_largest_attribution_first():
    place = deletion_order(torch.tensor([[0.1, 3.0, -2.0, 3.0]]))
    assert place.tolist() == [[2, 0, 3, 1]]  # ties in index order, the most negative last


def test_randomisation_leaves_the_input_itself_unchanged_and_moves_saliency():
    model, x = linear(MIXED), inputs()
    t = torch.ones(len(x), dtype=torch.long)
    cascade, why = randomised_cascade(model, 3)
    assert [n for n, _ in cascade] == [""] and not why  # the model itself is its only parameterised layer
    assert torch.equal(model.weight[1], torch.tensor(MIXED))  # the original is left alone
    again, _ = randomised_cascade(model, 3)
    assert torch.equal(cascade[0][1].weight, again[0][1].weight)  # seeded
    rho, overlap = similarity(itself(model, x, t).numpy(), itself(cascade[0][1], x, t).numpy())
    assert np.all(rho == 1) and np.all(overlap == 1)
    rho, _ = similarity(
        maps_of(model, "saliency", x, t).numpy(), maps_of(cascade[0][1], "saliency", x, t).numpy()
    )
    assert np.all(rho < 0.5)


def test_a_model_without_layers_cannot_be_randomised():
    class Square(nn.Module):
        def forward(self, x):
            return torch.stack([x.sum(1) * 0, (x**2).sum(1)], 1)

    assert randomised_cascade(Square(), 2) == ([], "Square has no layer with parameters to re-initialise")


@pytest.fixture(scope="module")
def vector_run(tmp_path_factory):
    """Ten positive 8-feature vectors, the linear model with positive weights calling them all class 1."""
    model, x = linear(POSITIVE), inputs(10)
    grid = Grid([get("gain", gain_db=[0.0, -3.0])])
    return sweep(model, x, torch.ones(len(x), dtype=torch.long), grid, tmp_path_factory.mktemp("faith") / "run",
                 projector=Projector(model, max_steps=20), keep_arrays="all", progress=False, input_kind="vector",
                 class_names=["a", "b"])  # fmt: skip


def test_the_table_measures_each_method_and_flags_the_input_itself(vector_run, planted_methods):
    table = faithfulness_table(vector_run, methods=["saliency", "integrated_gradients", "input_itself"],
                               device="cpu", budget=Budget(deletion_steps=8))  # fmt: skip
    assert len(table) == 3 * 10 and set(table.input) == {"x"}  # one record per instance on x
    assert (table.target == 1).all() and (table.reason == "").all()
    summary = faithfulness_summary(table).set_index("method")
    assert summary.infidelity_rel["integrated_gradients"] < 1e-6 and summary.infidelity_rel["saliency"] < 1e-6
    assert summary.randomisation.to_dict() == {"saliency": "passes", "integrated_gradients": "passes",
                                               "input_itself": "flagged"}  # fmt: skip
    assert summary.randomised_spearman["input_itself"] == 1.0
    assert (
        summary.deletion_ratio["integrated_gradients"] < 1
        and summary.deletion["integrated_gradients"] == "passes"
    )
    assert table.attrs["randomised"] == [""] and len(table.attrs["curves"]["saliency"]) == 9
    note = FaithfulnessStep().note(table)
    assert "input_itself: " in note and "randomisation ρ 1.00 — FLAGGED by" in note
    assert note.startswith("10 records (x) toward the desired target")


def test_a_record_does_not_depend_on_its_batch(vector_run):
    one = faithfulness_table(
        vector_run, methods=["saliency"], device="cpu", batch_size=1, budget=Budget(deletion_steps=4)
    )
    all_ = faithfulness_table(
        vector_run, methods=["saliency"], device="cpu", batch_size=16, budget=Budget(deletion_steps=4)
    )
    np.testing.assert_allclose(
        one.select_dtypes("number"), all_.select_dtypes("number"), rtol=1e-5, atol=1e-5
    )


def test_what_cannot_be_measured_is_nan_with_a_reason(vector_run):
    assert default_methods(linear(POSITIVE)) == [
        "saliency",
        "integrated_gradients",
    ]  # no convolution: no Grad-CAM
    table = faithfulness_table(vector_run, methods=["gradcam"], device="cpu", budget=Budget(deletion_steps=4))
    assert table[["infidelity", "deletion_ratio", "randomised_spearman"]].isna().all().all()
    assert (table.reason == "Linear has no convolution layer").all()
    summary = faithfulness_summary(table).iloc[0]
    assert summary.deletion == summary.randomisation == "not checked"
    assert summary.not_measured == "Linear has no convolution layer (10)"


def test_deletion_that_changes_nothing_is_not_a_verdict(tmp_path):
    """When the baseline scores as high as the input (here the model reads no feature), a deletion curve says
    nothing about the order: NaN, the reason, "not checked" — not a pass."""
    model, x = linear([0.0] * FEATURES), inputs(4)
    run = sweep(model, x, torch.ones(4, dtype=torch.long), Grid([get("gain", gain_db=[0.0])]), tmp_path / "run",
                projector=Projector(model, max_steps=2), keep_arrays="all", progress=False, input_kind="vector")  # fmt: skip
    table = faithfulness_table(
        run, methods=["integrated_gradients"], device="cpu", budget=Budget(deletion_steps=4)
    )
    assert table.deletion_ratio.isna().all()
    assert table.reason.str.contains("deleting every feature lowers the score by less than 0.05").all()
    assert faithfulness_summary(table).deletion[0] == "not checked"


@pytest.mark.parametrize("bad", [{"deletion_steps": 0}, {"random_orders": 0}, {"sensitivity_radius": 0.0}])
def test_bad_budgets_are_named(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        Budget(**bad)


def test_unknown_methods_and_inputs_are_named(vector_run):
    with pytest.raises(ValueError, match="method 'lime': expected one of saliency"):
        faithfulness_table(vector_run, methods=["lime"], device="cpu")
    with pytest.raises(ValueError, match="inputs="):
        faithfulness_table(vector_run, inputs=["y"], device="cpu")
    with pytest.raises(ValueError, match="built-in"):
        unregister_explainer("saliency")


def test_the_step_follows_the_target_and_reaches_the_cli(vector_run):
    result = CliRunner().invoke(app, ["analyze", str(vector_run.path), "--step", "faithfulness", "--device", "cpu",
                                      "--set", "faithfulness.steps=4", "--no-progress"])  # fmt: skip
    assert result.exit_code != 0 and "'steps'" in result.output  # an unknown setting is named
    result = CliRunner().invoke(app, ["analyze", str(vector_run.path), "--step", "faithfulness", "--device", "cpu",
                                      "--set", "faithfulness.deletion_steps=4", "--set", "faithfulness.target=predicted",
                                      "--no-progress"])  # fmt: skip
    assert result.exit_code == 0, result.output
    settings = {"faithfulness": {"deletion_steps": 4, "target": "predicted"}}
    table = analyze(vector_run, steps=["faithfulness"], settings=settings, device="cpu")["faithfulness"]
    assert table.attrs["target"] == "predicted" and len(table) == 20

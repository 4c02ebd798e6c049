"""The projection engine: closed-form optimum, per-sample independence, stopping, freezing, errors."""

import pytest
import torch
from torch import nn

import proactiv as pv
from proactiv.testing import cue_shares, planted_cue


def test_linear_regression_reaches_closed_form_projection():
    # f(z) = w·z + b with MSE to t: gradient descent from x0 stays on x0 + span(w), so it ends at the
    # orthogonal projection of x0 onto the hyperplane w·z + b = t.
    torch.manual_seed(0)
    d = 16
    model = nn.Linear(d, 1).double()
    w, b = model.weight.detach()[0], model.bias.detach()[0]
    x0 = torch.randn(5, d, dtype=torch.float64)
    t = torch.randn(5, 1, dtype=torch.float64)
    lr = 0.25 / float(w @ w)
    res = pv.Projector(model, loss="mse", optimizer="sgd", lr=lr, cutoff=1e-20, max_steps=200).project(x0, t)
    expected = x0 + ((t[:, 0] - x0 @ w - b) / (w @ w))[:, None] * w
    assert torch.allclose(res.inputs, expected, atol=1e-9)
    assert res.converged.all()
    assert (res.loss_after < 1e-20).all() and (res.loss_before > 1e-6).all()


def test_linear_classifier_adam_default_converges_to_target_class():
    torch.manual_seed(1)
    model = nn.Linear(10, 3)
    x = torch.randn(40, 10)
    y = torch.randint(0, 3, (40,))
    res = pv.Projector(model, cutoff=0.05, max_steps=300, lr_fraction=0.1).project(x, y)
    assert res.converged.all()
    assert (res.outputs_after.argmax(1) == y).all()
    assert torch.allclose(res.loss_after, nn.functional.cross_entropy(model(res.inputs), y, reduction="none"))


@pytest.mark.parametrize("optimizer, max_steps", [("polyak", 3), ("adam", 80)])
def test_batched_projection_equals_each_sample_alone(small_cnn, optimizer, max_steps):
    model = small_cnn.double()
    torch.manual_seed(2)
    x = torch.rand(9, 1, 8, 8, dtype=torch.float64)
    y = torch.arange(9) % 4
    kw = dict(lr=0.02, cutoff=0.05, max_steps=max_steps, optimizer=optimizer)
    batched = pv.Projector(model, batch_size=4, **kw).project(x, y)
    assert 0 < batched.converged.sum() < 9  # a mix of converged and unconverged samples
    for i in range(9):
        alone = pv.Projector(model, batch_size=1, **kw).project(x[i : i + 1], y[i : i + 1])
        assert alone.steps[0] == batched.steps[i]
        assert alone.converged[0] == batched.converged[i]
        assert torch.allclose(alone.inputs[0], batched.inputs[i], atol=1e-10)


def test_sample_is_not_updated_after_it_converged(small_cnn):
    model = small_cnn.double()
    torch.manual_seed(3)
    x = torch.rand(12, 1, 8, 8, dtype=torch.float64)
    y = torch.arange(12) % 4
    full = pv.Projector(model, lr=0.05, cutoff=0.05, max_steps=400, batch_size=5).project(x, y)
    assert full.converged.any() and full.steps.max() > 0
    for i in torch.nonzero(full.converged).flatten().tolist()[:4]:
        s = int(full.steps[i])
        stopped = pv.Projector(model, lr=0.05, cutoff=0.05, max_steps=s).project(x[i : i + 1], y[i : i + 1])
        assert torch.allclose(stopped.inputs[0], full.inputs[i], rtol=0, atol=1e-12)  # no update after step s
        if s > 0:  # one step earlier it had not converged yet: it stopped at the first step below the cutoff
            early = pv.Projector(model, lr=0.05, cutoff=0.05, max_steps=s - 1).project(
                x[i : i + 1], y[i : i + 1]
            )
            assert not early.converged[0]


def test_already_converged_sample_keeps_its_input_while_others_move(small_cnn):
    x = torch.rand(6, 1, 8, 8)
    pred = small_cnn(x).argmax(1).detach()
    y = pred.clone()
    y[3:] = (pred[3:] + 1) % 4
    res = pv.Projector(small_cnn, cutoff=10.0, max_steps=50).project(x[:3], y[:3])  # all below a loose cutoff
    assert torch.equal(res.inputs, x[:3]) and (res.steps == 0).all() and res.converged.all()
    res = pv.Projector(small_cnn, lr=0.05, cutoff=0.05, max_steps=50).project(x, y)
    assert (res.steps[3:] > 0).all() and not torch.equal(res.inputs[3:], x[3:])


def test_batch_mean_criterion_stops_all_samples_together(small_cnn):
    x = torch.rand(10, 1, 8, 8)
    y = torch.arange(10) % 4
    res = pv.Projector(
        small_cnn, criterion="batch_mean", lr=1e-2, cutoff=0.05, max_steps=300, batch_size=10
    ).project(x, y)
    assert res.steps.unique().numel() == 1
    assert res.loss_after.mean() < 0.05 and res.steps[0] < 300
    assert torch.equal(res.converged, res.loss_after < 0.05)  # converged stays a per-sample fact
    per_sample = pv.Projector(small_cnn, lr=1e-2, cutoff=0.05, max_steps=300).project(x, y)
    assert per_sample.converged.all() and per_sample.steps.min() < res.steps[0]


def test_model_is_frozen_and_restored(small_cnn):
    small_cnn.train()
    before = {k: v.clone() for k, v in small_cnn.state_dict().items()}
    pv.Projector(small_cnn, max_steps=20).project(torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 3]))
    assert all(torch.equal(before[k], v) for k, v in small_cnn.state_dict().items())
    assert small_cnn.training
    assert all(p.requires_grad for p in small_cnn.parameters())
    assert all(p.grad is None for p in small_cnn.parameters())


def test_regularizer_and_clamp(small_cnn):
    torch.manual_seed(4)
    x = torch.rand(8, 1, 8, 8)
    y = (small_cnn(x).argmax(1) + 1).detach() % 4
    free = pv.Projector(small_cnn, max_steps=100, cutoff=0.3).project(x, y)
    reg = pv.Projector(small_cnn, max_steps=100, cutoff=0.3, regularizer="l2", reg_weight=50.0).project(x, y)
    assert (reg.inputs - x).norm() < (free.inputs - x).norm()
    clamped = pv.Projector(small_cnn, max_steps=100, lr=0.2, clamp=(0.0, 1.0)).project(x, y)
    assert clamped.inputs.min() >= 0.0 and clamped.inputs.max() <= 1.0


def test_own_prediction_and_callable_losses(small_cnn):
    x = torch.rand(5, 1, 8, 8)
    xt = x + 0.5 * torch.randn_like(x)
    res = pv.Projector(small_cnn, loss="own_prediction", max_steps=200).project(xt, x)
    assert (res.outputs_after.argmax(1) == small_cnn(x).argmax(1)).all()

    def margin(outputs, targets):
        return torch.relu(1.0 - (outputs[:, 0] - outputs[:, 1]))

    res = pv.Projector(small_cnn, loss=margin, cutoff=1e-6, max_steps=300).project(x, torch.zeros(5))
    assert res.converged.all() and (res.outputs_after[:, 0] - res.outputs_after[:, 1] >= 1.0 - 1e-5).all()


class Argmaxed(nn.Module):
    def forward(self, x):
        return nn.functional.one_hot(x.flatten(1).argmax(1) % 4, 4).float()


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: (torch.zeros(2, 1, 8, 8, dtype=torch.int64), torch.tensor([0, 1])), "floating-point"),
        (lambda: (torch.full((2, 1, 8, 8), float("nan")), torch.tensor([0, 1])), "NaN or Inf"),
        (lambda: (torch.zeros(3, 1, 8, 8), torch.tensor([0, 1])), "2 targets for 3 inputs"),
        (lambda: (torch.zeros(2, 1, 8, 8), torch.tensor([0, 7])), "label 7 out of range"),
    ],
)
def test_bad_inputs_are_named(small_cnn, make, message):
    x, y = make()
    with pytest.raises((ValueError, TypeError), match=message):
        pv.Projector(small_cnn).project(x, y)


def test_wrong_input_shape_is_named(small_cnn):
    with pytest.raises(ValueError, match=r"model SmallCNN cannot take inputs of shape \(3, 8, 8\)"):
        pv.Projector(small_cnn).project(torch.rand(2, 3, 8, 8), torch.tensor([0, 1]))


def test_non_differentiable_model_is_named():
    with pytest.raises(ValueError, match="model Argmaxed: its output does not depend differentiably"):
        pv.Projector(Argmaxed()).project(torch.rand(2, 1, 8, 8), torch.tensor([0, 1]))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"optimizer": "lbfgs"}, "optimizer='lbfgs'"),
        ({"criterion": "median"}, "criterion='median'"),
        ({"lr": -1.0}, "lr=-1.0"),
        ({"loss": "hinge"}, "loss='hinge'"),
        ({"regularizer": "l3"}, "regularizer='l3'"),
        ({"device": "tpu"}, "device='tpu'"),
    ],
)
def test_bad_settings_are_named(small_cnn, kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        pv.Projector(small_cnn, **kwargs)


@pytest.mark.parametrize(
    "shape, region",
    [((16, 16), (slice(5, 8), slice(9, 12))), ((20, 30), (slice(7, 9), slice(None)))],
    ids=["patch", "band"],
)
def test_planted_cue_stands_out_in_the_bias_map(shape, region):
    model, x, y = planted_cue(shape, region)
    share = {}
    for optimizer in ("polyak", "adam"):
        result = pv.Projector(model, optimizer=optimizer, max_steps=3000).project(x, y)
        assert result.converged.all()
        share[optimizer] = cue_shares(result.inputs - x, region)
    (rank, mass), (adam_rank, adam_mass) = share["polyak"], share["adam"]
    assert rank == 1.0 and rank >= adam_rank  # the cue ranks as high as with Adam (the engine before)
    # and stands out: Adam moves every element at a similar rate, so its map is near uniform (the cue's share of
    # the mass is about its share of the area, 3.5 % / 10 %); the gradient-following step puts most of it there
    assert mass > 0.5 and mass > 3 * adam_mass


# ------------------------------------------------------------------------------ why a projection ended (status)
class Poisoned(nn.Module):
    """A linear classifier on (N, 1, 8, 8) with class 0 ahead by 5 logits, whose output is NaN once an input
    element exceeds 1 (or always): every step toward class 1 raises every element."""

    def __init__(self, always: bool = False):
        super().__init__()
        self.lin = nn.Linear(64, 2)
        with torch.no_grad():
            self.lin.weight.zero_()
            self.lin.weight[1] = 0.05
            self.lin.bias.copy_(torch.tensor([5.0, 0.0]))
        self.always = always

    def forward(self, x):
        out = self.lin(x.flatten(1))
        bad = (x.flatten(1).amax(1) > 1.0) | self.always
        return torch.where(bad[:, None], torch.full_like(out, float("nan")), out)


class NaNGradient(nn.Module):
    """A linear classifier with a finite loss and a NaN gradient everywhere (the root of a distance at 0)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(11)
        self.lin = nn.Linear(64, 2)

    def forward(self, x):
        flat = x.flatten(1)
        return self.lin(flat) + torch.sqrt((flat - flat.detach()).abs().sum(1, keepdim=True))


class Unreachable(nn.Module):
    """Class 0's logit is capped at 1 (tanh), class 1's is 5: the loss toward class 0 never falls below
    log(1 + e⁴) ≈ 4.02, so Polyak's steps stall, it restarts with Adam, and the budget runs out."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(7)
        self.lin = nn.Linear(64, 1)

    def forward(self, x):
        a = torch.tanh(self.lin(x.flatten(1)))
        return torch.cat([a, torch.full_like(a, 5.0)], 1)


class Dead(nn.Module):
    """ReLU units no input in [0, 1] switches on: both logits 0 everywhere, a zero gradient everywhere."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(64, 2)
        with torch.no_grad():
            self.lin.weight.fill_(0.01)
            self.lin.bias.fill_(-100.0)

    def forward(self, x):
        return torch.relu(self.lin(x.flatten(1)))


def test_a_constant_input_moves_with_the_batch_scale_or_says_it_has_none(small_cnn):
    torch.manual_seed(5)
    x = torch.rand(6, 1, 8, 8)
    x[0], x[1] = 1.0, 0.0  # a saturated image and a black one: no scale of their own
    y = (small_cnn(x).argmax(1) + 1).detach() % 4  # every one must move
    res = pv.Projector(small_cnn, max_steps=200).project(x, y)
    assert list(res.statuses) == ["converged"] * 6
    assert (res.steps[:2] > 0).all() and ((res.inputs[:2] - x[:2]).flatten(1).norm(dim=1) > 1e-2).all()
    alone = pv.Projector(small_cnn, max_steps=200).project(x[:2], y[:2])  # no scale anywhere
    assert list(alone.statuses) == ["no_scale"] * 2 and not alone.converged.any()
    assert (alone.steps == 0).all() and torch.equal(alone.inputs, x[:2])
    given = pv.Projector(small_cnn, max_steps=200).project(x[:2], y[:2], scale=float(x[2:].std()))
    assert list(given.statuses) == ["converged"] * 2  # a scale from elsewhere (the sweep: the run's inputs)
    with pytest.raises(ValueError, match="scale=0.0"):
        pv.Projector(small_cnn).project(x, y, scale=0.0)


def test_a_nan_loss_stops_the_sample_at_once_and_keeps_its_last_finite_point():
    torch.manual_seed(6)
    x = torch.rand(3, 1, 8, 8) * 0.9
    x.view(3, -1)[:, 0] = 1.0  # at the edge: the first step toward class 1 crosses it
    y = torch.ones(3, dtype=torch.long)
    res = pv.Projector(Poisoned(), max_steps=100).project(x, y)
    assert list(res.statuses) == ["nonfinite"] * 3 and (res.steps == 1).all() and not res.converged.any()
    assert torch.equal(res.inputs, x)  # its last finite point: xT, with the loss and output there
    assert torch.isfinite(res.loss_after).all() and torch.equal(res.loss_after, res.loss_before)
    assert torch.isfinite(res.outputs_after).all()
    always = pv.Projector(Poisoned(always=True), max_steps=100).project(x, y)
    assert list(always.statuses) == ["nonfinite"] * 3 and (always.steps == 0).all()
    assert torch.equal(always.inputs, x) and torch.isnan(always.loss_after).all()  # no finite point but xT
    model = NaNGradient()  # a finite loss, a NaN step: the input it leads to is never kept
    y = 1 - model(x).argmax(1).detach()
    nan_step = pv.Projector(model, max_steps=100).project(x, y)
    assert list(nan_step.statuses) == ["nonfinite"] * 3 and (nan_step.steps == 1).all()
    assert torch.equal(nan_step.inputs, x) and torch.equal(nan_step.loss_after, nan_step.loss_before)


def test_the_step_budget_is_the_total_across_restarts():
    torch.manual_seed(8)
    x = torch.rand(4, 1, 8, 8)
    res = pv.Projector(Unreachable(), max_steps=40).project(x, torch.zeros(4, dtype=torch.long))
    assert list(res.statuses) == ["budget"] * 4 and (res.steps == 40).all()


def test_the_lowest_loss_point_is_kept():
    # plain gradient descent with steps 3× too long for f(z) = w·z + b: each overshoots, the residual doubles
    torch.manual_seed(9)
    model = nn.Linear(16, 1)
    w = model.weight.detach()[0]
    x, t = torch.randn(3, 16), torch.randn(3, 1)
    sgd = pv.Projector(model, loss="mse", optimizer="sgd", lr=1.5 / float(w @ w), cutoff=1e-12, max_steps=3)
    res = sgd.project(x, t)
    assert list(res.statuses) == ["budget"] * 3 and (res.steps == 3).all()
    assert torch.equal(res.inputs, x) and torch.equal(res.loss_after, res.loss_before)
    with torch.no_grad():  # the losses and outputs are those of the point kept
        assert torch.allclose(res.outputs_after, model(res.inputs))
        assert torch.allclose(res.loss_after, (model(res.inputs) - t).square()[:, 0])


@pytest.mark.parametrize("optimizer, most", [("polyak", 13), ("adam", 1), ("sgd", 1)])
def test_a_projection_no_step_can_move_is_stalled(optimizer, most):
    x = torch.rand(3, 1, 8, 8)
    res = pv.Projector(Dead(), optimizer=optimizer, max_steps=100).project(x, torch.tensor([0, 1, 0]))
    assert list(res.statuses) == ["stalled"] * 3 and (res.steps <= most).all() and torch.equal(res.inputs, x)


def test_the_reference_rule_says_which_samples_only_stopped_with_their_chunk(small_cnn):
    torch.manual_seed(10)
    x = torch.rand(10, 1, 8, 8)
    res = pv.Projector(small_cnn, criterion="batch_mean", lr=1e-2, max_steps=300, batch_size=10).project(
        x, torch.arange(10) % 4
    )
    assert set(res.statuses) <= {"converged", "batch_mean"}
    assert list(res.statuses == "converged") == res.converged.tolist()

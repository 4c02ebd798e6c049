"""Targeted PGD: it stays inside its ε-ball and the value range, moves toward the target, and repeats itself."""

import pytest
import torch
from torch import nn

from proactiv.experiments.attack import targeted_pgd


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def linear(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 3)).eval()


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_the_change_stays_in_the_ball_and_the_value_range(norm):
    model, x = linear(), torch.rand(20, 1, 4, 4)
    target = (model(x).argmax(1) + 1) % 3
    z = targeted_pgd(model, x, target, eps=0.3, steps=10, norm=norm)
    change = (z - x).flatten(1)
    size = change.norm(dim=1) if norm == "l2" else change.abs().amax(1)
    assert (size <= 0.3 + 1e-5).all() and z.min() >= 0 and z.max() <= 1
    assert torch.equal(z, targeted_pgd(model, x, target, eps=0.3, steps=10, norm=norm))  # no random start


def test_a_large_budget_reaches_the_target_and_a_small_one_lowers_its_loss():
    model, x = linear(), torch.rand(30, 1, 4, 4)
    target = (model(x).argmax(1) + 1) % 3
    far = targeted_pgd(model, x, target, eps=50.0, steps=50, value_range=None)
    assert (model(far).argmax(1) == target).all()
    near = targeted_pgd(model, x, target, eps=0.05, steps=5)
    loss = lambda z: nn.functional.cross_entropy(model(z), target, reduction="none")  # noqa: E731
    assert (loss(near) < loss(x)).all()


@pytest.mark.parametrize(
    "budget, message",
    [({"eps": 0.0}, "eps=0.0: expected a number > 0"), ({"eps": -1.0}, "eps=-1.0"),
     ({"steps": 0}, "steps=0: expected a whole number >= 1"), ({"norm": "l1"}, "norm='l1': expected one of l2, linf")],
)  # fmt: skip
def test_a_budget_it_cannot_use_is_refused_naming_the_setting(budget, message):
    x = torch.rand(2, 1, 4, 4)
    settings = {"eps": 0.1, "steps": 3, "norm": "l2", **budget}
    with pytest.raises(ValueError, match=message):
        targeted_pgd(linear(), x, torch.zeros(2, dtype=torch.long), **settings)

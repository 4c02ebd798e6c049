"""PGD: it stays inside its ε-ball and the value range, moves toward a target or away from the label, repeats
itself from the clean point and follows its generator from a random start."""

import pytest
import torch
from torch import nn

from proactiv.attack import change_norm, pgd, random_start


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def linear(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 3)).eval()


def per_sample_loss(model, z, labels):
    return nn.functional.cross_entropy(model(z), labels, reduction="none")


@pytest.mark.parametrize("norm", ["l2", "linf"])
@pytest.mark.parametrize("targeted", [True, False])
def test_the_change_stays_in_the_ball_and_the_value_range(norm, targeted):
    model, x = linear(), torch.rand(20, 1, 4, 4)
    labels = (model(x).argmax(1) + 1) % 3
    z = pgd(model, x, labels, eps=0.3, steps=10, norm=norm, targeted=targeted, value_range=(0.0, 1.0))
    assert (change_norm(z - x, norm) <= 0.3 + 1e-5).all() and z.min() >= 0 and z.max() <= 1
    again = pgd(model, x, labels, eps=0.3, steps=10, norm=norm, targeted=targeted, value_range=(0.0, 1.0))
    assert torch.equal(z, again)  # no random start: the same inputs give the same result


def test_a_large_budget_reaches_the_target_and_a_small_one_lowers_its_loss():
    model, x = linear(), torch.rand(30, 1, 4, 4)
    target = (model(x).argmax(1) + 1) % 3
    far = pgd(model, x, target, eps=50.0, steps=50, targeted=True)
    assert (model(far).argmax(1) == target).all()
    near = pgd(model, x, target, eps=0.05, steps=5, targeted=True, value_range=(0.0, 1.0))
    assert (per_sample_loss(model, near, target) < per_sample_loss(model, x, target)).all()


def test_untargeted_raises_the_loss_of_the_label_and_flips_with_a_large_budget():
    model, x = linear(), torch.rand(30, 1, 4, 4)
    labels = model(x).argmax(1)
    near = pgd(model, x, labels, eps=0.05, steps=5)
    assert (per_sample_loss(model, near, labels) > per_sample_loss(model, x, labels)).all()
    far = pgd(model, x, labels, eps=50.0, steps=50)
    assert (model(far).argmax(1) != labels).all()


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_a_random_start_lies_in_the_ball_and_follows_its_generator(norm):
    x = torch.zeros(200, 1, 4, 4)
    d = random_start(x, 0.5, norm, torch.Generator().manual_seed(1))
    size = change_norm(d, norm)
    assert (size <= 0.5 + 1e-6).all() and size.std() > 0.01  # spread inside the ball, not on one shell
    assert torch.equal(d, random_start(x, 0.5, norm, torch.Generator().manual_seed(1)))
    assert not torch.equal(d, random_start(x, 0.5, norm, torch.Generator().manual_seed(2)))
    model, labels = linear(), torch.zeros(200, dtype=torch.long)
    a = pgd(model, x, labels, eps=0.5, steps=1, norm=norm, start=torch.Generator().manual_seed(1))
    b = pgd(model, x, labels, eps=0.5, steps=1, norm=norm, start=torch.Generator().manual_seed(2))
    assert not torch.equal(a, b)


@pytest.mark.parametrize(
    "budget, message",
    [({"eps": 0.0}, "eps=0.0: expected a finite number > 0"), ({"eps": -1.0}, "eps=-1.0"),
     ({"steps": 0}, "steps=0: expected a whole number >= 1"), ({"norm": "l1"}, "norm='l1': expected one of l2, linf")],
)  # fmt: skip
def test_a_budget_it_cannot_use_is_refused_naming_the_setting(budget, message):
    x = torch.rand(2, 1, 4, 4)
    settings = {"eps": 0.1, "steps": 3, "norm": "l2", **budget}
    with pytest.raises(ValueError, match=message):
        pgd(linear(), x, torch.zeros(2, dtype=torch.long), **settings)

"""Bound rules: a layer type certify has no relaxation of is certified through the rule registered for it (exact
on a scaled linear model), subclasses inherit it, and a layer without one is named with the types that have one."""

import pytest
import torch
from torch import nn

from proactiv import bounds
from proactiv.analysis.certify import UnsupportedModel, certified_radius, chain

torch.set_num_threads(1)


class Double(nn.Module):
    """Twice its input: torch.fx would trace into it (a ``mul`` certify refuses) unless a rule makes it a leaf."""

    def forward(self, x):
        return x * 2


class Doubler(Double):
    pass


def double_box(layer, x, eps, p):
    """Sound for both norms: the L2 ball lies inside the L∞ box of the same radius."""
    e = eps.view(-1, *[1] * (x.dim() - 1))
    return 2 * (x - e), 2 * (x + e)


@pytest.fixture
def rules(monkeypatch):
    """The registry as it is, restored after the test."""
    monkeypatch.setattr(bounds, "_RULES", dict(bounds._RULES))


def test_a_rule_is_found_for_its_type_and_subclasses(rules):
    assert bounds.bound_rule(Double()) is None
    bounds.register_bound_rule(Double, double_box)
    assert bounds.bound_rule(Double()) is double_box and bounds.bound_rule(Doubler()) is double_box
    assert bounds.bound_rule(nn.Linear(2, 2)) is None and "Double" in bounds.bounded_layers()


def test_a_layer_with_a_registered_rule_is_certified_through_it(rules):
    torch.manual_seed(0)
    linear = nn.Linear(4, 3)
    model = nn.Sequential(Doubler(), linear).eval()
    x = torch.randn(8, 4)
    with torch.no_grad():
        pred = model(x).argmax(1)
    with pytest.raises(UnsupportedModel, match="mul"):
        chain(model, x[:1])
    bounds.register_bound_rule(Double, double_box)
    ops = chain(model, x[:1])
    assert [op.kind for op in ops] == ["box", "affine"]
    # the L∞ distance to the boundary of the linear model 2·W x + b, in closed form
    w, b = linear.weight.detach(), linear.bias.detach()
    logits = 2 * x @ w.T + b
    margin = logits.gather(1, pred[:, None]) - logits
    dual = (2 * (w[pred].unsqueeze(1) - w.unsqueeze(0))).abs().sum(2)
    exact = (margin / dual).masked_fill(nn.functional.one_hot(pred, 3).bool(), float("inf")).amin(1)
    proved = certified_radius(ops, x, pred, "linf", 2 * exact)
    assert (proved <= exact * (1 + 1e-6)).all() and (proved >= exact * (1 - 1e-3)).all()


def test_a_layer_without_a_rule_is_named_with_the_types_that_have_one(rules):
    bounds.register_bound_rule(Double, double_box)
    with pytest.raises(
        UnsupportedModel, match=r"\(Sigmoid\) is not supported .*registered bound rule.*Double"
    ):
        chain(nn.Sequential(nn.Linear(4, 4), nn.Sigmoid()), torch.zeros(1, 4))
    with pytest.raises(UnsupportedModel, match="Doubler is bounded only as the model's first layer"):
        chain(nn.Sequential(nn.Linear(4, 4), Doubler()), torch.zeros(1, 4))


def test_the_keyword_task_registers_its_normalisation():
    from proactiv.tasks.kws.bounds import utterance_norm_box
    from proactiv.tasks.kws.models import UtteranceNorm

    assert bounds.bound_rule(UtteranceNorm()) is utterance_norm_box

"""Per-sample losses and input penalties against hand-computed values; names and callables resolve."""

import math

import pytest
import torch

from proactiv.losses import LABEL_LOSSES, cross_entropy, input_penalty, l1, mse, resolve_loss


def test_cross_entropy_is_per_sample_negative_log_softmax():
    logits = torch.tensor([[0.0, math.log(3.0)], [2.0, 2.0]])
    labels = torch.tensor([1, 0])
    # softmax of [0, ln 3] is [1/4, 3/4]; equal logits give 1/2
    expected = torch.tensor([-math.log(0.75), math.log(2.0)])
    torch.testing.assert_close(cross_entropy(logits, labels), expected)


def test_mse_and_l1_average_over_every_non_batch_dimension():
    outputs = torch.zeros(2, 2, 2)
    targets = torch.tensor([[[1.0, -1.0], [3.0, 0.0]], [[0.0, 0.0], [0.0, 2.0]]])
    torch.testing.assert_close(mse(outputs, targets), torch.tensor([11 / 4, 4 / 4]))
    torch.testing.assert_close(l1(outputs, targets), torch.tensor([5 / 4, 2 / 4]))


def test_per_sample_values_give_per_sample_gradients():
    """The sum of a batch's losses differentiates each sample by its own loss only."""
    z = torch.tensor([[1.0, 2.0], [3.0, -1.0]], requires_grad=True)
    mse(z, torch.zeros(2, 2)).sum().backward()
    torch.testing.assert_close(z.grad, z.detach())  # d/dz mean(z^2) over 2 values = z


def test_names_resolve_and_own_prediction_scores_against_the_given_labels():
    logits = torch.tensor([[1.0, 0.0, -1.0], [0.5, 0.2, 3.0]])
    labels = torch.tensor([2, 0])
    assert set(LABEL_LOSSES) == {"cross_entropy", "own_prediction"}
    for name in LABEL_LOSSES:
        torch.testing.assert_close(resolve_loss(name)(logits, labels), cross_entropy(logits, labels))
    assert resolve_loss("mse") is mse and resolve_loss("l1") is l1


def test_a_callable_is_used_as_is():
    def huber(outputs, targets):
        return torch.nn.functional.huber_loss(outputs, targets, reduction="none").flatten(1).mean(1)

    assert resolve_loss(huber) is huber


@pytest.mark.parametrize("name", ["crossentropy", "MSE", ""])
def test_unknown_loss_names_list_the_known_ones(name):
    with pytest.raises(
        ValueError, match=rf"loss={name!r}: expected one of \['binary_cross_entropy', 'cross_entropy', 'l1'"
    ):
        resolve_loss(name)


def test_input_penalties_by_hand():
    change = torch.tensor([[[1.0, -3.0], [0.0, 2.0]]])  # one sample, 2 x 2
    torch.testing.assert_close(input_penalty("l2", change), torch.tensor([14 / 4]))
    torch.testing.assert_close(input_penalty("l1", change), torch.tensor([6 / 4]))
    # along the last axis |-3-1|, |2-0| -> mean 3; along rows |0-1|, |2+3| -> mean 3
    torch.testing.assert_close(input_penalty("tv", change), torch.tensor([6.0]))
    # a 1-D input has one axis of differences only
    torch.testing.assert_close(input_penalty("tv", torch.tensor([[0.0, 1.0, 3.0]])), torch.tensor([1.5]))
    with pytest.raises(ValueError, match="regularizer='l3': expected 'l2', 'l1' or 'tv'"):
        input_penalty("l3", change)

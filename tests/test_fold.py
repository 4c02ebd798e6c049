"""Batch-norm folding: the same function in eval mode, one layer less, the original model untouched."""

import torch
from torch import nn

from proactiv.fold import fold_batch_norm


def _net():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        nn.Sequential(nn.Conv2d(4, 4, 3, padding=1, groups=4, bias=False), nn.BatchNorm2d(4)),
        nn.ReLU(), nn.BatchNorm2d(4),  # after a ReLU: not foldable
        nn.Flatten(), nn.Linear(4 * 6 * 6, 3),
    )  # fmt: skip
    for m in net.modules():  # running statistics away from the identity, so a wrong fold shows
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    return net


def test_folded_copy_computes_the_same_outputs_and_input_gradients():
    net = _net().train()  # projection runs in eval mode; the fold must match that, whatever the mode now
    before = {k: v.clone() for k, v in net.state_dict().items()}
    folded = fold_batch_norm(net)
    kinds = [type(m).__name__ for m in folded.modules()]
    assert kinds.count("BatchNorm2d") == 1 and kinds.count("Identity") == 2  # the two conv → BN pairs
    assert net.training and all(torch.equal(v, before[k]) for k, v in net.state_dict().items())
    net.eval()
    x = torch.randn(5, 1, 6, 6, requires_grad=True)
    (g_ref,) = torch.autograd.grad(net(x).logsumexp(1).sum(), x)
    (g_fold,) = torch.autograd.grad(folded(x).logsumexp(1).sum(), x)
    assert torch.allclose(folded(x), net(x), atol=1e-5) and torch.allclose(g_fold, g_ref, atol=1e-5)


def test_models_without_a_pair_or_that_cannot_be_copied_are_used_as_they_are():
    plain = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
    assert fold_batch_norm(plain) is plain
    scripted = torch.jit.script(_net().eval())
    assert fold_batch_norm(scripted) is scripted

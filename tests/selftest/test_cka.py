"""The ``twist`` case: CKA stays 1 on layers that the gain only rotates and scales, falls near 0 on the layer it
scrambles, and a CKA broken on purpose (not normalised, not rotation-invariant, xT never made, layers misnamed)
fails the case."""

from importlib import import_module

import pytest
import torch

from proactiv.selftest import registered_plants, run_selftest
from proactiv.selftest.cka import GAINS_DB, SAME, UNRELATED, TwistNet

torch.set_num_threads(1)
module = import_module("proactiv.analysis.cka")  # the module (the package re-exports its function cka)
PLANTS = tuple(p for p in registered_plants() if p.name == "twist")


@pytest.fixture(scope="module")
def kept(tmp_path_factory):
    folder = tmp_path_factory.mktemp("selftest-cka")
    run_selftest(folder, device="cpu", plants=PLANTS)
    return folder


def _layers(model, x):
    out = {}
    hooks = [getattr(model, n).register_forward_hook(lambda m, i, o, n=n: out.__setitem__(n, o.detach()))
             for n in ("scale", "rotate", "remix", "head")]  # fmt: skip
    model(x)
    for h in hooks:
        h.remove()
    return out


def test_the_planted_layers_rotate_scale_and_scramble():
    model = TwistNet()
    x = torch.randn(64, 8, generator=torch.Generator().manual_seed(3))
    clean = _layers(model, x)
    for db in GAINS_DB:
        moved = _layers(model, x * 10 ** (db / 20))
        assert module.cka(clean["scale"], moved["scale"]) > SAME
        assert module.cka(clean["rotate"], moved["rotate"]) > SAME
        if db != 0:
            assert module.cka(clean["remix"], moved["remix"]) < UNRELATED
            # a measure that is not rotation-invariant misses: each unit's correlation with itself is low
            a, b = clean["rotate"] - clean["rotate"].mean(0), moved["rotate"] - moved["rotate"].mean(0)
            assert float(((a * b).sum(0) / (a.norm(dim=0) * b.norm(dim=0))).mean()) < 0.5


def test_the_case_passes(kept):
    result = run_selftest(kept, device="cpu", plants=PLANTS)
    assert result.passed, [f.found for f in result.failed]
    (finding,) = result.findings
    assert finding.view == "cka" and "first departure: remix" in finding.found


def _unnormalised(original):
    return lambda kl, kk, ll: original(kl, kk, kk)  # HSIC(K, L) / HSIC(K, K): not scale-invariant


def _anisotropic(original):
    def broken(a, kernel="linear", sigma=None):
        weight = torch.tensor([1.0, 0.1], dtype=a.dtype, device=a.device).repeat(a.shape[1] // 2 + 1)
        return original(a * weight[: a.shape[1]], kernel, sigma)

    return broken  # a kernel that weighs every other unit by 0.1: not rotation-invariant


def _clean_twice(original):
    def broken(grid, frontend, x, ids, seed, point=None):
        return original(grid, frontend, x, ids, seed)  # xT never made: x against x

    return broken


def _misnamed(original):
    def broken(*args, **kwargs):
        table = original(*args, **kwargs)
        names = dict(zip(table.layer_index, table.layer, strict=False))
        return table.assign(layer=[names[(i + 1) % len(names)] for i in table.layer_index])

    return broken


BROKEN = [("_ratio", _unnormalised), ("gram", _anisotropic), ("model_inputs", _clean_twice),
          ("transform_cka", _misnamed)]  # fmt: skip


@pytest.mark.parametrize("name, breaker", BROKEN, ids=[b.__name__.strip("_") for _, b in BROKEN])
def test_a_cka_broken_on_purpose_fails(kept, monkeypatch, name, breaker):
    monkeypatch.setattr(module, name, breaker(getattr(module, name)))
    result = run_selftest(kept, device="cpu", plants=PLANTS)
    assert result.status("cka") == "fail"
    assert not result.failed[0].found.startswith("raised")  # judged wrong, not crashed

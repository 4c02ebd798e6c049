"""The ``faith_handset`` and ``faith_trained`` cases: the faithfulness step tells maps that know where the planted
patch is from planted noise, on a hand-set and a trained model; the step broken on purpose fails the checks it
breaks, and only those."""

from importlib import import_module

import numpy as np
import pytest
import torch

from proactiv.selftest import registered_plants, run_selftest
from proactiv.selftest.faithfulness import PATCH, PatchReader, noise_maps, patch_images, train_cnn

torch.set_num_threads(1)
NAMES = {"faith_handset", "faith_trained"}
PLANTS = tuple(p for p in registered_plants() if p.name in NAMES)
DELETION, RANDOMISED, CLOSED = (
    "random deletion",
    "re-initialised",
    "linear model",
)  # words of each planted fault


@pytest.fixture(scope="module")
def kept(tmp_path_factory):
    folder = tmp_path_factory.mktemp("selftest-faithfulness")
    run_selftest(folder, device="cpu", plants=PLANTS)
    return folder


def _kind(fault: str) -> str:
    return next(k for k in (DELETION, RANDOMISED, CLOSED) if k in fault)


def test_the_patch_is_the_evidence_of_both_models_and_the_noise_ignores_them():
    x = patch_images(4)
    dark = x.clone()
    dark[(slice(None), 0, *PATCH)] = 0.0
    for model in (PatchReader(), train_cnn()):
        assert (model(x).argmax(1) == 1).all() and (model(dark).argmax(1) == 0).all()
    assert torch.equal(noise_maps(None, x, None), noise_maps(PatchReader(), x, None))  # no model in it
    assert not torch.equal(
        noise_maps(None, x + 1e-3, None), noise_maps(None, x, None)
    )  # jumps with the input


def test_both_cases_are_proven(kept):
    result = run_selftest(kept, device="cpu", plants=PLANTS)
    assert result.passed, [(f.run, f.found) for f in result.failed]
    assert {(f.run, _kind(f.fault)) for f in result.findings} == ALL
    assert all("planted_noise ρ 1.00 (flagged)" in f.found for f in result.findings if RANDOMISED in f.fault)


def _reversed_order(original):
    return lambda maps: original(-maps)  # the least attributed deleted first


def _no_reinitialisation(original):
    def broken(model, layers, seed=0):
        cascade, why = original(model, layers, seed)
        return [(name, model) for name, _ in cascade], why  # the "re-initialised" models are the original

    return broken


def _probability_for_infidelity(original):
    # infidelity of the probability, not of the logit the maps explain (deletion keeps its own scorer)
    return lambda model, kind, loss="mse", probability=False: original(model, kind, loss, True)


def _no_sensitivity(original):
    return lambda *a, **k: np.zeros(len(a[1]))


def _wrong_class(original):
    def broken(view, pairs, names, target):
        return {n: 1 - t for n, t in original(view, pairs, names, target).items()}  # toward class 0

    return broken


def _fails(*pairs):
    return set(pairs)


ALL = _fails(("faith_handset", DELETION), ("faith_handset", RANDOMISED), ("faith_handset", CLOSED),
             ("faith_trained", DELETION), ("faith_trained", RANDOMISED))  # fmt: skip


#: (module, function, how it is broken, the (case, check) pairs that must fail)
BROKEN = [
    ("faithfulness", "deletion_order", _reversed_order,
     _fails(("faith_handset", DELETION), ("faith_trained", DELETION))),
    ("faithfulness", "randomised_cascade", _no_reinitialisation,
     _fails(("faith_handset", RANDOMISED), ("faith_trained", RANDOMISED))),
    ("faithfulness_metrics", "scorer", _probability_for_infidelity, _fails(("faith_handset", CLOSED))),
    ("faithfulness", "max_sensitivity", _no_sensitivity, _fails(("faith_handset", CLOSED))),
    ("faithfulness", "explained_targets", _wrong_class, ALL),  # every figure is about another score
]  # fmt: skip


@pytest.mark.parametrize(
    "module, name, breaker, missed", BROKEN, ids=[b.__name__.strip("_") for _, _, b, _ in BROKEN]
)
def test_faithfulness_broken_on_purpose_fails_the_checks_it_breaks(
    kept, monkeypatch, module, name, breaker, missed
):
    module = import_module(f"proactiv.analysis.{module}")
    monkeypatch.setattr(module, name, breaker(getattr(module, name)))
    result = run_selftest(kept, device="cpu", plants=PLANTS)
    failed = {(f.run, _kind(f.fault)) for f in result.failed}
    assert failed == missed, [(f.run, f.found) for f in result.failed]
    assert result.status("faithfulness") == "fail"

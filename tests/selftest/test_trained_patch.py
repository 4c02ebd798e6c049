"""The ``trained_patch`` case: a CNN trained to read a patch at one place has learnt that place (and no other); the
default engine's bias map finds it; the case fails when the bias maps are noise, when the engine is one that
spreads its change (Adam), and when the model did not learn the planted place."""

from functools import partial
from importlib import import_module

import numpy as np
import pytest
import torch

from proactiv.optimize import Projector
from proactiv.selftest import registered_plants, run_selftest
from proactiv.testing.shortcut import PLACE, cue_places, trained_cue, window_rank

CASE = "trained_patch"
PLANTS = tuple(p for p in registered_plants() if p.name == CASE)
cue = import_module("proactiv.selftest.cue")


@pytest.fixture(scope="module")
def trained():
    torch.set_num_threads(1)
    return trained_cue(n=48, seed=0)


def test_the_model_learnt_the_place_and_only_it(trained):
    model, x, y = trained
    with torch.no_grad():
        assert (model(x).argmax(1) == y).all()
    probs = cue_places(model, x)
    assert probs[PLACE[0].start, PLACE[1].start] > 0.9
    far = np.ones(probs.shape, dtype=bool)
    far[PLACE[0].start - 2 : PLACE[0].start + 3, PLACE[1].start - 2 : PLACE[1].start + 3] = False
    assert probs[torch.from_numpy(far)].max() < 0.5  # a patch anywhere else is not the class


def test_window_rank_finds_a_window_and_ranks_it():
    change = torch.zeros(2, 1, 16, 16)
    change[:, 0, PLACE[0], PLACE[1]] = 1.0
    change[:, 0, 0:3, 0:3] = 1.2  # a stronger window elsewhere ranks first (windows overlapping it do not)
    rank, mass = window_rank(change)
    assert rank == 2 and mass == pytest.approx(9 / (9 + 9 * 1.2))
    change[1, 0, PLACE[0], PLACE[1]] = -1.0  # opposite changes cancel in the mean
    assert window_rank(change)[1] == 0.0


def test_the_default_engine_finds_the_learnt_cue(tmp_path):
    result = run_selftest(tmp_path, device="cpu", plants=PLANTS)
    assert result.passed, [f.found for f in result.failed]
    (finding,) = result.findings
    assert "ranks 1 of 196" in finding.found and "none elsewhere" in finding.found


def test_an_engine_that_spreads_its_change_fails(tmp_path, monkeypatch):
    monkeypatch.setattr(cue, "Projector", partial(Projector, optimizer="adam"))
    result = run_selftest(tmp_path, device="cpu", plants=PLANTS)
    assert not result.passed and result.status("bias_maps") == "fail"


def test_noisy_bias_maps_fail(tmp_path, monkeypatch):
    bias = import_module("proactiv.analysis.bias")
    original = bias.bias_maps

    def noisy(*args, **kwargs):
        maps = original(*args, **kwargs)
        maps.mean_ = np.random.default_rng(0).normal(0, 1, maps.mean_.shape)
        return maps

    monkeypatch.setattr(bias, "bias_maps", noisy)
    result = run_selftest(tmp_path, device="cpu", plants=PLANTS)
    assert result.status("bias_maps") == "fail"


def test_a_model_that_learnt_another_cue_is_not_judged(tmp_path, monkeypatch):
    everywhere = torch.ones(14, 14)  # a patch anywhere makes it say cue: brightness, not the place
    monkeypatch.setattr(cue, "cue_places", lambda model, x: everywhere)
    result = run_selftest(tmp_path, device="cpu", plants=PLANTS)
    assert result.status("bias_maps") == "fail"
    assert "not learnt at its place" in result.failed[0].found

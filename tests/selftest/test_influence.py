"""The ``mislabel`` case: a network trained with TracIn checkpoints on blobs with 5 % of labels flipped; the
flipped examples top the self-influence ranking and each record's proponents carry its class — and a TracIn broken
on purpose (ranking reversed or shuffled, scores negated, targets swapped) fails the case."""

import pytest
import torch

from proactiv.analysis.influence import TracIn
from proactiv.selftest.influence import N_FLIPPED, N_TRAIN, RECORDS, TOP_SHARE, network, train, training_set

CASE = "mislabel"


def test_the_training_set_has_the_planted_flips_and_the_network_learns_the_blobs(tmp_path):
    x, y, flipped = training_set()
    truth = torch.arange(N_TRAIN) % 2
    assert len(x) == N_TRAIN and len(flipped) == N_FLIPPED == int((y != truth).sum())
    assert set(torch.nonzero(y != truth).flatten().tolist()) == set(flipped.tolist())
    model = train(tmp_path)
    assert (model(x).argmax(1) == truth).float().mean() > 0.95  # it fits the blobs, not the flips
    again = train(tmp_path)  # reused from the folder, not trained again
    assert all(
        torch.equal(a, b)
        for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True)
    )
    assert not torch.equal(network()[0].weight, model[0].weight)


def test_the_case_passes(selftest):
    result = selftest()
    assert result.passed, [f.found for f in result.failed]
    (finding,) = result.findings
    hits = int(finding.found.split("/")[0])
    assert finding.view == "self_influence" and hits >= TOP_SHARE * N_FLIPPED
    assert "top 10 proponents carry the target class" in finding.found
    assert "2 x_t→b" in finding.found and "2 x_proj→a" in finding.found  # record 2: predicted b, desired a
    assert RECORDS[2] == (1, 0)


def _reversed(original):
    def broken(self, progress=None):
        table = original(self, progress).iloc[::-1].reset_index(drop=True)
        return table.assign(rank=range(1, len(table) + 1))

    return broken


def _shuffled(original):
    def broken(self, progress=None):
        table = original(self, progress).sample(frac=1.0, random_state=0).reset_index(drop=True)
        return table.assign(rank=range(1, len(table) + 1))

    return broken


def _negated(original):
    return lambda self, x, targets: -original(self, x, targets)  # proponents and opponents swapped


def _targets_swapped(original):
    def broken(self, instance, point, on):
        x, targets = original(self, instance, point, on)
        return x, targets.flip(0) if len(
            on
        ) == 2 else targets  # xT toward the label, x̂T toward the prediction

    return broken


BROKEN = [
    ("self_influence", _reversed, "of the top"),
    ("self_influence", _shuffled, "of the top"),
    ("scores", _negated, "proponents"),
    ("_record_inputs", _targets_swapped, "record 2"),
]


@pytest.mark.parametrize("name, breaker, named", BROKEN, ids=[b.__name__.strip("_") for _, b, _ in BROKEN])
def test_tracin_broken_on_purpose_fails_the_case(selftest, monkeypatch, name, breaker, named):
    monkeypatch.setattr(TracIn, name, breaker(getattr(TracIn, name)))
    result = selftest()
    assert not result.passed and result.status("self_influence") == "fail"
    assert named in result.failed[0].found

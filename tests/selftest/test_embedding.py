"""The ``groups`` case: grid points below -3.5 dB break every instance and speaker ``s3`` fails everywhere; the
t-SNE embeddings per point and per instance separate those groups (1-NN on the 2-D coordinates) — and an
embedding broken on purpose (rows and coordinates misaligned for one of the two, differences thrown away) fails
that view's check only."""

from importlib import import_module

import numpy as np
import pytest

from proactiv.selftest.embedding import (
    BAD_SPEAKER,
    BREAK_DB,
    GAINS_DB,
    MAX_SHUFFLED,
    MIN_ACCURACY,
    separation,
)
from proactiv.selftest.level import GAIN
from proactiv.store import open_run

module = import_module("proactiv.analysis.embedding")
CASE = "groups"
VIEWS = {"embedding_points", "embedding_instances"}


def test_the_groups_fail_as_planted(kept):
    records = open_run(kept / "groups").records
    gain = records.point.map(lambda p: dict(zip(range(len(GAINS_DB)), GAINS_DB, strict=True))[p])
    bad = records["meta.speaker"] == BAD_SPEAKER
    assert (~records.correct_t[bad]).all()
    assert (records.correct_t[~bad] == (gain[~bad] > BREAK_DB)).all()
    assert open_run(kept / "groups").grid[len(GAINS_DB) - 1].values[GAIN] == GAINS_DB[-1]


def test_the_separation_measure():
    rng = np.random.default_rng(0)
    group = np.arange(20) < 6
    apart = rng.normal(size=(20, 2)) + 10 * group[:, None]
    assert separation(apart, group) == (1.0, pytest.approx(0.56, abs=0.1))
    accuracy, shuffled = separation(rng.normal(size=(20, 2)), group)
    assert accuracy < MIN_ACCURACY and shuffled < MAX_SHUFFLED


def test_the_case_passes(selftest):
    result = selftest()
    assert result.passed, [f.found for f in result.failed]
    found = {f.view: f.found for f in result.findings}
    assert set(found) == VIEWS
    assert found["embedding_points"].startswith("tsne: 1-NN recovers the 6 points below -3.5 dB")
    assert found["embedding_instances"].startswith("tsne: 1-NN recovers the 6 instances of s3")


def _misaligned(by):
    def breaker(original):
        def broken(*args, **kwargs):
            table = original(*args, **kwargs)
            if kwargs.get("by", "point") == by:  # coordinates shifted by one row against their ids
                table[["x", "y"]] = np.roll(table[["x", "y"]].to_numpy(), 1, axis=0)
            return table

        return broken

    return breaker


def _no_differences(original):
    def broken(run, by="point", metrics=None):
        ids, matrix = original(run, by, metrics)
        return ids, np.random.default_rng(0).normal(size=matrix.shape).astype(matrix.dtype)

    return broken


BROKEN = [
    ({"embedding_points"}, "embed", _misaligned("point")),
    ({"embedding_instances"}, "embed", _misaligned("instance")),
    (VIEWS, "difference_matrix", _no_differences),
]


@pytest.mark.parametrize(
    "views, name, breaker", BROKEN, ids=["points-misaligned", "instances-misaligned", "no-differences"]
)
def test_an_embedding_broken_on_purpose_fails_its_check_only(selftest, monkeypatch, views, name, breaker):
    monkeypatch.setattr(module, name, breaker(getattr(module, name)))
    result = selftest()
    assert {f.view for f in result.failed} == views

"""The ``partners`` case: four instances fail below their own gain, each beside a passing twin; the counterexamples
name, for every failing record, the nearest passing grid point of the instance and the twin — and counterexamples
broken on purpose (the farthest partner taken, grid distances lost, clean inputs misaligned) fail the case."""

from importlib import import_module

import numpy as np
import pytest

from proactiv.selftest.counterexamples import EXPECTED, GAINS_DB, partner_inputs
from proactiv.selftest.level import GAIN
from proactiv.store import open_run

module = import_module("proactiv.analysis.counterexamples")
CASE = "partners"


def test_the_partners_are_the_nearest_by_construction(kept):
    """From the records and the clean inputs alone: each failing record's nearest passing grid point (by gain) and
    closest passing instance (RMS of the clean inputs) at its point are the planted ones, each by a clear margin."""
    run = open_run(kept / "partners")
    assert [run.grid[p].values[GAIN] for p in range(len(GAINS_DB))] == list(GAINS_DB)
    records = run.records
    x = partner_inputs().numpy()
    failing = records[~records.correct_t]
    assert set(failing.instance) == set(EXPECTED)
    for r in failing.itertuples():
        point, mate = EXPECTED[r.instance]
        mine = records[(records.instance == r.instance) & records.correct_t]
        gaps = np.abs(np.asarray(GAINS_DB)[mine.point] - GAINS_DB[r.point])
        assert mine.point.iloc[gaps.argmin()] == point and np.sum(gaps == gaps.min()) == 1
        here = records[(records.point == r.point) & records.correct_t].instance.to_numpy()
        rms = np.sqrt(((x[here] - x[r.instance]) ** 2).mean(1))
        assert here[rms.argmin()] == mate and np.sort(rms)[1] > 1.5 * rms.min()


def test_the_case_passes(selftest):
    result = selftest()
    assert result.passed, [f.found for f in result.failed]
    (finding,) = result.findings
    assert "of 4 instances; each names its nearest passing point and its pair's partner" in finding.found


def _farthest(original):
    return lambda distance, loss, ids: original(-distance, loss, ids)


def _points_collapsed(original):
    return lambda grid: 0 * original(grid)  # every grid point alike: the surest pass wins, not the nearest


def _inputs_misaligned(original):
    def broken(run, instances, rebuild):
        vectors, basis = original(run, instances, rebuild)
        ids = sorted(vectors)
        return dict(zip(ids, [vectors[i] for i in ids[1:] + ids[:1]], strict=True)), basis

    return broken


BROKEN = [
    ("_nearest", _farthest),
    ("scaled_points", _points_collapsed),
    ("_clean_vectors", _inputs_misaligned),
]


@pytest.mark.parametrize("name, breaker", BROKEN, ids=[b.__name__.strip("_") for _, b in BROKEN])
def test_counterexamples_broken_on_purpose_fail_the_case(selftest, monkeypatch, name, breaker):
    monkeypatch.setattr(module, name, breaker(getattr(module, name)))
    result = selftest()
    assert not result.passed and result.status("counterexamples") == "fail"
    assert "planted" in result.failed[0].found

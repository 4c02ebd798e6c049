"""Every registered step — built-in or plugged in — passes the conformance suite, and the suite fails steps
broken on purpose (nondeterministic, lossy on save, skipping a kind it claims, computing on one it does not)."""

import numpy as np
import pandas as pd
import pytest
import torch

from proactiv.analysis import AnalysisError, TableStep, register, registered, unregister
from proactiv.store import write_parquet
from proactiv.testing import ConformanceError, check_step, conformance_runs

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return conformance_runs(tmp_path_factory.mktemp("conformance"))


@pytest.mark.slow
@pytest.mark.parametrize("name", [s.name for s in registered()])
def test_every_registered_step_conforms(name, runs):
    passed = check_step(name, runs)  # a selftest case proves it finds the fault planted for it
    assert set(passed) == {"selftest", *runs} and passed["selftest"][0].startswith("proven by selftest case")
    for kind, checks in passed.items():
        assert checks, kind  # every kind was either checked in full or shown to be skipped with a reason


class MeanDx(TableStep):
    """A correct toy step: mean d_x per class."""

    name = "conformance_toy"
    title = "Toy"
    settings = {"scale": 1.0}
    files = ("conformance_toy.parquet",)

    def compute(self, ctx, settings, progress):
        sql = f"SELECT label, avg(d_x) * {float(settings['scale'])} AS v FROM records GROUP BY 1 ORDER BY 1"
        return ctx.view.query(sql)


class Noisy(MeanDx):
    def compute(self, ctx, settings, progress):
        table = super().compute(ctx, settings, progress)
        return table.assign(v=np.random.default_rng().normal(size=len(table)))


class Lossy(MeanDx):
    def save(self, result, folder):
        write_parquet(folder / self.files[0], result.head(1))


class ClaimsTooMuch(MeanDx):
    def compute(self, ctx, settings, progress):
        raise AnalysisError("cannot do this after all")


class ClaimsTooLittle(MeanDx):
    inputs = frozenset({"image"})


class ClaimsNothing(MeanDx):
    targets = frozenset()


@pytest.fixture
def planted(request):
    step = register(request.param())
    yield step
    unregister(step.name)


@pytest.mark.parametrize("planted", [MeanDx], indirect=True)
def test_a_correct_step_passes_every_check(planted, runs):
    passed = check_step(planted, {"vector": runs["vector"]}, selftest=False)["vector"]
    assert {"round-trips", "deterministic", "stale when a setting changes", "stale when the records change",
            "stale when its version changes", "refuses an unknown setting by name"} <= set(passed)  # fmt: skip
    assert check_step(planted, {"image_to_image": runs["image_to_image"]}, selftest=False)["image_to_image"]


@pytest.mark.parametrize(
    ("planted", "found"),
    [
        (Noisy, "computed twice differs"),
        (Lossy, "computed vs loaded differs"),
        (ClaimsTooMuch, "declares this kind but was skipped: 'skipped: cannot do this after all'"),
        (ClaimsTooLittle, "computes on a kind it does not declare"),
        (ClaimsNothing, "supports none of the run kinds checked (vector, image): nothing was computed"),
    ],
    indirect=["planted"],
)
def test_the_suite_fails_a_step_broken_on_purpose(planted, found, runs):
    with pytest.raises(ConformanceError, match="step conformance_toy") as err:
        check_step(planted, {k: runs[k] for k in ("vector", "image")}, selftest=False)
    assert found in str(err.value)


def test_the_runs_cover_every_kind_and_have_failures(runs):
    kinds = {(r.input, r.target) for r in runs.values()}
    assert {"vector", "waveform", "spectrogram", "image"} == {i for i, _ in kinds} and {
        t for _, t in kinds
    } == {
        "label",
        "tensor",
    }
    for r in runs.values():
        correct = r.run.records.correct_t
        assert 0 < correct.mean() < 1, r.kind  # something to explain, something that works
        assert (r.checkpoints is not None) == (r.target == "label")
    assert isinstance(runs["vector"].run.records, pd.DataFrame)


@pytest.mark.parametrize("planted", [MeanDx], indirect=True)
def test_a_step_without_a_selftest_case_is_not_proven(planted, runs):
    with pytest.raises(
        ConformanceError, match="step conformance_toy: no selftest case plants a fault for it"
    ):
        check_step(planted, {"vector": runs["vector"]})

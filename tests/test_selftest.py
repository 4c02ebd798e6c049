"""``proactiv selftest``: every view finds the fault planted for it, and a view broken on purpose (monkeypatched)
fails — that view only — and makes the command exit non-zero."""

from importlib import import_module

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from proactiv.analysis import registered
from proactiv.cli import app
from proactiv.selftest import PLANTS, run_selftest
from proactiv.selftest.level import FLIPS_DB, LevelGate, level_inputs

VIEWS = {c.view for p in PLANTS for c in p.checks}


@pytest.fixture(scope="module")
def kept(tmp_path_factory):
    """A folder holding the planted runs, swept once; later self-tests reuse them and redo only the analyses."""
    folder = tmp_path_factory.mktemp("selftest")
    run_selftest(folder, device="cpu")
    return folder


def test_the_gate_flips_exactly_at_the_planted_gains():
    model = LevelGate()
    x = level_inputs(float(model.threshold) * 10 ** (-np.asarray(FLIPS_DB) / 20), np.zeros(len(FLIPS_DB)))
    for offset, wanted in ((0.01, 1), (-0.01, 0)):
        gain = 10 ** ((torch.tensor(FLIPS_DB) + offset) / 20)
        assert (model(x * gain[:, None]).argmax(1) == wanted).all()
    marked = level_inputs(np.ones(3), np.ones(3))
    assert (model(marked * 10 ** (6 / 20)).argmax(1) == 0).all()  # the mark wins at any gain of the grid


def test_selftest_finds_every_planted_fault(kept):
    result = run_selftest(kept, device="cpu")
    assert result.passed and not result.failed
    assert {f.view for f in result.findings} == VIEWS
    assert all(result.status(v) == "pass" for v in VIEWS)
    found = {(f.view, f.run): f.found for f in result.findings}
    assert "-6 → -9" in found["breakpoints", "breakpoint"]
    assert "meta.speaker = s3" in found["slices", "group"]
    assert found["surrogate", "group"].startswith("importance: meta.speaker")
    assert "16/16" in found["instance_breakpoints", "breakpoint"]


def _shifted_breakpoints(original):
    def broken(*args, **kwargs):
        table = original(*args, **kwargs)
        return table.assign(value=table.value - 3.0, previous=table.previous - 3.0)  # one grid step too far

    return broken


def _smoothed_curves(original):
    def broken(*args, **kwargs):
        table = original(*args, **kwargs)
        table["mean"] = table.groupby(["metric", "column", "scope", "condition"])["mean"].transform("mean")
        return table

    return broken


def _late_instance_breakpoints(original):
    def broken(*args, **kwargs):
        result = original(*args, **kwargs)
        result.table["breakpoint"] -= 0.3
        return result

    return broken


def _reversed_slices(original):
    def broken(*args, **kwargs):
        table = original(*args, **kwargs).iloc[::-1].reset_index(drop=True)
        table["slice"] = np.arange(1, len(table) + 1)
        return table

    return broken


def _noisy_bias_maps(original):
    def broken(*args, **kwargs):
        maps = original(*args, **kwargs)
        maps.mean_ = np.random.default_rng(0).normal(0, 1, maps.mean_.shape)
        return maps

    return broken


def _reversed_surrogate(original):
    def broken(*args, **kwargs):
        fitted = original(*args, **kwargs)
        fitted.importance = fitted.importance.iloc[::-1].reset_index(drop=True)
        return fitted

    return broken


def _raising(original):
    def broken(*args, **kwargs):
        raise RuntimeError("broken on purpose")

    return broken


#: (view, module, function of the module to break, how); the package's modules, as their step calls them
BROKEN = [
    ("curves", "breakpoints", "curves", _smoothed_curves),
    ("breakpoints", "breakpoints", "breakpoints", _shifted_breakpoints),
    ("instance_breakpoints", "instance_breakpoints", "instance_breakpoints", _late_instance_breakpoints),
    ("slices", "slices", "error_slices", _reversed_slices),
    ("slices", "slices", "error_slices", _raising),
    ("bias_maps", "bias", "bias_maps", _noisy_bias_maps),
    ("surrogate", "surrogate", "surrogate", _reversed_surrogate),
]


@pytest.mark.parametrize(
    "view, module, name, breaker", BROKEN, ids=[f"{v}-{b.__name__.strip('_')}" for v, _, _, b in BROKEN]
)
def test_a_view_broken_on_purpose_fails_alone(kept, monkeypatch, view, module, name, breaker):
    module = pytest.importorskip(f"proactiv.analysis.{module}")
    monkeypatch.setattr(module, name, breaker(getattr(module, name)))
    result = run_selftest(kept, device="cpu")
    assert not result.passed
    assert result.status(view) == "fail"
    readers = {s.name for s in registered() if view in (*s.after, *s.uses)}  # they compute it again, broken
    assert all(result.status(v) != "fail" for v in VIEWS - {view} - readers)
    if breaker is _raising:
        assert "broken on purpose" in next(f.found for f in result.failed)


def test_the_command_exits_non_zero_when_a_view_misses(kept, monkeypatch):
    runner = CliRunner()
    ok = runner.invoke(app, ["selftest", "--keep", str(kept), "--device", "cpu"])
    assert ok.exit_code == 0, ok.output
    assert "selftest passed" in ok.output and "FAILED" not in ok.output
    module = import_module("proactiv.analysis.breakpoints")
    monkeypatch.setattr(module, "breakpoints", _shifted_breakpoints(module.breakpoints))
    missed = runner.invoke(app, ["selftest", "--keep", str(kept), "--device", "cpu"])
    assert missed.exit_code == 1, missed.output
    assert "selftest FAILED: 1 of" in missed.output and "breakpoints (breakpoint)" in missed.output


def test_without_keep_the_runs_are_removed(monkeypatch, tmp_path):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    said = []
    result = run_selftest(device="cpu", plants=PLANTS[:1], say=said.append)
    assert result.passed and result.folder is None and said == [f"planting {PLANTS[0].name} …"]
    assert list(tmp_path.iterdir()) == []

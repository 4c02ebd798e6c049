"""The ``anchors`` step on planted gain thresholds: the worst failing records get rules naming gain alone, each
bracketing its instance's threshold, stored and read back, not recomputed when nothing changed; a record whose
budget runs out is "not checked", never anchored; a run whose model cannot be rebuilt is skipped saying why.
Metadata conditions: a rule reaches the instances sharing the record's speaker when they fail alike, and no
further."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from proactiv.analysis import analyze, load_analysis
from proactiv.analysis.anchor import Anchor, Condition, anchor
from proactiv.analysis.anchor_metadata import CATEGORIES, metadata_conditions
from proactiv.analysis.interim import worst_records
from proactiv.analysis.worst_anchors import ANCHORED, CONDITIONS, NOT_CHECKED, TABLE, WorstAnchors, _outcomes
from proactiv.optimize import Projector
from proactiv.sweep import sweep
from proactiv.testing.threshold import GAIN, NOISE, THRESHOLDS_DB, plant_threshold_run, point_of
from proactiv.transforms import Grid, get
from proactiv.whatif import Studio

torch.set_num_threads(1)

#: speaker a's clips flip between -6.55 and -8 dB, speaker b's are loud enough never to flip on the grid
SPEAKERS_DB = (-6.55, -7.0, -7.5, -8.0, -20.0, -20.0, -20.0, -20.0)
SPEAKER = pd.DataFrame({
    "speaker": ["a"] * 4 + ["b"] * 4,
    "session": ["d0", "d1"] * 4,  # a decoy: each session holds both speakers
    "rate": np.linspace(150, 190, 8),  # a measurement, not a category
})  # fmt: skip


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    return plant_threshold_run(tmp_path_factory.mktemp("anchors") / "run")


@pytest.fixture(scope="module")
def analysed(planted):
    return analyze(planted, steps=["anchors"], settings={"anchors": {"records": 5}}, device="cpu")


@pytest.fixture(scope="module")
def speakers(tmp_path_factory):
    run = plant_threshold_run(
        tmp_path_factory.mktemp("anchors-speakers") / "run", SPEAKERS_DB, metadata=SPEAKER
    )
    return run, Studio(run, device="cpu")


def test_the_worst_failing_records_are_anchored_on_gain_alone(planted, analysed):
    result = analysed["anchors"]
    t = result.table
    worst = worst_records(planted, 5, kept=False, failing=True)
    assert list(zip(t.instance, t.point, strict=True)) == list(zip(worst.instance, worst.point, strict=True))
    assert sorted(t.instance) == [0, 1] and (t.status == ANCHORED).all() and (t.parameters == GAIN).all()
    for row in t.itertuples():
        found = result.anchor(row.instance, row.point)
        (rule,) = found.conditions
        inner, outer = rule.above
        assert found.fails and found.valid and not found.metadata
        assert inner <= THRESHOLDS_DB[row.instance] <= outer  # the planted threshold in the boundary interval
        assert row.rule == found.describe() and row.precision >= 0.95 and row.surrogate_fidelity > 0.5
        grid = result.grid(row.instance, row.point)
        assert list(grid) == [GAIN, "score", "right"] and not grid["right"][grid[GAIN] < rule.high].any()
    # the gate flipping at -6.55 dB: its rule (gain ≤ -8.4) holds for the other instance too; not the reverse
    reach = dict(zip(t.instance, t.instances, strict=True))
    assert reach == {0: 2, 1: 1}
    assert "2 anchored, 0 not checked" in analysed.notes["anchors"]


def test_the_anchors_are_stored_and_not_recomputed(planted, analysed):
    stored = load_analysis(planted)["anchors"]
    for a, b in zip(
        (stored.table, stored.conditions, stored.outcomes),
        (analysed["anchors"].table, analysed["anchors"].conditions, analysed["anchors"].outcomes),
        strict=True,
    ):
        pd.testing.assert_frame_equal(a, b, check_dtype=False)
    assert (
        analyze(planted, steps=["anchors"], settings={"anchors": {"records": 5}}, device="cpu").computed == []
    )
    row = stored.table.iloc[0]
    found = stored.anchor(int(row.instance), int(row.point))
    assert found == anchor(
        planted, int(row.instance), int(row.point), device="cpu"
    )  # the same search, re-run


def test_a_record_whose_budget_runs_out_is_not_checked(planted):
    result = analyze(
        planted, steps=["anchors"], settings={"anchors": {"records": 1, "budget": 40}}, device="cpu"
    )
    (row,) = result["anchors"].table.itertuples()
    assert row.status == NOT_CHECKED and not row.valid
    assert "budget of model evaluations ran out" in row.reason and "most precise found" in row.reason
    assert (
        "0 anchored, 1 not checked" in result.notes["anchors"] and "Not checked: #" in result.notes["anchors"]
    )


def test_a_run_without_a_kept_model_is_skipped_saying_why(tmp_path):
    class Gate(nn.Module):  # a class defined in a function: the run cannot keep a copy of the model
        def forward(self, x):
            return torch.stack([-x.mean(1), x.mean(1)], 1)

    model = Gate()
    x = torch.rand(4, 6) + 0.5
    run = sweep(model, x, torch.ones(4, dtype=torch.long), Grid([get("gain", gain_db=[0.0, -30.0])]), tmp_path / "r",
                projector=Projector(model, max_steps=2), keep_arrays="none", progress=False)  # fmt: skip
    result = analyze(run, steps=["anchors"], device="cpu")
    assert result["anchors"] is None
    note = result.notes["anchors"]
    assert (
        note.startswith("skipped: ")
        and "cannot rebuild" in note
        and "keeps no way to rebuild its model" in note
    )


def test_worst_records_among_every_record_failures_only(planted):
    every = worst_records(planted, 10, kept=False)
    failing = worst_records(planted, 10, kept=False, failing=True)
    assert len(every) == 2 and failing.equals(every)  # both instances fail somewhere: one record each
    assert worst_records(planted, 10).empty  # no kept arrays: the gallery has none


# ------------------------------------------------------------------------------------------ metadata
def test_metadata_conditions_are_the_instances_shared_categories():
    found = metadata_conditions(SPEAKER, 0)
    assert [(c.column, c.value, c.instances) for c in found] == [
        ("meta.speaker", "a", 4),
        ("meta.session", "d0", 4),
    ]
    assert len(SPEAKER.rate.unique()) <= CATEGORIES or "meta.rate" not in [c.column for c in found]
    assert metadata_conditions(SPEAKER, 0, False) == []
    assert [c.column for c in metadata_conditions(SPEAKER, 0, ["meta.session"])] == ["meta.session"]
    lone = SPEAKER.assign(speaker=list("abcdefgh"), session=["d0"] * 8)  # its own value, everyone's value
    assert metadata_conditions(lone, 0) == []
    with pytest.raises(ValueError, match=r"metadata columns \['engine'\]: not in the run's metadata"):
        metadata_conditions(SPEAKER, 0, ["meta.engine"])
    with pytest.raises(ValueError, match="keeps no instance metadata"):
        metadata_conditions(None, 0, ["speaker"])


def test_a_rule_reaches_the_speaker_whose_clips_fail_alike(speakers):
    run, studio = speakers
    found = anchor(run, 0, point_of(run, -12.0), studio=studio, surrogate_samples=0)
    assert found.columns == (GAIN,) and found.valid and found.fails
    (cond,) = found.metadata
    assert (cond.column, cond.value, cond.instances, found.instances) == ("meta.speaker", "a", 4, 4)
    assert found.precision >= 0.95 and found.precision_samples >= 16
    assert " and meta.speaker = a (precision " in found.describe() and "over 4 instances" in found.describe()
    alone = anchor(run, 0, point_of(run, -12.0), studio=studio, surrogate_samples=0, metadata=False)
    assert alone.metadata == () and alone.instances == 1 and " over " not in alone.describe()
    assert (
        dataclasses.replace(found, metadata=(), instances=1).conditions == alone.conditions
    )  # the same rule


def test_a_rule_every_instance_meets_needs_no_condition(speakers):
    run, studio = speakers
    found = anchor(run, 0, point_of(run, 6.0), studio=studio, surrogate_samples=0)
    # louder than -6 dB every clip passes, speaker b's at any gain: the rule reaches the whole run
    assert not found.fails and found.valid and found.columns == (GAIN,) and found.metadata == ()
    assert (
        found.instances == len(SPEAKERS_DB) and ", for any instance of the run (precision" in found.describe()
    )
    with pytest.raises(ValueError, match="not in the run's metadata"):
        anchor(run, 0, 0, studio=studio, metadata=["meta.nope"])


def test_a_map_of_two_anchored_parameters_is_stored_and_read_back():
    spans = {GAIN: (-12.0, 6.0), NOISE: (20.0, 40.0)}
    rule = (Condition(GAIN, -12.0, -6.6, spans[GAIN], None, (-8.4, -6.0)),
            Condition(NOISE, 30.0, 40.0, spans[NOISE], (28.0, 32.0), None))  # fmt: skip
    found = Anchor(0, 5, {GAIN: -9.0, NOISE: 40.0}, True, rule, 0.97, 300, 0.15, 900, 0.95, True, None, spans)
    grid = {GAIN: np.linspace(-12, 6, 5), NOISE: np.linspace(20, 40, 3)}
    grid |= {"score": np.arange(15.0).reshape(5, 3) / 15, "right": np.arange(15).reshape(5, 3) % 2 == 0}
    stored = WorstAnchors(
        pd.DataFrame(columns=TABLE), pd.DataFrame(columns=CONDITIONS), _outcomes(found, grid)
    )
    back = stored.grid(0, 5)
    assert list(back) == [GAIN, NOISE, "score", "right"]
    for key, value in grid.items():
        np.testing.assert_array_equal(back[key], value)


def test_the_anchor_command_names_metadata_unless_told_not_to(speakers):
    from typer.testing import CliRunner

    from proactiv.cli import app

    run, _ = speakers
    runner = CliRunner()
    base = ["anchor", str(run.path), "0", str(point_of(run, -12.0)), "--device", "cpu"]
    with_speaker = runner.invoke(app, [*base, "--metadata", "meta.speaker"])
    assert with_speaker.exit_code == 0 and " and meta.speaker = a (precision " in with_speaker.output
    alone = runner.invoke(app, [*base, "--no-metadata"])
    assert alone.exit_code == 0 and "meta.speaker" not in alone.output and f"fails whenever {GAIN}" in alone.output
    for bad, message in ((["--metadata", "meta.nope"], "not in the run's metadata"),
                         (["--metadata", "meta.speaker", "--no-metadata"], "choose one")):  # fmt: skip
        refused = runner.invoke(app, [*base, *bad])
        assert refused.exit_code == 2 and message in refused.output, refused.output

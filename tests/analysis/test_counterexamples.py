"""Counterexamples: per top error slice and class, the most confident failures (one per instance) with the
nearest passing grid point of the same instance and the closest passing instance of the same class at the same
point; a missing partner stays NaN with its reason; image-to-image runs fail by their loss cutoff."""

import math

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from proactiv.analysis import AnalysisError, analyze, load_analysis
from proactiv.analysis.counterexamples import (
    counterexample_table,
    counterexamples,
    gallery_pairs,
    transformed_inputs,
)
from proactiv.analysis.runview import open_view
from proactiv.cli import app
from proactiv.testing import sweep_image_run, write_synthetic_run
from proactiv.views.counterexamples import gallery_rows, report_html
from proactiv.views.sections import SectionContext

torch.set_num_threads(1)

#: the documented grid scaling written out for the synthetic grid: SNR [∞, 20, 10, 5, 0, -5] (∞ one largest
#: gap, 10 dB, beyond 20: at 30; span 35 dB), gain [0, -6, 6] dB (span 12 dB)
SNR_AT = {math.inf: 30.0}


def _grid_distance(a: dict, b: dict) -> float:
    sa, sb = (SNR_AT.get(x["noise.snr_db"], x["noise.snr_db"]) for x in (a, b))
    return math.hypot((sa - sb) / 35.0, (a["gain.gain_db"] - b["gain.gain_db"]) / 12.0)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """48 instances of 4 classes: every record of voice v3 fails, 80 % of those below 2.5 dB SNR fail."""
    run = write_synthetic_run(tmp_path_factory.mktemp("cx") / "run", n_instances=48)
    analysis = analyze(run, steps=["counterexamples"])
    return run, analysis["counterexamples"], analysis.slices


def test_rows_are_the_most_confident_failures_of_the_top_slices_per_class(synthetic):
    run, table, slices = synthetic
    top = slices[slices.errors > 0].sort_values("slice").head(3)
    assert sorted(table["slice"].unique()) == sorted(top["slice"])
    for (number, group), part in table.groupby(["slice", "group"]):
        where = top.loc[top["slice"] == number, "where"].item()
        wrong = run.query(f"SELECT instance, point, loss_t FROM records WHERE ({where}) AND NOT correct_t "
                          f"AND label_name = '{group}'")  # fmt: skip
        expected = wrong.sort_values("loss_t", ascending=False).drop_duplicates("instance").head(3)
        assert list(zip(part.instance, part.point, strict=True)) == list(
            zip(expected.instance, expected.point, strict=True)
        )
        assert list(part["rank"]) == list(range(1, len(part) + 1))
        assert (part.predicted != part.group).all() and (part.p_desired < 0.06).all()  # loss ≈ 3: p ≈ 0.05


def test_same_instance_partner_is_the_nearest_passing_grid_point(synthetic):
    run, table, _ = synthetic
    records = run.records.set_index(["instance", "point"])
    found = table.dropna(subset=["same_instance_distance"])
    assert len(found) >= 10
    for row in found.itertuples():
        mine = records.loc[row.instance]
        partner = mine.loc[int(row.same_instance_point)]
        assert bool(partner.correct_t) and int(row.same_instance_point) != row.point
        here = mine.loc[row.point]
        distances = [_grid_distance(here, r) for _, r in mine[mine.correct_t].iterrows()]
        assert row.same_instance_distance == pytest.approx(min(distances))
        assert _grid_distance(here, partner) == pytest.approx(row.same_instance_distance)


def test_same_class_partner_passes_at_the_same_point_and_is_of_the_same_class(synthetic):
    run, table, _ = synthetic
    records = run.records.set_index(["instance", "point"])
    found = table.dropna(subset=["same_class_distance"])
    assert len(found) >= 10
    for row in found.itertuples():
        partner = records.loc[(int(row.same_class_instance), row.point)]
        assert bool(partner.correct_t) and partner.label_name == row.group
        assert int(row.same_class_instance) != row.instance
    # no model to rebuild and clean inputs stored for 2 instances per class only: the documented proxy, said so
    assert table.same_class_basis.str.startswith("distance of the standardised difference vectors").all()


def test_a_missing_partner_is_nan_with_its_reason(synthetic):
    run, table, _ = synthetic
    v3 = set(run.records.loc[run.records["meta.voice"] == "v3", "instance"])  # fails everywhere
    alone = table[table.instance.isin(v3)]
    assert (
        len(alone) >= 3
        and alone.same_instance_distance.isna().all()
        and alone.same_instance_point.isna().all()
    )
    assert all(
        r == f"instance {i} passes at no grid point"
        for i, r in zip(alone.instance, alone.same_instance_reason, strict=True)
    )
    others = table[~table.instance.isin(v3)]
    assert others.same_instance_distance.notna().all() and (others.same_instance_reason == "").all()
    lonely = table[table.same_class_distance.isna()]
    assert (lonely.same_class_reason.str.contains("passes at this grid point")).all()
    assert (table.loc[table.same_class_distance.notna(), "same_class_reason"] == "").all()


def test_same_class_partner_is_the_closest_clean_input(tmp_path):
    run = sweep_image_run(tmp_path / "cls", image_to_image=False, n_instances=36, size=8)
    table = counterexamples(run, per_group=5)
    assert table.same_class_basis.eq("RMS distance of the clean model inputs (stored)").all()
    records = run.records.set_index(["instance", "point"])
    compared = 0
    for row in table.dropna(subset=["same_class_distance"]).itertuples():
        at = run.records[(run.records.point == row.point) & run.records.correct_t
                         & (run.records.label_name == row.group)]  # fmt: skip
        x = run.arrays(row.instance, row.point)["x"]
        rms = {
            int(i): float(np.sqrt(((run.arrays(int(i), row.point)["x"] - x) ** 2).mean()))
            for i in at.instance
        }
        assert int(row.same_class_instance) == min(rms, key=rms.get)
        assert row.same_class_distance == pytest.approx(rms[int(row.same_class_instance)], rel=1e-5)
        assert records.loc[(int(row.same_class_instance), row.point)].correct_t
        compared += len(rms) > 1
    assert compared >= 1  # at least one partner was chosen among several


def test_image_to_image_runs_fail_by_their_loss_cutoff(tmp_path):
    """The identity "denoiser": outside the cutoff everywhere but at the identity point, so every failure's
    same-instance partner is the identity point and no instance of its digit passes where it fails."""
    run = sweep_image_run(tmp_path / "den")
    table = analyze(run, steps=["counterexamples"])["counterexamples"]
    identity = run.grid.identity_point()
    assert not table.empty and "predicted" not in table
    failing = run.records.set_index(["instance", "point"]).correct_t
    assert not failing.loc[list(zip(table.instance, table.point, strict=True))].any()
    assert (table.same_instance_point == identity).all()
    assert table.same_class_distance.isna().all()
    assert all(r == f"no other instance of digit {g} passes at this grid point"
               for g, r in zip(table.group, table.same_class_reason, strict=True))  # fmt: skip
    ctx = SectionContext(run)
    html = report_html(table, ctx)
    figures = ctx.figures
    assert figures and "<audio" not in html and "Every counterexample" in html
    assert len(figures[0].data) == 2  # failing xT and the identity partner; the same-class panel stays empty


def test_the_step_runs_from_the_cli_and_plays_audible_inputs(tmp_path):
    run = write_synthetic_run(tmp_path / "wave", n_instances=24, shape=(2000,), bias_rows=(100, 200),
                              input_kind="waveform")  # fmt: skip
    out = CliRunner().invoke(
        app, ["counterexamples", str(run.path), "--set", "per_group=1", "--device", "cpu"]
    )
    assert out.exit_code == 0, out.output
    assert "failing records (NOT correct_t)" in out.output
    table = load_analysis(run)["counterexamples"]
    assert table.groupby(["slice", "group"]).size().max() == 1
    ctx = SectionContext(run)
    html = report_html(table, ctx)
    pairs = [p for _, r in gallery_rows(table).iterrows() for p in gallery_pairs(r).values() if p is not None]
    inputs, missing = transformed_inputs(run, pairs, ctx.task)  # kept arrays only: no model to rebuild them
    assert 0 < len(inputs) < len(pairs) and "cannot be rebuilt" in missing
    assert html.count("<audio") == len(inputs) and "waveforms as the model received them" in html


def test_bad_settings_and_runs_without_an_outcome_are_named(tmp_path, synthetic):
    run, _, slices = synthetic
    with pytest.raises(ValueError, match="per_group=0"):
        counterexample_table(open_view(run), slices, per_group=0)
    with pytest.raises(AnalysisError, match="lacks the columns"):
        counterexample_table(open_view(run), slices.drop(columns=["where"]))
    plain = write_synthetic_run(tmp_path / "plain", n_instances=8, classifier=False)
    result = analyze(plain, steps=["counterexamples"])
    assert result["counterexamples"] is None and result.notes["counterexamples"].startswith("skipped")

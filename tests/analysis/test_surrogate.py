"""Surrogate: an EBM (and a GBM with SHAP) over transform parameters, metadata and class recovers a planted
failure rule with high held-out fidelity, explains one failure by it, holds out whole instances, warns when its
fidelity is low, round-trips through the step's files, and reaches the report and the dashboard."""

import math

import numpy as np
import pytest

import proactiv as pv
from proactiv.analysis.runview import AnalysisError
from proactiv.analysis.surrogate import explain_record, surrogate
from proactiv.testing import synthetic_grid, write_synthetic_run


@pytest.fixture(scope="module")
def voice_run(tmp_path_factory):
    """Every record of voice v3 fails, nothing else does (no SNR breakpoint)."""
    return write_synthetic_run(
        tmp_path_factory.mktemp("sur") / "voice", n_instances=48, fail_below_snr=-math.inf
    )


@pytest.fixture(scope="module")
def snr_run(tmp_path_factory):
    """Below 2.5 dB SNR 80 % of the records fail, at random; no failing voice."""
    return write_synthetic_run(tmp_path_factory.mktemp("sur") / "snr", n_instances=48, bad_voice=None)


@pytest.fixture(scope="module")
def voice_ebm(voice_run):
    return surrogate(voice_run)


def test_the_ebm_recovers_a_planted_voice_rule(voice_ebm):
    s = voice_ebm
    assert s.importance.feature.iloc[0] == "meta.voice"
    assert s.importance.importance.iloc[0] > 10 * s.importance.importance.iloc[1]
    assert s.fidelity["metric"] == "roc_auc" and s.fidelity["score"] >= 0.9 and s.warning == ""
    assert s.fidelity["accuracy"] > s.fidelity["base_rate"]  # better than always saying "pass"
    voice = s.shapes[s.shapes.feature == "meta.voice"].set_index("label")
    assert voice.score.idxmax() == "v3" and (voice.drop("v3").score < 0).all()
    assert (voice.lower <= voice.score).all() and (voice.score <= voice.upper).all()
    assert s.sentence().startswith("Failure rises most for meta.voice = v3")
    # the features: grid columns, metadata (not the per-instance path), the class; pair terms kept
    assert set(s.importance.feature) == {"noise.snr_db", "gain.gain_db", "meta.voice", "meta.gender", "meta.rate",
                                         "class"}  # fmt: skip
    assert not s.interactions.empty and s.interactions.term.str.contains(" & ").all()


def test_the_ebm_recovers_a_planted_snr_breakpoint(snr_run):
    s = surrogate(snr_run)
    assert s.importance.feature.iloc[0] == "noise.snr_db" and s.fidelity["score"] >= 0.9
    snr = s.shapes[s.shapes.feature == "noise.snr_db"].set_index("label")
    assert list(snr.index) == ["-5", "0", "5", "10", "20", "∞"]  # in value order, the clean SNR labelled ∞
    assert (snr.loc[["-5", "0"]].score > 0).all() and (snr.loc[["5", "10", "20", "∞"]].score < 0).all()
    assert s.sentence().startswith("Failure rises most with noise.snr_db ≤ 0")


def test_gbm_with_shap_finds_the_same_driver(voice_run, snr_run):
    for run, planted in ((voice_run, "meta.voice"), (snr_run, "noise.snr_db")):
        s = surrogate(run, method="gbm")
        assert s.importance.feature.iloc[0] == planted and s.fidelity["score"] >= 0.9
        assert s.interactions.empty  # SHAP main effects only
        # SHAP values add up to the model's log-odds: contributions + intercept give its prediction
        raw = s.intercept + s.contributions[s.terms].to_numpy(dtype=float).sum(1)
        np.testing.assert_allclose(1 / (1 + np.exp(-raw)), s.contributions.predicted, atol=1e-4)


def test_explain_record_puts_the_planted_feature_first(voice_run, voice_ebm):
    rows = voice_ebm.contributions
    failing = rows[(rows.observed == 1) & rows.held_out].iloc[0]
    table = explain_record(voice_run, int(failing.instance), int(failing.point), result=voice_ebm)
    assert list(table.columns) == ["feature", "value", "contribution"]
    assert table.iloc[0].tolist()[:2] == ["meta.voice", "v3"] and table.contribution.iloc[0] > 0
    assert (table.contribution.abs().diff().dropna() <= 0).all()
    total = voice_ebm.intercept + table.contribution.sum()
    assert 1 / (1 + math.exp(-total)) == pytest.approx(table.attrs["predicted"], abs=1e-4)
    with pytest.raises(AnalysisError, match="instance=999, point=0"):
        voice_ebm.record(999, 0)


def test_held_out_records_are_whole_instances_and_training_is_capped(voice_run):
    s = surrogate(voice_run, max_records=200, seed=3)
    rows = s.contributions
    per_instance = rows.groupby("instance").held_out.agg(["min", "max"])
    assert (per_instance["min"] == per_instance["max"]).all()  # never split across train and test
    assert rows.held_out.groupby(rows.instance).first().sum() == 12  # a quarter of 48 instances
    assert not (rows.trained & rows.held_out).any() and rows.trained.sum() == 200 == s.fidelity["n_train"]
    assert s.fidelity["n_test"] == rows.held_out.sum() == 12 * 18


def test_low_fidelity_is_warned_about(tmp_path):
    """Outcomes that are pure noise (80 % fail everywhere, at random) cannot be explained."""
    run = write_synthetic_run(tmp_path / "noise", n_instances=48, grid=synthetic_grid(snr_db=[20, 10, 5, 0]),
                              fail_below_snr=100, bad_voice=None)  # fmt: skip
    s = surrogate(run)
    assert s.fidelity["score"] < 0.7 and s.warning.startswith("low fidelity") and "ROC AUC" in s.warning
    from proactiv.views.surrogate import fidelity_figure, importance_figure

    for fig in (importance_figure(s), fidelity_figure(s)):
        assert any(s.warning in a.text for a in fig.layout.annotations)


def test_loss_outcome_and_runs_without_an_outcome(voice_run, tmp_path):
    s = surrogate(voice_run, outcome="loss")
    assert s.fidelity["metric"] == "r2" and s.fidelity["score"] > 0.9 and s.scale == "loss_t"
    assert s.importance.feature.iloc[0] == "meta.voice"
    plain = write_synthetic_run(tmp_path / "plain", n_instances=16, classifier=False)  # no labels, no outcome
    with pytest.raises(AnalysisError, match="outcome='loss'"):
        surrogate(plain)
    auto = surrogate(plain, outcome=None)
    assert auto.outcome == "loss" and "class" not in set(auto.importance.feature)


def test_bad_arguments_are_named(voice_run):
    with pytest.raises(ValueError, match="method='xgb'"):
        surrogate(voice_run, method="xgb")
    with pytest.raises(ValueError, match="outcome='accuracy'"):
        surrogate(voice_run, outcome="accuracy")
    with pytest.raises(ValueError, match="max_records=5"):
        surrogate(voice_run, max_records=5)


def test_the_step_round_trips_and_reaches_the_report_and_the_dashboard(tmp_path):
    from proactiv.analysis.pipeline import load_analysis
    from proactiv.dashboard.data import RunData
    from proactiv.dashboard.panels.surrogate import record_contributions, shape_view, surrogate_panel
    from proactiv.report import write_report

    run = write_synthetic_run(tmp_path / "run", n_instances=24, fail_below_snr=-math.inf)
    result = pv.analysis.analyze(run, steps=["surrogate"], settings={"surrogate": {"interactions": 2}})
    s = result["surrogate"]
    assert s.fidelity["score"] >= 0.9 and s.interactions.term.nunique() == 2
    again = load_analysis(run)["surrogate"]
    for name in ("importance", "shapes", "interactions", "contributions"):
        assert getattr(again, name).equals(getattr(s, name)), name
    assert again.fidelity == s.fidelity and again.features == s.features and again.intercept == s.intercept
    assert "held-out roc_auc 1" in result.notes["surrogate"]
    row = s.contributions[s.contributions.observed == 1].iloc[0]
    assert (
        explain_record(run, int(row.instance), int(row.point)).feature.iloc[0] == "meta.voice"
    )  # stored one

    page = write_report(run, gallery=1, method="pca").read_text()
    assert "<section id='surrogate'>" in page and "Failure rises most for meta.voice = v3" in page

    data = RunData(run.path, compute=False)
    panel = str(surrogate_panel(data.analysis["surrogate"]))
    for part in ("surrogate-sentence", "surrogate-importance", "surrogate-shape", "surrogate-interaction",
                 "surrogate-fidelity", "surrogate-record"):  # fmt: skip
        assert part in panel
    fig = record_contributions(data, {"instance": int(row.instance), "point": int(row.point)})
    assert fig.data[0].y[-1] == "meta.voice = v3"  # largest on top
    assert "choose one of" in shape_view(data, "meta.path").layout.annotations[0].text
    assert shape_view(data, "noise.snr_db").layout.annotations[0].text == "noise.snr_db"  # the subplot title

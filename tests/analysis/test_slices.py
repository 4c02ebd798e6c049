import pytest

from proactiv.analysis import AnalysisError, error_slices
from proactiv.analysis.runview import open_view
from proactiv.testing import write_synthetic_run


def test_planted_failing_voice_is_the_top_slice(planted):
    table = error_slices(planted)
    top = table.iloc[0]
    records = planted.records
    assert top.conditions == "meta.voice = v3"
    assert top["size"] == (records["meta.voice"] == "v3").sum()
    assert top.error_rate == 1.0
    assert list(table.slice) == list(range(1, len(table) + 1))
    assert table.score.is_monotonic_decreasing
    assert table["size"].sum() == len(records)  # leaves partition the records


def test_second_slice_is_the_low_snr_region(planted):
    second = error_slices(planted).iloc[1]
    assert "noise.snr_db ≤ 0" in second.conditions
    assert "meta.voice ≠ v3" in second.conditions
    assert second.error_rate > 0.6
    assert second.worst_point_error_rate >= second.error_rate >= second.best_point_error_rate


def test_where_clause_selects_exactly_the_slice(planted):
    view = open_view(planted)
    for row in error_slices(view).itertuples():
        hits = view.query(
            f"SELECT count(*) AS n, avg((NOT correct_t)::DOUBLE) AS e FROM records WHERE {row.where}"
        )
        assert hits.n[0] == row.size
        assert hits.e[0] == pytest.approx(row.error_rate)


def test_identifier_columns_are_not_features(planted):
    assert not error_slices(planted, max_depth=6, min_slice=1).conditions.str.contains("meta.path").any()


def test_failure_expression_and_runs_without_predictions(tmp_path):
    run = write_synthetic_run(tmp_path / "i2i", n_instances=24, classifier=False)
    with pytest.raises(AnalysisError, match="failure"):
        error_slices(run)
    table = error_slices(run, failure="loss_t > 1", min_slice=5)
    assert table.iloc[0].error_rate > 0.5
    assert table.attrs["failure"] == "loss_t > 1"

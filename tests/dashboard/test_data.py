"""A run opened for the dashboard: filters keep only integers, slice clauses are the run's own, marginals follow
the planted breakpoint, and missing analyses are computed on first open with progress."""

from proactiv.dashboard.data import Filter, RunData


def test_filter_keeps_only_integers():
    flt = Filter.from_store(
        {"points": [3, 1, "1; DROP TABLE records", 2.0, True], "instances": None, "slice": "x"}
    )
    assert flt.points == (1, 2, 3) and flt.instances is None and flt.slice is None


def test_where_uses_the_runs_own_slice_clause(data):
    first = int(data.analysis.slices["slice"].iloc[0])
    clause = data.where(Filter(points=(0, 1), slice=first))
    assert "point IN (0,1)" in clause and data.analysis.slices["where"].iloc[0] in clause
    assert data.where(Filter(slice=999)) == "TRUE"


def test_marginal_accuracy_follows_the_planted_breakpoint(data):
    table = data.marginal("noise.snr_db", Filter())
    low = table[table.value < 2.5].accuracy.max()
    high = table[table.value > 2.5].accuracy.min()
    assert low < 0.4 < high


def test_missing_analysis_is_computed_on_first_open_with_progress(tmp_path):
    from proactiv.testing import write_synthetic_run

    write_synthetic_run(tmp_path / "fresh", n_instances=16, shape=(8, 8), bias_rows=(2, 4))
    seen = []
    data = RunData(tmp_path / "fresh", progress=lambda step, f: seen.append(step))
    assert {"curves", "slices", "embedding_points", "bias_maps"} <= set(seen)
    assert data.analysis.slices is not None and (tmp_path / "fresh" / "analysis" / "curves.parquet").exists()
    assert RunData(tmp_path / "fresh", progress=lambda step, f: seen.append("again")) and "again" not in seen

"""A run view shared across threads (as the dashboard's callbacks share one) answers every query."""

from concurrent.futures import ThreadPoolExecutor

from proactiv.analysis.runview import open_view
from proactiv.testing import write_synthetic_run


def test_queries_from_many_threads_on_one_view_all_answer(tmp_path):
    view = open_view(write_synthetic_run(tmp_path / "run", n_instances=40))
    sql = "SELECT count(*) AS n FROM records, range(3000)"  # slow enough for calls to overlap
    expected = int(view.query(sql).n[0])
    with ThreadPoolExecutor(8) as pool:
        counts = list(pool.map(lambda _: int(view.query(sql).n[0]), range(48)))
    assert counts == [expected] * 48

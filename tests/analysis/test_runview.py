"""A run view shared across threads (as the dashboard's callbacks share one) answers every query."""

from concurrent.futures import ThreadPoolExecutor

import pandas as pd

from proactiv.analysis.runview import open_view
from proactiv.testing import write_synthetic_run


def test_queries_from_many_threads_on_one_view_all_answer(tmp_path):
    view = open_view(write_synthetic_run(tmp_path / "run", n_instances=40))
    sql = "SELECT count(*) AS n FROM records, range(3000)"  # slow enough for calls to overlap
    expected = int(view.query(sql).n[0])
    with ThreadPoolExecutor(8) as pool:
        counts = list(pool.map(lambda _: int(view.query(sql).n[0]), range(48)))
    assert counts == [expected] * 48


def test_a_frame_registered_for_a_block_is_the_one_its_queries_see_whatever_other_threads_register(tmp_path):
    view = open_view(write_synthetic_run(tmp_path / "run", n_instances=5))

    def own_sum(k: int) -> int:
        with view.frames(kept=pd.DataFrame({"x": [k] * 50})):  # every thread the same name, its own data
            return int(view.query("SELECT sum(x) AS s FROM kept, range(2000)").s[0]) // 2000 // 50

    with ThreadPoolExecutor(8) as pool:
        seen = list(pool.map(own_sum, range(64)))
    assert seen == list(range(64))

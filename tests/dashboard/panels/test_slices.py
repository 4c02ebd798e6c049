"""The error-slice panel: the slice table counted within the current embedding selection."""

import pytest

from proactiv.dashboard import panels
from proactiv.dashboard.data import Filter


def test_a_selection_counts_the_slices_within_it(data, callbacks_of):
    rows = callbacks_of("slices", [data])["slices.data"]
    every = rows(0, None)
    assert every and all("where" not in r for r in every) and every == panels.slices_rows(data, None)
    clean = [int(p) for p in data.per_point(Filter()).query("`noise.snr_db` > 15").point]
    store = panels.update_filter("emb-points", None, {"points": [{"customdata": p} for p in clean]}, None, None,
                                 None)  # fmt: skip
    assert store["points"] == sorted(clean)
    chosen = rows(0, store)
    assert all(r["selected"] > 0 for r in chosen)
    assert len(chosen) < len(every) or any(
        r["selected"] < a["selected"] for r, a in zip(chosen, every, strict=False)
    )
    assert "Filtered to" in panels.filter_text(store)
    with pytest.raises(ValueError):
        rows("1", store)

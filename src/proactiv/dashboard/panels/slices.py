"""The error-slice panel: the slice table, counted within the current selection (a click filters by it)."""

from __future__ import annotations

from proactiv.dashboard.data import Filter, RunData

SLICE_COLUMNS = ["slice", "conditions", "size", "errors", "error_rate", "coverage"]


def slices_rows(data: RunData, store: dict | None) -> list[dict]:
    """The error-slice table, restricted to slices with records in the current embedding selection."""
    flt = Filter.from_store(store)
    table = data.slice_counts(flt)
    if table.empty:
        return []
    if flt.points is not None or flt.instances is not None:
        table = table[table["selected"] > 0]
    table = table.copy()
    for c in ("error_rate", "coverage"):
        table[c] = table[c].round(3)
    return table.to_dict("records")

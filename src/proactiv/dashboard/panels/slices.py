"""The error-slice panel: the slice table, counted within the current selection (a click filters by it)."""

from __future__ import annotations

from dash import Input, Output

from proactiv.dashboard.data import Filter, RunData
from proactiv.dashboard.panels.registry import PanelContext, register_panel
from proactiv.dashboard.panels.shared import MAIN_LABEL, MAIN_TAB, paged_table

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


def layout(ctx: PanelContext):
    return paged_table("slices", [*SLICE_COLUMNS, "selected"])


def callbacks(app, ctx: PanelContext) -> None:
    @app.callback(Output("slices", "data"), Input("run", "value"), Input("filter", "data"))
    def _slices(index, store):
        return slices_rows(ctx.run_of(index), store)


register_panel("slices", tab=MAIN_TAB, tab_label=MAIN_LABEL, title="Error slices (click one to filter every view)",
               layout=layout, callbacks=callbacks, order=12)  # fmt: skip

"""The error slices of a run as a report section (the dashboard draws the same table in its slices panel)."""

from __future__ import annotations

import pandas as pd

from proactiv.views.sections import register_section, table_html

#: the slice table's columns the report shows
COLUMNS = ["slice", "conditions", "size", "errors", "error_rate", "coverage", "worst_point_values",
           "worst_point_error_rate", "best_point_values", "best_point_error_rate"]  # fmt: skip


@register_section(
    "slices",
    intro="Leaves of a shallow decision tree predicting failure from the transform parameters and instance "
    "metadata, ranked by error rate × size; with the best and worst grid point inside each slice.",
)
def report_html(table: pd.DataFrame, ctx) -> str:
    return table_html(table, COLUMNS)

"""The dashboard's panels, one module each, as plain functions (testable and benchmarkable without a
browser): each takes the opened runs and the browser's inputs and returns what Dash puts on the page.

Inputs from the browser are validated there: runs by index, records by (instance, point) integers present in
the run. Figures come from :mod:`proactiv.views`, the same functions the report and notebooks use.
"""

from proactiv.dashboard.panels.attribution import attribution_methods, attribution_targets, record_attribution
from proactiv.dashboard.panels.bias import bias_group, bias_options, bias_view
from proactiv.dashboard.panels.compare import (
    compare,
    compare_colour_options,
    compare_grid,
    compare_metric,
    compare_side,
    grid_difference,
)
from proactiv.dashboard.panels.embeddings import colour_options, embedding_figure, embeddings
from proactiv.dashboard.panels.influence import record_influence
from proactiv.dashboard.panels.overview import curve_panels, overview, run_options, summary_children
from proactiv.dashboard.panels.record import (
    choose_record,
    kept_columns,
    kept_rows,
    kept_table_columns,
    record_detail,
    record_sound,
)
from proactiv.dashboard.panels.shared import EMPTY_FILTER, filter_text, pick, update_filter
from proactiv.dashboard.panels.slices import SLICE_COLUMNS, slices_rows

__all__ = [
    "EMPTY_FILTER", "SLICE_COLUMNS", "attribution_methods", "attribution_targets", "bias_group", "bias_options", "bias_view", "choose_record", "colour_options",
    "compare", "compare_colour_options", "compare_grid", "compare_metric", "compare_side", "curve_panels",
    "embedding_figure", "embeddings", "filter_text", "grid_difference", "kept_columns", "kept_rows",
    "kept_table_columns", "overview", "pick", "record_attribution", "record_detail", "record_influence", "record_sound", "run_options", "slices_rows",
    "summary_children", "update_filter",
]  # fmt: skip

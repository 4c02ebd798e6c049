"""The dashboard's panels, one module each: its layout, its callbacks, and the plain functions they call (testable
and benchmarkable without a browser: each takes the opened runs and the browser's inputs and returns what Dash
puts on the page). Every module registers its panel (:mod:`proactiv.dashboard.panels.registry`) on import.

Inputs from the browser are validated there: runs by index, records by (instance, point) integers present in
the run. Figures come from :mod:`proactiv.views`, the same functions the report and notebooks use.
"""

from proactiv.dashboard.panels.attribution import attribution_methods, attribution_targets, record_attribution
from proactiv.dashboard.panels.bias import bias_choices, bias_group, bias_options, bias_view
from proactiv.dashboard.panels.compare import (
    compare,
    compare_colour_options,
    compare_grid,
    compare_metric,
    compare_side,
    grid_difference,
)
from proactiv.dashboard.panels.embeddings import colour_choices, colour_options, embedding_figure, embeddings
from proactiv.dashboard.panels.influence import record_influence
from proactiv.dashboard.panels.overview import curve_panels, heat_choices, overview, summary_children
from proactiv.dashboard.panels.record import (
    choose_record,
    kept_columns,
    kept_rows,
    kept_table_columns,
    record_detail,
    record_sound,
)
from proactiv.dashboard.panels.registry import (
    Panel,
    PanelContext,
    register_panel,
    register_step_tab,
    registered_panels,
    unregister_panel,
)
from proactiv.dashboard.panels.shared import EMPTY_FILTER, filter_text, pick, update_filter
from proactiv.dashboard.panels.slices import SLICE_COLUMNS, slices_rows
from proactiv.plugins import import_package

# every module registers its panel on import: a new one needs no line here
import_package(__name__, __path__)

__all__ = [
    "EMPTY_FILTER", "SLICE_COLUMNS", "Panel", "PanelContext", "attribution_methods", "attribution_targets",
    "bias_choices", "bias_group", "bias_options", "bias_view", "choose_record", "colour_choices", "colour_options",
    "compare", "compare_colour_options", "compare_grid", "compare_metric", "compare_side", "curve_panels",
    "embedding_figure", "embeddings", "filter_text", "grid_difference", "heat_choices", "kept_columns",
    "kept_rows", "kept_table_columns", "overview", "pick", "record_attribution", "record_detail",
    "record_influence", "record_sound", "register_panel", "register_step_tab", "registered_panels",
    "slices_rows", "summary_children", "unregister_panel", "update_filter",
]  # fmt: skip

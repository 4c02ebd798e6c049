"""The instance-breakpoints tab: the distribution per class, the instances that break earliest (first the one
that flips closest to the identity) and the earliest one's boundary curve."""

from proactiv.dashboard.app import build_app
from proactiv.dashboard.data import RunData
from proactiv.views.instance_breakpoints import earliest_table


def test_the_tab_lists_the_instances_that_break_earliest(classifier_run):
    data = RunData(classifier_run, compute=False)
    tab = next(t for t in build_app([data]).layout["tabs"].children if t.value == "step-instance_breakpoints")
    result = data.analysis["instance_breakpoints"]
    assert tab.label == "Instance breakpoints"
    rows = tab["ibp-earliest"].data
    assert rows == earliest_table(result.table).to_dict("records") and rows
    assert rows[0]["share of range"] == result.table.range_fraction.min()
    assert tab["ibp-distribution"].figure.data and tab["ibp-boundary"].figure.data

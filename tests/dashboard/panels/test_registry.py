"""The panel registry: a step's tab registered here alone reaches the app with its callbacks, in the step
registry's order; a panel with nothing to show is left out, with its callbacks; names are unique."""

import pytest
from dash import Input, Output, html

from proactiv.analysis import TableStep, analyze, register, unregister
from proactiv.dashboard.app import build_app
from proactiv.dashboard.data import RunData
from proactiv.dashboard.panels import register_panel, register_step_tab, registered_panels, unregister_panel
from proactiv.testing import write_synthetic_run


class Counts(TableStep):
    """Records per class: a toy step that exists only in this test file."""

    name = "toy_counts"
    title = "Toy counts: records per class"
    files = ("toy_counts.parquet",)

    def compute(self, ctx, settings, progress):
        return ctx.view.query("SELECT label_name, count(*) AS n FROM records GROUP BY 1 ORDER BY 1")


class Later(Counts):
    """The same table, read after the first (a step the registry orders after it)."""

    name = "toy_later"
    title = "Toy later"
    files = ("toy_later.parquet",)
    after = ("toy_counts",)


class Unrun(Counts):
    """Registered but never computed: no result, so no tab."""

    name = "toy_unrun"
    title = "Toy unrun"
    files = ("toy_unrun.parquet",)


def _list(table, ctx):
    return html.Ul([html.Li(f"{r.label_name}: {r.n}") for r in table.itertuples()], id="toy-list")


def _callbacks(app, ctx):
    @app.callback(Output("toy-list", "title"), Input("run", "value"))
    def _title(index):
        return ctx.run_of(index).path.name


def _none_callbacks(app, ctx):
    @app.callback(Output("toy-none", "title"), Input("run", "value"))
    def _title(index):
        return ""


@pytest.fixture(scope="module")
def toys(tmp_path_factory):
    """The toy steps registered and computed on a small run; their panels and steps unregistered after."""
    steps = [register(Counts()), register(Later()), register(Unrun())]
    run = write_synthetic_run(tmp_path_factory.mktemp("registry") / "run", n_instances=16, shape=(8, 8),
                              bias_rows=(2, 4))  # fmt: skip
    analyze(run, method="pca", steps=["curves", "breakpoints", "slices", "toy_counts", "toy_later"])
    # registered in the reverse of the step order: the tabs follow the steps, not the registration
    register_step_tab("toy_later", lambda table, ctx: html.P("later", id="toy-later"))
    register_step_tab("toy_counts", _list, _callbacks)
    register_step_tab("toy_unrun", _list)
    register_panel("toy_none", tab="toy-none", tab_label="None", title="Nothing", layout=lambda ctx: None,
                   callbacks=_none_callbacks)  # fmt: skip
    yield RunData(run.path, compute=False)
    for name in ("toy_none", "toy_unrun", "toy_counts", "toy_later"):
        unregister_panel(name)
    for step in reversed(steps):
        unregister(step.name)


def _tab(app, value):
    return next(t for t in app.layout["tabs"].children if t.value == value)


def test_a_step_tab_reaches_the_app_with_its_callbacks(toys):
    app = build_app([toys])
    tab = _tab(app, "step-toy_counts")
    assert tab.label == "Toy counts" and tab.id == "tab-step-toy_counts"  # the title up to its colon
    card = tab.children[0]
    assert card.id == "view-toy_counts" and card.children[0].children == "Toy counts: records per class"
    counts = toys.analysis["toy_counts"]
    assert [li.children for li in tab["toy-list"].children] == [
        f"{r.label_name}: {r.n}" for r in counts.itertuples()
    ]
    assert "toy-list.title" in app.callback_map


def test_panels_with_nothing_to_show_are_left_out_with_their_callbacks(toys):
    app = build_app([toys])
    values = [t.value for t in app.layout["tabs"].children]
    assert "toy-none" not in values and "step-toy_unrun" not in values
    assert not any("toy-none" in k for k in app.callback_map)
    assert "compare" not in values  # one run: nothing to compare


def test_tabs_follow_the_step_registry_after_the_runs_own_panels(toys):
    names = [p.name for p in registered_panels()]
    assert names.index("toy_counts") < names.index("toy_later")
    values = [t.value for t in build_app([toys]).layout["tabs"].children]
    assert values[:3] == ["main", "record", "bias"] and values[-1] == "whatif"
    assert values.index("step-toy_counts") < values.index("step-toy_later")


def test_a_panel_of_an_unregistered_step_is_left_out(toys):
    step = Unrun()
    unregister("toy_unrun")
    try:
        assert "toy_unrun" not in [p.name for p in registered_panels()]
    finally:
        register(step)


def test_names_are_unique_and_steps_known(toys):
    with pytest.raises(ValueError, match="panel named 'overview' is already registered"):
        register_panel("overview", tab="x", tab_label="x", title="x", layout=lambda ctx: None)
    with pytest.raises(ValueError, match="'toy_counts' is already registered"):
        register_step_tab("toy_counts", _list)
    with pytest.raises(KeyError, match="no analysis step 'nope'"):
        register_step_tab("nope", _list)
    with pytest.raises(ValueError, match="presents no step: give it a title and a tab label"):
        register_panel("untitled", tab="x", layout=lambda ctx: None)
    with pytest.raises(KeyError, match="no dashboard panel 'nope'"):
        unregister_panel("nope")

"""Analyses plug in: a step defined and registered here alone — its report section and dashboard panel registered
one floor up against its name — reaches the CLI, the manifest, the report and the dashboard; the registry orders
steps by their dependencies; steps needing the model get it through ``ctx.model()``."""

import json

import pandas as pd
import pytest
import torch
from dash import html
from typer.testing import CliRunner

import proactiv as pv
from proactiv.analysis import STEPS, AnalysisError, TableStep, analyze, register, registered, unregister
from proactiv.analysis.pipeline import stale_steps
from proactiv.analysis.steps import dependency_order
from proactiv.cli import app
from proactiv.dashboard.app import build_app
from proactiv.dashboard.panels.registry import register_step_tab, unregister_panel
from proactiv.store import Run
from proactiv.testing import write_synthetic_run
from proactiv.views.sections import register_section, unregister_section


class MeanDx(TableStep):
    """Mean d_x per class, times ``scale``: a toy analysis that exists only in this test file."""

    name = "toy"
    title = "Toy: mean d_x per class"
    settings = {"scale": 1}
    files = ("toy.parquet",)

    def compute(self, ctx, settings, progress):
        sql = f"SELECT label_name, avg(d_x) * {float(settings['scale'])} AS mean_d_x FROM records GROUP BY 1 ORDER BY 1"
        return ctx.view.query(sql)

    def note(self, table):
        return f"{len(table)} classes"


def toy_section(table, ctx):
    """The toy step's report section (a view module would register it)."""
    return "".join(f"<p class='toy'>{r.label_name}: {r.mean_d_x:.6f}</p>" for r in table.itertuples())


def toy_panel(table, ctx):
    """The toy step's dashboard tab (a panel module would register it)."""
    return html.Ul([html.Li(f"{r.label_name}: {r.mean_d_x:.6f}") for r in table.itertuples()], id="toy-panel")


def toy_callbacks(app, ctx):
    from dash import Input, Output, State

    @app.callback(Output("toy-panel", "title"), Input("filter", "data"), State("run", "value"))
    def _title(store, index):
        return f"{ctx.run_of(index).n_records} records"


class ModelSize(TableStep):
    """The number of parameters of the run's model and where it runs: a toy step that needs the model."""

    name = "toy_model"
    title = "Toy: model size"
    needs = frozenset({"model"})
    files = ("toy_model.parquet",)

    def compute(self, ctx, settings, progress):
        model = ctx.model()
        assert ctx.model() is model  # rebuilt once per context
        params = list(model.parameters())
        return pd.DataFrame(
            {"parameters": [sum(p.numel() for p in params)], "device": [str(params[0].device)]}
        )


@pytest.fixture
def toy():
    step = register(MeanDx())
    register_section("toy")(toy_section)
    register_step_tab("toy", toy_panel, toy_callbacks)
    yield step
    unregister_panel("toy")
    unregister_section("toy")
    unregister(step.name)


@pytest.fixture
def model_step():
    step = register(ModelSize())
    yield step
    unregister(step.name)


@pytest.fixture
def run(tmp_path):
    return write_synthetic_run(tmp_path / "run", n_instances=48, instances_per_unit=16)


def _toy_table(run) -> pd.Series:
    return pd.read_parquet(run.path / "analysis" / "toy.parquet").set_index("label_name").mean_d_x


def _manifest(run) -> dict:
    return json.loads((run.path / "analysis" / "manifest.json").read_text())["steps"]


def test_a_registered_step_reaches_the_cli_manifest_report_and_dashboard(toy, run):
    cli = CliRunner()
    listing = cli.invoke(app, ["analyze", "--list"])
    assert listing.exit_code == 0, listing.output
    assert "Toy: mean d_x per class" in listing.output and "scale=1" in listing.output

    first = cli.invoke(app, ["analyze", str(run.path), "--method", "pca", "--no-progress"])
    assert first.exit_code == 0, first.output
    every = [
        s.name for s in registered()
    ]  # every step attempted; the toy reads records only: before the model's
    assert f"computed: {', '.join(every)}\n" in first.output
    assert every.index("toy") < every.index("bias_maps") and set(every) == {*STEPS, "toy"}
    assert "toy: 4 classes" in first.output
    expected = run.records.groupby("label_name").d_x.mean()
    pd.testing.assert_series_equal(_toy_table(run), expected, check_names=False)
    entry = _manifest(run)["toy"]
    assert (
        entry["settings"] == {"scale": 1}
        and entry["files"] == ["toy.parquet"]
        and entry["note"] == "4 classes"
    )

    stamp = (run.path / "analysis" / "toy.parquet").stat().st_mtime_ns
    again = cli.invoke(app, ["analyze", str(run.path), "--method", "pca", "--no-progress"])
    assert "every step was up to date" in again.output
    assert (run.path / "analysis" / "toy.parquet").stat().st_mtime_ns == stamp

    changed = cli.invoke(
        app, ["analyze", str(run.path), "--method", "pca", "--set", "toy.scale=2", "--no-progress"]
    )
    assert changed.exit_code == 0, changed.output
    assert "computed: toy\n" in changed.output  # only the step whose setting changed
    pd.testing.assert_series_equal(_toy_table(run), 2 * expected, check_names=False)
    assert _manifest(run)["toy"]["settings"] == {"scale": 2}
    stamp = (run.path / "analysis" / "toy.parquet").stat().st_mtime_ns

    report = cli.invoke(app, ["report", str(run.path), "--method", "pca", "--set", "toy.scale=2", "--gallery", "1",
                              "--no-progress"])  # fmt: skip
    assert report.exit_code == 0, report.output
    page = (run.path / "report.html").read_text()
    assert "<section id='toy'><h2>Toy: mean d_x per class</h2><p class='note'>4 classes</p>" in page
    assert f"<p class='toy'>yes: {2 * expected['yes']:.6f}</p>" in page
    assert (run.path / "analysis" / "toy.parquet").stat().st_mtime_ns == stamp  # the report reused it

    dash_app = build_app([run.path])
    assert "toy-panel.title" in dash_app.callback_map  # the step made its own tab interactive
    tabs = dash_app.layout["tabs"].children
    tab = next(
        t for t in tabs if t.label == "Toy"
    )  # the tab says the title up to its colon, the card all of it
    assert tab.children[0].children[0].children == "Toy: mean d_x per class"
    assert [item.children for item in tab["toy-panel"].children][-1] == f"yes: {2 * expected['yes']:.6f}"


def test_settings_steps_and_results_by_name(toy, run):
    result = analyze(run, steps=["toy"], scale=3)  # a flat setting goes to every step that has it
    assert result.computed == ["toy"]
    assert result["toy"] is result.results["toy"] and result.curves is None
    pd.testing.assert_series_equal(
        _toy_table(run), 3 * run.records.groupby("label_name").d_x.mean(), check_names=False
    )
    assert pv.analysis.load(run)["toy"].equals(result["toy"])
    with pytest.raises(KeyError, match="registered steps: curves"):
        result["nope"]
    with pytest.raises(ValueError, match=r"toy has no settings \['scal'\]"):
        analyze(run, settings={"toy": {"scal": 2}})
    with pytest.raises(ValueError, match="unknown analysis settings"):
        analyze(run, sclae=2)
    bad = CliRunner().invoke(app, ["analyze", str(run.path), "--set", "nope.x=1", "--no-progress"])
    assert bad.exit_code == 2 and "unknown analysis steps ['nope']" in bad.output


def test_a_step_is_redone_when_a_step_it_reads_is(run):
    analyze(run, method="pca")
    (run.path / "analysis" / "curves.parquet").unlink()
    assert analyze(run, method="pca", steps=["breakpoints"]).computed == ["curves", "breakpoints"]


def test_a_step_is_redone_when_a_step_it_uses_has_a_new_result_and_only_then(run):
    class UsesSlices(MeanDx):
        name, uses, files = "toy_uses", ("slices",), ("toy_uses.parquet",)

    register(UsesSlices())
    try:
        assert analyze(run, steps=["toy_uses"]).computed == ["toy_uses"]  # slices is not computed for it
        assert analyze(run, steps=["toy_uses"]).computed == []  # still never computed: nothing new to read
        assert "toy_uses" not in stale_steps(run)
        analyze(run, steps=["slices"])  # a new result of the step it uses
        assert "toy_uses" in stale_steps(run)
        assert analyze(run, steps=["toy_uses"]).computed == ["toy_uses"]
        assert analyze(run, steps=["toy_uses"]).computed == []
        analyze(run, steps=["slices"], max_depth=2)  # slices redone with another setting: new again
        assert analyze(run, steps=["toy_uses"]).computed == ["toy_uses"]
    finally:
        unregister("toy_uses")


def test_registry_refuses_bad_steps(toy):
    with pytest.raises(ValueError, match="already registered"):
        register(MeanDx())

    class Orphan(MeanDx):
        name, after = "orphan", ("nowhere",)

    register(Orphan())  # registration order is free; reading the registry refuses the missing step by name
    try:
        with pytest.raises(ValueError, match="step orphan reads step 'nowhere', which is not registered"):
            registered()
    finally:
        unregister("orphan")
    with pytest.raises(ValueError, match="read 'curves'"):
        unregister("curves")
    assert [s.name for s in registered() if s.name != "toy"] == list(STEPS)  # the built-ins keep their order


def _step(name, after=(), uses=(), needs=("records",)):
    return type(name, (MeanDx,), {"name": name, "after": after, "uses": uses, "needs": frozenset(needs)})()


def test_the_order_follows_dependencies_whatever_the_registration_order():
    # registered readers-first: every step still comes after the steps it reads, ties to the cheapest then the
    # earliest registered (records before arrays before the model)
    steps = [_step("c", after=("b",)), _step("m", needs=("model",)), _step("b", uses=("a",)), _step("a"),
             _step("z")]  # fmt: skip
    assert [s.name for s in dependency_order(steps)] == ["a", "b", "c", "z", "m"]
    with pytest.raises(ValueError, match=r"cycle: x reads \['y'\]; y reads \['x'\]"):
        dependency_order([_step("x", after=("y",)), _step("y", uses=("x",))])
    with pytest.raises(ValueError, match="step c reads step 'b', which is not registered"):
        dependency_order([_step("c", after=("b",))])


def test_the_built_in_steps_come_after_what_they_read():
    order = [s.name for s in registered()]
    for step in registered():
        for dep in (*step.after, *step.uses):
            assert order.index(dep) < order.index(step.name), (step.name, dep)


def test_a_step_needing_the_model_gets_it_from_the_run(model_step, tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(64, 4)
    )  # torch classes: kept with the run
    x, y = torch.rand(8, 1, 8, 8), torch.arange(8) % 4
    grid = pv.Grid([pv.transforms.get("gain", gain_db=[0, -6])])
    run = pv.sweep(model, x, y, grid, tmp_path / "run", projector=pv.Projector(model, lr=0.05, max_steps=5),
                   progress=False)  # fmt: skip
    result = analyze(run, steps=["toy_model"], device="cpu")
    assert result.computed == ["toy_model"]
    assert result["toy_model"] is not None, result.notes["toy_model"]
    assert result["toy_model"].parameters.iloc[0] == 64 * 4 + 4
    assert result["toy_model"].device.iloc[0] == "cpu"


def test_a_run_that_cannot_rebuild_its_model_skips_the_step(model_step, run, monkeypatch):
    calls = []

    def no_model(self, device="auto"):
        calls.append(device)
        raise AnalysisError("no model here")

    monkeypatch.setattr(Run, "model", no_model)
    result = analyze(run, steps=["toy_model"], device="cuda:7")
    assert calls == ["cuda:7"]
    assert result["toy_model"] is None
    assert result.notes["toy_model"] == f"skipped: cannot rebuild the model of run {run.path}: no model here"

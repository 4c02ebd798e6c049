"""A step defined in another installed package — with its report section and dashboard panel — registers through
the entry-point groups ``proactiv.steps``, ``proactiv.views`` and ``proactiv.panels`` and appears in
``proactiv analyze --list``, the manifest, the report and the dashboard with no edit of proactiv. The package is
built and installed with pip (into a folder of its own, put on the path of a fresh interpreter), so the real
entry-point lookup finds it."""

import json
import os
import subprocess
import sys
import textwrap
import warnings

import pytest

from proactiv import plugins
from proactiv.testing import write_synthetic_run

PYPROJECT = """
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "proactiv-loudness"
version = "0.1"

[project.entry-points."proactiv.steps"]
loudness = "proactiv_loudness.step"
[project.entry-points."proactiv.views"]
loudness = "proactiv_loudness.view"
[project.entry-points."proactiv.panels"]
loudness = "proactiv_loudness.panel"
"""
STEP = """
from proactiv.analysis import TableStep, register

class Loudness(TableStep):
    name = "loudness"
    title = "Loudness: mean d_t per class"
    settings = {"scale": 1}
    after = ("slices",)
    files = ("loudness.parquet",)

    def compute(self, ctx, settings, progress):
        return ctx.view.query("SELECT label_name, avg(d_t) AS mean_d_t FROM records GROUP BY 1 ORDER BY 1")

    def note(self, table):
        return f"loudness of {len(table)} classes"

register(Loudness())
"""
VIEW = """
from proactiv.views.sections import register_section

@register_section("loudness")
def section(table, ctx):
    return "".join(f"<p class='loud'>{r.label_name}</p>" for r in table.itertuples())
"""
PANEL = """
from dash import html
from proactiv.dashboard.panels.registry import register_step_tab

register_step_tab("loudness", lambda table, ctx: html.Ul([html.Li(n) for n in table.label_name], id="loud-list"))
"""
CHECK = """
import json, sys
from typer.testing import CliRunner
from proactiv.analysis import registered
from proactiv.cli import app
from proactiv.dashboard.app import build_app

run = sys.argv[1]
cli = CliRunner()
listing = cli.invoke(app, ["analyze", "--list"]).output
analysed = cli.invoke(app, ["analyze", run, "--method", "pca", "--no-progress"])
report = cli.invoke(app, ["report", run, "--method", "pca", "--gallery", "1", "--no-progress"])
tabs = [t.label for t in build_app([run]).layout["tabs"].children]
order = [s.name for s in registered()]
print(json.dumps({"listing": listing, "analyse": analysed.exit_code, "report": report.exit_code, "tabs": tabs,
                  "after_slices": order.index("loudness") > order.index("slices")}))
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The plug-in package built from source and installed with pip into a folder of its own."""
    root = tmp_path_factory.mktemp("plugin")
    source = root / "src"
    (source / "proactiv_loudness").mkdir(parents=True)
    (source / "pyproject.toml").write_text(PYPROJECT)
    for name, text in {"__init__": "", "step": STEP, "view": VIEW, "panel": PANEL}.items():
        (source / "proactiv_loudness" / f"{name}.py").write_text(textwrap.dedent(text))
    target = root / "site"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(target), str(source)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert list(target.glob("proactiv_loudness-0.1.dist-info/entry_points.txt"))
    return target


@pytest.mark.slow
def test_an_installed_plugin_reaches_the_cli_manifest_report_and_dashboard(installed, tmp_path):
    run = write_synthetic_run(tmp_path / "run", n_instances=24)
    env = {**os.environ, "PYTHONPATH": str(installed), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", CHECK, str(run.path)], capture_output=True, text=True, env=env,
                         timeout=600)  # fmt: skip
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert "Loudness: mean d_t per class" in seen["listing"] and "scale=1" in seen["listing"]
    assert seen["analyse"] == 0 and seen["report"] == 0 and seen["after_slices"]
    manifest = json.loads((run.path / "analysis" / "manifest.json").read_text())["steps"]["loudness"]
    assert manifest["files"] == ["loudness.parquet"] and manifest["note"] == "loudness of 4 classes"
    page = (run.path / "report.html").read_text()
    assert (
        "<section id='loudness'><h2>Loudness: mean d_t per class</h2>" in page and "class='loud'>yes<" in page
    )
    assert "Loudness" in seen["tabs"]


def test_without_the_plugin_on_the_path_nothing_of_it_loads(tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", "from proactiv.analysis import registered; print([s.name for s in registered()])"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": ""},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "loudness" not in out.stdout and "curves" in out.stdout


def test_a_broken_plugin_is_skipped_with_a_warning_naming_it(tmp_path, monkeypatch):
    info = tmp_path / "broken_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[proactiv.test_group]\nbad = no_such_module_here.step\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    plugins.forget("proactiv.test_group")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert plugins.load_entry_points("proactiv.test_group") == []
    message = str(caught[0].message)
    assert "'bad' = 'no_such_module_here.step' of broken-plugin 1.0" in message
    assert "ModuleNotFoundError" in message
    assert plugins.load_entry_points("proactiv.test_group") == []  # once per process

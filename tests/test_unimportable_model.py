"""A run keeps a model of the user's own class by reference (``mymodel.MyNet``); opened where that class cannot be
imported, the report is still made from the records, the analyses that need the model are skipped, and the report,
the dashboard's overview and ``proactiv info`` name the module and the one line that makes it importable."""

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import proactiv as pv
from proactiv.analysis.pipeline import analyze
from proactiv.analysis.runview import AnalysisError
from proactiv.analysis.steps import StepContext, missing_without_model
from proactiv.model_copy import missing_class

MODULE = "my_unimportable_net"
SOURCE = """
import torch
from torch import nn


class MyNet(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(4, 3)

    def forward(self, x):
        return self.lin(x)
"""
X = torch.tensor([[1.0, 2, 3, 4], [-1, 0.5, 2, -3], [0.5, 1, -1, 2], [2, -2, 1, 0]])
LABELS = torch.tensor([0, 1, 2, 0])
GRID = pv.Grid([pv.transforms.get("gain", gain_db=[0, -6])])
#: the installed command, which (unlike ``python -m``) has no folder of the user's on its path by itself
PROACTIV = str(Path(sys.executable).with_name("proactiv"))


def sweep(model, out):
    run = pv.sweep(model, (X, LABELS), GRID, out, projection={"max_steps": 3}, execution={"progress": False})
    return pv.open_run(run.path)


def swept_from(folder: Path, monkeypatch) -> pv.Run:
    """A run of MyNet swept by a script in ``folder`` that imports it from MODULE there; afterwards this process,
    like one started in another folder, cannot import MODULE."""
    folder.mkdir()
    (folder / f"{MODULE}.py").write_text(SOURCE)
    with monkeypatch.context() as m:
        m.syspath_prepend(str(folder))
        run = sweep(importlib.import_module(MODULE).MyNet().eval(), folder / "runs" / "mine")
    del sys.modules[MODULE]
    return run


def command(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([PROACTIV, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_report_from_another_folder_is_made_from_the_records_and_names_the_module(tmp_path, monkeypatch):
    run = swept_from(tmp_path / "user", monkeypatch)
    (tmp_path / "elsewhere").mkdir()
    done = command("report", str(run.path), "--method", "pca", "--no-progress", cwd=tmp_path / "elsewhere")
    assert done.returncode == 0, done.stderr
    summary = (run.path / "report.html").read_text().split("<section id='summary'>")[1].split("</section>")[0]
    assert summary.startswith("<h2>Run summary</h2><p class='note'>Missing analyses: ")
    assert f"its class {MODULE}.MyNet is in module {MODULE}, which cannot be imported" in summary
    assert f"run from the folder that has {MODULE}.py" in summary and "PYTHONPATH=/path/to/that" in summary
    steps = json.loads((run.path / "analysis" / "manifest.json").read_text())["steps"]
    assert steps["curves"]["files"] and steps["slices"]["files"]  # the records' analyses are there
    for name in ("attributions", "radius", "cka", "anchors"):
        assert steps[name]["note"].startswith("skipped: ") and f"module {MODULE}" in steps[name]["note"]


def test_from_the_folder_of_its_module_the_skipped_steps_are_computed(tmp_path, monkeypatch):
    run = swept_from(tmp_path / "user", monkeypatch)
    skipped = analyze(run, steps=["cka"], progress=None)
    assert skipped["cka"] is None and f"{MODULE}.py" in skipped.notes["cka"]
    done = command("analyze", str(run.path), "--step", "cka", "--no-progress", cwd=tmp_path / "user")
    assert done.returncode == 0, done.stderr
    assert "computed: cka" in done.stdout  # the step skipped for want of MODULE is stale once MODULE is found


def test_info_and_the_dashboard_name_the_missing_module(tmp_path, monkeypatch):
    from proactiv.cli import app
    from proactiv.dashboard.data import RunData
    from proactiv.dashboard.panels.overview import summary_children

    run = swept_from(tmp_path / "user", monkeypatch)
    missing = missing_without_model(run)
    assert missing.startswith("Missing analyses: ") and f"module {MODULE}" in missing
    assert missing in " ".join(CliRunner().invoke(app, ["info", str(run.path)]).output.split())
    assert summary_children(RunData(run.path, compute=False)).pop(0).children == missing
    with pytest.raises(AnalysisError, match=f"cannot rebuild the model of run .*{MODULE}.py"):
        StepContext(run).model()


def test_a_module_that_imports_a_missing_library_says_to_install_it(tmp_path, monkeypatch):
    run = swept_from(tmp_path / "user", monkeypatch)
    (tmp_path / "user" / f"{MODULE}.py").write_text("import absent_library_31\n" + SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path / "user"))
    missing = missing_class(run.path / "model.pt")
    assert missing.not_found == "absent_library_31"
    assert missing.why == f"its class {MODULE}.MyNet needs module absent_library_31, which cannot be imported"
    assert missing.remedy.startswith("install absent_library_31, or run from the folder")


class MainNet(nn.Module):
    """A class defined in the script that ran the sweep: pickled as ``__main__.MainNet``."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 3)

    def forward(self, x):
        return self.lin(x)


MainNet.__module__ = "__main__"


def test_a_class_of_the_sweeping_script_says_to_move_it_into_a_module(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules["__main__"], "MainNet", MainNet, raising=False)
    run = sweep(MainNet().eval(), tmp_path / "r")
    assert missing_without_model(run) is None  # in the sweeping process the class is found
    monkeypatch.delattr(sys.modules["__main__"], "MainNet")
    with pytest.raises(AnalysisError, match="defined in the script that ran the sweep"):
        StepContext(run).model()
    assert "move MainNet into a module of its own" in missing_without_model(run)

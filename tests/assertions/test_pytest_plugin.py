"""The pytest plugin: `pytest --proactiv CHECKS.yaml` adds one test per check to a team's own suite and fails
the run on a violation, with the contract's message; loading the plugin imports none of the analyses.

The team's suite runs in this process (``pytest.main`` in the project folder), as pytester does."""

import ast
import subprocess
import sys
from importlib.metadata import entry_points

import pytest
import torch

import proactiv.assertions as assertions
import proactiv_pytest

torch.set_num_threads(1)


def _pytest(folder, monkeypatch, capsys, *args):
    (folder / "test_team.py").write_text("def test_their_own():\n    assert 1 + 1 == 2\n")
    monkeypatch.chdir(folder)
    code = pytest.main(
        [
            "-q",
            "-p",
            "no:cacheprovider",
            "-rA",
            "-W",
            "ignore",
            "--import-mode=importlib",
            *map(str, args),
            str(folder),
        ]
    )
    out = capsys.readouterr()
    return int(code), out.out + out.err


def test_the_plugin_is_an_entry_point():
    assert "proactiv_pytest" in [e.value for e in entry_points(group="pytest11")], (
        "reinstall proactiv (pip install --no-deps -e .) to register its pytest plugin"
    )


def test_a_violation_fails_the_test_run(project, monkeypatch, capsys):
    code, out = _pytest(project.root, monkeypatch, capsys, "--proactiv", "CHECKS.yaml",
                        "--proactiv-model", "broken.pt", "--proactiv-out", "sweeps")  # fmt: skip
    assert code == 1, out
    assert "3 failed, 4 passed" in out
    assert "FAILED CHECKS.yaml::quiet accuracy" in out and "PASSED test_team.py::test_their_own" in out
    assert "quiet accuracy: accuracy at gain.gain_db=-20 over all instances is" in out
    assert "FAILED CHECKS.yaml::invariant transform={type: gain, gain_db: [-20, 20]}" in out


def test_a_model_that_holds_passes(project, monkeypatch, capsys):
    code, out = _pytest(project.root, monkeypatch, capsys, "--proactiv", "CHECKS.yaml",
                        "--proactiv-model", "robust.pt", "--proactiv-out", "sweeps")  # fmt: skip
    assert code == 0 and "7 passed" in out, out
    assert "all 96 records satisfy d_x <= 0.5" in out  # the soft check's report section


def test_a_bad_checks_file_is_a_usage_error(project, monkeypatch, capsys):
    project.checks.write_text("config: sweep.yaml\nchecks:\n  - {kind: accuracy_at, at_least: 2}\n")
    code, out = _pytest(project.root, monkeypatch, capsys, "--proactiv", "CHECKS.yaml")
    assert code == 4 and "checks[0].accuracy_at.at_least" in out and "checks[0].accuracy_at.point" in out


def _top_level_imports(module) -> set[str]:
    tree = ast.parse(open(module.__file__).read())
    names = set()
    for node in tree.body:  # module level only: imports inside functions run when used
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add((node.module or "").split(".")[0])
    return names


def test_loading_the_plugin_imports_nothing_of_proactiv():
    assert _top_level_imports(proactiv_pytest) <= {"__future__", "pytest"}
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, proactiv_pytest; print(sorted(m for m in sys.modules if 'proactiv' in m))"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert loaded.strip() == "['proactiv_pytest']"
    assert _top_level_imports(assertions) <= {
        "__future__",
        "importlib",
        "typing",
    }  # names resolve on first use


def test_a_check_that_could_not_be_checked_fails_with_its_reason(project, robust_run, monkeypatch, capsys):
    project.checks.write_text(
        "checks:\n  - {kind: breakpoint_beyond, transform: gain_db, value: -40, name: holds to -40 dB}\n"
    )
    code, out = _pytest(project.root, monkeypatch, capsys, "--proactiv", "CHECKS.yaml",
                        "--proactiv-run", robust_run.path)  # fmt: skip
    assert code == 1 and "1 failed, 1 passed" in out, out
    assert "holds to -40 dB: NOT CHECKED: " in out and "gain.gain_db=-40" in out
    code, out = _pytest(project.root, monkeypatch, capsys, "--proactiv", "CHECKS.yaml",
                        "--proactiv-run", robust_run.path, "--proactiv-allow-unchecked")  # fmt: skip
    assert code == 0 and "1 passed, 1 skipped" in out and "NOT CHECKED" in out, out

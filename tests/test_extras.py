"""Optional libraries: a missing one is named with the extra that installs it (an analysis step lacking one is
skipped saying so, and computed once it is installed), every import of one goes through
:func:`proactiv.extras.require`, the extras match pyproject.toml, and ``proactiv --version``."""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from proactiv.analysis import TableStep, analyze, register, unregister
from proactiv.analysis.pipeline import installed_since, stale_steps
from proactiv.extras import EXTRAS, MissingExtra, require
from proactiv.testing import write_synthetic_run
from proactiv.version import __version__

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "proactiv"
#: top-level modules that only an extra installs
OPTIONAL = {"captum", "shap", "interpret", "openTSNE", "umap", "dash", "waitress", "werkzeug", "flask", "ray",
            "onnx", "onnx2torch", "onnxruntime", "torchvision", "wordfreq", "PIL", "matplotlib", "datasets"}  # fmt: skip
#: where a plain import of one is right: the dashboard's modules (its package checks for Dash first), the ONNX
#: loader (it checks all three libraries by name first), the Ray task body (it runs on a Ray worker)
PLAIN_IMPORTS_ALLOWED = ("dashboard/", "models.py", "executors.py")


def test_require_returns_the_module():
    assert require("json", "kws").dumps([1]) == "[1]"


def test_a_missing_library_names_its_extra():
    with pytest.raises(MissingExtra) as caught:
        require("no_such_library_here", "embed", "the planted step")
    err = caught.value
    # an ImportError to code that handles missing modules; a ValueError to the commands, which print it whole
    assert isinstance(err, ImportError) and isinstance(err, ValueError)
    assert str(err).startswith("the planted step needs the no_such_library_here package, which is not ")
    assert "pip install 'proactiv[embed]'" in str(err) and err.extra == "embed"


def test_a_library_missing_one_of_its_own_imports_says_which(tmp_path, monkeypatch):
    (tmp_path / "half_installed.py").write_text("import its_missing_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(MissingExtra, match=r"its_missing_dependency.*pip install 'proactiv\[explain\]'"):
        require("half_installed", "explain")


def test_an_unknown_extra_is_refused():
    with pytest.raises(ValueError, match="'dashbord' is not an extra of proactiv"):
        require("json", "dashbord")


def test_the_extras_are_those_of_pyproject():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert set(EXTRAS) <= set(extras) and "all" in extras
    assert extras["all"] == [f"proactiv[{','.join(EXTRAS)}]"]
    core = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {d.split(">")[0].split("=")[0].split("<")[0].strip().lower() for d in core}
    heavy = {"dash", "captum", "shap", "interpret-core", "opentsne", "umap-learn", "wordfreq", "ray"}
    assert not names & heavy


def _plain_optional_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names = [node.module]
        else:
            continue
        found += [f"{path.relative_to(PACKAGE)}:{node.lineno} imports {n}" for n in names
                  if n.split(".")[0] in OPTIONAL]  # fmt: skip
    return found


def test_optional_libraries_are_imported_through_require():
    plain = [
        hit
        for path in sorted(PACKAGE.rglob("*.py"))
        if not str(path.relative_to(PACKAGE)).startswith(PLAIN_IMPORTS_ALLOWED)
        for hit in _plain_optional_imports(path)
    ]
    assert not plain, (
        "import these through proactiv.extras.require(module, extra, purpose), so that a user without the "
        f"extra reads the pip command that installs it: {plain}"
    )


def test_version_is_the_package_metadata():
    from proactiv.cli import app

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output == f"proactiv {__version__}\n"
    assert importlib.metadata.version("proactiv") == __version__


def test_python_m_proactiv_version():
    done = subprocess.run(
        [sys.executable, "-m", "proactiv", "--version"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"proactiv {__version__}\n"


class NeedsALibrary(TableStep):
    """A step whose library (``planted_optional``) is missing until the test writes it."""

    name = "needs_library"
    title = "Toy: a step of an extra"
    files = ("needs_library.parquet",)

    def compute(self, ctx, settings, progress):
        library = require("planted_optional", "embed", "the toy step")
        return pd.DataFrame({"answer": [library.ANSWER]})


def test_a_step_without_its_library_is_skipped_naming_the_extra_and_computed_once_installed(
    tmp_path, monkeypatch
):
    run = write_synthetic_run(tmp_path / "run", n_instances=24, instances_per_unit=12)
    monkeypatch.syspath_prepend(str(tmp_path))
    register(NeedsALibrary())
    try:
        first = analyze(run, steps=["needs_library"])
        assert first["needs_library"] is None
        assert first.notes["needs_library"] == (
            "skipped: the toy step needs the planted_optional package, which is not installed: "
            "pip install 'proactiv[embed]' (in a checkout: pip install -e '.[embed]')"
        )
        assert "needs_library" not in stale_steps(run)  # skipped for good while the library is missing
        (tmp_path / "planted_optional.py").write_text("ANSWER = 42\n")
        importlib.invalidate_caches()
        assert "needs_library" in stale_steps(run)  # installed since: computed again
        assert installed_since(run) == ["needs_library"]  # (the dashboard computes these too)
        assert analyze(run, steps=["needs_library"])["needs_library"].answer.tolist() == [42]
    finally:
        unregister("needs_library")
        sys.modules.pop("planted_optional", None)

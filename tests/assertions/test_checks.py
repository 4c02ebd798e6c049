"""CHECKS.yaml and `proactiv check`: validation names the file, check and value; the command passes the robust
model, fails the broken one (exit 1), refuses bad input (exit 2), writes JUnit XML naming each check, and a
second check of the same model sweeps nothing."""

import xml.etree.ElementTree as ET

import pytest
import torch
from typer.testing import CliRunner

from proactiv.assertions.checks import check_name, load_checks, model_spec, run_checks
from proactiv.assertions.junit import write_junit
from proactiv.cli import app
from proactiv.config import ConfigError, ModelSpec

from .conftest import CHECKS

torch.set_num_threads(1)


def _check(project, *args):
    result = CliRunner().invoke(app, ["check", str(project.checks), "--no-progress", *map(str, args)])
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes is not None else "")


@pytest.mark.parametrize(
    "text, message",
    [
        ("config: sweep.yaml\nchecks:\n  - {kind: accuracy_at, point: {gain_db: 0}, at_least: 1.5}\n",
         r"CHECKS.yaml: invalid checks\n  checks\[0\]\.accuracy_at\.at_least: .*less than or equal to 1 \(got 1.5\)"),
        ("config: sweep.yaml\nchecks:\n  - {kind: accuracy_at, point: {gain_db: 0}, at_least: 0.5}\n"
         "  - {kind: fastest, value: 3}\n", r"checks\[1\]: .*'fastest'.*'accuracy_at'"),
        ("config: sweep.yaml\nchecks:\n  - {kind: monotonic, transform: gain, tolerence: 0.1}\n",
         r"checks\[0\]\.monotonic\.tolerence: Extra inputs"),
        ("config: sweep.yaml\nchecks:\n  - {kind: invariant, transform: {type: loud}}\n",
         r"checks\[0\]\.invariant\.transform: unknown transform 'loud'"),
        ("config: sweep.yaml\nchecks: []\n", r"checks: .*at least 1 item"),
        ("checks:\n  - {kind: moves_at_most, d_x: 1}\n", r"CHECKS.yaml: no hard check, only soft ones"),
    ],
)  # fmt: skip
def test_bad_checks_files_are_named(project, text, message):
    project.checks.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_checks(project.checks)


def test_checks_resolve_paths_and_name_themselves(project):
    spec = load_checks(project.checks)
    assert spec.config == project.root.resolve() / "sweep.yaml"
    names = [check_name(c) for c in spec.checks]
    assert names[:3] == ["clean accuracy", "quiet accuracy", "breakpoint_beyond transform=gain_db value=-20"]


def test_model_files_map_to_the_config_field(project, tmp_path):
    assert model_spec(project.robust) == ModelSpec(torchscript=project.robust)  # TorchScript archive
    saved = tmp_path / "model.pt"
    torch.save({"state_dict": {}}, saved)
    assert model_spec(saved) == ModelSpec(path=saved)  # a task's saved model (kws train)
    assert model_spec(tmp_path) == ModelSpec(path=tmp_path)
    with pytest.raises(ConfigError, match="no such file"):
        model_spec(tmp_path / "missing.pt")
    onnx = tmp_path / "exported.onnx"
    onnx.touch()
    assert model_spec(onnx) == ModelSpec(onnx=onnx)


def test_check_reads_an_onnx_model(project, tmp_path):
    from proactiv.models import export_onnx

    from .conftest import linear

    onnx = export_onnx(linear(None), torch.zeros(1, 6), tmp_path / "robust.onnx")
    code, text = _check(project, "--model", onnx, "--out", tmp_path / "onnx-run")
    assert code == 0 and "PASS" in text and "FAIL" not in text, text


def test_check_passes_the_robust_model_and_resumes(project, tmp_path):
    out = tmp_path / "sweeps"
    code, text = _check(project, "--model", project.robust, "--out", out, "--junit", tmp_path / "ok.xml")
    assert code == 0, text
    assert "clean accuracy" in text and "PASS" in text and "FAIL" not in text and "SOFT" in text
    assert "5 hold, 0 violated, 0 not checked; soft checks list" in text
    done = sorted((out / "done").iterdir())
    stamps = [p.stat().st_mtime_ns for p in done]
    code, _ = _check(project, "--model", project.robust, "--out", out)
    assert code == 0 and [p.stat().st_mtime_ns for p in sorted((out / "done").iterdir())] == stamps


def test_check_fails_the_broken_model_with_junit(project, tmp_path):
    junit = tmp_path / "report" / "checks.xml"
    code, text = _check(project, "--model", project.broken, "--out", tmp_path / "b", "--junit", junit)
    assert code == 1, text
    assert "2 hold, 3 violated, 0 not checked" in text
    assert "violated: quiet accuracy, breakpoint_beyond" in text
    root = ET.parse(junit).getroot()
    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    cases = suite.findall("testcase")
    names = [c.get("name") for c in cases]
    assert names == [check_name(c) for c in load_checks(project.checks).checks]
    assert suite.get("tests") == "6" and suite.get("failures") == "3" == root.get("failures")
    failed = {c.get("name"): c.find("failure") for c in cases if c.find("failure") is not None}
    assert set(failed) == {"quiet accuracy", names[2], names[4]}
    assert "gain.gain_db=-20" in failed["quiet accuracy"].get("message")
    soft = cases[-1]
    assert soft.find("failure") is None and "records" in soft.find("system-out").text
    props = {p.get("name"): p.get("value") for p in soft.find("properties")}
    assert int(props["violations"]) >= 0 and int(props["records"]) == 24 * 4


def test_check_refuses_a_run_of_another_model_and_bad_input(project, tmp_path):
    code, _ = _check(project, "--model", project.robust, "--out", tmp_path / "r")
    assert code == 0
    code, text = _check(project, "--model", project.broken, "--run", tmp_path / "r")
    assert code == 2 and "swept another model" in text and str(project.broken) in text
    code, text = _check(project, "--run", tmp_path / "r", "--model", tmp_path / "nothing.pt")
    assert code == 2 and "nothing.pt: no such file" in text
    project.checks.write_text("config: sweep.yaml\nchecks:\n  - {kind: no_worse_than}\n")
    code, text = _check(project, "--run", tmp_path / "r")
    assert code == 2 and "no baseline run" in text


def test_no_worse_than_reads_the_baseline(robust_run, broken_run, project, tmp_path):
    project.checks.write_text("config: sweep.yaml\nchecks:\n  - {kind: no_worse_than, tolerance: 0.05}\n")
    spec = load_checks(project.checks)
    [outcome] = run_checks(spec, broken_run, baseline=robust_run)
    assert outcome.failed and "baseline 1.000" in outcome.result.message
    path = write_junit(run_checks(spec, robust_run, baseline=robust_run), tmp_path / "j.xml")
    case = ET.parse(path).getroot().find("testsuite/testcase")
    assert case.get("name") == "no_worse_than tolerance=0.05" and case.find("failure") is None


# ------------------------------------------------------------------- no verdict from nothing checked
UNCHECKABLE = """\
checks:
  - {kind: accuracy_at, point: {gain_db: 0}, at_least: 0.8, name: clean accuracy}
  - {kind: breakpoint_beyond, transform: gain_db, value: -40, name: holds to -40 dB}
  - {kind: moves_at_most, d_x: 0.5}
"""


def test_a_not_checked_check_is_counted_apart_and_fails_unless_allowed(project, robust_run, tmp_path):
    project.checks.write_text(UNCHECKABLE)  # no config: --run names the run to read
    junit = tmp_path / "checks.xml"
    code, text = _check(project, "--run", robust_run.path, "--junit", junit)
    assert code == 1, text
    assert "1 hold, 0 violated, 1 not checked" in text and "NOT CHECKED" in text
    assert "not checked: holds to -40 dB" in text and "--allow-unchecked" in text
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite.get("errors") == "1" and suite.get("failures") == "0"
    [error] = [c.find("error") for c in suite.findall("testcase") if c.find("error") is not None]
    assert "gain.gain_db=-40" in error.get("message") and "stops at -20" in error.get("message")
    code, text = _check(project, "--run", robust_run.path, "--allow-unchecked")
    assert code == 0 and "1 hold, 0 violated, 1 not checked" in text, text


def test_a_violation_fails_even_when_unchecked_checks_are_allowed(project, broken_run):
    project.checks.write_text(UNCHECKABLE.replace("at_least: 0.8", "at_least: 1.0"))
    code, text = _check(project, "--run", broken_run.path, "--allow-unchecked")
    assert code == 1 and "0 hold, 2 violated, 0 not checked" in text, text  # -40 is broken at -20 already


def test_a_checks_file_of_soft_checks_only_is_refused(project, robust_run):
    project.checks.write_text("config: sweep.yaml\nchecks:\n  - {kind: moves_at_most, d_x: 0.5}\n")
    with pytest.raises(ConfigError, match=r"CHECKS.yaml: no hard check.*moves_at_most"):
        load_checks(project.checks)
    code, text = _check(project, "--run", robust_run.path)
    assert code == 2 and "CHECKS.yaml: no hard check" in text, text


def test_a_run_needs_no_sweep_config(project, robust_run):
    project.checks.write_text("config: missing.yaml\n" + CHECKS.split("\n", 1)[1])  # the config is not read
    code, text = _check(project, "--run", robust_run.path)
    assert code == 0 and "5 hold, 0 violated, 0 not checked" in text, text
    project.checks.write_text(CHECKS.split("\n", 1)[1])
    assert load_checks(project.checks).config is None
    code, text = _check(project, "--run", robust_run.path)
    assert code == 0, text
    code, text = _check(project, "--model", project.robust)  # nothing to sweep without a config
    assert code == 2 and "names no sweep config" in text, text
    code, text = _check(project, "--model", project.robust, "--run", robust_run.path)  # nor to build --model
    assert code == 2 and "names no sweep config" in text and "--run RUN alone" in text, text

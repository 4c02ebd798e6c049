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
        ("checks:\n  - {kind: moves_at_most, d_x: 1}\n", r"config: Field required"),
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
    assert "all 5 checks hold; soft checks list" in text
    done = sorted((out / "done").iterdir())
    stamps = [p.stat().st_mtime_ns for p in done]
    code, _ = _check(project, "--model", project.robust, "--out", out)
    assert code == 0 and [p.stat().st_mtime_ns for p in sorted((out / "done").iterdir())] == stamps


def test_check_fails_the_broken_model_with_junit(project, tmp_path):
    junit = tmp_path / "report" / "checks.xml"
    code, text = _check(project, "--model", project.broken, "--out", tmp_path / "b", "--junit", junit)
    assert code == 1, text
    assert "3 of 6 checks violated: quiet accuracy, breakpoint_beyond" in text
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

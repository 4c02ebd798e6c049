import re

import pytest
from typer.testing import CliRunner

from proactiv.cli import app
from proactiv.report import write_report
from proactiv.testing import synthetic_grid, write_synthetic_run

from .page import assert_self_contained, figures, labels


@pytest.fixture(scope="module")
def spectrogram_report(tmp_path_factory):
    run = write_synthetic_run(tmp_path_factory.mktemp("spec") / "run", n_instances=48)
    return run, write_report(run, gallery=2, method="pca")


def test_report_is_self_contained_with_every_section(spectrogram_report):
    run, path = spectrogram_report
    assert path == run.path / "report.html"
    page = path.read_text()
    assert_self_contained(page)
    # the sections of the steps a run without a model computes, and those of its records
    for section in ("breakpoints", "heatmaps", "slices", "embedding_points", "embedding_instances", "bias_maps",
                    "gallery"):  # fmt: skip
        assert f"<section id='{section}'>" in page
    shown = dict(zip(labels(page), figures(page), strict=True))
    for alt in ("breakpoint curves", "per-class accuracy curves", "accuracy heatmaps", "embedding per grid point",
                "embedding per instance", "bias maps"):  # fmt: skip
        assert shown[alt]["data"], alt
    records = [a for a in shown if re.fullmatch(r"record \d+ at point \d+", a)]
    assert len(records) == 2
    # spectrogram records are maps: x, xT, x̂T and x̂T − xT
    assert all([t["type"] for t in shown[a]["data"]] == ["heatmap"] * 4 for a in records)
    # the planted breakpoint: accuracy collapses below 2.5 dB SNR, so the curve breaks at 0 dB
    marks = [t for t in shown["breakpoint curves"]["data"] if t.get("name") == "breakpoint"]
    assert marks and any(t["x"] == ["0"] for t in marks)


def test_report_runs_the_missing_analysis_first(spectrogram_report):
    run, _ = spectrogram_report
    assert (run.path / "analysis" / "breakpoints.parquet").exists()


def test_report_states_findings(spectrogram_report):
    page = spectrogram_report[1].read_text()
    assert "meta.voice = v3" in page  # the planted slice, in the slice table
    assert "instances pooled per class" in page
    assert "accuracy on clean input" in page
    assert re.search(r"projections converged</dt><dd>1\.000 \(.*\); how they ended: converged \d+</dd>", page)


def test_image_run_without_predictions(tmp_path):
    run = write_synthetic_run(
        tmp_path / "img",
        n_instances=12,
        shape=(1, 8, 8),
        classifier=False,
        grid=synthetic_grid([float("inf"), 0], [0, -6]),
    )
    page = write_report(run, gallery=1, method="pca").read_text()
    assert_self_contained(page)
    assert "not applicable: this run has no predictions" in page
    assert "skipped:" in page  # error slices need a failure definition


def test_waveform_shaped_run(tmp_path):
    grid = synthetic_grid([float("inf"), 0], [0])
    run = write_synthetic_run(
        tmp_path / "wave", n_instances=12, shape=(400,), grid=grid, bias_rows=(100, 120)
    )
    page = write_report(run, gallery=1, method="pca").read_text()
    assert_self_contained(page)
    shown = dict(zip(labels(page), figures(page), strict=True))
    record = next(f for a, f in shown.items() if a.startswith("record "))
    # a waveform is drawn as lines (x, xT, x̂T overlaid; the change beside them), never as a map
    assert {t["type"] for t in record["data"]} == {"scatter"} and len(record["data"]) == 4
    assert {t["type"] for t in shown["bias maps"]["data"]} == {"scatter"}


def test_cli_report(tmp_path):
    run = write_synthetic_run(tmp_path / "run", n_instances=12, grid=synthetic_grid([float("inf"), 0], [0]))
    out = tmp_path / "shared.html"
    result = CliRunner().invoke(
        app,
        ["report", str(run.path), "--out", str(out), "--method", "pca", "--gallery", "1", "--no-progress"],
    )
    assert result.exit_code == 0, result.output
    assert_self_contained(out.read_text())
    missing = CliRunner().invoke(app, ["report", str(tmp_path / "absent")])
    assert missing.exit_code == 2 and "absent" in missing.output

import re

import pytest
from typer.testing import CliRunner

from proactiv.testing import synthetic_grid, write_synthetic_run
from proactiv.cli import app
from proactiv.report import write_report
from proactiv.report.html import SECTIONS


def _assert_self_contained(page: str) -> None:
    assert not re.search(r"https?://", page), "the report must open offline: no web addresses"
    assert "<script" not in page and "<link" not in page
    sources = re.findall(r"<img[^>]*\ssrc='([^']*)'", page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)


@pytest.fixture(scope="module")
def spectrogram_report(tmp_path_factory):
    run = write_synthetic_run(tmp_path_factory.mktemp("spec") / "run", n_instances=48)
    return run, write_report(run, gallery=2, method="pca")


def test_report_is_self_contained_with_every_section(spectrogram_report):
    run, path = spectrogram_report
    assert path == run.path / "report.html"
    page = path.read_text()
    _assert_self_contained(page)
    for section in SECTIONS:
        assert f"<section id='{section}'>" in page
    for alt in ("breakpoint curves", "per-class accuracy curves", "accuracy heatmaps", "embedding per grid point",
                "embedding per instance", "bias maps"):  # fmt: skip
        assert f"alt='{alt}'" in page
    assert len(re.findall(r"alt='record \d+ at point \d+'", page)) == 2


def test_report_runs_the_missing_analysis_first(spectrogram_report):
    run, _ = spectrogram_report
    assert (run.path / "analysis" / "breakpoints.parquet").exists()


def test_report_states_findings(spectrogram_report):
    page = spectrogram_report[1].read_text()
    assert "meta.voice = v3" in page  # the planted slice, in the slice table
    assert "instances pooled per class" in page
    assert "accuracy on clean input" in page


def test_image_run_without_predictions(tmp_path):
    run = write_synthetic_run(
        tmp_path / "img",
        n_instances=12,
        shape=(1, 8, 8),
        classifier=False,
        grid=synthetic_grid([float("inf"), 0], [0, -6]),
    )
    page = write_report(run, gallery=1, method="pca").read_text()
    _assert_self_contained(page)
    assert "not applicable: this run has no predictions" in page
    assert "skipped:" in page  # error slices need a failure definition


def test_waveform_shaped_run(tmp_path):
    grid = synthetic_grid([float("inf"), 0], [0])
    run = write_synthetic_run(
        tmp_path / "wave", n_instances=12, shape=(400,), grid=grid, bias_rows=(100, 120)
    )
    page = write_report(run, gallery=1, method="pca").read_text()
    _assert_self_contained(page)
    assert "alt='bias maps'" in page and "alt='record " in page


def test_cli_report(tmp_path):
    run = write_synthetic_run(tmp_path / "run", n_instances=12, grid=synthetic_grid([float("inf"), 0], [0]))
    out = tmp_path / "shared.html"
    result = CliRunner().invoke(
        app,
        ["report", str(run.path), "--out", str(out), "--method", "pca", "--gallery", "1", "--no-progress"],
    )
    assert result.exit_code == 0, result.output
    _assert_self_contained(out.read_text())
    missing = CliRunner().invoke(app, ["report", str(tmp_path / "absent")])
    assert missing.exit_code == 2 and "absent" in missing.output

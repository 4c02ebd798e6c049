import json

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

import proactiv as pv
from proactiv.analysis import (
    STEPS,
    AnalysisError,
    analyze,
    breakpoints,
    get,
    load_analysis,
    registered,
    stale_steps,
)
from proactiv.analysis.pipeline import default_settings, require_run
from proactiv.cli import app
from proactiv.testing import write_synthetic_run

#: what analysing a synthetic run (records and arrays, no model) writes: the files of every step that needs no
#: model, derived from the registry, so a new step is expected without an edit here
FILES = ["manifest.json", *(f for s in registered() if "model" not in s.needs for f in s.files)]


@pytest.fixture
def run(tmp_path):
    return write_synthetic_run(tmp_path / "run", n_instances=48, instances_per_unit=16)


def test_analyze_writes_every_file_and_matches_the_python_api(run):
    result = analyze(run, method="pca")
    assert result.computed == list(STEPS)
    assert sorted(p.name for p in (run.path / "analysis").iterdir()) == sorted(FILES)
    assert {"breakpoints.parquet", "slices.parquet", "bias_maps.npz"} <= set(FILES)
    stored = pd.read_parquet(run.path / "analysis" / "breakpoints.parquet")
    pd.testing.assert_frame_equal(stored, breakpoints(run), check_dtype=False)
    assert result.slices.iloc[0].conditions == "meta.voice = v3"
    assert result.bias.ranking.iloc[0]["class"] == "yes"
    assert "instances pooled per class" in result.notes["bias_maps"]


def test_second_analyze_recomputes_nothing(run):
    analyze(run, method="pca")
    stamp = (run.path / "analysis" / "curves.parquet").stat().st_mtime_ns
    assert analyze(run, method="pca").computed == []
    assert (run.path / "analysis" / "curves.parquet").stat().st_mtime_ns == stamp


def test_stale_steps_follow_settings_files_and_records(run):
    analyze(run, method="pca")
    assert stale_steps(run, default_settings(method="pca")) == []
    assert stale_steps(run, default_settings(method="pca", threshold=0.5)) == ["breakpoints"]
    assert analyze(run, method="pca", threshold=0.5).computed == ["breakpoints"]
    (run.path / "analysis" / "slices.parquet").unlink()
    readers, stale = [], {"slices"}  # the steps reading slices, and the steps reading those, in order
    for s in registered():
        if stale & {*s.after, *s.uses}:
            readers.append(s.name)
            stale.add(s.name)
    assert readers and analyze(run, method="pca", threshold=0.5).computed == ["slices", *readers]
    # more records (a resumed sweep finished another unit): everything is stale
    extra = run.records[run.records.instance < 16].copy()
    extra["instance"] += 1000
    extra.to_parquet(run.path / "records" / "part-g00009-i00009.parquet", index=False)
    (run.path / "done" / "g00009-i00009.json").write_text("{}")
    assert analyze(run, method="pca", threshold=0.5).computed == list(STEPS)


def test_runs_without_predictions_skip_what_needs_them(tmp_path):
    run = write_synthetic_run(tmp_path / "i2i", n_instances=16, classifier=False)
    result = analyze(run, method="pca")
    assert result.slices is None and result.notes["slices"].startswith("skipped:")
    assert result.breakpoints.empty and "no predictions" in result.notes["breakpoints"]
    assert result.curves is not None and result.bias is not None
    manifest = json.loads((run.path / "analysis" / "manifest.json").read_text())
    assert manifest["steps"]["slices"]["files"] == []


def test_missing_empty_and_corrupt_runs_are_named(tmp_path):
    with pytest.raises(AnalysisError, match="no such run directory"):
        require_run(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(pv.store.RunError, match="no run.json"):
        require_run(tmp_path / "empty")
    run = write_synthetic_run(tmp_path / "bad", n_instances=8)
    for shard in (run.path / "records").glob("*.parquet"):
        shard.write_bytes(b"garbage")
    with pytest.raises(AnalysisError, match=str(run.path)):
        analyze(run)
    for marker in (run.path / "done").glob("*.json"):
        marker.unlink()
    with pytest.raises(AnalysisError, match="no completed records"):
        require_run(run.path)


def test_cli_analyze(run):
    runner = CliRunner()
    result = runner.invoke(app, ["analyze", str(run.path), "--method", "pca", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "computed: curves" in result.output
    again = runner.invoke(app, ["analyze", str(run.path), "--method", "pca", "--no-progress"])
    assert "every step was up to date" in again.output
    missing = runner.invoke(app, ["analyze", str(run.path / "nope")])
    assert missing.exit_code == 2 and "nope" in missing.output


def test_analysis_of_a_real_sweep(small_cnn, tmp_path):
    torch.manual_seed(0)
    x, y = torch.rand(12, 1, 8, 8), torch.arange(12) % 4
    meta = pd.DataFrame({"writer": [f"w{i % 3}" for i in range(12)]})
    grid = pv.Grid(
        [
            pv.transforms.get("noise", snr_db=[float("inf"), 10, -10]),
            pv.transforms.get("gain", gain_db=[0, -6]),
        ]
    )
    run = pv.sweep(small_cnn, x, y, grid, tmp_path / "run", projector=pv.Projector(small_cnn, lr=0.05, max_steps=40),
                   class_names=list("abcd"), metadata=meta, progress=False, arrays_per_class=1)  # fmt: skip
    result = analyze(run, method="pca")
    # the conftest's model class cannot be pickled into the run, so only the steps that need the model may skip
    skipped = [s for s, n in result.notes.items() if n.startswith("skipped")]
    assert all("model" in get(s).needs for s in skipped), result.notes
    assert set(result.embedding_instances["meta.writer"]) == {"w0", "w1", "w2"}
    assert result.bias.mean("a").shape == (1, 8, 8)
    assert np.isfinite(result.curves["mean"]).all()
    assert load_analysis(run).slices is not None

"""Sweeps: records, metadata, arrays, batching invariance, resume of a sweep, custom tasks, CLI errors."""

import random
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch

import proactiv as pv
from proactiv.config import load_config
from proactiv.schema import STATUSES
from proactiv.store import RunError
from proactiv.summary import summarize
from proactiv.sweep import sweep_config

GRID = [pv.transforms.get("noise", snr_db=[20, 0]), pv.transforms.get("gain", gain_db=[0, -6])]


def small_sweep(model, out, dtype=torch.float32, **kw):
    torch.manual_seed(0)
    x = torch.rand(10, 1, 8, 8).to(dtype)
    y = torch.arange(10) % 4
    meta = pd.DataFrame({"writer": [f"w{i % 3}" for i in range(10)], "slant": np.linspace(-1, 1, 10)})
    kw.setdefault("projector", pv.Projector(model, lr=0.05, max_steps=60))
    return pv.sweep(
        model, x, y, pv.Grid(GRID), out, class_names=list("abcd"), metadata=meta, progress=False, **kw
    )


def test_records_have_the_contract_columns(small_cnn, tmp_path):
    run = small_sweep(small_cnn, tmp_path / "run", keep_arrays="sample", arrays_per_class=1)
    rec = run.records
    assert len(rec) == 40 and not rec.duplicated(["instance", "point"]).any()
    expected = [
        "instance",
        "label",
        "label_name",
        "point",
        "noise.snr_db",
        "gain.gain_db",
        "meta.writer",
        "meta.slant",
        "d_x",
        "d_x_clean",
        "d_y",
        "loss_t",
        "loss_proj",
        "loss_change",
        "pred_t",
        "pred_proj",
        "pred_clean",
        "correct_t",
        "correct_proj",
        "flipped",
        "steps",
        "converged",
        "status",
    ]
    assert all(c in rec.columns for c in expected), set(expected) - set(rec.columns)
    assert set(rec.status) <= set(STATUSES) and ((rec.status == "converged") == rec.converged).all()
    overall = summarize(run)["overall"]  # `proactiv info` counts the records of each status some record has
    counts = rec.status.value_counts()
    assert all(overall[f"n_{name}"][0] == n for name, n in counts.items())
    assert list(rec.columns[:4]) == ["instance", "label", "label_name", "point"]
    assert (rec.label_name == rec.label.map(dict(enumerate("abcd")))).all()
    assert (rec["meta.writer"] == rec.instance.map(lambda i: f"w{i % 3}")).all()
    assert np.allclose(rec.loss_change, rec.loss_t - rec.loss_proj)
    assert (rec.flipped == (rec.pred_t != rec.pred_proj)).all()
    assert (rec.converged == (rec.loss_proj < 0.05)).all()
    # the grid's identity-free points were applied: SNR 0 hurts more than SNR 20
    by_snr = rec.groupby("noise.snr_db").d_t.mean()
    assert by_snr[0.0] > by_snr[20.0] > 0
    # DuckDB over the same shards
    q = run.query('SELECT "noise.snr_db" AS snr, count(*) AS n FROM records GROUP BY 1 ORDER BY 1')
    assert q.n.tolist() == [20, 20]
    # arrays kept for the first instance of each class, all points
    assert run.has_arrays(0, 3) and not run.has_arrays(4, 0)
    arr = run.arrays(0, 3)
    row = rec[(rec.instance == 0) & (rec.point == 3)].iloc[0]
    assert arr["x_t"].shape == (1, 8, 8) and arr["x"].shape == (1, 8, 8)
    assert np.isclose(np.sqrt(((arr["x_proj"] - arr["x_t"]) ** 2).mean()), row.d_x, rtol=1e-5)
    with pytest.raises(KeyError, match="no arrays kept for instance 4"):
        run.arrays(4, 0)
    reopened = pv.open_run(tmp_path / "run")
    assert reopened.status == "complete" and reopened.grid.columns == ["noise.snr_db", "gain.gain_db"]


def test_a_constant_input_moves_with_the_run_scale(small_cnn, tmp_path):
    torch.manual_seed(0)
    x = torch.rand(4, 1, 8, 8)
    x[0] = 1.0  # a saturated image, alone in its unit: only the run's other inputs have a scale
    y = (small_cnn(x).argmax(1) + 1).detach() % 4
    run = pv.sweep(small_cnn, x, y, pv.Grid([pv.transforms.get("gain", gain_db=[0])]), tmp_path / "run",
                   projector=pv.Projector(small_cnn, max_steps=200), instances_per_unit=1, progress=False)  # fmt: skip
    rec = run.records.set_index("instance")
    assert rec.status.tolist() == ["converged"] * 4 and rec.loc[0, "steps"] > 0 and rec.loc[0, "d_x"] > 1e-3


def test_same_records_whatever_the_batch_and_unit_sizes(small_cnn, tmp_path):
    model = small_cnn.double()
    runs = []
    for name, batch, inst_unit, proj_unit in (("a", 256, 10, 40), ("b", 3, 3, 5)):
        projector = pv.Projector(model, max_steps=60, batch_size=batch)
        run = small_sweep(model, tmp_path / name, torch.float64, projector=projector,
                          instances_per_unit=inst_unit, projections_per_unit=proj_unit)  # fmt: skip
        runs.append(run.records)
    assert runs[0].steps.nunique() > 1
    pd.testing.assert_frame_equal(runs[0], runs[1], check_exact=False, rtol=1e-8, atol=1e-10)


def test_existing_run_needs_resume_and_same_setup(small_cnn, tmp_path):
    small_sweep(small_cnn, tmp_path / "run")
    with pytest.raises(RunError, match="already exists .*resume"):
        small_sweep(small_cnn, tmp_path / "run")
    # an identical resume is a no-op that keeps every record
    again = small_sweep(small_cnn, tmp_path / "run", resume=True)
    assert len(again.records) == 40
    with pytest.raises(RunError, match=r"projection: stored .*\"max_steps\": 60.*now .*\"max_steps\": 30"):
        small_sweep(
            small_cnn, tmp_path / "run", resume=True, projector=pv.Projector(small_cnn, lr=0.05, max_steps=30)
        )
    other = type(small_cnn)(seed=1)
    with pytest.raises(RunError, match="fingerprints.model: stored"):
        small_sweep(
            other, tmp_path / "run", resume=True, projector=pv.Projector(other, lr=0.05, max_steps=60)
        )


def test_bad_sweep_inputs_are_named(small_cnn, tmp_path):
    grid = pv.Grid(GRID)
    with pytest.raises(ValueError, match="metadata: 3 rows for 4 inputs"):
        pv.sweep(
            small_cnn,
            torch.rand(4, 1, 8, 8),
            torch.arange(4),
            grid,
            tmp_path / "r",
            metadata=pd.DataFrame({"a": [1, 2, 3]}),
            progress=False,
        )
    with pytest.raises(ValueError, match="labels: 3 labels for 4 inputs"):
        pv.sweep(small_cnn, torch.rand(4, 1, 8, 8), torch.arange(3), grid, tmp_path / "r2", progress=False)
    with pytest.raises(TypeError, match="floating-point"):
        pv.sweep(
            small_cnn,
            torch.zeros(4, 1, 8, 8, dtype=torch.uint8),
            torch.arange(4),
            grid,
            tmp_path / "r3",
            progress=False,
        )


def test_image_to_image_records(tmp_path):
    model = torch.nn.Conv2d(1, 1, 3, padding=1)
    x = torch.rand(4, 1, 8, 8)
    targets = x.clone()
    proj = pv.Projector(model, loss="mse", cutoff=1e-3, max_steps=100, lr=0.05)
    run = pv.sweep(model, x, targets, pv.Grid(GRID), tmp_path / "r", projector=proj, progress=False)
    rec = run.records
    assert len(rec) == 16 and (rec.label == -1).all() and "pred_t" not in rec.columns
    assert (rec.loss_proj <= rec.loss_t + 1e-9).all()
    # "correct" for a regression output = its loss is within the projection cutoff
    assert (rec.correct_t == (rec.loss_t < 1e-3)).all() and (rec.correct_proj == rec.converged).all()
    assert "psnr_t" not in rec.columns  # no pixel_range given


def test_image_to_image_runs_store_targets_and_outputs(tmp_path):
    model = torch.nn.Conv2d(1, 1, 3, padding=1)
    x = torch.rand(4, 1, 8, 8)
    targets = 1.0 - x  # unlike the inputs, so a view showing x as the target would be caught
    proj = pv.Projector(model, loss="mse", cutoff=1e-3, max_steps=20, lr=0.05)
    run = pv.sweep(model, x, targets, pv.Grid(GRID), tmp_path / "r", projector=proj, progress=False)
    kept = run.arrays(instance=1, point=2)
    assert np.array_equal(kept["y"], targets[1].numpy()) and np.array_equal(kept["x"], x[1].numpy())
    with torch.no_grad():
        assert np.allclose(kept["y_t"], model(torch.from_numpy(kept["x_t"])[None])[0].numpy(), atol=1e-6)
    for bad, inputs in ((0.0, x), (float("nan"), x), (1.0, x[:, 0])):
        with pytest.raises(ValueError, match="pixel_range=.*PSNR/SSIM need"):
            pv.sweep(model, inputs, targets, pv.Grid(GRID), tmp_path / "bad", projector=proj, pixel_range=bad)
    item = pv.analysis.interim(run, 1, 2)
    assert np.array_equal(item.y, targets[1].numpy())


CONFIG = """
task: digits
data: {instances_per_class: 8, seed: 1, image_size: 8}
grid:
  - {type: noise, snr_db: [.inf, 10, 0, -5]}
  - {type: clip, level: [1.0, 0.5, 0.3]}
  - {type: gain, gain_db: [0, -6]}
projection: {max_steps: 150, lr_fraction: 0.003, batch_size: 64}
units: {instances: 16, projections: 64}
arrays: {keep: sample, per_class: 1}
"""


@pytest.mark.slow
def test_killed_sweep_resumes_to_identical_records(tmp_path):
    cfg_path = tmp_path / "sweep.yaml"
    cfg_path.write_text(CONFIG)
    reference = sweep_config(load_config(cfg_path), tmp_path / "ref", progress=False).records
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "proactiv.cli", "sweep", str(cfg_path), "--out", str(out), "--no-progress"]
    n_units = 5 * 8  # 80 instances / 16 x 24 points / 4 per unit
    for kill_after in (random.Random().randint(1, n_units // 2), 1, 1):  # a fast machine may finish first
        shutil.rmtree(out, ignore_errors=True)
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            done = out / "done"
            if done.exists() and len(list(done.glob("*.json"))) >= kill_after:
                break
            time.sleep(0.002)
        if proc.poll() is None:
            break
        assert proc.returncode == 0, proc.stderr.read().decode()
    assert proc.poll() is None, "the sweep always ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = pv.open_run(out)
    assert 0 < len(partial.records) < len(reference)
    assert (out / ".lock").exists()  # left behind by the killed process
    refused = subprocess.run(cmd, capture_output=True, text=True)
    assert refused.returncode == 2 and "--resume" in refused.stderr
    resumed = subprocess.run([*cmd, "--resume"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    records = pv.open_run(out).records
    assert not records.duplicated(["instance", "point"]).any()
    pd.testing.assert_frame_equal(records, reference)
    info = subprocess.run(
        [sys.executable, "-m", "proactiv.cli", "info", str(out)], capture_output=True, text=True
    )
    assert info.returncode == 0 and "records: 1920 of 1920" in info.stdout and "noise.snr_db" in info.stdout


def test_custom_task_from_factory_and_torchscript(tmp_path):
    from proactiv.tasks.digits.model import DigitsCNN

    small_cnn = DigitsCNN(4, image_size=8)
    torch.save(small_cnn.state_dict(), tmp_path / "w.pt")
    torch.save(torch.rand(8, 1, 8, 8), tmp_path / "x.pt")
    torch.save(torch.arange(8) % 4, tmp_path / "y.pt")
    torch.jit.script(small_cnn).save(str(tmp_path / "m.ts"))
    base = (
        "task: custom\ndata: {inputs: x.pt, labels: y.pt, instances_per_class: 2}\n"
        "grid: [{type: gain, gain_db: [0, -6]}]\nprojection: {max_steps: 20}\n"
    )
    for i, model in enumerate(
        [
            "model: {factory: 'proactiv.tasks.digits.model:DigitsCNN', kwargs: {n_classes: 4, image_size: 8}, weights: w.pt}",
            "model: {torchscript: m.ts}",
        ]
    ):
        (tmp_path / "c.yaml").write_text(base + model)
        run = sweep_config(load_config(tmp_path / "c.yaml"), tmp_path / f"r{i}", progress=False)
        assert len(run.records) == 16
    (tmp_path / "c.yaml").write_text(base + "model: {factory: 'nowhere.mod:make'}")
    from proactiv.config import ConfigError

    with pytest.raises(ConfigError, match="model.factory: cannot import 'nowhere.mod:make'"):
        sweep_config(load_config(tmp_path / "c.yaml"), tmp_path / "r9", progress=False)


def test_cli_reports_errors_without_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("grid: [{type: noise, snr_db: [999]}]")
    res = subprocess.run(
        [sys.executable, "-m", "proactiv.cli", "sweep", str(bad), "--out", str(tmp_path / "r")],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 2 and "noise.snr_db = 999" in res.stderr and "Traceback" not in res.stderr
    res = subprocess.run(
        [sys.executable, "-m", "proactiv.cli", "info", str(tmp_path / "nothing")],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 2 and "not a proactiv run" in res.stderr


def test_a_task_datas_projection_defaults_sit_under_the_given_projection(tmp_path):
    torch.manual_seed(0)
    model, x = torch.nn.Linear(4, 2), torch.randn(3, 4)
    data = pv.TaskData(x, torch.tensor([0, 1, 0]), projection_defaults={"max_steps": 3, "cutoff": 0.2})
    grid = pv.Grid([pv.transforms.get("gain", gain_db=[0])])
    run = pv.sweep(
        model, data, grid, tmp_path / "r", projection={"max_steps": 7}, execution={"progress": False}
    )
    assert run.config["projection"]["max_steps"] == 7 and run.config["projection"]["cutoff"] == 0.2
    with pytest.raises(TypeError, match=r"data: expected \(inputs, labels\), a TaskData, a torch Dataset or a proactiv source, got Tensor"):
        pv.sweep(model, data=x, grid=grid, out=tmp_path / "bad")
    with pytest.raises(TypeError, match="got tuple of length 1"):
        pv.sweep(model, (x,), grid, tmp_path / "bad")
    with pytest.raises(TypeError, match="projection: expected a Projector, a ProjectionSpec or a dict"):
        pv.sweep(model, data, grid, tmp_path / "bad", projection="adam")
    assert not (tmp_path / "bad").exists()

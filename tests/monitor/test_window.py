"""A monitored window swept as a one-instance run (pv.monitor.window_run) on the planted stream: the run holds the
window's samples and the grid asked for, is reused while nothing changed, its studio predicts at the identity what
the monitor recorded, and bad input is one line naming the value."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

import proactiv as pv
from proactiv.cli import app
from proactiv.monitor import (
    DEFAULT_GRID,
    Flicker,
    InputStream,
    MonitorError,
    WaveStream,
    open_monitor,
    window_run,
)
from proactiv.testing.streams import HOP, SR, planted_wave, write_planted_store
from proactiv.transforms import Grid
from proactiv.whatif import Studio

#: a small grid: 4 points, so each sweep here takes a fraction of a second
SMALL = [
    {"type": "audio_noise", "snr_db": [math.inf, 10], "color": "white"},
    {"type": "pitch", "semitones": [0, 2]},
]
WINDOW = round(HOP * SR)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return write_planted_store(tmp_path_factory.mktemp("window") / "planted")


def _copy(store, to: Path):
    shutil.copytree(store.path, to, ignore=shutil.ignore_patterns("whatif"))
    return open_monitor(to)


def test_the_run_holds_the_window_and_the_grid_asked_for(store):
    run = window_run(store, 147, SMALL)
    task = run.task()
    assert task.inputs.shape == (1, WINDOW)  # one instance: exactly the window's samples
    assert torch.equal(task.inputs[0], torch.from_numpy(planted_wave()[147 * WINDOW : 148 * WINDOW]))
    assert run.grid.spec() == Grid.from_spec(SMALL).spec() and len(run.records) == 4
    assert run.path == store.path / "whatif" / "window-147" and run.status == "complete"
    assert task.class_names[int(task.labels[0])] == "up" == store.class_names[int(store.window(147).decision)]
    assert run.config["monitor_window"] == {"stream": "planted", "step": 147, "label": "up"}


def test_a_second_call_reuses_the_run_and_a_change_sweeps_it_again(tmp_path, store):
    mine = _copy(store, tmp_path / "s")
    probe = mine.window_path(30) / "probe"
    window_run(mine, 30, SMALL)
    probe.write_text("")
    assert window_run(mine, 30, SMALL).status == "complete" and probe.exists()  # reused, not swept again
    assert (
        window_run(mine.path, 30, Grid.from_spec(SMALL)) and probe.exists()
    )  # the same grid given as a Grid
    picked = window_run(mine, 30, SMALL, label="no")  # another label: swept again
    assert not probe.exists() and picked.config["monitor_window"]["label"] == "no"
    probe.write_text("")
    assert len(window_run(mine, 30, SMALL[:1], label="no").grid) == 2 and not probe.exists()  # another grid


def test_the_default_grid_is_the_keyword_demo_grid():
    demo = yaml.safe_load((Path(__file__).parents[2] / "examples" / "kws_demo.yaml").read_text())["grid"]
    assert Grid.from_spec(DEFAULT_GRID).spec() == Grid.from_spec(demo).spec()


@pytest.mark.parametrize("step", [30, 70, 110, 147, 200, 215])
def test_the_studio_predicts_at_the_identity_what_the_monitor_recorded(store, step):
    row = store.window(step)
    studio = Studio(window_run(store, step, SMALL))
    seen = studio.transform(0, {})
    recorded = row[[f"p.{n}" for n in store.class_names]].to_numpy(float)
    assert seen.prediction == int(row.decision) == seen.desired
    np.testing.assert_allclose(seen.output, recorded, atol=1e-5)
    np.testing.assert_allclose(seen.output_clean, recorded, atol=1e-5)


def test_a_picked_label_is_the_desired_output(store):
    seen = Studio(window_run(store, 110, SMALL, label="yes")).transform(0, {})
    assert store.class_names[seen.desired] == "yes" and store.class_names[seen.prediction] == "up"


def test_the_default_grid_sweeps_the_window(store):
    run = window_run(store, 105)
    assert len(run.grid) == 54 and len(run.records) == 54 and run.records["converged"].any()


def _one_line(err) -> str:
    text = str(err.value)
    assert "\n" not in text
    return text


@pytest.mark.parametrize(
    ("step", "label", "grid", "named"),
    [(240, None, SMALL, "window 240"), (3.5, None, SMALL, "window 3.5"), ("7", None, SMALL, "window '7'"),
     (10, "maybe", SMALL, "label 'maybe'"), (10, None, [{"type": "nope", "x": [1]}], "grid: ")],
)  # fmt: skip
def test_bad_input_is_one_line_naming_the_value(store, step, label, grid, named):
    with pytest.raises(ValueError) as err:
        window_run(store, step, grid, label=label)
    assert named in _one_line(err)


def test_a_store_without_its_model_says_so(tmp_path, store):
    mine = _copy(store, tmp_path / "old")
    (mine.path / "model.pt").unlink()
    with pytest.raises(MonitorError) as err:
        window_run(mine, 147, SMALL)
    said = _one_line(err)
    assert f"monitor store {mine.path} keeps no copy of its model" in said and "--resume" in said
    write_planted_store(mine.path, resume=True)  # as the message says: the copy is added, nothing recomputed
    assert Studio(window_run(mine, 147, SMALL)).transform(0).prediction == int(mine.window(147).decision)


def test_a_model_torch_cannot_keep_is_named(tmp_path):
    class Local(torch.nn.Module):  # defined in a function: cannot be pickled
        def forward(self, x):
            return torch.stack([x.mean(1), -x.mean(1)], 1)

    stream = WaveStream(planted_wave()[: 10 * WINDOW], SR, HOP, HOP)
    made = pv.monitor(Local(), stream, [Flicker()], out=tmp_path / "local", progress=False)
    with pytest.raises(MonitorError) as err:
        window_run(made, 3, SMALL)
    assert "keeps no copy of its model (Local could not be kept" in _one_line(err)


def test_a_model_copy_that_is_not_the_monitored_model_is_refused(tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(WINDOW, 3))
    stream = WaveStream(planted_wave()[: 10 * WINDOW], SR, HOP, HOP)
    made = pv.monitor(net, stream, [Flicker()], out=tmp_path / "lin", progress=False)
    assert torch.equal(made.model()[0](torch.ones(1, WINDOW)), net(torch.ones(1, WINDOW)))
    with torch.no_grad():
        net[1].bias += 1
    torch.save({"model": net, "torchscript": {}, "frontend": None}, made.path / "model.pt")
    with pytest.raises(MonitorError) as err:
        window_run(made, 3, SMALL)
    assert "is not the model this store monitored" in _one_line(err)


def test_a_stream_of_inputs_has_no_window_samples(tmp_path):
    inputs = [torch.zeros(WINDOW) for _ in range(4)]
    made = pv.monitor(torch.nn.Sequential(torch.nn.Linear(WINDOW, 2)), InputStream(inputs), [Flicker()],
                      out=tmp_path / "inputs", progress=False)  # fmt: skip
    with pytest.raises(MonitorError) as err:
        window_run(made, 1, SMALL)
    assert "window 1 has no samples to sweep" in _one_line(err)


def test_proactiv_monitor_window_sweeps_and_refuses_by_name(tmp_path, store):
    mine = _copy(store, tmp_path / "cli")
    result = CliRunner().invoke(
        app, ["monitor-window", str(mine.path), "147", "--label", "up", "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    assert "desired output up" in result.output and str(mine.window_path(147)) in result.output
    bad = CliRunner().invoke(app, ["monitor-window", str(mine.path), "999"])
    assert bad.exit_code == 2 and "window 999: not one of the 240 windows" in bad.output

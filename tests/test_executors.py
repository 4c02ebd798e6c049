"""Executors: the Ray executor gives the local executor's records bit for bit, survives a killed worker and a
killed driver (resume) with no record lost or duplicated, and says clearly when Ray is missing."""

import dataclasses
import importlib.util
import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset
from typer.testing import CliRunner

import proactiv as pv
from proactiv.config import load_config
from proactiv.executors import ExecutorError, LocalExecutor, RayExecutor, Unit, get_executor
from proactiv.sweep import sweep_config

needs_ray = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None, reason="ray is not installed (pip install 'proactiv[ray]')"
)
GRID = [pv.transforms.get("noise", snr_db=[20, 0]), pv.transforms.get("gain", gain_db=[0, -6])]


@pytest.fixture(scope="module")
def cluster():
    """A local Ray of 2 CPUs for this module; yields its address. Classes of this module travel by value."""
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'proactiv[ray]')")
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=100 * 2**20, log_to_driver=False)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


class Tripwire(nn.Module):
    """A fixed small CNN that, inside any process but the one that built it (a Ray worker), does ``act`` the
    first time: ``"kill"`` its own process (SIGKILL) or ``"raise"`` a ValueError. ``armed`` is consumed first, so
    a retried task runs clean; ``fired`` records that it happened."""

    def __init__(self, folder: Path, act: str):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 6, 3, padding=1)
        self.head = nn.Linear(6 * 8 * 8, 4)
        self.home, self.act = os.getpid(), act
        self.armed, self.fired = folder / "armed", folder / "fired"
        self.armed.touch()

    def forward(self, x):
        if os.getpid() != self.home:
            try:
                self.armed.unlink()  # one process only gets past this
            except FileNotFoundError:
                pass
            else:
                self.fired.write_text(str(os.getpid()))
                if self.act == "kill":
                    os.kill(os.getpid(), signal.SIGKILL)
                raise ValueError("tripwire: a unit failed inside its worker")
        return self.head(torch.tanh(self.conv(x)).flatten(1)) * 3.0


def tiny_sweep(model, out, **kw):
    """10 instances x 4 grid points in 8 units of <= 6 projections, arrays of one instance per class kept."""
    torch.manual_seed(0)
    x, y = torch.rand(10, 1, 8, 8), torch.arange(10) % 4
    meta = pd.DataFrame({"writer": [f"w{i % 3}" for i in range(10)]})
    return pv.sweep(
        model, x, y, pv.Grid(GRID), out, projector=pv.Projector(model, lr=0.05, max_steps=60),
        class_names=list("abcd"), metadata=meta, keep_arrays="sample", arrays_per_class=1,
        instances_per_unit=3, projections_per_unit=6, progress=False, **kw,
    )  # fmt: skip


class Images(Dataset):
    """The tiny sweep's instances as a map-style dataset (items with metadata) that counts its reads per process."""

    def __init__(self):
        torch.manual_seed(0)
        self.x, self.y = torch.rand(10, 1, 8, 8), torch.arange(10) % 4
        self.reads = 0

    def __len__(self):
        return 10

    def __getitem__(self, i):
        self.reads += 1
        return self.x[i], self.y[i], {"writer": f"w{i % 3}"}


@needs_ray
def test_ray_workers_read_their_own_units_of_a_dataset(cluster, tmp_path):
    model = Tripwire(tmp_path, "none")
    model.armed.unlink()
    local = tiny_sweep(model, tmp_path / "local")
    images = Images()
    on_ray = pv.sweep(
        model, pv.TaskData(inputs=images, class_names=list("abcd")), pv.Grid(GRID), tmp_path / "ray",
        projection=pv.Projector(model, lr=0.05, max_steps=60), arrays={"keep": "sample", "per_class": 1},
        units={"instances": 3, "projections": 6}, execution={"executor": "ray", "progress": False},
    )  # fmt: skip
    assert_same_run(on_ray, local)
    # the driver scanned once and sampled the scale; every unit's rows were read in the workers
    assert images.reads <= 2 * 10 + 1, images.reads


def files(run) -> dict[str, bytes]:
    """Every record shard and array file of a run, by name, with its bytes."""
    return {
        f"{p.parent.name}/{p.name}": p.read_bytes()
        for sub in ("records", "arrays")
        for p in sorted((run.path / sub).iterdir())
    }


def assert_same_run(run, reference):
    """Bit for bit: the record tables, and each shard and kept-array file (none lost, none extra)."""
    assert run.status == "complete" and not run.records.duplicated(["instance", "point"]).any()
    pd.testing.assert_frame_equal(run.records, reference.records, check_exact=True)
    mine, theirs = files(run), files(reference)
    assert sorted(mine) == sorted(theirs)
    assert [name for name in mine if mine[name] != theirs[name]] == []


@needs_ray
def test_ray_records_are_the_local_records_bit_for_bit(cluster, tmp_path):
    model = Tripwire(tmp_path, "none")
    model.armed.unlink()
    local = tiny_sweep(model, tmp_path / "local")
    on_ray = tiny_sweep(model, tmp_path / "ray", executor="ray")
    assert len(on_ray.records) == 40 and len(list((on_ray.path / "records").iterdir())) == 8
    assert len(list((on_ray.path / "arrays").glob("part-*"))) == 4  # kept instances 0-3 live in 4 units
    assert_same_run(on_ray, local)


@dataclasses.dataclass
class Echo:
    """Stands for a sweep's units: a unit's records are its (instance, point) pairs."""

    projector: object = dataclasses.field(
        default_factory=lambda: types.SimpleNamespace(device=torch.device("cpu"))
    )

    def run(self, ids, points, advance):
        advance(len(ids) * len(points))
        frame = pd.DataFrame({"instance": np.tile(ids, len(points)), "point": np.repeat(points, len(ids))})
        return frame, None, None


@needs_ray
@pytest.mark.parametrize("name", ["local", "ray"])
def test_every_unit_comes_back_once_and_progress_counts_every_projection(cluster, name):
    executor = LocalExecutor() if name == "local" else RayExecutor(in_flight=3)
    todo = [
        Unit(g, i, np.arange(3 * i, 3 * i + 3), np.arange(2 * g, 2 * g + 2))
        for g in range(3)
        for i in range(4)
    ]
    counted = []
    results = list(executor.run(Echo(), todo, counted.append))
    assert sorted(u.name for u, _ in results) == sorted(u.name for u in todo)
    for unit, (records, _, _) in results:
        assert set(zip(records.instance, records.point, strict=True)) == {
            (i, p) for i in unit.ids for p in unit.points
        }
    assert sum(counted) == 72


@needs_ray
def test_a_worker_killed_mid_task_is_retried_and_nothing_is_lost(cluster, tmp_path):
    model = Tripwire(tmp_path, "kill")
    on_ray = tiny_sweep(model, tmp_path / "ray", executor="ray")
    assert model.fired.exists() and not model.armed.exists()  # a worker really died mid-unit
    assert_same_run(on_ray, tiny_sweep(model, tmp_path / "local"))


@needs_ray
def test_a_worker_that_dies_past_its_retries_stops_the_sweep_and_the_run_resumes(cluster, tmp_path):
    model = Tripwire(tmp_path, "kill")
    with pytest.raises(
        ExecutorError, match=r"unit g\d{5}-i\d{5} failed on the Ray cluster after 0 retries.*resume"
    ):
        tiny_sweep(model, tmp_path / "ray", executor=RayExecutor(max_retries=0))
    assert model.fired.exists() and pv.open_run(tmp_path / "ray").status == "interrupted"
    resumed = tiny_sweep(model, tmp_path / "ray", executor="ray", resume=True)
    assert_same_run(resumed, tiny_sweep(model, tmp_path / "local"))


@needs_ray
def test_an_error_inside_a_unit_stops_the_sweep_with_that_error_and_keeps_a_resumable_run(cluster, tmp_path):
    model = Tripwire(tmp_path, "raise")
    with pytest.raises(ValueError, match="tripwire: a unit failed inside its worker"):
        tiny_sweep(model, tmp_path / "ray", executor="ray")
    assert pv.open_run(tmp_path / "ray").status == "interrupted"
    resumed = tiny_sweep(model, tmp_path / "ray", executor="ray", resume=True)
    assert_same_run(resumed, tiny_sweep(model, tmp_path / "local"))


CONFIG = """
task: custom
model: {factory: 'proactiv.tasks.digits.model:DigitsCNN', kwargs: {n_classes: 4, image_size: 8}, weights: w.pt}
data: {inputs: x.pt, labels: y.pt, instances_per_class: 8}
grid:
  - {type: noise, snr_db: [20, 5, 0]}
  - {type: gain, gain_db: [0, -6]}
projection: {max_steps: 80}
units: {instances: 2, projections: 4}
arrays: {keep: sample, per_class: 1}
"""


@needs_ray
@pytest.mark.slow
def test_a_killed_ray_driver_resumes_to_exactly_the_local_records(cluster, tmp_path):
    from proactiv.tasks.digits.model import DigitsCNN

    torch.manual_seed(0)
    torch.save(DigitsCNN(4, image_size=8).state_dict(), tmp_path / "w.pt")
    torch.save(torch.rand(32, 1, 8, 8), tmp_path / "x.pt")
    torch.save(torch.arange(32) % 4, tmp_path / "y.pt")
    (tmp_path / "sweep.yaml").write_text(CONFIG)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the driver below (OMP_NUM_THREADS=1): its tasks compute with one thread
    try:
        reference = sweep_config(load_config(tmp_path / "sweep.yaml"), tmp_path / "local", progress=False)
    finally:
        torch.set_num_threads(threads)
    out = tmp_path / "ray"
    cmd = [sys.executable, "-m", "proactiv.cli", "sweep", str(tmp_path / "sweep.yaml"), "--out", str(out),
           "--no-progress", "--executor", "ray", "--address", cluster]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    units = 16 * 3  # 32 instances / 2 x 6 points / 2 per unit
    for kill_after in (3, 1, 1):  # a fast machine may finish first
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            if (out / "done").exists() and len(list((out / "done").glob("*.json"))) >= kill_after:
                break
            time.sleep(0.002)
        if proc.poll() is None:
            break
        assert proc.returncode == 0, proc.stderr.read().decode()
        subprocess.run(["rm", "-rf", str(out)], check=True)
    assert proc.poll() is None, "the sweep always ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 0 < len(list((out / "done").glob("*.json"))) < units
    resumed = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert_same_run(pv.open_run(out), reference)


def test_missing_ray_is_named_with_the_install_command_and_nothing_is_written(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    with pytest.raises(ExecutorError, match=r"needs the ray package.*pip install 'proactiv\[ray\]'"):
        get_executor("ray")
    with pytest.raises(ExecutorError, match="needs the ray package"):
        pv.sweep(nn.Linear(3, 2), torch.rand(4, 3), torch.arange(4) % 2, pv.Grid(GRID[1:]), tmp_path / "r",
                 executor="ray", progress=False)  # fmt: skip
    (tmp_path / "c.yaml").write_text("task: digits\ngrid: [{type: gain, gain_db: [0, -6]}]\n")
    from proactiv.cli import app

    res = CliRunner().invoke(
        app, ["sweep", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "c"), "--executor", "ray"]
    )
    assert res.exit_code == 2 and "pip install 'proactiv[ray]'" in res.output
    assert not (tmp_path / "r").exists() and not (tmp_path / "c").exists()


def test_executor_names_and_options_are_checked():
    assert isinstance(get_executor("local"), LocalExecutor)
    with pytest.raises(ValueError, match=r"executor='dask': expected one of \('local', 'ray'\)"):
        get_executor("dask")
    with pytest.raises(ValueError, match="address='auto': only the Ray executor connects"):
        get_executor("local", address="auto")
    if importlib.util.find_spec("ray") is not None:
        with pytest.raises(ValueError, match="threads=0: expected an integer >= 1"):
            RayExecutor(threads=0)
        assert get_executor("ray", device="cpu").gpus is False and get_executor("ray").gpus is None


@needs_ray
def test_an_address_where_no_cluster_answers_is_refused_before_anything_is_written(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("task: digits\ngrid: [{type: gain, gain_db: [0, -6]}]\n")
    with pytest.raises(
        ExecutorError, match=r"cluster at address='ray://127.0.0.1:9': nothing answers at 127.0.0.1:9"
    ):
        sweep_config(load_config(cfg), tmp_path / "r", executor="ray", address="ray://127.0.0.1:9")
    assert not (tmp_path / "r").exists()

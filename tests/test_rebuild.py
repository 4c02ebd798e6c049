"""The rebuild registries: a task named by a config and a training set named by a checkpoint manifest are found
through what the task layer registered; an unknown name is refused naming the known ones."""

import pandas as pd
import pytest
import torch
from torch import nn

import proactiv as pv
from proactiv import rebuild
from proactiv.checkpoints import CheckpointWriter, TrainingSet, read_checkpoints
from proactiv.config import ConfigError, parse_config
from proactiv.fingerprint import model_hash
from proactiv.sweep import sweep_config
from proactiv.task_data import TaskData

torch.set_num_threads(1)


@pytest.fixture
def registries(monkeypatch):
    """The registries as they are, restored after the test."""
    monkeypatch.setattr(rebuild, "_TASKS", dict(rebuild._TASKS))
    monkeypatch.setattr(rebuild, "_TRAINING_SETS", dict(rebuild._TRAINING_SETS))


def _config(task):
    spec = {"task": task, "grid": [{"type": "noise", "snr_db": [0]}], "projection": {"max_steps": 2}}
    return parse_config(spec, "test")


def test_the_built_in_tasks_and_training_sets_are_registered():
    assert {"custom", "denoise", "digits", "emnist", "kws"} <= set(rebuild._TASKS)
    assert {"digits", "speech_commands", "tensors"} <= set(rebuild._TRAINING_SETS)


def test_an_unknown_name_is_refused_naming_the_known_ones():
    with pytest.raises(ConfigError, match=r"task: unknown task 'toy'; known tasks: custom, denoise, digits"):
        rebuild.load_task(_config("toy"))
    with pytest.raises(
        LookupError, match=r"unknown training-set kind 'csv'; known .*: digits, speech_commands"
    ):
        rebuild.training_set_reader("csv")


def test_a_registered_task_is_swept_and_rebuilt_by_the_run(tmp_path, registries):
    calls = []

    def toy(cfg):
        calls.append(cfg.task)
        torch.manual_seed(0)
        model = nn.Linear(4, 3).eval()
        x = torch.randn(6, 4)
        with torch.no_grad():
            labels = model(x).argmax(1)
        return TaskData(model=model, inputs=x, labels=labels)

    rebuild.register_task("toy", toy)
    run = sweep_config(_config("toy"), tmp_path / "run", device="cpu", progress=False)
    assert len(run.records) == 6 and calls == ["toy"]
    again = pv.open_run(run.path).task()
    assert calls == ["toy", "toy"] and model_hash(again.model) == run.fingerprints["model"]


def test_a_registered_training_set_reader_rebuilds_the_checkpoints_training_set(tmp_path, registries):
    labels = torch.tensor([0, 1, 1])

    def toy(spec, folder):
        assert folder == tmp_path / "ck" and spec["rows"] == 3
        return TrainingSet(labels, pd.DataFrame(index=range(3)), lambda idx: torch.zeros(3, 2))

    rebuild.register_training_set("toy", toy)
    net = nn.Linear(2, 2)
    writer = CheckpointWriter(tmp_path / "ck", training={"kind": "toy", "rows": 3, "n": 3})
    writer.epoch_done(1, 1, net, lr=0.1)
    writer.finish(net)
    assert torch.equal(read_checkpoints(tmp_path / "ck").training_set().labels, labels)

"""A torch Dataset or IterableDataset swept a unit at a time gives the records of the same data in memory."""

from collections import Counter

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import Dataset, IterableDataset, TensorDataset

import proactiv as pv
from proactiv.sources import DatasetSource
from proactiv.store import RunError

N = 40
QUIET = pv.ExecutionSpec(progress=False)
#: 4 instances × 2 points a unit: 10 instance blocks × 2 blocks of grid points
UNITS = pv.UnitsSpec(instances=4, projections=8)


def _data(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(N, 1, 6, 6, generator=g), torch.randint(0, 3, (N,), generator=g)


X, Y = _data()
SITES = [f"site{i % 3}" for i in range(N)]
GRID = pv.Grid([pv.transforms.get("brightness", delta=[0.0, 0.2, 0.4, 0.6])])


def _model():
    torch.manual_seed(1)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(36, 3)).eval()


class Counted(Dataset):
    """Dict items with a metadata key; counts the reads of every row."""

    def __init__(self, x=X):
        self.x, self.reads = x, Counter()

    def __len__(self):
        return N

    def __getitem__(self, i):
        self.reads[i] += 1
        return {"image": self.x[i], "label": int(Y[i]), "site": SITES[i], "gain": torch.tensor(i / 2)}


class Stream(IterableDataset):
    """(input, label, metadata) tuples in order, no length; counts how often it is started."""

    def __init__(self):
        self.starts = 0

    def __iter__(self):
        self.starts += 1
        for i in range(N):
            yield X[i], Y[i], {"site": SITES[i]}


def _in_memory(tmp_path, **columns):
    data = pv.TaskData(inputs=X, labels=Y, metadata=pd.DataFrame({"site": SITES, **columns}))
    return pv.sweep(_model(), data, GRID, tmp_path / "memory", execution=QUIET, units=UNITS)


def _same(a, b):
    order = ["instance", "point"]
    pd.testing.assert_frame_equal(
        a.sort_values(order).reset_index(drop=True), b.sort_values(order).reset_index(drop=True)
    )


def test_a_dataset_gives_the_records_and_fingerprint_of_its_tensors_reading_each_block_once(tmp_path):
    memory = _in_memory(tmp_path, gain=np.arange(N) / 2)  # a one-element tensor is a metadata value
    ds = Counted()
    run = pv.sweep(_model(), ds, GRID, tmp_path / "dataset", execution=QUIET, units=UNITS)
    _same(memory.records, run.records)
    assert run.header["fingerprints"]["data"] == memory.header["fingerprints"]["data"]
    assert run.config["data_source"] == {"kind": "dataset", "type": "Counted"}
    # the scan, the scale sample and one unit read each row: the second block of grid points reuses the block
    assert sum(ds.reads.values()) <= 3 * N + 1, ds.reads
    # the run keeps the source, not its rows: analyses read the instances they need
    task = run.task()
    assert isinstance(task.inputs, DatasetSource) and torch.equal(task.inputs[[5, 2]], X[[5, 2]])
    assert torch.equal(task.labels, Y)


def test_an_iterable_dataset_is_read_in_order_not_restarted_for_every_block(tmp_path):
    memory = _in_memory(tmp_path)
    stream = Stream()
    run = pv.sweep(_model(), stream, GRID, tmp_path / "stream", execution=QUIET, units=UNITS)
    _same(memory.records, run.records)
    assert run.config["data_source"]["kind"] == "iterable dataset"
    # 10 instance blocks; restarting the stream for each would start it at least 10 times
    assert stream.starts <= 4, stream.starts


def test_a_resumed_source_sweep_is_checked_against_the_same_data(tmp_path):
    out = tmp_path / "run"
    first = pv.sweep(_model(), Counted(), GRID, out, execution=QUIET, units=UNITS)
    again = pv.sweep(_model(), Counted(), GRID, out, execution=QUIET, units=UNITS, resume=True)
    _same(first.records, again.records)
    with pytest.raises(RunError, match="data"):
        pv.sweep(_model(), Counted(X + 0.01), GRID, out, execution=QUIET, units=UNITS, resume=True)


def test_an_analysis_step_on_a_source_run_equals_the_in_memory_run(tmp_path):
    memory = _in_memory(tmp_path, gain=np.arange(N) / 2)
    run = pv.sweep(_model(), Counted(), GRID, tmp_path / "dataset", execution=QUIET, units=UNITS)
    a = pv.analysis.analyze(memory, steps=["radius"])["radius"]
    b = pv.analysis.analyze(run, steps=["radius"])["radius"]
    assert isinstance(a, pd.DataFrame) and len(a) and np.isfinite(a["radius_l2"]).any()
    pd.testing.assert_frame_equal(a.drop(columns="seconds"), b.drop(columns="seconds"))


def test_a_tensor_dataset_and_a_task_data_around_a_dataset(tmp_path):
    memory = _in_memory(tmp_path)
    plain = pv.sweep(_model(), TensorDataset(X, Y), GRID, tmp_path / "tensors", execution=QUIET, units=UNITS)
    _same(memory.records.drop(columns=["meta.site"]), plain.records)
    names = ["a", "b", "c"]
    data = pv.TaskData(inputs=Counted(), class_names=names)  # labels and metadata come from the dataset
    named = pv.sweep(_model(), data, GRID, tmp_path / "named", execution=QUIET, units=UNITS)
    assert set(named.records["label_name"]) <= set(names)
    assert (named.records["meta.site"].to_numpy() == np.asarray(SITES)[named.records["instance"]]).all()


class Broken(Dataset):
    def __init__(self, item):
        self.item = item

    def __len__(self):
        return 3

    def __getitem__(self, i):
        return self.item(i)


@pytest.mark.parametrize(
    ("item", "error", "message"),
    [
        (lambda i: (torch.zeros(2 + (i == 2)), 0), ValueError, r"dataset source Broken, instance 2: input of shape \(3,\), expected \(2,\)"),
        (lambda i: (torch.tensor([0.0, float("nan") if i else 0.0]), 0), ValueError, "instance 1: the input contains NaN"),
        (lambda i: {"pixels": torch.zeros(2), "label": 0}, KeyError, r"no input key among \['pixels', 'label'\]; name it with input="),
        (lambda i: (torch.zeros(2), None), ValueError, "instance 0: the item has no label"),
        (lambda i: "text", TypeError, "instance 0: an item of type str; expected"),
        (lambda i: (torch.zeros(2), "cat"), ValueError, "labels must be class indices .* got 'cat' for instance 0"),
    ],
)
def test_a_bad_item_is_named_with_what_was_expected(tmp_path, item, error, message):
    model = torch.nn.Linear(2, 2)
    with pytest.raises(error, match=message):
        pv.sweep(model, Broken(item), GRID, tmp_path / "bad", execution=QUIET)
    assert not (tmp_path / "bad").exists()  # refused before anything is written


def test_a_dataset_that_cannot_be_kept_leaves_a_run_that_says_so(tmp_path):
    class Local(Dataset):  # a class inside a function cannot be pickled
        def __len__(self):
            return N

        def __getitem__(self, i):
            return X[i], Y[i]

    run = pv.sweep(_model(), Local(), GRID, tmp_path / "run", execution=QUIET, units=UNITS)
    assert len(run.records) == N * len(GRID)
    with pytest.raises(RunError, match="its inputs were not kept .*Local.* not picklable"):
        run.task()


def test_a_run_rebuilt_from_a_model_spec_keeps_its_data(tmp_path):
    path = tmp_path / "m.ts"
    torch.jit.script(_model()).save(str(path))
    data = pv.TaskData(inputs=X, labels=Y, model_spec={"source": "spec", "model": {"torchscript": str(path)}})
    run = pv.sweep(torch.jit.load(str(path)), data, GRID, tmp_path / "run", execution=QUIET, units=UNITS)
    task = run.task()  # before, the run kept no data.pt and every step that reads the inputs was skipped
    assert torch.equal(task.inputs, X) and torch.equal(task.labels, Y)


def test_a_dataset_of_pil_images_reads_them_as_chw_floats_in_0_1(tmp_path):
    from PIL import Image

    pixels = (np.random.default_rng(0).random((N, 6, 6, 3)) * 255).astype("uint8")

    class Pictures(Dataset):
        def __len__(self):
            return N

        def __getitem__(self, i):
            return Image.fromarray(pixels[i]), int(Y[i])

    x = torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(108, 3)).eval()
    memory = pv.sweep(model, (x, Y), GRID, tmp_path / "memory", execution=QUIET, units=UNITS)
    run = pv.sweep(model, Pictures(), GRID, tmp_path / "pictures", execution=QUIET, units=UNITS)
    _same(memory.records, run.records)

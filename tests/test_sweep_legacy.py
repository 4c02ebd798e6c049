"""The old spelling of ``pv.sweep`` (proactiv.sweep_legacy): every old keyword still works with a
DeprecationWarning naming the new spelling and gives the same run; the new spelling warns of nothing; an old and
a new spelling of the same thing together is refused."""

import inspect
import json
import warnings

import pandas as pd
import pytest
import torch
from torch import nn

import proactiv as pv

GRID = pv.Grid([pv.transforms.get("gain", gain_db=[0, -6]), pv.transforms.get("noise", snr_db=[20])])


@pytest.fixture
def tiny():
    """A linear 3-class model on 6-vectors, 7 instances labelled by its clean prediction but one."""
    torch.manual_seed(0)
    model = nn.Linear(6, 3).eval()
    x = torch.randn(7, 6)
    with torch.no_grad():
        y = model(x).argmax(1)
    y[0] = (y[0] + 1) % 3
    meta = pd.DataFrame({"speaker": [f"s{i % 2}" for i in range(7)]})
    return model, x, y, meta


def new_options(model):
    return dict(
        projection=pv.Projector(model, max_steps=20),
        arrays=pv.ArraysSpec(keep="all", per_class=1),
        units=pv.UnitsSpec(instances=3, projections=4),
        execution=pv.ExecutionSpec(executor="local", progress=False),
        seed=3,
    )


def header(run) -> dict:
    return json.loads((run.path / "run.json").read_text())


def test_the_signature_has_at_most_ten_parameters():
    assert len(inspect.signature(pv.sweep).parameters) <= 10


def test_the_old_spelling_gives_the_new_spellings_run(tiny, tmp_path):
    model, x, y, meta = tiny
    names = ["a", "b", "c"]
    with pytest.warns(DeprecationWarning):
        old = pv.sweep(model, x, y, GRID, tmp_path / "old", pv.Projector(model, max_steps=20), names, meta, 3,
                       keep_arrays="all", arrays_per_class=1, instances_per_unit=3, projections_per_unit=4,
                       progress=False, executor="local", input_kind="vector")  # fmt: skip
    with pytest.warns(DeprecationWarning):
        by_name = pv.sweep(model, inputs=x, labels=y, grid=GRID, out=tmp_path / "by_name", class_names=names,
                           metadata=meta, input_kind="vector", projector=pv.Projector(model, max_steps=20),
                           keep_arrays="all", arrays_per_class=1, instances_per_unit=3, projections_per_unit=4,
                           progress=False, seed=3)  # fmt: skip
    data = pv.TaskData(x, y, class_names=names, metadata=meta, input_kind="vector")
    new = pv.sweep(model, data, GRID, tmp_path / "new", **new_options(model))
    for run in (old, by_name):
        pd.testing.assert_frame_equal(run.records, new.records)
        assert all(header(run)[k] == header(new)[k] for k in ("config", "fingerprints", "schema", "status"))
    assert new.records["meta.speaker"].notna().all() and set(new.records["label_name"]) <= set(names)


def test_the_new_spelling_warns_of_nothing(tiny, tmp_path):
    model, x, y, meta = tiny
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        run = pv.sweep(model, (x, y), GRID, tmp_path / "pair", **new_options(model))
        pv.sweep(model, pv.TaskData(x, y, metadata=meta), GRID, tmp_path / "data", projection={"max_steps": 5},
                 arrays={"keep": "none"}, execution={"progress": False})  # fmt: skip
    assert len(run.records) == 7 * len(GRID)


OLD_GROUPS = {  # old keywords → the new spelling the warning names
    "data": ({"class_names": ["a", "b", "c"]}, r"sweep\(inputs=, labels=, class_names=\) is deprecated: pass "
             r"data=TaskData\(inputs, labels, class_names=...\)"),
    "projection": ({"projector": None}, r"sweep\(projector=\) is deprecated: pass projection="),
    "arrays": ({"keep_arrays": "none", "arrays_per_class": 1},
               r"sweep\(keep_arrays=, arrays_per_class=\) is deprecated: pass arrays=ArraysSpec\(keep=..., per_class"),
    "units": ({"instances_per_unit": 4, "projections_per_unit": 8},
              r"pass units=UnitsSpec\(instances=..., projections=...\)"),
    "execution": ({"progress": False, "executor": "local"}, r"pass execution=ExecutionSpec\(executor=..., progress=...\)"),
}  # fmt: skip


@pytest.mark.parametrize("group", OLD_GROUPS)
def test_each_old_keyword_group_warns_with_the_new_spelling(tiny, tmp_path, group):
    model, x, y, _ = tiny
    old, message = OLD_GROUPS[group]
    new = {"data": (x, y), "execution": pv.ExecutionSpec(progress=False)}
    new.pop(group, None)
    if group == "data":
        old = {"inputs": x, "labels": y, **old}
    with pytest.warns(DeprecationWarning, match=message) as caught:
        run = pv.sweep(model, grid=GRID, out=tmp_path / group, **new, **old)
    assert len(caught) == 1 and caught[0].filename == __file__  # one warning, pointing at the caller
    assert len(run.records) == 7 * len(GRID)


def test_the_old_positional_form_warns_about_its_data(tiny, tmp_path):
    model, x, y, _ = tiny
    with pytest.warns(
        DeprecationWarning, match=r"sweep\(inputs=, labels=\) is deprecated: pass data=\(inputs, "
    ):
        pv.sweep(model, x, y, GRID, tmp_path / "run", execution=pv.ExecutionSpec(progress=False))


@pytest.mark.parametrize(
    ("new", "old"),
    [
        ({"projection": None}, {"projector": None}),
        ({"arrays": pv.ArraysSpec()}, {"keep_arrays": "all"}),
        ({"units": {}}, {"projections_per_unit": 8}),
        ({"execution": {}}, {"progress": False}),
    ],
)
def test_an_old_and_a_new_spelling_together_are_refused(tiny, tmp_path, new, old):
    model, x, y, _ = tiny
    named = f"both {next(iter(new))}= and {next(iter(old))}="
    with pytest.raises(TypeError, match=named):
        pv.sweep(model, (x, y), GRID, tmp_path / "run", **new, **old)
    assert not (tmp_path / "run").exists()


def test_data_given_twice_is_refused(tiny, tmp_path):
    model, x, y, _ = tiny
    with pytest.raises(TypeError, match=r"both data= and inputs=, labels="):
        pv.sweep(model, data=(x, y), inputs=x, labels=y, grid=GRID, out=tmp_path / "a")
    with pytest.raises(TypeError, match=r"both data= and class_names="):  # data given by position
        pv.sweep(model, (x, y), GRID, tmp_path / "b", class_names=["a", "b", "c"])
    with pytest.raises(TypeError, match="multiple values for argument 'grid'"):
        pv.sweep(model, x, y, GRID, tmp_path / "c", grid=GRID)
    with pytest.raises(TypeError, match="missing labels"):
        pv.sweep(model, inputs=x, grid=GRID, out=tmp_path / "d")
    assert not any(tmp_path.iterdir())

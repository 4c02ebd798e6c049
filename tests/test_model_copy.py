"""A run keeps its model: pickled, its TorchScript parts by torch.jit.save; when it cannot, the report's summary and the
dashboard's overview say which analyses are missing and the line that enables them."""

import pytest
import torch
from torch import nn

import proactiv as pv
from proactiv.analysis.steps import MODEL_SPEC_LINE, missing_without_model
from proactiv.store import RunError

X = torch.tensor([[1.0, 2, 3, 4], [-1, 0.5, 2, -3], [0.5, 1, -1, 2], [2, -2, 1, 0]])
LABELS = torch.tensor([0, 1, 2, 0])
GRID = pv.Grid([pv.transforms.get("gain", gain_db=[0, -6])])


class Wrapper(nn.Module):
    """What a user writes around a model shipped as TorchScript: it cannot be pickled."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.jit.script(nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3)))

    def forward(self, x):
        return self.net(x * 0.5)


class Scaled(Wrapper):
    """Also holds a lambda, which torch cannot pickle with or without its TorchScript part."""

    def __init__(self):
        super().__init__()
        self.scale = lambda x: x * 0.5

    def forward(self, x):
        return self.net(self.scale(x))


def sweep(model, out):
    return pv.sweep(model, (X, LABELS), GRID, out, projection={"max_steps": 3}, execution={"progress": False})


def test_a_wrapper_keeps_its_torchscript_part_by_jit_save(tmp_path):
    model = Wrapper()
    run = pv.open_run(sweep(model, tmp_path / "r").path)
    assert run.schema.model == {"source": "run", "torchscript_parts": ["net"]}
    rebuilt = run.model(device="cpu")  # checked against the swept model's fingerprint
    assert isinstance(rebuilt, Wrapper) and isinstance(rebuilt.net, torch.jit.ScriptModule)
    assert torch.equal(rebuilt(X), model(X)) and isinstance(model.net, torch.jit.ScriptModule)
    assert torch.equal(run.task().inputs, X)  # the analyses that need the model and inputs can run
    assert missing_without_model(run) is None


def test_a_model_that_cannot_be_kept_says_what_is_missing_and_how_to_enable_it(tmp_path):
    run = pv.open_run(sweep(Scaled(), tmp_path / "r").path)
    assert run.schema.model is None
    note = run.header["model_note"]
    assert note.startswith("Scaled could not be saved with the run") and "lambda" in note
    missing = missing_without_model(run)
    for title in ("attributions", "radius", "CKA", "influence"):
        assert title.lower() in missing.lower()
    assert MODEL_SPEC_LINE in missing and note in missing
    with pytest.raises(RunError, match="could not be saved with the run"):
        run.model()

    from proactiv.dashboard.data import RunData
    from proactiv.dashboard.panels.overview import summary_children
    from proactiv.report.html import _summary

    assert summary_children(RunData(run.path, compute=False)).pop(0).children == missing
    from proactiv.analysis.runview import open_view

    assert _summary(open_view(run)).startswith("<p class='note'>Missing analyses: ")


def test_a_torchscript_model_swept_in_memory_is_kept(tmp_path):
    model = Wrapper().net
    run = pv.open_run(sweep(model, tmp_path / "r").path)
    assert run.schema.model == {"source": "run", "torchscript_parts": [""]}
    assert torch.equal(run.model(device="cpu")(X), model(X))

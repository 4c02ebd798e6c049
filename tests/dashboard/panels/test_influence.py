"""The influence panel next to the chosen record: thumbnails of the training images that support and oppose it,
the self-influence step's tab, and a message that says what is needed when the model has no checkpoints."""

import pytest
import torch
from torch import nn

import proactiv as pv
from proactiv.analysis.influence import TracIn
from proactiv.analysis.steps import StepContext
from proactiv.checkpoints import CheckpointWriter
from proactiv.dashboard.data import RunData
from proactiv.dashboard.panels.influence import record_influence, self_influence_tab

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    """A linear model trained on 4×4 images (class 1: a bright corner) with checkpoints; a run of 4 of them."""
    root = tmp_path_factory.mktemp("influence-panel")
    gen = torch.Generator().manual_seed(1)
    y = torch.arange(40) % 2
    x = torch.rand(40, 1, 4, 4, generator=gen) * 0.3
    x[y == 1, 0, :2, :2] += 0.7
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    writer = CheckpointWriter(root / "ckpt", training=(x, y))
    opt = torch.optim.SGD(net.parameters(), lr=1.0)
    for epoch in range(1, 11):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
        writer.epoch_done(epoch, 10, net, 1.0)
    writer.finish(net)
    run = pv.sweep(net.eval(), x[:4], y[:4], pv.Grid([pv.transforms.get("gain", gain_db=[0, -1])]), root / "run",
                   projector=pv.Projector(net, max_steps=20), class_names=["dark", "corner"], pixel_range=1.0,
                   keep_arrays="all", progress=False)  # fmt: skip
    return run, root / "ckpt"


def test_the_record_panel_shows_thumbnails_or_says_what_is_missing(image_run):
    run, ckpt = image_run
    data = RunData(run.path, compute=False)
    missing = record_influence(data, {"instance": 1, "point": 1})
    assert "no training checkpoints" in missing[0].children and missing[0].id == "influence-missing"
    assert "choose a record" in record_influence(data, None)[0].children
    data._cache["tracin"] = TracIn(run, StepContext(run, device="cpu").task(), ckpt)
    shown = str(record_influence(data, {"instance": 1, "point": 1}, k=3))
    assert shown.count("data:image/png;base64,") == 12  # 3 proponents + 3 opponents, for xT and for x̂T
    assert "x̂T → corner (the desired class): training examples that support it" in shown
    assert "xT → corner (its prediction): training examples that oppose it" in shown
    assert "influence-graph" in shown


def test_the_self_influence_tab_shows_the_top_twenty(image_run):
    run, ckpt = image_run
    result = pv.analysis.analyze(run, steps=["self_influence"], device="cpu",
                                 settings={"self_influence": {"checkpoints": str(ckpt)}})  # fmt: skip
    table = result["self_influence"]
    panel = str(self_influence_tab(table, StepContext(run)))
    assert panel.count("data:image/png;base64,") == 20 and "model says" in panel
    assert panel.count("Tr(") == 21  # a header and the 20 most self-influential examples

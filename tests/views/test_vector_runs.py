"""A tabular model swept with ``input_kind="vector"`` gets honest views: lines, no spectrogram, no audio player,
in the report and in the dashboard's record detail."""

import json

import pytest
import torch
from torch import nn

import proactiv as pv
from proactiv.dashboard import panels
from proactiv.dashboard.data import RunData
from proactiv.report import write_report


class Tabular(nn.Module):
    """A fixed random MLP on 8 tabular features with 3 classes."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.net = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 3))

    def forward(self, x):
        return self.net(x) * 4.0


@pytest.fixture(scope="module")
def tabular_run(tmp_path_factory):
    model = Tabular()
    x = torch.randn(30, 8)
    y = model(x).argmax(1)
    grid = pv.Grid(
        [pv.transforms.get("noise", snr_db=[30, 10, 0]), pv.transforms.get("gain", gain_db=[0, -6])]
    )
    run = pv.sweep(
        model, x, y, grid, tmp_path_factory.mktemp("tab") / "run", projector=pv.Projector(model, max_steps=80),
        class_names=["a", "b", "c"], progress=False, input_kind="vector",
    )  # fmt: skip
    pv.analysis.analyze(run, method="pca")
    return run


def test_report_draws_vectors_as_lines_and_plays_nothing(tabular_run):
    page = write_report(tabular_run, method="pca").read_text()
    assert "<audio" not in page and "Griffin" not in page and "mel band" not in page
    start = page.index("var FIGURES = ") + len("var FIGURES = ")
    figures = json.loads(page[start : page.index(";\n", start)])
    records = [f for f in figures if any(t.get("name") == "x̂T − xT" for t in f["data"])]
    assert records, "the worst-records gallery shows the kept records"
    for fig in records:
        assert {t["type"] for t in fig["data"]} == {"scatter"}  # lines, never a heatmap


def test_dashboard_record_detail_has_no_audio_player(tabular_run):
    data = RunData(tabular_run.path)
    rows = panels.kept_rows(data, None)
    chosen = panels.choose_record(data, "kept", {"row": 0}, rows, None, None)
    fig, facts = panels.record_detail(data, chosen)
    assert [t.type for t in fig.data] == ["scatter"] * 4 and facts
    sound = json.dumps([c.to_plotly_json() for c in panels.record_sound(data, chosen)], default=str)
    assert "audio-" not in sound and "data:audio" not in sound and "vector" in sound

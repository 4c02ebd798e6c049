"""Influential training examples (TracIn over training checkpoints): a duplicated, mislabelled training example
copied as a test point is its strongest proponent (and the strongest opponent of its desired label), planted
mislabelled examples top the self-influence ranking, a model without (or with broken) checkpoints gets a message that says
what is needed, and the step reaches the CLI and the report (the dashboard panel: tests/dashboard)."""

import pandas as pd
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import proactiv as pv
from proactiv.analysis.influence import TracIn, final_layer, influence, self_influence
from proactiv.analysis.runview import AnalysisError
from proactiv.analysis.steps import StepContext
from proactiv.checkpoints import CheckpointWriter
from proactiv.cli import app
from proactiv.views.sections import SectionContext, sections_of

torch.set_num_threads(1)
GRID = pv.Grid([pv.transforms.get("gain", gain_db=[0, -1])])
#: training examples carrying a wrong label, inside the blobs of their true classes
PLANTED = (7, 40, 81, 122)
#: an odd example of class 0 labelled 1, three times (training indices 150-152); the test point copies it
ODD, DUPLICATES = torch.tensor([1.5, 0, 0, 0, 0, 4.0]), (150, 151, 152)
CENTRES = torch.tensor([[3.0, 0, 0, 0, 0, 0], [0, 3.0, 0, 0, 0, 0], [0, 0, 3.0, 0, 0, 0]])


def _mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 32), nn.Tanh(), nn.Linear(32, 3))


def _train(folder, x, y, epochs=40, meta=None):
    """Full-batch gradient descent with a checkpoint writer (5 of ``epochs`` epochs kept)."""
    model = _mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    writer = CheckpointWriter(folder, training=(x, y) if meta is None else (x, y, meta))
    for epoch in range(1, epochs + 1):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        writer.epoch_done(epoch, epochs, model, 0.5)
    writer.finish(model)
    return model.eval()


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """Three Gaussian blobs, 50 examples each, four of them relabelled, and the odd example three times; a run
    whose instance 0 copies the odd example (desired label: its true class 0) and whose other instances are clean
    test points."""
    root = tmp_path_factory.mktemp("influence")
    gen = torch.Generator().manual_seed(0)
    truth = torch.arange(150) % 3
    x = torch.cat([CENTRES[truth] + 0.8 * torch.randn(150, 6, generator=gen), ODD.expand(3, 6)])
    y = torch.cat([truth, torch.ones(3, dtype=torch.long)])
    y[list(PLANTED)] = (truth[list(PLANTED)] + 1) % 3
    meta = pd.DataFrame({"speaker": [f"s{i % 5}" for i in range(153)]})
    model = _train(root / "ckpt", x, y, meta=meta)
    test = torch.cat([ODD[None], CENTRES + 0.3 * torch.randn(3, 6, generator=gen)])
    labels = torch.arange(4) % 3
    run = pv.sweep(model, test, labels, GRID, root / "run", projector=pv.Projector(model, max_steps=50),
                   class_names=["a", "b", "c"], keep_arrays="all", input_kind="waveform", sample_rate=8000,
                   progress=False)  # fmt: skip
    return run, root / "ckpt", y


def test_a_duplicated_mislabelled_example_is_the_strongest_proponent_of_its_copy(planted):
    run, ckpt, _ = planted
    assert run.records.query("instance == 0").pred_t.tolist() == [1, 1]  # the model learnt the wrong label
    table = influence(run, (0, 0), k=5, checkpoints=ckpt, device="cpu")
    x_t = table[table.on == "x_t"]
    assert (x_t.target == 1).all() and (x_t.target_name == "b").all()
    pro = x_t[x_t.role == "proponent"]
    assert (
        set(pro.train_index[:3]) == set(DUPLICATES) and (pro.label[:3] == 1).all() and (pro.score > 0).all()
    )
    assert list(pro["rank"]) == [1, 2, 3, 4, 5] and (pro.score.diff().dropna() <= 0).all()
    assert pro["meta.speaker"].iloc[0] == f"s{pro.train_index.iloc[0] % 5}"
    opp = table[(table.on == "x_proj") & (table.role == "opponent")]
    assert (opp.target == 0).all() and set(DUPLICATES) <= set(
        opp.train_index[:4]
    )  # they oppose the desired label
    assert (opp.score < 0).all() and (opp.score.diff().dropna() >= 0).all()  # weakest opponent last
    pro_proj = table[(table.on == "x_proj") & (table.role == "proponent")]
    assert (pro_proj.label == 0).all()  # what supports the desired label carries it
    assert table.attrs["checkpoints"] == str(ckpt)
    fig = pv.views.influence(run.path, 0, 0, k=5, checkpoints=ckpt, device="cpu")  # the notebook view
    assert [a.text for a in fig.layout.annotations] == [
        "xT → b (its prediction)",
        "x̂T → a (the desired class)",
    ]
    assert len(fig.data) == 4 and list(fig.data[0].y) == list(pro.score)


def test_own_prediction_runs_explain_xproj_toward_the_clean_prediction(planted, tmp_path):
    run, ckpt, _ = planted
    model, task = run.model(device="cpu"), run.task()
    own = pv.sweep(model, task.inputs, task.labels, GRID, tmp_path / "own",
                   projector=pv.Projector(model, loss="own_prediction", max_steps=50), class_names=["a", "b", "c"],
                   keep_arrays="all", input_kind="waveform", sample_rate=8000, progress=False)  # fmt: skip
    assert own.schema.desired == "clean_prediction"
    record = own.records.query("instance == 0 and point == 0").iloc[0]
    assert record.label == 0 and record.pred_clean == 1  # the model's clean prediction is not the label
    table = influence(own, (0, 0), k=3, checkpoints=ckpt, device="cpu")
    assert (table[table.on == "x_proj"].target == 1).all()  # x̂T is explained toward where projection aimed
    assert (table[table.on == "x_proj"].target_name == "b").all()


def test_scores_are_weighted_last_layer_gradient_products_on_both_captum_paths(planted, monkeypatch):
    import importlib

    from proactiv.checkpoints import read_checkpoints

    module = importlib.import_module(
        "proactiv.analysis.influence"
    )  # (the package's ``influence`` is the function)

    run, ckpt, _ = planted
    tracin = TracIn(run, StepContext(run, device="cpu").task(), ckpt)
    x, t = tracin.inputs[[0, 150, 3]], torch.tensor([2, 1, 0])
    stored = tracin.scores(x, t)  # Captum's TracInCPFastRandProj, exact vectors kept
    monkeypatch.setattr(module, "MAX_VECTOR_BYTES", 0)
    passes = tracin.scores(x, t)  # Captum's TracInCPFast, a pass over the training set per query
    expected = torch.zeros(3, len(tracin.labels))
    net = _mlp()
    for c in read_checkpoints(ckpt).entries:  # Σ lr × epochs × ∇W ℓ(test) · ∇W ℓ(train), W: the last weights
        net.load_state_dict(c.state_dict())

        def grads(inputs, labels):
            rows = []
            for xi, yi in zip(inputs, labels, strict=True):
                net.zero_grad()
                nn.functional.cross_entropy(net(xi[None]), yi[None]).backward()
                rows.append(net[2].weight.grad.flatten().clone())
            return torch.stack(rows)

        expected += c.weight * grads(x, t) @ grads(tracin.inputs, tracin.labels).T
    assert c.weight == 0.5 * 8  # lr × the 8 epochs each of the 5 checkpoints stands for
    torch.testing.assert_close(stored, expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(passes, expected, rtol=1e-4, atol=1e-5)


def test_planted_mislabelled_examples_top_the_self_influence_ranking(planted):
    run, ckpt, y = planted
    table = self_influence(run, checkpoints=ckpt, device="cpu")
    assert len(table) == 153 and list(table["rank"][:3]) == [1, 2, 3] and table.score.is_monotonic_decreasing
    assert set(PLANTED) <= set(table.train_index[:6])
    top = table[table.train_index.isin(PLANTED)].set_index("train_index")
    assert (top.label == pd.Series(y.numpy())[top.index]).all() and (~top.agree).sum() >= 3


def test_no_checkpoints_says_what_is_needed(planted, tmp_path):
    run, ckpt, _ = planted
    with pytest.raises(AnalysisError, match=r"no training checkpoints.*checkpoints=FOLDER"):
        influence(run, (0, 0), device="cpu")
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in ckpt.iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    victim = sorted(broken.glob("epoch-*.pt"))[0]
    victim.unlink()
    with pytest.raises(AnalysisError, match=f"checkpoint files missing: {victim.name}"):
        influence(run, (0, 0), checkpoints=broken, device="cpu")
    other = _train(tmp_path / "other", torch.randn(30, 6), torch.arange(30) % 3, epochs=5)
    assert other is not None
    with pytest.raises(AnalysisError, match="another network"):
        influence(run, (0, 0), checkpoints=tmp_path / "other", device="cpu")


def test_records_without_kept_arrays_are_explained_on_xt(planted, tmp_path):
    run, ckpt, _ = planted
    model, task = run.model(device="cpu"), StepContext(run, device="cpu").task()
    bare = pv.sweep(model, task.inputs, task.labels, GRID, tmp_path / "bare", projector=pv.Projector(model, max_steps=5),
                    class_names=["a", "b", "c"], keep_arrays="none", progress=False)  # fmt: skip
    again = influence(bare, (0, 1), k=4, on=("x_t",), checkpoints=ckpt, device="cpu")  # xT rebuilt as swept
    kept = influence(run, (0, 1), k=4, on=("x_t",), checkpoints=ckpt, device="cpu")
    pd.testing.assert_frame_equal(again, kept)
    with pytest.raises(
        AnalysisError, match=r"no arrays kept for record \(instance 0, point 1\).*on=\('x_t',\)"
    ):
        influence(bare, (0, 1), checkpoints=ckpt, device="cpu")


def test_bad_arguments_are_named(planted):
    run, ckpt, _ = planted
    with pytest.raises(ValueError, match=r"on=\['x'\]"):
        influence(run, (0, 0), on=["x"], checkpoints=ckpt)
    with pytest.raises(ValueError, match="k=0"):
        influence(run, (0, 0), k=0, checkpoints=ckpt)
    with pytest.raises(ValueError, match="record=5"):
        influence(run, 5, checkpoints=ckpt)
    with pytest.raises(AnalysisError, match=r"no record \(instance 99, point 0\)"):
        influence(run, (99, 0), checkpoints=ckpt, device="cpu")
    with pytest.raises(AnalysisError, match="'nope'"):
        final_layer(_mlp(), torch.zeros(2, 6), "nope")
    with pytest.raises(AnalysisError, match="not the model's output"):
        final_layer(nn.Sequential(nn.Linear(6, 3), nn.Tanh()), torch.randn(4, 6))

    class Calibrated(
        nn.Module
    ):  # a constant offset after the last layer leaves TracIn's gradients as they are
        def __init__(self):
            super().__init__()
            self.net = _mlp()

        def forward(self, x):
            return self.net(x) + torch.tensor([0.0, 0.5, -1.0])

    calibrated = Calibrated()
    assert final_layer(calibrated, torch.randn(4, 6)) is calibrated.net[2]


def test_the_step_runs_from_the_cli_and_its_report_section_plays_the_top_examples(planted):
    run, ckpt, _ = planted
    out = CliRunner().invoke(app, ["self-influence", str(run.path), "--set", f"checkpoints={ckpt}", "--no-progress",
                                   "--device", "cpu"])  # fmt: skip
    assert out.exit_code == 0, out.output
    table = pd.read_parquet(run.path / "analysis" / "self_influence.parquet")
    assert len(table) == 153 and set(PLANTED) <= set(table.train_index[:6])
    assert "153 training examples scored over 5 checkpoints (epochs 8, 16, 24, 32, 40" in out.output
    (drawn,) = sections_of("self_influence")
    section = drawn.html(SectionContext(run))
    assert section.startswith("<h2>Suspicious training examples") and "153 training examples" in section
    assert section.count("<audio controls") == 20 and section.count("data:audio/wav;base64,") == 20


def test_a_run_without_checkpoints_skips_the_step(tmp_path):
    model = _mlp().eval()
    x = torch.randn(6, 6)
    run = pv.sweep(model, x, model(x).argmax(1), GRID, tmp_path / "run", projector=pv.Projector(model, max_steps=5),
                   progress=False)  # fmt: skip
    result = pv.analysis.analyze(run, steps=["self_influence"], device="cpu")
    assert result["self_influence"] is None
    assert result.notes["self_influence"].startswith(
        "skipped: the model (Sequential) has no training checkpoints"
    )

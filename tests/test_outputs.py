"""Output kinds (:mod:`proactiv.outputs`): each kind's records are correct by its own rule and carry its loss,
on tiny models whose answers are known by construction, and a reopened run knows the kind from its schema."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import proactiv as pv
from proactiv.analysis.runview import open_view
from proactiv.config import load_config
from proactiv.report.html import _summary
from proactiv.schema import RunSchema
from proactiv.sweep import sweep_config
from proactiv.whatif import Studio

#: the first input feature carries the evidence; a gain keeps its sign, so every grid point decides alike
X = torch.tensor([[1.0, 0.3, 0, 0], [-1, 0.2, 0, 0], [1, -0.4, 0, 0], [-1, 0.1, 0, 0], [2, 0.5, 0, 0],
                  [-2, -0.3, 0, 0]])  # fmt: skip
BINARY = torch.tensor([1, 0, 0, 1, 1, 1])
GRID = pv.Grid([pv.transforms.get("gain", gain_db=[0, -6])])
QUIET = {"progress": False}


class Evidence(nn.Module):
    """Logit ``w · x`` of the positive class, one per sample (N, 1)."""

    def __init__(self, weight=(1.0, 0.0, 0.0, 0.0), rows: int = 1):
        super().__init__()
        self.linear = nn.Linear(4, rows, bias=False)
        with torch.no_grad():
            self.linear.weight.copy_(torch.tensor(weight).reshape(rows, 4))

    def forward(self, x):
        return self.linear(x)


class Sigmoid(Evidence):
    def forward(self, x):
        return torch.sigmoid(self.linear(x))


class Softmax(Evidence):
    def forward(self, x):
        return torch.softmax(self.linear(x), 1)


class DictOut(Evidence):
    def forward(self, x):
        return {"embedding": x * 2, "logits": self.linear(x)}


class TupleOut(Evidence):
    def forward(self, x):
        return x * 2, self.linear(x)


#: three classes: the first feature's sign picks class 0 or 1, the second feature's pulls toward class 2
THREE = ((1.0, 0, 0, 0), (-1.0, 0, 0, 0), (0, 3.0, 0, 0))


def shift_down(x):
    """A preprocess step: the model sees x − 1.5 (so only first features above 1.5 stay positive)."""
    return x - torch.tensor([1.5, 0, 0, 0])


def sweep(model, labels, out, **kw):
    return pv.sweep(model, (X, labels), GRID, out, projection={"max_steps": 5}, execution=QUIET, **kw)


def reopened(run, kind, key=None, preprocess=None):
    """The run as opened again: its schema names the output, and survives a round trip through a dict."""
    schema = pv.open_run(run.path).schema
    assert schema.output == {"kind": kind, "key": key, "preprocess": preprocess}
    assert RunSchema.from_dict(schema.to_dict()) == schema
    return schema


def test_a_binary_logit_is_correct_when_its_sign_matches_the_label(tmp_path):
    run = sweep(pv.adapt(Evidence(), "binary_logit"), BINARY, tmp_path / "r")
    rec = run.records.sort_values(["point", "instance"])
    right = [True, True, False, False, True, False]  # sign(x0) > 0 exactly when the label is 1
    assert rec.correct_t.tolist() == right * 2 and rec.pred_t.tolist() == [1, 0, 1, 0, 1, 0] * 2
    identity = rec[rec["gain.gain_db"] == 0]
    s, y = X[:, 0], BINARY.float()
    assert np.allclose(identity.loss_t, F.binary_cross_entropy_with_logits(s, y, reduction="none"), atol=1e-6)
    schema = reopened(run, "binary_logit")
    assert schema.classifier and schema.outcome == "accuracy" and "logit is > 0" in schema.outcome_wording
    # the report's first section says what the model returns and when a record is correct
    assert "<dt>output</dt><dd>binary_logit: the positive class&#x27;s logit is &gt; 0" in _summary(
        open_view(run)
    )
    # the kept copy of the model reads its output the same way
    assert torch.equal(pv.open_run(run.path).model(device="cpu")(X).argmax(1), (X[:, 0] > 0).long())


def test_one_sigmoid_probability_reads_as_the_binary_logit_it_came_from(tmp_path):
    logit = sweep(pv.adapt(Evidence(), "binary_logit"), BINARY, tmp_path / "logit").records
    prob = sweep(pv.adapt(Sigmoid(), "probabilities"), BINARY, tmp_path / "prob").records
    assert prob.correct_t.tolist() == logit.correct_t.tolist()
    assert np.allclose(prob.loss_t, logit.loss_t, atol=1e-5)  # -log σ(s) is the BCE of s
    reopened(pv.open_run(tmp_path / "prob"), "probabilities")


def test_softmax_rows_are_correct_by_their_likeliest_class(tmp_path):
    labels = torch.tensor([0, 1, 2, 2, 0, 1])
    run = sweep(pv.adapt(Softmax(THREE, rows=3), "probabilities"), labels, tmp_path / "r")
    logits = X @ torch.tensor(THREE).T
    rec = run.records[run.records["gain.gain_db"] == 0].sort_values("instance")
    assert rec.pred_t.tolist() == logits.argmax(1).tolist() == [0, 1, 0, 1, 0, 1]
    assert rec.correct_t.tolist() == [True, True, False, False, True, True]
    assert np.allclose(rec.loss_t, F.cross_entropy(logits, labels, reduction="none"), atol=1e-5)
    reopened(run, "probabilities")


def test_multilabel_records_are_correct_when_every_label_is(tmp_path):
    labels = torch.tensor([[1, 0, 0], [0, 1, 0], [1, 0, 1], [0, 1, 1], [1, 0, 1], [0, 0, 0]])
    run = sweep(pv.adapt(Evidence(THREE, rows=3), "multilabel_logits"), labels, tmp_path / "r")
    logits = X @ torch.tensor(THREE).T  # label 2's logit is 3 · x1: positive for rows 0, 1, 3, 4
    rec = run.records[run.records["gain.gain_db"] == 0].sort_values("instance")
    assert rec.correct_t.tolist() == [False, False, False, True, True, False]
    assert rec.correct_clean.tolist() == rec.correct_t.tolist()
    bce = F.binary_cross_entropy_with_logits(logits, labels.float(), reduction="none").mean(1)
    assert np.allclose(rec.loss_t, bce, atol=1e-6)
    assert (run.records.flipped | run.records.correct_t | ~run.records.correct_proj).all()
    schema = reopened(run, "multilabel_logits")
    assert schema.target == "tensor" and schema.outcome == "accuracy" and schema.has("flipped")
    # instance breakpoints flip by the same rule: exactly the instances decided wrong at the identity
    table = pv.analysis.instance_breakpoints(run, device="cpu").table
    assert table.groupby("instance").flipped_at_identity.all().tolist() == (~rec.correct_t).tolist()
    # so does the what-if studio
    studio = Studio(run.path, device="cpu")
    assert [studio.transform(i).within_cutoff for i in range(6)] == rec.correct_t.tolist()
    assert studio.outcomes(3, [{"gain.gain_db": -6.0}, {"gain.gain_db": 3.0}])[0].tolist() == [True, True]
    assert schema.outcome_label == "all labels right on xT" and run.config["projection"]["loss"] == (
        "binary_cross_entropy"
    )


def test_dict_and_tuple_outputs_read_the_named_output(tmp_path):
    plain = sweep(Evidence(THREE, rows=3), torch.tensor([0, 1, 2, 2, 0, 1]), tmp_path / "plain").records
    for name, model, key in (
        ("dict", DictOut(THREE, rows=3), "logits"),
        ("tuple", TupleOut(THREE, rows=3), 1),
    ):
        run = sweep(pv.adapt(model, output_key=key), torch.tensor([0, 1, 2, 2, 0, 1]), tmp_path / name)
        assert run.records.correct_t.tolist() == plain.correct_t.tolist()
        assert np.allclose(run.records.loss_t, plain.loss_t)
        reopened(run, "logits", key=key)


def test_preprocess_runs_between_data_and_model(tmp_path):
    run = sweep(pv.adapt(Evidence(), "binary_logit", preprocess=shift_down), BINARY, tmp_path / "r",
                arrays={"keep": "all"})  # fmt: skip
    identity = run.records[run.records["gain.gain_db"] == 0].sort_values("instance")
    assert identity.pred_t.tolist() == [0, 0, 0, 0, 1, 0]  # only x0 = 2 stays above 1.5
    reopened(run, "binary_logit", preprocess=f"{shift_down.__module__}:shift_down")
    # projection acts on the data: x̂T is in the data's units, and its loss is the model's on x̂T − 1.5
    arrays = pv.open_run(run.path).arrays(instance=0, point=0)
    record = identity[identity.instance == 0].iloc[0]
    assert arrays["x_proj"].shape == (4,) and arrays["x_proj"][0] > arrays["x_t"][0] == 1.0
    loss = F.binary_cross_entropy_with_logits(torch.tensor(arrays["x_proj"][0] - 1.5), torch.tensor(1.0))
    assert record.loss_proj == pytest.approx(float(loss), abs=1e-5)


def test_regression_is_a_tensor_output_with_mse_by_default(tmp_path):
    targets = X[:, :1] * torch.tensor([1.0, 1, 1, 1, 1, 0])[:, None]  # the last output misses its target
    run = pv.sweep(pv.adapt(Evidence(), "tensor"), (X, targets), pv.Grid([pv.transforms.get("gain", gain_db=[0])]),
                   tmp_path / "r", projection={"max_steps": 0}, execution=QUIET)  # fmt: skip
    rec = run.records.sort_values("instance")
    assert np.allclose(rec.loss_t, [0, 0, 0, 0, 0, 4]) and rec.correct_t.tolist() == [True] * 5 + [False]
    assert run.config["projection"]["loss"] == "mse" and reopened(run, "tensor").outcome == "within_cutoff"


def test_a_config_declares_the_output_of_its_model(tmp_path):
    torch.save(Evidence().linear.state_dict(), tmp_path / "w.pt")
    torch.save(X, tmp_path / "x.pt")
    torch.save(BINARY, tmp_path / "y.pt")
    (tmp_path / "c.yaml").write_text(
        "task: custom\ndata: {inputs: x.pt, labels: y.pt, instances_per_class: 6}\n"
        "grid: [{type: gain, gain_db: [0]}]\nprojection: {max_steps: 3}\n"
        "model: {factory: 'torch.nn:Linear', kwargs: {in_features: 4, out_features: 1, bias: false}, "
        "weights: w.pt, output: binary_logit}\n"
    )
    run = sweep_config(load_config(tmp_path / "c.yaml"), tmp_path / "r", progress=False)
    rec = run.records.sort_values("instance")
    assert rec.correct_t.tolist() == [True, True, False, False, True, False]
    reopened(run, "binary_logit")
    assert torch.equal(pv.open_run(run.path).model(device="cpu")(X)[:, 1], X[:, 0])  # rebuilt, adapted
    # multi-label 0/1 rows from a file, read by a config
    torch.save(Evidence(THREE, rows=3).linear.state_dict(), tmp_path / "w3.pt")
    torch.save(
        torch.tensor([[1, 0, 1], [0, 1, 1], [1, 0, 1], [0, 1, 0], [1, 1, 1], [0, 1, 0]]), tmp_path / "y.pt"
    )
    text = (tmp_path / "c.yaml").read_text().replace("out_features: 1", "out_features: 3")
    (tmp_path / "c.yaml").write_text(
        text.replace("w.pt", "w3.pt").replace("binary_logit", "multilabel_logits")
    )
    run = sweep_config(load_config(tmp_path / "c.yaml"), tmp_path / "r3", progress=False)
    assert run.records.sort_values("instance").correct_t.tolist() == [True, True, False, False, False, True]
    reopened(run, "multilabel_logits")


def test_bad_output_declarations_name_the_value_and_what_was_expected(tmp_path):
    with pytest.raises(
        ValueError, match="output='softmax': expected one of logits, binary_logit, probabilities"
    ):
        pv.adapt(Evidence(), "softmax")
    labels = torch.tensor([0, 1, 2, 2, 0, 1])
    with pytest.raises(ValueError, match=r"output_key='logit' is not one of them.*keys \['embedding', 'logits'\]"
                       "|keys \\['embedding', 'logits'\\].*output_key='logit'"):  # fmt: skip
        sweep(pv.adapt(DictOut(THREE, rows=3), output_key="logit"), labels, tmp_path / "a")
    with pytest.raises(
        ValueError, match=r"tuple of 2 outputs; output_key=2 is not one \(expected an index in 0\.\.1\)"
    ):
        sweep(pv.adapt(TupleOut(THREE, rows=3), output_key=2), labels, tmp_path / "b")
    with pytest.raises(ValueError, match=r"returns a dict, not one tensor.*pv.adapt\(model, output_key="):
        sweep(DictOut(THREE, rows=3), labels, tmp_path / "c")
    with pytest.raises(
        ValueError, match=r"output='binary_logit': expected one logit per sample.*got shape \(1, 3\)"
    ):
        sweep(pv.adapt(Evidence(THREE, rows=3), "binary_logit"), labels, tmp_path / "d")
    with pytest.raises(
        ValueError, match=r"output='probabilities': values from -?[\d.]+ to [\d.]+ are not probab"
    ):
        sweep(pv.adapt(Evidence(THREE, rows=3), "probabilities"), labels, tmp_path / "e")
    with pytest.raises(ValueError, match=r"output='multilabel_logits' reads 0/1 rows \(N, L\).*shape \(6,\)"):
        sweep(pv.adapt(Evidence(THREE, rows=3), "multilabel_logits"), labels, tmp_path / "f")
    with pytest.raises(
        ValueError, match="projection loss 'cross_entropy' does not fit output='multilabel_logits'"
    ):
        pv.sweep(pv.adapt(Evidence(THREE, rows=3), "multilabel_logits"), (X, torch.ones(6, 3)), GRID,
                 tmp_path / "g", projection={"loss": "cross_entropy"}, execution=QUIET)  # fmt: skip
    from proactiv.config import ConfigError, parse_config

    with pytest.raises(ConfigError, match=r"model.output: expected one of logits, .* got 'sigmoid'"):
        parse_config(
            {"task": "custom", "grid": [{"type": "gain", "gain_db": [0]}], "model": {"output": "sigmoid"}}
        )


def test_an_adapter_takes_its_models_mode_and_a_sweep_leaves_every_module_in_its_own(tmp_path):
    model = pv.adapt(Evidence().eval(), "binary_logit")
    assert not model.training
    model.training = True  # a wrapper in training mode around a model in eval mode
    sweep(model, BINARY, tmp_path / "r")
    assert model.training and not model.model.training

"""Streaming models (:mod:`proactiv.streaming`): a stateful model runs over each clip chunk by chunk with its
state carried, pooled to one output per clip, and sweeps and projects like any other model."""

import warnings

import numpy as np
import pytest
import torch
from torch import nn

import proactiv as pv
from proactiv.streaming import pool_outputs


class Accumulator(nn.Module):
    """Its state is the running sum of ``scale`` × each chunk's mean; its logits (−state, state)."""

    def forward(self, chunk, state, scale):
        state = state + scale * chunk.mean(-1, keepdim=True)
        return torch.cat([-state, state], 1), state


def clip(*means: float, samples: int = 4) -> torch.Tensor:
    """One clip whose chunks of ``samples`` have the given means."""
    return torch.tensor(means).repeat_interleave(samples)


#: chunk means (1, −1.5): with the state carried the chunk outputs are 1 then −0.5 (mean 0.25: class 1); a model
#: that forgot its state would give 1 then −1.5 (mean −0.25: class 0)
CLIPS = torch.stack([clip(1, -1.5), clip(-1, 1.5), clip(2, -1), clip(-0.5, -0.5)])
LABELS = torch.tensor([1, 0, 0, 1])


def streamed(pool="mean", **kw):
    return pv.stream(Accumulator(), 4, torch.zeros(1, 1), pool=pool, extra=(torch.tensor(1.0),), **kw)


def test_the_state_is_carried_from_chunk_to_chunk_and_pooled_by_the_named_rule():
    running = torch.tensor([[1, -0.5], [-1, 0.5], [2, 1], [-0.5, -1]])  # the state after each chunk
    assert torch.allclose(streamed("mean")(CLIPS)[:, 1], running.mean(1))
    assert torch.allclose(streamed("max")(CLIPS)[:, 1], running.amax(1))
    assert torch.allclose(streamed("max")(CLIPS)[:, 0], (-running).amax(1))
    assert streamed("mean")(CLIPS).argmax(1).tolist() == [1, 0, 1, 0]


def test_pooling_rules_by_hand():
    chunks = torch.tensor([1.0, 5.0, 3.0]).reshape(1, 3, 1)
    assert pool_outputs(chunks, "mean", 2).item() == 3.0
    assert pool_outputs(chunks, "max", 2).item() == 5.0
    assert pool_outputs(chunks, "top_k_mean", 2).item() == 4.0
    assert pool_outputs(chunks, "top_k_mean", 9).item() == 3.0  # fewer chunks than k: all of them


def test_chunks_overlap_by_hop_and_the_end_is_padded():
    x = torch.arange(1.0, 11.0).reshape(1, 10)
    pieces = streamed(hop=3).chunks(x)
    assert [p.tolist() for p in pieces] == [[[1, 2, 3, 4]], [[4, 5, 6, 7]], [[7, 8, 9, 10]]]
    pieces = streamed().chunks(x)  # side by side: the last chunk is padded with zeros
    assert pieces[-1].tolist() == [[9, 10, 0, 0]] and len(pieces) == 3


def test_a_streamed_model_sweeps_projects_and_is_kept(tmp_path):
    model = pv.adapt(streamed("mean"), "logits")
    grid = pv.Grid([pv.transforms.get("gain", gain_db=[0, -6])])
    run = pv.sweep(model, (CLIPS, LABELS), grid, tmp_path / "r", projection={"max_steps": 20},
                   arrays={"keep": "all"}, execution={"progress": False})  # fmt: skip
    rec = run.records.sort_values(["point", "instance"])
    assert rec.correct_t.tolist() == [True, True, False, False] * 2
    # the gradient reaches every chunk through the carried state: the wrong records were projected to the label
    wrong = rec[~rec.correct_t]
    assert wrong.correct_proj.all() and (wrong.loss_proj < wrong.loss_t).all()
    arrays = pv.open_run(run.path).arrays(instance=2, point=0)
    change = arrays["x_proj"] - arrays["x_t"]
    assert np.abs(change[:4]).sum() > 0 and np.abs(change[4:]).sum() > 0
    schema = pv.open_run(run.path).schema
    assert schema.output["stream"] == {"chunk": 4, "hop": 4, "pool": "mean", "top_k": 3}
    assert schema.output_text.startswith(
        "logits (streamed: chunks of 4, hop 4, pooled by mean): the predicted"
    )
    assert run.config["output"] == schema.output  # another pooling of the same weights would not resume
    assert torch.equal(pv.open_run(run.path).model(device="cpu")(CLIPS), model(CLIPS))


def test_bad_streaming_settings_name_the_value_and_what_was_expected():
    with pytest.raises(ValueError, match="pool='median': expected one of mean, max, top_k_mean"):
        streamed("median")
    with pytest.raises(ValueError, match="chunk=0: expected a whole number of samples >= 1"):
        pv.stream(Accumulator(), 0, torch.zeros(1, 1))
    with pytest.raises(
        ValueError, match=r"state: expected a tensor for one clip .* got a tensor of shape \(4, 1\)"
    ):
        pv.stream(Accumulator(), 4, torch.zeros(4, 1))
    with pytest.raises(
        ValueError, match=r"tuple of 2 outputs; output_key=2 is not one \(expected an index in 0\.\.1\)"
    ):
        streamed(state_key=2)(CLIPS)


def silero_state(n: int) -> torch.Tensor:
    """Silero VAD's state before a clip: (2, clips, 128), its batch axis second."""
    return torch.zeros(2, n, 128)


def test_a_pretrained_streaming_vad_from_its_package_sweeps_and_is_kept(tmp_path):
    silero_vad = pytest.importorskip("silero_vad")
    vad = (
        silero_vad.load_silero_vad()
    )  # TorchScript; its inner model takes (chunk, state) and gives both back
    # 512-sample hops with the 64 samples before each chunk as context, as the package's own wrapper feeds it
    model = pv.adapt(pv.stream(vad._model, 576, silero_state, hop=512, pool="max"), "probabilities")
    t = torch.arange(4000) / 16000
    clips = torch.stack([0.3 * torch.sin(2 * torch.pi * 220 * t), 0.01 * torch.randn(4000)])
    grid = pv.Grid([pv.transforms.get("gain", gain_db=[0, -20])])
    run = pv.sweep(model, (clips, torch.tensor([1, 0])), grid, tmp_path / "r",
                   projection={"max_steps": 3}, execution={"progress": False})  # fmt: skip
    rec = run.records
    assert len(rec) == 4 and (rec.loss_proj <= rec.loss_t).all() and (rec.loss_proj < rec.loss_t).any()
    run = pv.open_run(run.path)
    assert run.schema.output["stream"]["pool"] == "max" and run.schema.model["torchscript_parts"] == [
        "model.model"
    ]
    assert torch.allclose(run.model(device="cpu")(clips), model(clips))


class Recurrent(nn.Module):
    """A small recurrent streaming classifier: (chunk of 4 samples, state of 8) → (3 logits, next state)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.inp, self.rec, self.out = nn.Linear(4, 8), nn.Linear(8, 8), nn.Linear(8, 3)

    def forward(self, chunk, state):
        state = torch.tanh(self.inp(chunk) + self.rec(state))
        return self.out(state), state


def test_an_onnx_streaming_model_reads_with_its_state_input_and_streams_like_its_original(tmp_path):
    pytest.importorskip("onnxruntime")  # onnx2torch is imported by proactiv.models (torchvision aside)
    net, path = Recurrent().eval(), tmp_path / "recurrent.onnx"
    with warnings.catch_warnings():  # torch's TorchScript-based exporter is deprecated
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.randn(2, 4), torch.zeros(2, 8)), str(path), dynamo=False, opset_version=17,
                          input_names=["chunk", "state"], output_names=["logits", "stateN"],
                          dynamic_axes={n: {0: "batch"} for n in ("chunk", "state", "logits", "stateN")})  # fmt: skip
    with pytest.raises(
        ValueError, match=r"inputs \['chunk', 'state'\] and outputs \['logits', 'stateN'\].*sample="
    ):
        pv.from_onnx(path)
    converted = pv.from_onnx(path, sample=(torch.randn(2, 4), torch.zeros(2, 8)))
    clips = torch.randn(3, 18)
    original, streamed_onnx = (
        pv.stream(m, 4, torch.zeros(1, 8), hop=2, pool="max") for m in (net, converted)
    )
    assert torch.allclose(streamed_onnx(clips), original(clips), atol=1e-5)
    x = clips.clone().requires_grad_(True)
    streamed_onnx(x)[:, 0].sum().backward()
    assert x.grad.abs().sum() > 0  # projection can move the clip through the converted model

"""ONNX models in: exported from torch, converted back for gradients, checked against onnxruntime, swept from a
config and rebuilt by ``Run.model()``; bad files and unconvertible operators are refused by name."""

import shutil

import onnx
import pytest
import torch
from onnx import TensorProto, helper
from torch import nn

import proactiv as pv
from proactiv import models
from proactiv.config import ConfigError, load_config, parse_config
from proactiv.fingerprint import model_hash
from proactiv.sweep import sweep_config
from proactiv.tasks.digits import DigitsCNN
from proactiv.tasks.kws import CLASS_NAMES, KeywordModel, LogMel, build_model, synthesize
from proactiv.tasks.kws.onnx import KWS_KEYS
from proactiv.tasks.kws.onnx import keyword_model as rebuilt_keyword_model


def keyword_model(seed=0):
    """An untrained DS-CNN keyword model with a logit offset (the export must carry it)."""
    torch.manual_seed(seed)
    offset = torch.linspace(-1, 1, len(CLASS_NAMES))
    net = build_model("dscnn", len(CLASS_NAMES)).eval()
    frontend = LogMel(n_mels=20)
    return KeywordModel(
        net, arch="dscnn", frontend=frontend, class_names=list(CLASS_NAMES), extra={}, logit_offset=offset
    ).eval()


def digits_cnn(seed=0):
    torch.manual_seed(seed)
    return DigitsCNN(10, 28).eval()


def input_grad(model, x):
    x = x.clone().requires_grad_(True)
    model(x).logsumexp(1).sum().backward()
    return x.grad


def test_keyword_model_round_trips_with_its_metadata_and_gradients(tmp_path):
    original = keyword_model()
    x = torch.randn(3, 20, 101) * 20 - 50
    path = models.export_onnx(original, x[:1], tmp_path / "kws.onnx")
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert set(KWS_KEYS) <= set(props)

    loaded = models.load_model(path)
    assert isinstance(loaded, KeywordModel)
    assert loaded.arch == "dscnn" and loaded.class_names == list(CLASS_NAMES)
    assert loaded.frontend.config() == original.frontend.config()
    assert 0 <= loaded.net.max_abs_diff < 1e-3 and loaded.net.opset == models.ONNX_OPSET
    # the batch size is dynamic, and the logit offset is inside the exported graph
    assert torch.allclose(loaded(x), original(x), atol=1e-4)
    assert torch.allclose(input_grad(loaded, x), input_grad(original, x), atol=1e-5, rtol=1e-3)


def test_digits_cnn_converts_and_matches(tmp_path):
    original = digits_cnn()
    x = torch.rand(4, 1, 28, 28)
    path = models.export_onnx(original, x[:2], tmp_path / "digits.onnx", metadata={"owner": "team a"})
    loaded = models.from_onnx(path, sample=x)
    assert isinstance(loaded, models.OnnxModel) and loaded.metadata == {"owner": "team a"}
    assert loaded.max_abs_diff < 1e-4
    assert torch.allclose(loaded(x), original(x), atol=1e-5)
    grad = input_grad(loaded, x)
    assert grad.abs().sum() > 0 and torch.allclose(grad, input_grad(original, x), atol=1e-6, rtol=1e-4)


def test_the_same_file_gives_the_same_fingerprint(tmp_path):
    x = torch.rand(1, 1, 28, 28)
    a = models.export_onnx(digits_cnn(0), x, tmp_path / "a.onnx")
    b = models.export_onnx(digits_cnn(1), x, tmp_path / "b.onnx")
    first, again, other = models.load_model(a), models.load_model(a), models.load_model(b)
    assert model_hash(first) == model_hash(again) != model_hash(other)


def test_a_conversion_that_disagrees_with_onnxruntime_is_refused(tmp_path, monkeypatch):
    path = models.export_onnx(digits_cnn(), torch.rand(1, 1, 28, 28), tmp_path / "d.onnx")
    onnx2torch = models._onnx_libraries()[1]
    convert = onnx2torch.convert

    class Off(nn.Module):  # a converter bug: every output off by 0.01
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net(x) + 0.01

    monkeypatch.setattr(onnx2torch, "convert", lambda proto: Off(convert(proto)))
    with pytest.raises(
        ValueError, match=r"d\.onnx: the converted model differs from onnxruntime by up to 0\.01"
    ):
        models.from_onnx(path)
    assert models.from_onnx(path, tolerance=0.1).max_abs_diff == pytest.approx(0.01, rel=1e-3)


def tiny_graph(path, op="Relu", inputs=True, opset=17):
    """X (N, 4) → MatMul → ``op`` (node 'warp') → Y, saved at ``path``."""
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", 4])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["N", 3])
    w = helper.make_tensor("W", TensorProto.FLOAT, [4, 3], [0.1 * i for i in range(12)])
    nodes = [
        helper.make_node("MatMul", ["X", "W"], ["H"], name="mix"),
        helper.make_node(op, ["H"], ["Y"], name="warp"),
    ]
    if not inputs:  # X made inside the graph instead
        nodes.insert(
            0, helper.make_node("Constant", [], ["X"], value=helper.make_tensor("c", 1, [2, 4], [1.0] * 8))
        )
    graph = helper.make_graph(nodes, "tiny", [x] if inputs else [], [y], [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), str(path))
    return path


def test_an_operator_without_a_converter_is_named(tmp_path):
    assert models.from_onnx(tiny_graph(tmp_path / "ok.onnx")).max_abs_diff < 1e-6
    path = tiny_graph(tmp_path / "sinh.onnx", op="Sinh")
    with pytest.raises(ValueError) as err:
        models.load_model(path)
    msg = str(err.value)
    assert "operator 'Sinh' (node 'warp')" in msg and str(path) in msg and "opset 17" in msg
    assert "cannot be converted to torch" in msg


def test_bad_files_are_named(tmp_path):
    with pytest.raises(ValueError, match=r"gone\.onnx: not found"):
        models.load_model(tmp_path / "gone.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00\xffnot a protobuf at all" * 20)
    with pytest.raises(ValueError, match=r"junk\.onnx is not a valid ONNX model"):
        models.load_model(junk)
    with pytest.raises(ValueError, match=r"noinput\.onnx: the ONNX graph declares no inputs"):
        models.from_onnx(tiny_graph(tmp_path / "noinput.onnx", inputs=False))


def test_missing_packages_name_the_install_command(monkeypatch):
    real = models.importlib.util.find_spec
    monkeypatch.setattr(
        models.importlib.util, "find_spec", lambda name, *a: None if name == "onnx2torch" else real(name, *a)
    )
    models._onnx_libraries.cache_clear()
    try:
        with pytest.raises(
            ValueError, match=r"onnx2torch package, which is not installed: pip install 'proactiv\[onnx\]'"
        ):
            models.from_onnx("any.onnx")
    finally:
        models._onnx_libraries.cache_clear()


def test_a_plain_network_is_not_taken_for_a_keyword_model(tmp_path):
    path = models.export_onnx(keyword_model().net, torch.randn(1, 20, 101), tmp_path / "net.onnx")
    assert type(models.load_model(path)) is models.OnnxModel
    with pytest.raises(
        ValueError, match=r"net\.onnx: a keyword model needs metadata_props key 'proactiv.kws.arch'"
    ):
        rebuilt_keyword_model(models.from_onnx(path))


def test_custom_task_sweeps_an_onnx_model_and_the_run_rebuilds_it(tmp_path):
    model = digits_cnn()
    x = torch.rand(6, 1, 28, 28)
    torch.save(x, tmp_path / "x.pt")
    torch.save(model(x).argmax(1), tmp_path / "y.pt")
    models.export_onnx(model, x[:1], tmp_path / "m.onnx")
    (tmp_path / "sweep.yaml").write_text(
        "task: custom\nmodel: {onnx: m.onnx}\ndata: {inputs: x.pt, labels: y.pt, instances_per_class: null}\n"
        "grid: [{type: noise, snr_db: [20, 0]}]\nprojection: {max_steps: 5}\n"
    )
    cfg = load_config(tmp_path / "sweep.yaml")
    assert cfg.model.onnx == tmp_path / "m.onnx"  # resolved next to the config
    run = sweep_config(cfg, tmp_path / "run", device="cpu", progress=False)
    assert len(run.records) == 12
    rebuilt = pv.open_run(run.path).model(device="cpu")
    assert isinstance(rebuilt, models.OnnxModel) and model_hash(rebuilt) == run.fingerprints["model"]
    again = sweep_config(cfg, tmp_path / "run", device="cpu", resume=True, progress=False)
    assert again.records.equals(run.records)


@pytest.mark.skipif(not shutil.which("espeak-ng"), reason="espeak-ng is not installed")
def test_kws_task_sweeps_an_exported_keyword_model_as_its_original(tmp_path):
    synthesize(tmp_path / "data", size="tiny", progress=False)
    original = keyword_model()
    pv.tasks.kws.save_model(
        tmp_path / "model.pt",
        original,
        arch="dscnn",
        frontend_config=original.frontend.config(),
        class_names=original.class_names,
    )
    frames = original.frontend(torch.zeros(1, 16000)).shape[-1]
    models.export_onnx(original, torch.randn(1, 20, frames), tmp_path / "kws.onnx")
    models.export_onnx(original.net, torch.randn(1, 20, frames), tmp_path / "plain.onnx")

    def config(**model):
        return parse_config(
            {
                "task": "kws",
                "model": model,
                "data": {"root": str(tmp_path / "data"), "split": "test", "instances_per_class": 1},
                "grid": [{"type": "audio_noise", "snr_db": [float("inf"), 0]}],
                "projection": {"max_steps": 3},
            }
        )

    from_onnx = sweep_config(
        config(onnx=str(tmp_path / "kws.onnx")), tmp_path / "a", device="cpu", progress=False
    )
    from_pt = sweep_config(
        config(path=str(tmp_path / "model.pt")), tmp_path / "b", device="cpu", progress=False
    )
    a, b = from_onnx.records, from_pt.records
    assert len(a) == len(b) > 0 and "meta.speaker" in a.columns
    assert (a.pred_t.to_numpy() == b.pred_t.to_numpy()).all()
    assert a.loss_t.to_numpy() == pytest.approx(b.loss_t.to_numpy(), rel=1e-3, abs=1e-4)
    assert from_onnx.class_names == list(CLASS_NAMES)
    assert isinstance(pv.open_run(from_onnx.path).model(device="cpu"), KeywordModel)
    with pytest.raises(
        ConfigError, match=r"model\.onnx: .*plain\.onnx: a keyword model needs metadata_props key"
    ):
        sweep_config(config(onnx=str(tmp_path / "plain.onnx")), tmp_path / "c", progress=False)


def test_digits_task_takes_a_model_from_the_config(tmp_path, monkeypatch):
    from proactiv.tasks import digits

    monkeypatch.setattr(digits, "cached_digits_cnn", lambda *a, **k: DigitsCNN(10, 8).eval())  # no training
    models.export_onnx(DigitsCNN(10, 8).eval(), torch.rand(1, 1, 8, 8), tmp_path / "d8.onnx")
    cfg = parse_config(
        {
            "task": "digits",
            "model": {"onnx": str(tmp_path / "d8.onnx")},
            "data": {"image_size": 8, "instances_per_class": 1},
            "grid": [{"type": "noise", "snr_db": [0]}],
            "projection": {"max_steps": 2},
        }
    )
    run = sweep_config(cfg, tmp_path / "run", device="cpu", progress=False)
    assert len(run.records) == 10
    assert model_hash(pv.open_run(run.path).model(device="cpu")) == model_hash(
        models.load_model(tmp_path / "d8.onnx")
    )


class Tagged(nn.Module):
    """A network of a task that records a tag in its exports and rebuilds itself from it."""

    def __init__(self, net, tag):
        super().__init__()
        self.net, self.tag = net, tag

    def forward(self, x):
        return self.net(x)


@pytest.fixture
def hooks(monkeypatch):
    """The model hooks as they are, restored after the test."""
    for name in ("_FILE_READERS", "_ONNX_WRAPPERS", "_EXPORT_METADATA"):
        monkeypatch.setattr(models, name, dict(getattr(models, name)))


def test_registered_export_metadata_and_onnx_wrapper_round_trip_a_task_model(tmp_path, hooks):
    models.register_export_metadata(Tagged, lambda m: {"toy.tag": m.tag})
    models.register_onnx_wrapper("toy.", lambda m: Tagged(m, m.metadata["toy.tag"]))
    x = torch.rand(2, 1, 28, 28)
    path = models.export_onnx(Tagged(digits_cnn(), "seven"), x[:1], tmp_path / "t.onnx", metadata={"a": "b"})
    loaded = models.load_model(path)
    assert isinstance(loaded, Tagged) and loaded.tag == "seven" and loaded.net.metadata["a"] == "b"
    assert (
        type(models.load_model(models.export_onnx(digits_cnn(), x[:1], tmp_path / "p.onnx")))
        is models.OnnxModel
    )


def test_a_registered_file_reader_reads_its_files_and_an_unknown_file_names_the_known_kinds(tmp_path, hooks):
    torch.save({"format": "toy/1"}, tmp_path / "toy.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(
        ValueError, match=r"other\.pt' is not a model proactiv reads: not TorchScript nor a keyword"
    ):
        models.load_model(tmp_path / "other.pt")
    models.register_file_reader(
        "a toy model", lambda p: nn.Identity() if torch.load(p).get("format") == "toy/1" else None
    )
    assert isinstance(models.load_model(tmp_path / "toy.pt"), nn.Identity)
    with pytest.raises(ValueError, match="not TorchScript nor a keyword model .* nor a toy model"):
        models.load_model(tmp_path / "other.pt")

"""Model sources → ``nn.Module``: the one place that turns an ONNX file, a TorchScript file, a model file a task
saves (e.g. a keyword model of ``proactiv kws train``) or a config's :class:`~proactiv.config.ModelSpec` into a
module to sweep.

ONNX models are converted to torch with onnx2torch, because projection needs gradients with respect to the
input and onnxruntime gives none; every conversion is then checked against onnxruntime on the same seeded
inputs, and refused when the two disagree. :func:`export_onnx` goes the other way, for users handing a model
over and for the tests; a task's model carries what the task needs to rebuild it in the file's
``metadata_props``. What only a task knows (its file format, its metadata keys) it registers here with
:func:`register_file_reader`, :func:`register_onnx_wrapper` and :func:`register_export_metadata`.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.metadata
import importlib.util
import io
import os
import sys
import types
import warnings
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch import nn

from proactiv.config import ConfigError, ModelSpec
from proactiv.extras import MissingExtra
from proactiv.io import atomic_write

#: opset of :func:`export_onnx`: the newest whose every operator onnx2torch 1.5 converts (opset 18+ exports of
#: the keyword models use Reshape-19, or Reshape with allowzero=1, which it does not)
ONNX_OPSET = 17
#: the converted model may differ from onnxruntime by this much, times the largest output magnitude (at least 1)
TOLERANCE = 1e-4
#: size given to dynamic input dimensions when no sample is given: the batch (first) one, then any other
DYNAMIC_BATCH = 2
DYNAMIC_SIZE = 32
#: operators whose onnx2torch converters call torchvision
_TORCHVISION_OPS = ("NonMaxSuppression", "RoiAlign")


class OnnxModel(nn.Module):
    """A network converted from an ONNX file: ``net`` is onnx2torch's module; ``source`` the file,
    ``metadata`` its ``metadata_props``, ``opset`` its default-domain opset, ``max_abs_diff`` how far its output
    was from onnxruntime's on the check inputs."""

    def __init__(self, net: nn.Module, *, source: Path, metadata: dict, opset: int, max_abs_diff: float):
        super().__init__()
        self.net = net
        self.source = source
        self.metadata = metadata
        self.opset = opset
        self.max_abs_diff = max_abs_diff

    def forward(self, *inputs: torch.Tensor):
        return self.net(*inputs)


#: model-file kind → ``read(path)``: the model in a file a task saved, or None for a file not of that kind
_FILE_READERS: dict[str, Callable[[Path], nn.Module | None]] = {}
#: ``metadata_props`` key prefix → ``wrap(model)``: a converted ONNX model as its task's model
_ONNX_WRAPPERS: dict[str, Callable[[OnnxModel], nn.Module]] = {}
#: model type → ``describe(model)``: the ``metadata_props`` :func:`export_onnx` adds for models of that type
_EXPORT_METADATA: dict[type, Callable[[nn.Module], dict[str, str]]] = {}


def register_file_reader(kind: str, read: Callable[[Path], nn.Module | None]) -> None:
    """Let :func:`load_model` read model files of ``kind`` (named when a file is of no known kind):
    ``read(path)`` returns the model, or None for a file not of this kind."""
    _FILE_READERS[kind] = read


def register_onnx_wrapper(prefix: str, wrap: Callable[[OnnxModel], nn.Module]) -> None:
    """Let :func:`load_model` return a converted ONNX model whose ``metadata_props`` hold a key starting with
    ``prefix`` as ``wrap(model)``: its task's model, rebuilt from those keys."""
    _ONNX_WRAPPERS[prefix] = wrap


def register_export_metadata(model_type: type, describe: Callable[[nn.Module], dict[str, str]]) -> None:
    """Let :func:`export_onnx` add ``describe(model)`` to the ``metadata_props`` of a ``model_type`` it writes
    (what its task needs to rebuild it, see :func:`register_onnx_wrapper`)."""
    _EXPORT_METADATA[model_type] = describe


@functools.cache
def _onnx_libraries() -> tuple:
    """``(onnx, onnx2torch, onnxruntime, why torchvision is unusable or None)``, imported once."""
    for name in ("onnx", "onnxruntime", "onnx2torch"):
        if importlib.util.find_spec(name) is None:
            raise MissingExtra(name, "onnx", "reading an ONNX model")
    import onnx
    import onnxruntime

    try:
        import torchvision  # noqa: F401  (onnx2torch imports it for two operators)

        problem = None
    except (ImportError, RuntimeError, OSError) as err:
        problem = f"{type(err).__name__}: {err}"
    if problem is None:
        import onnx2torch
    else:
        # A torchvision built for another torch (e.g. the CUDA wheel beside a CPU torch) fails on import, and with
        # it all of onnx2torch, though only NonMaxSuppression and RoiAlign use it: import onnx2torch against a
        # placeholder, then put sys.modules back so no one else sees it; those two operators are refused.
        placeholder, ops = types.ModuleType("torchvision"), types.ModuleType("torchvision.ops")
        placeholder.ops, ops.nms, ops.roi_align = ops, None, None
        saved = {name: sys.modules.get(name) for name in ("torchvision", "torchvision.ops")}
        sys.modules.update({"torchvision": placeholder, "torchvision.ops": ops})
        try:
            import onnx2torch
        finally:
            for name, module in saved.items():
                if module is None:
                    sys.modules.pop(name, None)
                else:
                    sys.modules[name] = module
    return onnx, onnx2torch, onnxruntime, problem


def _read_onnx(path: Path):
    onnx = _onnx_libraries()[0]
    if not path.is_file():
        raise ValueError(f"ONNX model {path}: file not found")
    try:
        proto = onnx.load(str(path))
        onnx.checker.check_model(proto)
    except Exception as err:  # protobuf and the checker raise many types for a file that is not ONNX
        raise ValueError(f"{path} is not a valid ONNX model ({type(err).__name__}: {err})") from None
    return proto


def _opset(proto) -> int:
    return next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)


def _check_operators(proto, path: Path) -> None:
    """Refuse a graph with an operator onnx2torch cannot convert, naming it, its node, the file and the opset."""
    torchvision_problem = _onnx_libraries()[3]
    from onnx2torch.node_converters import get_converter

    versions = {o.domain or "": o.version for o in proto.opset_import}
    versions.setdefault("ai.onnx", versions.get("", 0))
    for node in proto.graph.node:
        domain = node.domain or ""
        where = f"operator {node.op_type!r} (node {node.name or '(unnamed)'!r}"
        where += f", domain {domain!r}" if domain else ""
        where += f") of {path} at opset {versions.get(domain, 0)}"
        if node.op_type in _TORCHVISION_OPS and torchvision_problem:
            raise ValueError(f"{where} needs torchvision, which does not load here ({torchvision_problem})")
        try:
            get_converter(node.op_type, versions.get(domain, 0), domain)
        except NotImplementedError:
            raise ValueError(
                f"{where} cannot be converted to torch (onnx2torch {importlib.metadata.version('onnx2torch')} has no converter "
                f"for it); export the model with other operators, e.g. at opset {ONNX_OPSET}"
            ) from None


def _inline_shared_weights(proto) -> None:
    """Turn ``Identity`` nodes that copy a weight into weights of their own (in place).

    torch's exporter stores equal weights once (e.g. the all-zero biases of an untrained network) and reads the
    others through ``Identity`` nodes, but onnx2torch wants a convolution's weights to be weights, not node outputs.
    """
    graph = proto.graph
    weights = {t.name: t for t in graph.initializer}
    outputs = {o.name for o in graph.output}
    for node in list(graph.node):
        if node.op_type == "Identity" and node.input[0] in weights and node.output[0] not in outputs:
            copy = graph.initializer.add()
            copy.CopyFrom(weights[node.input[0]])
            copy.name = node.output[0]
            weights[copy.name] = copy
            graph.node.remove(node)


def _graph_io(proto, path: Path, several: bool):
    """The graph's inputs and outputs (initializers listed as inputs are weights, not inputs): one of each,
    unless ``several`` (a sample was given for each input)."""
    weights = {t.name for t in proto.graph.initializer}
    inputs = [i for i in proto.graph.input if i.name not in weights]
    outputs = list(proto.graph.output)
    if not inputs:
        raise ValueError(f"{path}: the ONNX graph declares no inputs; expected one input tensor")
    if not several and (len(inputs) > 1 or len(outputs) != 1):
        raise ValueError(
            f"{path}: the ONNX graph has inputs {[i.name for i in inputs]} and outputs "
            f"{[o.name for o in outputs]}; proactiv sweeps models of one input tensor and one output tensor, "
            "or a streaming model of several: from_onnx(path, sample=(one tensor per input)) reads it and "
            "pv.stream runs it over clips"
        )
    return inputs, outputs


def _check_sample(graph_input, path: Path, seed: int) -> torch.Tensor:
    """Seeded standard-normal inputs of the declared shape; dynamic dims get ``DYNAMIC_BATCH`` (first) or
    ``DYNAMIC_SIZE`` (others)."""
    tensor = graph_input.type.tensor_type
    if tensor.elem_type != 1:  # onnx.TensorProto.FLOAT
        raise ValueError(
            f"{path}: input {graph_input.name!r} has ONNX element type {tensor.elem_type}; projection needs a "
            "float32 input (element type 1)"
        )
    shape = [
        d.dim_value if d.HasField("dim_value") else (DYNAMIC_BATCH if i == 0 else DYNAMIC_SIZE)
        for i, d in enumerate(tensor.shape.dim)
    ]
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def from_onnx(
    path: str | os.PathLike,
    sample: torch.Tensor | tuple[torch.Tensor, ...] | None = None,
    *,
    tolerance: float = TOLERANCE,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> OnnxModel:
    """The ONNX model at ``path`` converted to torch (onnx2torch), in eval mode on ``device``.

    The conversion is run on ``sample`` (default: seeded standard-normal inputs of the declared shape, see
    :func:`_check_sample`) beside onnxruntime; the largest absolute difference is kept as ``max_abs_diff``, and
    the model is refused when it exceeds ``tolerance`` × max(1, largest |output|), or when the input gets no
    finite gradient. Errors (``ValueError``) name the file: missing, not ONNX, no input, an operator that cannot
    be converted (with its node and the opset).

    A graph of several inputs and outputs (a streaming model's chunk, state and fixed inputs such as a sample
    rate; see :func:`proactiv.streaming.stream`) is read when ``sample`` holds one tensor per input, in the
    graph's order; the model then takes them all and returns every output, and the check compares every output
    and the gradient of the first with respect to the first input.
    """
    path = Path(path)
    proto = _read_onnx(path)
    _, onnx2torch, onnxruntime, _ = _onnx_libraries()
    several = isinstance(sample, (tuple, list))
    graph_inputs, _ = _graph_io(proto, path, several)
    _check_operators(proto, path)
    runnable = proto.SerializeToString()
    _inline_shared_weights(proto)
    try:
        net = onnx2torch.convert(proto).eval()
    except NotImplementedError as err:  # a converter that refuses one of its operator's attributes
        raise ValueError(f"{path} (opset {_opset(proto)}) cannot be converted to torch: {err}") from None
    if sample is None:
        xs = [_check_sample(graph_inputs[0], path, seed)]
    else:
        xs = [t.detach().cpu().clone() for t in (sample if several else [sample])]
        xs[0] = xs[0].float()
    if len(xs) != len(graph_inputs):
        raise ValueError(
            f"{path}: {len(xs)} sample tensors for the graph's {len(graph_inputs)} inputs "
            f"{[i.name for i in graph_inputs]}; expected one per input, in that order"
        )
    try:
        session = onnxruntime.InferenceSession(runnable, providers=["CPUExecutionProvider"])
        feeds = {i.name: x.numpy() for i, x in zip(graph_inputs, xs, strict=True)}
        expected = [torch.from_numpy(a) for a in session.run(None, feeds)]
    except Exception as err:  # onnxruntime raises its own exception types
        raise ValueError(
            f"{path}: onnxruntime cannot run the model on inputs of shapes {[tuple(x.shape) for x in xs]} "
            f"({err}); pass a sample input of the shape it takes"
        ) from None
    x = xs[0].requires_grad_(True)
    outs = net(*xs)
    outs = list(outs) if isinstance(outs, (tuple, list)) else [outs]
    out = outs[0]
    if not isinstance(out, torch.Tensor) or not out.requires_grad:
        raise ValueError(f"{path}: the converted model's output does not depend differentiably on its input")
    out.sum().backward()
    diff = max(float((o.detach() - e).abs().max()) for o, e in zip(outs, expected, strict=True))
    allowed = tolerance * max(1.0, *(float(e.abs().max()) for e in expected))
    if not diff <= allowed:
        raise ValueError(
            f"{path}: the converted model differs from onnxruntime by up to {diff:.3g} on the check inputs "
            f"(allowed {allowed:.3g}); the conversion cannot be trusted"
        )
    if x.grad is None or not torch.isfinite(x.grad).all():
        raise ValueError(f"{path}: the converted model gives no finite gradient with respect to its input")
    model = OnnxModel(
        net,
        source=path,
        metadata={p.key: p.value for p in proto.metadata_props},
        opset=_opset(proto),
        max_abs_diff=diff,
    )
    return model.to(device).eval()


def export_onnx(
    model: nn.Module,
    sample: torch.Tensor,
    path: str | os.PathLike,
    *,
    metadata: dict[str, str] | None = None,
    opset: int = ONNX_OPSET,
) -> Path:
    """Write ``model`` (as it maps ``sample``-shaped inputs, batch dimension dynamic) to an ONNX file at
    ``path``, with ``metadata`` in its ``metadata_props``; written to a temporary name then renamed.

    A model of a type with registered export metadata (:func:`register_export_metadata`; a keyword model's:
    architecture, classes, frontend) adds it. Uses torch's TorchScript-based exporter (``dynamo=False``): the
    dynamo exporter writes opset 18+ graphs that onnx2torch cannot convert back.
    """
    onnx = _onnx_libraries()[0]
    props = dict(metadata or {})
    for model_type, describe in _EXPORT_METADATA.items():
        if isinstance(model, model_type):
            props.update(describe(model))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp: Path) -> None:
        was_training = model.training
        model.eval()
        try:
            # the TorchScript-based exporter is deprecated in favour of dynamo
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                torch.onnx.export(
                    model,
                    (sample,),
                    str(tmp),
                    dynamo=False,
                    opset_version=opset,
                    input_names=["input"],
                    output_names=["output"],
                    dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                )
        finally:
            model.train(was_training)
        proto = onnx.load(str(tmp))
        for key, value in props.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = str(key), str(value)
        onnx.save(proto, str(tmp))

    return atomic_write(path, write)


def _torchscript(path: Path) -> nn.Module:
    try:
        return torch.jit.load(str(path), map_location="cpu").eval()
    except (RuntimeError, ValueError) as err:
        raise ValueError(f"{path} is not a TorchScript file ({err})") from None


def _from_file(path: Path) -> nn.Module:
    """A model file: ``.onnx`` (its task's model when its metadata says so, see :func:`register_onnx_wrapper`),
    TorchScript, or a file a task saved (a folder stands for its ``model.pt``), read by the first registered
    reader that knows it."""
    if path.is_dir():
        path = path / "model.pt"
    if not path.is_file():
        raise ValueError(f"model file {path}: not found")
    if path.suffix.lower() == ".onnx":
        model = from_onnx(path)
        for prefix, wrap in _ONNX_WRAPPERS.items():
            if any(key.startswith(prefix) for key in model.metadata):
                return wrap(model)
        return model
    if is_torchscript(path):
        return _torchscript(path)
    for read in _FILE_READERS.values():
        model = read(path)
        if model is not None:
            return model
    known = " nor ".join(["TorchScript", *_FILE_READERS])
    raise ValueError(f"model file {str(path)!r} is not a model proactiv reads: not {known}")


def is_torchscript(path: Path) -> bool:
    """Whether ``path`` is a TorchScript archive (a zip holding ``constants.pkl``) rather than a torch.save file."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("/constants.pkl") for name in archive.namelist())


def import_object(path: str, field: str):
    """The object a config names as ``package.module:name``; a ``ConfigError`` names ``field`` otherwise."""
    module_name, name = path.split(":", 1)
    try:
        return getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as err:
        raise ConfigError(f"{field}: cannot import {path!r} ({err})") from None


def torchscript_parts(model: nn.Module) -> list[str]:
    """The names of ``model``'s outermost TorchScript submodules (``""``: the model itself is TorchScript)."""
    names = [name for name, m in model.named_modules() if isinstance(m, torch.jit.ScriptModule)]
    if "" in names:
        return [""]
    return [n for n in names if not any(n.startswith(f"{outer}.") for outer in names)]


@contextlib.contextmanager
def split_torchscript(model: nn.Module) -> Iterator[tuple[nn.Module | None, dict[str, bytes]]]:
    """``model`` without its TorchScript parts (which torch cannot pickle), and those parts as
    :func:`torch.jit.save` bytes by name; the parts are put back on exit. The shell is None when the model
    itself is TorchScript. :func:`join_torchscript` rebuilds the model from the two."""
    held = {name: model if name == "" else model.get_submodule(name) for name in torchscript_parts(model)}
    parts = {}
    for name, part in held.items():
        buffer = io.BytesIO()
        with _jit_deprecation_quiet():
            torch.jit.save(part, buffer)
        parts[name] = buffer.getvalue()
    if "" in parts:
        yield None, parts
        return
    try:
        for name in held:
            _set_submodule(model, name, None)
        yield model, parts
    finally:
        for name, part in held.items():
            _set_submodule(model, name, part)


def join_torchscript(shell: nn.Module | None, parts: dict[str, bytes]) -> nn.Module:
    """The model :func:`split_torchscript` took apart."""
    with _jit_deprecation_quiet():
        loaded = {name: torch.jit.load(io.BytesIO(data), map_location="cpu") for name, data in parts.items()}
    if shell is None:
        return loaded[""]
    for name, part in loaded.items():
        _set_submodule(shell, name, part)
    return shell


@contextlib.contextmanager
def _jit_deprecation_quiet() -> Iterator[None]:
    """torch deprecates TorchScript, but a part that already is TorchScript has no other way to be saved."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=r"`torch\.jit\.")
        yield


def _set_submodule(model: nn.Module, name: str, module: nn.Module | None) -> None:
    parent, _, leaf = name.rpartition(".")
    model.get_submodule(parent)._modules[leaf] = module


def _from_spec(spec: ModelSpec) -> nn.Module:
    """The model a config names; errors (``ConfigError``) name the field and the file or import path."""
    for field, read in (("onnx", _from_file), ("torchscript", _torchscript), ("path", _from_file)):
        file = getattr(spec, field)
        if file is None:
            continue
        if not Path(file).exists():
            raise ConfigError(f"model.{field}: file not found: {file}")
        try:
            return read(Path(file))
        except ValueError as err:
            raise ConfigError(f"model.{field}: {err}") from None
    if spec.factory is None:
        raise ConfigError(
            "model: give either 'onnx: FILE', 'torchscript: FILE' or 'factory: package.module:function'"
        )
    model = import_object(spec.factory, "model.factory")(**spec.kwargs)
    if not isinstance(model, nn.Module):
        raise ConfigError(
            f"model.factory: {spec.factory} returned {type(model).__name__}, expected an nn.Module"
        )
    if spec.weights is not None:
        if not spec.weights.exists():
            raise ConfigError(f"model.weights: file not found: {spec.weights}")
        try:
            state = torch.load(spec.weights, map_location="cpu", weights_only=True)
            model.load_state_dict(state.get("state_dict", state) if isinstance(state, dict) else state)
        except (RuntimeError, OSError, EOFError) as err:
            raise ConfigError(
                f"model.weights: cannot load {spec.weights} into {spec.factory} ({err})"
            ) from None
    return model


def load_model(source: str | os.PathLike | ModelSpec, device: str | torch.device = "cpu") -> nn.Module:
    """The model ``source`` names, in eval mode on ``device``: an ONNX file (converted and checked, see
    :func:`from_onnx`; a keyword model's export comes back as a ``KeywordModel``), a TorchScript file, a model
    file a task saved or its folder (e.g. of ``proactiv kws train``), or a config's :class:`ModelSpec`. Errors are
    ``ValueError``s (``ConfigError`` for a spec) naming the file or field."""
    model = _from_spec(source) if isinstance(source, ModelSpec) else _from_file(Path(source))
    return model.to(device).eval()

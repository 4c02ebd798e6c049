"""The sweep config (YAML, validated by pydantic): one source of truth for defaults.

Errors name the field path and the bad value, e.g. ``grid[1].snr_db: ... (got 'loud')``.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from proactiv.schema import OUTPUT_KINDS
from proactiv.transforms import Grid


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the file, the field and what was expected."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _import_path(value: str | None) -> str | None:
    if value is not None and (":" not in value or not all(value.split(":", 1))):
        raise ValueError(f"expected 'package.module:function', got {value!r}")
    return value


class ModelSpec(_Strict):
    """The model: a task's saved model file (``path``), an ONNX file (``onnx``: converted to torch and checked
    against onnxruntime, see :mod:`proactiv.models`), a TorchScript file, or ``package.module:function``; and
    how its output is read (``output``, ``output_key``) and what turns data into its input (``preprocess``), as
    :func:`proactiv.outputs.adapt` takes them."""

    path: Path | None = None
    onnx: Path | None = None
    torchscript: Path | None = None
    factory: str | None = None
    weights: Path | None = None
    kwargs: dict = Field(default_factory=dict)
    #: what the model returns (:data:`proactiv.schema.OUTPUT_KINDS`); None: the task's own reading
    output: str | None = None
    #: the key (dict output) or index (tuple output) of the output to read
    output_key: str | int | None = None
    #: ``package.module:function`` applied to the data before the model (projection acts on its input)
    preprocess: str | None = None

    _import_paths = field_validator("factory", "preprocess")(_import_path)

    @field_validator("output")
    @classmethod
    def _known_output(cls, v):
        if v is not None and v not in OUTPUT_KINDS:
            raise ValueError(f"expected one of {', '.join(OUTPUT_KINDS)}, got {v!r}")
        return v


class DataSpec(_Strict):
    """Which instances to sweep: per-class sample of a task's split, or tensors from files (custom task)."""

    instances_per_class: int | None = Field(5, ge=1)
    seed: int = 0
    split: str = "test"
    root: Path | None = None
    inputs: Path | None = None
    labels: Path | None = None
    class_names: list[str] | None = None
    #: image tasks: side of the square images (digits: 28 = MNIST layout, 8 = scikit-learn's native size)
    image_size: int | None = Field(None, ge=8, le=128)
    #: EMNIST split of the files under ``root`` (letters, digits, mnist, balanced, byclass, bymerge)
    subset: str = "letters"
    #: custom task: what the inputs are, for honest views (default: one axis → vector, more → image)
    input_kind: Literal["waveform", "spectrogram", "image", "vector"] | None = None
    #: custom task: samples per second of waveform inputs (lets the dashboard play them)
    sample_rate: int | None = Field(None, ge=1)


class ProjectionSpec(_Strict):
    """Projection settings; a field left out takes the task's default, then the Projector's."""

    loss: Literal["cross_entropy", "own_prediction", "binary_cross_entropy", "mse", "l1"] | None = None
    optimizer: Literal["polyak", "adam", "sgd"] | None = None
    lr: float | Literal["auto"] | None = None
    lr_fraction: float | None = Field(None, gt=0)
    cutoff: float | None = Field(None, ge=0)
    max_steps: int | None = Field(None, ge=0)
    batch_size: int | None = Field(None, ge=1)
    criterion: Literal["per_sample", "batch_mean"] | None = None
    regularizer: Literal["l2", "l1", "tv"] | None = None
    reg_weight: float | None = Field(None, ge=0)
    clamp: tuple[float, float] | None = None
    fold_batch_norm: bool | None = None

    @field_validator("lr")
    @classmethod
    def _positive(cls, v):
        if isinstance(v, float) and v <= 0:
            raise ValueError(f"expected a positive step size or 'auto', got {v}")
        return v

    def given(self) -> dict:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class ArraysSpec(_Strict):
    """Which xT / x̂T arrays a run keeps: none, all, or every grid point of the first ``per_class`` instances of
    each class (``"sample"``: enough for bias maps and the dashboard's record view at a fraction of the disk)."""

    keep: Literal["none", "sample", "all"] = "sample"
    per_class: int = Field(2, ge=0)


class UnitsSpec(_Strict):
    """Size of a unit of work (the resume granularity)."""

    instances: int = Field(64, ge=1)
    projections: int = Field(1024, ge=1)


#: the executors known by name (:func:`proactiv.executors.get_executor`)
EXECUTORS = ("local", "ray")


class ExecutionSpec(_Strict):
    """Where a sweep's units are computed and whether it shows progress. The records are the same whichever
    computes them, so this is not part of a run's config: ``proactiv sweep`` sets it from its flags."""

    #: ``"local"`` (this process), ``"ray"`` (Ray tasks), or an executor object such as
    #: ``RayExecutor(address="auto")`` (:mod:`proactiv.executors`)
    executor: Any = "local"
    #: the Ray cluster of ``executor="ray"`` (``"auto"``, ``"ray://HEAD:10001"``); None: the Ray this process
    #: initialised, else a local one
    address: str | None = None
    #: where projections compute (``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``); on Ray, whether tasks ask
    #: for GPUs while the driver keeps the CPU
    device: str = "auto"
    progress: bool = True

    @field_validator("executor")
    @classmethod
    def _known_executor(cls, v):
        if isinstance(v, str) and v not in EXECUTORS:
            raise ValueError(f"expected one of {EXECUTORS} or an executor object")
        if not isinstance(v, str) and not callable(getattr(v, "run", None)):
            raise ValueError(f"expected one of {EXECUTORS} or an executor object (with a run method)")
        return v


class SweepConfig(_Strict):
    task: str = "digits"
    #: where projection acts, for tasks with a frontend (kws: "feature" = log-mel, or "waveform")
    domain: Literal["feature", "waveform"] | None = None
    model: ModelSpec | None = None
    data: DataSpec = Field(default_factory=DataSpec)
    grid: list[dict] = Field(min_length=1)
    projection: ProjectionSpec = Field(default_factory=ProjectionSpec)
    arrays: ArraysSpec = Field(default_factory=ArraysSpec)
    units: UnitsSpec = Field(default_factory=UnitsSpec)
    seed: int = 0

    @field_validator("grid")
    @classmethod
    def _grid_builds(cls, v):
        for i, entry in enumerate(v):
            if "type" not in entry:
                raise ValueError(f"grid[{i}]: missing 'type' (a transform name such as 'noise')")
        try:
            Grid.from_spec(v)
        except ValueError as err:
            raise ValueError(str(err)) from None
        return v

    def build_grid(self) -> Grid:
        return Grid.from_spec(self.grid)


def _fields_at(loc: tuple, model: type[BaseModel] = SweepConfig) -> list[str]:
    """The field names of the section of ``model`` that holds ``loc``'s last part ([] when that is not a
    section)."""
    for part in loc[:-1]:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        kinds = (field.annotation, *get_args(field.annotation)) if field is not None else ()
        sections = [k for k in kinds if isinstance(k, type) and issubclass(k, BaseModel)]
        if not sections:
            return []
        model = sections[0]
    return list(model.model_fields)


def _unknown_field(loc: tuple, model: type[BaseModel] = SweepConfig) -> str:
    """The message for a field the config does not have, with the closest known name and all of them."""
    known = _fields_at(loc, model)
    if not known:
        return "Extra inputs are not permitted"
    close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"Extra inputs are not permitted: unknown field{hint}; known fields here: {', '.join(known)}"


def _format(err: ValidationError, source: str, model: type[BaseModel] = SweepConfig) -> str:
    lines = []
    for e in err.errors():
        where = (
            "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e["loc"]).lstrip(".")
            or "(top level)"
        )
        value = e.get("input")  # echoed when short: a long echo (a whole grid) hides the point
        shown = "input" in e and not isinstance(value, dict) and len(repr(value)) <= 60
        got = f" (got {value!r})" if shown else ""
        msg = (
            _unknown_field(e["loc"], model)
            if e["type"] == "extra_forbidden"
            else e["msg"].removeprefix("Value error, ")
        )
        lines.append(f"  {where}: {msg}{got}")
    return f"{source}: invalid config\n" + "\n".join(lines)


def parse_config(data: dict, source: str = "config") -> SweepConfig:
    """Validate a config dict; relative paths in it are kept as given."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
    try:
        return SweepConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format(err, source)) from None


def as_option(kind: type[BaseModel], value, name: str) -> BaseModel:
    """The option object ``kind`` (e.g. :class:`ArraysSpec`) from itself, a dict of its fields or None (its
    defaults): how the Python API takes the same options as the YAML config, with errors naming the field."""
    if value is None:
        return kind()
    if isinstance(value, kind):
        return value
    if not isinstance(value, dict):
        raise TypeError(
            f"{name}: expected a {kind.__name__} or a dict of its fields, got {type(value).__name__}"
        )
    try:
        return kind.model_validate(value)
    except ValidationError as err:
        raise ConfigError(_format(err, name, kind)) from None


def load_config(path: str | os.PathLike) -> SweepConfig:
    """Read and validate a YAML sweep config; paths inside are resolved relative to the file."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the config file ({err.strerror or err})") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from None
    cfg = parse_config(data, str(path))
    base = path.resolve().parent
    for spec, names in (
        (cfg.model, ("path", "onnx", "torchscript", "weights")),
        (cfg.data, ("root", "inputs", "labels")),
    ):
        for name in names:
            value = getattr(spec, name, None) if spec is not None else None
            if value is not None and not value.is_absolute():
                setattr(spec, name, Path(os.path.normpath(base / value)))
    return cfg

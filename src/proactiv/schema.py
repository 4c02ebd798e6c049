"""RunSchema: what kind of run this is, declared by the task (or ``pv.sweep``'s arguments) and stored in run.json.

Everything after the sweep — analyses, views, the report, the dashboard — asks the schema instead of guessing
from column names, task names or a frontend's repr:

- the **target**: ``label`` (a classifier: records carry predictions) or ``tensor`` (image-to-image /
  regression: the desired output is a tensor);
- the **output** kind: what the model returns and so which rule makes a record correct (:data:`OUTPUT_KINDS`),
  with the key or index read from a dict or tuple output and the preprocess callable, by name;
- the **desired** output projections aim at: the ``label``, the model's own ``clean_prediction`` (loss
  ``own_prediction``), or the target ``tensor``; analyses that explain x̂T aim where projection did;
- the **outcome** the views call success: ``accuracy`` (classifiers) or ``within_cutoff`` (the output's loss is
  below the projection cutoff), with its wording;
- the **input**: ``waveform`` | ``spectrogram`` | ``image`` | ``vector``, with its shape, axis names, value unit,
  value range and sample rate;
- the **frontend** as a config that rebuilds it (``{"class": "module:Class", "config": {...}}``);
- the **group column** per-class views use, the **metric columns** with their units, and the **model spec**
  that rebuilds the model for later analyses (:meth:`proactiv.store.Run.model`).

Every metric (unit, label, whether it has curves, whether the dashboard offers it) is named once, in
:data:`METRIC_CATALOGUE`; analyses, views and the dashboard derive their tables from it.

Runs written before the schema existed get theirs from :func:`derive_schema`, once, on open: the only place
allowed to guess; stored schemas older than a field get it from :func:`complete_schema`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace

TARGETS = ("label", "tensor")
#: what a run's projections aim at, per record: its ``label``, the model's own prediction on the clean input
#: (``clean_prediction``: projection loss ``own_prediction``; records keep it as ``pred_clean``), or its target
#: ``tensor`` (image-to-image / regression)
DESIRED = ("label", "clean_prediction", "tensor")
#: why a projection ended (the record column ``status``; ``converged`` stays beside it):
STATUSES = {
    "converged": "its loss fell below the cutoff",
    "budget": "the step budget (``max_steps``, all restarts together) ran out first",
    "stalled": "a step could not move it: the gradient (and, with Adam, its momentum) is zero there",
    "nonfinite": "the loss or the input became NaN/Inf: stopped at once; x̂T is its lowest-loss finite point",
    "no_scale": "an input with no scale of its own (constant) and none from its batch or run to size steps by",
    "batch_mean": "stopped with its chunk: under criterion='batch_mean' the chunk's mean loss fell below the "
    "cutoff, not its own",
}
OUTCOMES = ("accuracy", "within_cutoff")


@dataclass(frozen=True)
class OutputKind:
    """What a model returns, as a run reads it: the run's ``target`` kind, the projection ``losses`` that fit it
    (the first is the default), the rule that makes a record ``correct`` (in words, for people and run.json),
    and what :attr:`RunSchema.outcome_label` calls the share of correct records (None: the outcome's own words).
    How the outputs are turned into what the engine projects is :mod:`proactiv.outputs`."""

    name: str
    target: str
    losses: tuple[str, ...]
    correct: str
    outcome_label: str | None = None


#: the output kinds a model can declare (``pv.adapt(model, output=...)``, a config's ``model.output``)
OUTPUT_KINDS: dict[str, OutputKind] = {k.name: k for k in (
    OutputKind("logits", "label", ("cross_entropy", "own_prediction"), "the predicted class is the desired one"),
    OutputKind("binary_logit", "label", ("cross_entropy", "own_prediction"),
               "the positive class's logit is > 0 exactly when the desired class is 1 (loss: binary cross-entropy)"),
    OutputKind("probabilities", "label", ("cross_entropy", "own_prediction"),
               "the desired class has the largest probability (one sigmoid probability: > 0.5 exactly when "
               "the desired class is 1; loss: negative log-likelihood)"),
    OutputKind("multilabel_logits", "tensor", ("binary_cross_entropy",),
               "every label's logit is > 0 exactly when that label is 1 (loss: binary cross-entropy per label)",
               outcome_label="all labels right on xT"),
    OutputKind("tensor", "tensor", ("mse", "l1"), "the output's loss is below the projection cutoff"),
)}  # fmt: skip


def default_output(target: str) -> dict:
    """The output of a model that declared none: class logits for label targets, else the tensor itself."""
    return {"kind": "logits" if target == "label" else "tensor", "key": None, "preprocess": None}


INPUT_KINDS = ("waveform", "spectrogram", "image", "vector")
SCHEMA_VERSION = 1
#: metadata columns that name an instance's class in runs without class labels (image-to-image), first found
#: wins: arrays are kept per value of it, and per-class views group by it
GROUP_META = ("class", "label", "digit", "letter", "category")
#: a metadata column with more distinct values than this is no class (e.g. a file path)
MAX_GROUPS = 50

#: the unit of metrics that are fractions of records (drawn as percentages)
FRACTION = "fraction of records"


@dataclass(frozen=True)
class Metric:
    """One metric: a record column the sweep writes, or an aggregate over one that the views draw.

    ``unit`` says what its values are (:data:`FRACTION`: the share of records where a boolean column is true);
    ``label`` how curves and heatmaps name it (None: the run's outcome, worded by its schema); ``column`` the
    record column it is computed from (None: it is a record column itself); ``quality``: image quality
    (PSNR/SSIM) of image runs; ``curve``: breakpoints draws it along each parameter; ``dashboard``: the axis
    label under which the dashboard offers it (None: not offered).
    """

    name: str
    unit: str
    label: str | None = None
    column: str | None = None
    quality: bool = False
    curve: bool = False
    dashboard: str | None = None

    @property
    def record(self) -> bool:
        """Whether the sweep writes it as a record column."""
        return self.column is None

    @property
    def source(self) -> str:
        """The record column it is computed from."""
        return self.column or self.name

    @property
    def fraction(self) -> bool:
        """Whether it is the fraction of records where a boolean column is true."""
        return self.unit == FRACTION


def _quality(name: str, label: str) -> Metric:
    unit = "dB" if name.startswith("psnr") else "SSIM (1 = identical)"
    return Metric(name, unit, label, quality=True, curve=True, dashboard=label)


_D_X = "RMS of x̂T − xT (input units)"
#: the one metric catalogue, by name: aggregates first, then record columns in the order runs list them
METRIC_CATALOGUE: dict[str, Metric] = {m.name: m for m in (
    Metric("accuracy", FRACTION, column="correct_t", curve=True,
           dashboard="accuracy (fraction correct on xT)"),
    Metric("within_cutoff", FRACTION, column="correct_t", curve=True,
           dashboard="within cutoff (fraction of outputs with loss < cutoff)"),
    Metric("flip_rate", FRACTION, "flip rate (pred. x̂T ≠ xT)", column="flipped", curve=True,
           dashboard="flip rate (fraction of predictions changed)"),
    Metric("mean_d_x", _D_X, "mean d_x: RMS of x̂T − xT", column="d_x",
           dashboard="mean d_x (distance xT → x̂T)"),
    Metric("mean_loss_t", "loss on xT", "mean loss on xT", column="loss_t", dashboard="mean loss on xT"),
    Metric("d_x", _D_X, "d_x: RMS of x̂T − xT", curve=True),
    Metric("d_x_l2", "L2 norm of x̂T − xT (input units)"),
    Metric("d_x_mse", "mean square of x̂T − xT"),
    Metric("d_x_clean", "RMS of x̂T − x (input units)"),
    Metric("d_t", "RMS of xT − x (input units)"),
    Metric("d_y", "distance f(xT) → f(x̂T)"),
    Metric("loss_t", "loss on xT", "loss on xT (d_g)", curve=True),
    Metric("loss_proj", "loss on x̂T"),
    Metric("loss_change", "loss on xT − loss on x̂T"),
    Metric("steps", "projection steps"),
    _quality("psnr_t", "PSNR xT vs clean x (dB)"),
    _quality("psnr_proj", "PSNR x̂T vs clean x (dB)"),
    _quality("psnr_out_t", "PSNR f(xT) vs target (dB)"),
    _quality("psnr_out_proj", "PSNR f(x̂T) vs target (dB)"),
    _quality("ssim_t", "SSIM xT vs clean x"),
    _quality("ssim_proj", "SSIM x̂T vs clean x"),
    _quality("ssim_out_t", "SSIM f(xT) vs target"),
    _quality("ssim_out_proj", "SSIM f(x̂T) vs target"),
)}  # fmt: skip
#: record columns and their units (only those a run's records carry end up in its schema)
METRIC_UNITS = {m.name: m.unit for m in METRIC_CATALOGUE.values() if m.record}
CLASSIFIER_COLUMNS = (
    "pred_clean",
    "pred_t",
    "pred_proj",
    "correct_clean",
    "correct_t",
    "correct_proj",
    "flipped",
)


@dataclass(frozen=True)
class InputSpec:
    """One model input: its kind, shape (one instance), axis names, value unit and range, sample rate."""

    kind: str
    shape: tuple[int, ...] = ()
    axes: tuple[str, ...] = ()
    unit: str = "input units"
    value_range: tuple[float, float] | None = None
    sample_rate: int | None = None

    def __post_init__(self):
        if self.kind not in INPUT_KINDS:
            raise ValueError(f"input kind {self.kind!r}: expected one of {', '.join(INPUT_KINDS)}")
        if self.sample_rate is not None and not int(self.sample_rate) > 0:
            raise ValueError(f"sample_rate={self.sample_rate!r}: expected samples per second > 0")
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        object.__setattr__(self, "axes", tuple(str(a) for a in self.axes))
        if self.value_range is not None:
            object.__setattr__(self, "value_range", tuple(float(v) for v in self.value_range))

    # how to draw it (derived, never stored) -----------------------------------------------------------
    @property
    def image(self) -> bool:
        return self.kind == "image"

    @property
    def spectrogram(self) -> bool:
        return self.kind == "spectrogram"

    @property
    def one_dimensional(self) -> bool:
        """Drawn as a line (waveforms, vectors), not as a 2-D map."""
        return self.kind in ("waveform", "vector")

    @property
    def row_label(self) -> str:
        return self.axes[-2] if len(self.axes) >= 2 else ""

    @property
    def column_label(self) -> str:
        return self.axes[-1] if self.axes else ""

    @property
    def origin(self) -> str:
        """Row 0 at the bottom (spectrograms: low frequencies down) or at the top (images)."""
        return "upper" if self.image else "lower"

    @property
    def aspect(self) -> str:
        return "equal" if self.image else "auto"

    @property
    def colormap(self) -> str:
        return {"image": "gray", "spectrogram": "magma"}.get(self.kind, "viridis")


@dataclass(frozen=True)
class RunSchema:
    """What kind of run this is (see the module docstring); frozen, stored as ``run.json["schema"]``."""

    target: str
    input: InputSpec
    outcome: str | None = None
    #: what projections aim at (:data:`DESIRED`); default: the label of classifiers, else the target tensor
    desired: str | None = None
    cutoff: float | None = None
    frontend: dict | None = None
    group_column: str | None = None
    metrics: Mapping[str, str] = field(default_factory=dict)
    model: dict | None = None
    #: what the model returns: ``{"kind": ..., "key": ..., "preprocess": ...}`` (see :data:`OUTPUT_KINDS`)
    output: Mapping | None = None
    version: int = SCHEMA_VERSION

    def __post_init__(self):
        if self.target not in TARGETS:
            raise ValueError(f"target {self.target!r}: expected one of {', '.join(TARGETS)}")
        if self.outcome is not None and self.outcome not in OUTCOMES:
            raise ValueError(f"outcome {self.outcome!r}: expected one of {', '.join(OUTCOMES)} or None")
        if self.desired is None:
            object.__setattr__(self, "desired", desired_output(self.target))
        if self.desired not in DESIRED or (self.desired == "tensor") != (self.target == "tensor"):
            raise ValueError(
                f"desired {self.desired!r}: expected one of {', '.join(DESIRED)} ('tensor' exactly when the "
                f"target is a tensor; this target is {self.target!r})"
            )
        object.__setattr__(self, "metrics", dict(self.metrics))
        output = {**default_output(self.target), **(self.output or {})}
        kind = OUTPUT_KINDS.get(output["kind"])
        if kind is None or kind.target != self.target:
            raise ValueError(
                f"output kind {output['kind']!r}: expected one of "
                f"{', '.join(k.name for k in OUTPUT_KINDS.values() if k.target == self.target)} "
                f"for a {self.target!r} target"
            )
        object.__setattr__(self, "output", output)

    @property
    def output_kind(self) -> OutputKind:
        """What the model returns and the rule that makes a record correct."""
        return OUTPUT_KINDS[self.output["kind"]]

    # wording ------------------------------------------------------------------------------------------
    @property
    def output_text(self) -> str:
        """What the model returns and when a record is correct, for people: "binary_logit (output key 'logits';
        streamed: chunks of 1600, hop 1600, pooled by max): the positive class's logit is > 0 …"."""
        out = self.output
        how = [f"output key {out['key']!r}"] if out.get("key") is not None else []
        how += [f"preprocess {out['preprocess']}"] if out.get("preprocess") else []
        stream = out.get("stream")
        if stream:
            pool = f"top {stream['top_k']} mean" if stream["pool"] == "top_k_mean" else stream["pool"]
            how.append(f"streamed: chunks of {stream['chunk']}, hop {stream['hop']}, pooled by {pool}")
        return out["kind"] + (f" ({'; '.join(how)})" if how else "") + f": {self.output_kind.correct}"

    @property
    def classifier(self) -> bool:
        """Records carry predictions (pred_*, flipped) and class labels."""
        return self.target == "label"

    @property
    def outcome_label(self) -> str:
        """``correct_t`` for people: "accuracy on xT" or "within cutoff on xT (loss < 0.005)"."""
        if self.outcome == "accuracy":
            return self.output_kind.outcome_label or "accuracy on xT"
        if self.outcome == "within_cutoff":
            return "within cutoff on xT" + (f" (loss < {self.cutoff:g})" if self.cutoff is not None else "")
        return "mean loss on xT"

    @property
    def outcome_wording(self) -> str:
        """What success means here, in a sentence."""
        if self.outcome == "accuracy":
            return self.output_kind.correct
        if self.outcome == "within_cutoff":
            return "the output's loss is below the projection cutoff" + (
                f" ({self.cutoff:g})" if self.cutoff is not None else ""
            )
        return "no success criterion: this run has neither labels nor a loss cutoff"

    @property
    def failure_wording(self) -> str:
        """What the model did to the records the views call failures ("got wrong", …)."""
        return {"accuracy": "got wrong", "within_cutoff": "left outside the loss cutoff"}.get(
            self.outcome or "", "did worst on"
        )

    @property
    def group_title(self) -> str:
        """What a class is called: "class", "digit" (from ``meta.digit``), or "all" without groups."""
        if self.group_column is None:
            return "all"
        return "class" if self.group_column == "label_name" else self.group_column.removeprefix("meta.")

    @property
    def audible(self) -> bool:
        """Whether records can be played: waveforms, or spectrograms whose frontend can be inverted."""
        return self.input.kind == "waveform" or (
            self.input.spectrogram and self.frontend is not None and self.input.sample_rate is not None
        )

    def has(self, column: str) -> bool:
        """Whether this run's records carry ``column`` among their outcome and metric columns (predictions
        and flips for classifiers, ``correct_t`` with an outcome, the metric columns)."""
        if column in CLASSIFIER_COLUMNS:
            if self.classifier:
                return True
            # multi-label records are right or wrong by their label decisions, which flip, with no class
            if self.outcome == "accuracy":
                return column in ("correct_clean", "correct_t", "correct_proj", "flipped")
            return self.outcome is not None and column in ("correct_t", "correct_proj")
        return column in self.metrics

    @property
    def desired_column(self) -> str | None:
        """The record column holding each record's desired class: ``label``, or ``pred_clean`` when projections
        aim at the model's own clean prediction; None for tensor targets."""
        return {"label": "label", "clean_prediction": "pred_clean"}.get(self.desired or "")

    @property
    def has_outputs(self) -> bool:
        """Whether kept arrays hold the model's outputs f(xT), f(x̂T) and the target y (tensor targets)."""
        return self.target == "tensor"

    # storage ------------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        out = asdict(self)
        out["input"]["shape"] = list(self.input.shape)
        out["input"]["axes"] = list(self.input.axes)
        return out

    @classmethod
    def from_dict(cls, data: Mapping) -> RunSchema:
        try:
            data = dict(data)
            spec = dict(data.pop("input"))
            return cls(input=InputSpec(**spec), **data)
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"run schema: {err} (in {dict(data)!r:.200})") from None

    def with_columns(self, columns: Sequence[str]) -> RunSchema:
        """The same schema with its metrics limited to ``columns`` (the columns records really carry)."""
        return replace(self, metrics={c: u for c, u in self.metrics.items() if c in columns})


# --------------------------------------------------------------------------------------------- building
def input_spec(
    kind: str | None,
    shape: Sequence[int],
    *,
    sample_rate: int | None = None,
    value_range: tuple[float, float] | None = None,
    unit: str | None = None,
    axes: Sequence[str] | None = None,
    frontend: bool = False,
) -> InputSpec:
    """An :class:`InputSpec` for one input of ``shape``; ``kind=None`` takes the documented default: images
    when a value range is given, spectrograms behind a frontend, waveforms with a sample rate, vectors for one
    axis, images (a matrix drawn with row 0 on top) otherwise."""
    if kind is not None and kind not in INPUT_KINDS:
        raise ValueError(f"input_kind={kind!r}: expected one of {', '.join(INPUT_KINDS)}")
    shape = tuple(int(d) for d in shape)
    wide = [d for d in shape if d > 1]
    if kind is None:
        if value_range is not None and len(wide) >= 2:
            kind = "image"
        elif frontend and len(wide) >= 2:
            kind = "spectrogram"
        elif len(wide) <= 1:
            kind = "waveform" if sample_rate else "vector"
        else:
            kind = "image"
    default_axes = {
        "waveform": ("sample",),
        "vector": ("feature",),
        "spectrogram": ("mel band", "frame"),
        "image": ("row", "column"),
    }[kind]
    default_unit = {
        "waveform": "amplitude",
        "vector": "input units",
        "spectrogram": "dB",
        "image": "pixel value" if value_range is not None else "input units",
    }[kind]
    return InputSpec(
        kind=kind,
        shape=shape,
        axes=tuple(axes) if axes is not None else default_axes,
        unit=unit or default_unit,
        value_range=value_range,
        sample_rate=sample_rate,
    )


def frontend_config(frontend) -> dict | None:
    """``{"class": "module:Class", "config": {...}}`` for a frontend that can say how to rebuild itself
    (a ``config()`` method and a ``from_config`` class method, as :class:`~proactiv.tasks.kws.frontend.LogMel`);
    None for a plain callable (it is still applied, it just cannot be rebuilt later)."""
    if frontend is None or not callable(getattr(frontend, "config", None)):
        return None
    cls = type(frontend)
    if not callable(getattr(cls, "from_config", None)):
        return None
    return {"class": f"{cls.__module__}:{cls.__qualname__}", "config": dict(frontend.config())}


def build_frontend(config: Mapping | None) -> Callable | None:
    """The frontend a :func:`frontend_config` describes (None for None)."""
    if config is None:
        return None
    module, name = str(config["class"]).split(":", 1)
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"run schema: cannot import the frontend {config['class']!r} ({err})") from None
    return cls.from_config(dict(config["config"]))


def metric_units(columns: Sequence[str]) -> dict[str, str]:
    """The record columns among ``columns`` that are metrics, with their units."""
    return {c: METRIC_UNITS[c] for c in METRIC_UNITS if c in columns}


def expected_metrics(classifier: bool, image_quality: bool, image_outputs: bool) -> dict[str, str]:
    """The metric columns a sweep writes (see :func:`proactiv.metrics.differences`), with their units."""
    cols = [c for c in METRIC_UNITS if not c.startswith(("psnr", "ssim"))]
    if image_quality:
        cols += [c for c in METRIC_UNITS if c.startswith(("psnr", "ssim")) and "_out_" not in c]
    if image_outputs:
        cols += [c for c in METRIC_UNITS if "_out_" in c]
    return metric_units(cols)


def group_column(classifier: bool, metadata_columns: Mapping[str, int] | None) -> str | None:
    """The column per-class views group by: ``label_name`` for classifiers, else the first of
    :data:`GROUP_META` among the metadata columns (name → number of distinct values) with 2 to
    :data:`MAX_GROUPS` values, as ``meta.<name>``; None: one group."""
    if classifier:
        return "label_name"
    for name in GROUP_META:
        n = (metadata_columns or {}).get(name)
        if n is not None and 2 <= n <= MAX_GROUPS:
            return f"meta.{name}"
    return None


#: per status, the SQL aggregate counting a run's records that ended so (the record column ``status``)
STATUS_COUNTS = {name: f"count(*) FILTER (WHERE status = '{name}')" for name in STATUSES}


def status_counts_text(counts: Mapping[str, int]) -> str:
    """How projections ended, for people: ``converged 1540 · budget 52 · nonfinite 8`` (statuses in the order of
    :data:`STATUSES`, unknown ones after them; those no record has left out)."""
    order = [*STATUSES, *sorted(set(counts) - set(STATUSES))]
    return " · ".join(f"{name} {int(counts[name]):,}" for name in order if counts.get(name))


def desired_output(target: str, loss: object = None) -> str:
    """What projections aim at (:data:`DESIRED`) for a target kind and a projection loss name."""
    if target == "tensor":
        return "tensor"
    return "clean_prediction" if loss == "own_prediction" else "label"


# --------------------------------------------------------------------------------------------- old runs
def complete_schema(stored: Mapping, header: Mapping) -> dict:
    """A stored schema with the fields added since it was written, derived once from the run's header: the
    ``desired`` output (from the projection loss of its config)."""
    out = dict(stored)
    if out.get("desired") is None:
        loss = ((header.get("config") or {}).get("projection") or {}).get("loss")
        out["desired"] = desired_output(str(out.get("target")), loss)
    return out


def derive_schema(header: Mapping, columns: Sequence[str], shape: Sequence[int] | None,
                  group_counts: Mapping[str, int] | None = None) -> RunSchema:  # fmt: skip
    """The schema of a run written before runs described themselves, from its config, record columns and
    input shape. The one function that guesses; every later consumer reads the result."""
    cfg = header.get("config", {}) or {}
    classifier = "pred_t" in columns
    target = "label" if classifier else "tensor"
    outcome = "accuracy" if classifier else "within_cutoff" if "correct_t" in columns else None
    projection = cfg.get("projection") or {}
    cutoff = projection.get("cutoff")
    pixel_range = cfg.get("pixel_range")
    frontend_text = str(cfg.get("frontend") or "").lower()
    kws = cfg.get("task") in ("kws", "synthetic")
    kind = None
    if shape is not None and len([d for d in shape if d > 1]) <= 1:
        kind = "waveform" if kws else "vector"
    elif pixel_range is not None:
        kind = "image"
    elif "mel" in frontend_text or (kws and cfg.get("domain", "feature") != "waveform"):
        kind = "spectrogram"
    spec = input_spec(
        kind or "image",
        shape or (),
        sample_rate=16000 if kws else None,
        value_range=(0.0, float(pixel_range)) if pixel_range is not None else None,
    )
    model = None
    if cfg.get("task") and cfg.get("task") != "synthetic":
        model = {"source": "config"}
    frontend = None
    if spec.spectrogram and kws:  # every KWS model so far was trained on LogMel's defaults
        frontend = {"class": "proactiv.tasks.kws.frontend:LogMel", "config": {}}
    return RunSchema(
        target=target,
        input=spec,
        outcome=outcome,
        desired=desired_output(target, projection.get("loss")),
        cutoff=float(cutoff) if isinstance(cutoff, (int, float)) else None,
        frontend=frontend,
        group_column=group_column(classifier, group_counts),
        metrics=metric_units(columns),
        model=model,
    )

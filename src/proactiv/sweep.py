"""Sweep: instances × grid points → projections → difference metrics → run store.

The work is cut into units (a block of grid points × a block of instances). Each unit is transformed,
projected in one queue (its grid points share the working batch) and written as its own shard, so a killed
sweep resumes at the first unit without a completion marker and gives the same records as an uninterrupted one.
An executor (:mod:`proactiv.executors`: this process, or Ray tasks) computes the units; the sweep writes them.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch
from torch import nn

from proactiv.config import ArraysSpec, ExecutionSpec, ProjectionSpec, UnitsSpec, as_option
from proactiv.executors import Executor, LocalExecutor, Unit, get_executor
from proactiv.fingerprint import data_hash, model_hash
from proactiv.metrics import differences
from proactiv.optimize import ProjectionResult, Projector, own_scales
from proactiv.outputs import output_of
from proactiv.progress import progress_bar
from proactiv.rebuild import load_task
from proactiv.schema import (
    OUTPUT_KINDS,
    OutputKind,
    RunSchema,
    default_output,
    desired_output,
    expected_metrics,
    frontend_config,
    group_column,
    input_spec,
)
from proactiv.sources import Source
from proactiv.store import Run, RunWriter, open_run
from proactiv.sweep_legacy import accepts_old_keywords
from proactiv.task_data import TaskData, as_task_data
from proactiv.transforms import Grid
from proactiv.version import __version__


@accepts_old_keywords
def sweep(
    model: nn.Module,
    data: TaskData | tuple[torch.Tensor, torch.Tensor],
    grid: Grid,
    out: str | os.PathLike,
    *,
    projection: Projector | ProjectionSpec | dict | None = None,
    arrays: ArraysSpec | dict | None = None,
    units: UnitsSpec | dict | None = None,
    execution: ExecutionSpec | dict | None = None,
    seed: int = 0,
    resume: bool = False,
) -> Run:
    """Project every instance of ``data`` at every point of ``grid`` and store the records in the run ``out``.

    What is swept (model, data, grid) and where it goes (out) come first; the settings are the option objects
    of the YAML config (:mod:`proactiv.config`), so a Python call and ``proactiv sweep`` say the same thing the
    same way. The keywords of proactiv 0.1 (``inputs=``, ``projector=``, ``keep_arrays=`` …) still work for one
    release, with a DeprecationWarning naming the new spelling (:mod:`proactiv.sweep_legacy`).

    Parameters
    ----------
    model : the frozen, differentiable model (on model inputs: features when the data has a ``frontend``).
        What it returns is class logits, or a target-shaped tensor for float labels; any other output (one
        binary logit, probabilities, multi-label logits, a dict or tuple) or a preprocess step is declared with
        :func:`proactiv.outputs.adapt` (``pv.adapt``), and the run's schema keeps it.
    data : the instances: ``(inputs, labels)`` — clean raw inputs (N, ...), float, and class labels (N,) for
        classifiers or target tensors (N, *out) for image-to-image / regression — or a
        :class:`~proactiv.task_data.TaskData` that adds class names, metadata (stored as ``meta.*``), a frontend
        (raw inputs → model inputs, e.g. waveform → log-mel; projection acts on its output), the pixel range of
        images (adds PSNR and SSIM), the input kind and sample rate (how views draw and play them), how later
        analyses rebuild the model (``model_spec``; without one the run keeps a copy of ``model``) and the
        schema. A TaskData's own ``model`` is not used: ``model`` is what is swept.
    grid : the transforms to sweep; raw-domain transforms act on the inputs, feature-domain ones after the
        frontend.
    out : the run directory.
    projection : a :class:`~proactiv.optimize.Projector`, or :class:`~proactiv.config.ProjectionSpec` settings
        (a field left out takes the data's ``projection_defaults``, then the Projector's default).
    arrays : :class:`~proactiv.config.ArraysSpec`: which xT / x̂T arrays the run keeps.
    units : :class:`~proactiv.config.UnitsSpec`: the size of a unit of work (what a resume starts again).
    execution : :class:`~proactiv.config.ExecutionSpec`: what computes the units (this process, Ray tasks, an
        executor object), where projections compute, and the progress bar; the records are the same whichever
        computes them.
    seed : run seed; every random draw is seeded by (seed, instance, grid point).
    resume : continue an existing run (refused if its config, model or data differ).

    Each option also takes a dict of its fields, or None for its defaults.

    Examples
    --------
    >>> grid = pv.Grid([pv.transforms.get("gain", gain_db=[0, -12])])
    >>> run = pv.sweep(model, (inputs, labels), grid, "runs/mine",
    ...                arrays=pv.ArraysSpec(keep="all"), execution=pv.ExecutionSpec(progress=False))
    """
    execution = as_option(ExecutionSpec, execution, "execution")
    data = _checked(as_task_data(data), execution.progress)
    output = output_of(model, "tensor" if data.labels.is_floating_point() else "label")
    kind = OUTPUT_KINDS[output["kind"]]
    data = replace(data, labels=_labels_for(kind, data.labels))
    arrays = as_option(ArraysSpec, arrays, "arrays")
    runner = get_executor(execution.executor, address=execution.address, device=execution.device)
    # with Ray the driver only checks and writes: the tasks project, on the device they are given
    device = execution.device if isinstance(runner, LocalExecutor) else "cpu"
    projector = _projector(model, projection, {"loss": kind.losses[0], **data.projection_defaults}, device)
    if isinstance(projector.loss, str) and projector.loss not in kind.losses:
        raise ValueError(
            f"projection loss {projector.loss!r} does not fit output={kind.name!r}: expected "
            f"{' or '.join(map(repr, kind.losses))}, or a callable (outputs, targets) -> (N,)"
        )
    schema = data.schema or _schema(data, projector, output)
    sizes = _unit_sizes(len(data.inputs), as_option(UnitsSpec, units, "units"))
    header = _header(model, data, grid, projector, seed, arrays, sizes, schema)
    if output != default_output(kind.target):  # another reading of the same weights must not resume the run
        header["config"]["output"] = output
    kept = _kept_instances(_groups(data.labels, data.metadata, schema), arrays.keep, arrays.per_class)
    # a model that cannot project is refused here, before anything is written
    sample = model_inputs(grid, data.frontend, data.inputs[:1], [0], seed)
    projector.check(sample, sample if projector.loss == "own_prediction" else data.labels)
    shared = _Units(model, projector, grid, data.frontend, data.inputs, data.labels, data.metadata,
                    data.class_names, seed, kept, data.pixel_range, run_scale(data.inputs, data.frontend),
                    multilabel=kind.name == "multilabel_logits")  # fmt: skip
    writer = RunWriter(out, header, resume)
    _write(writer, shared, _units_of_work(len(data.inputs), len(grid), sizes), runner, execution.progress,
           model_source=(schema.model or {}).get("source"))  # fmt: skip
    return open_run(out)


def _checked(data: TaskData, progress: bool = False) -> TaskData:
    """``data`` with its inputs checked (floating point, finite, one label and metadata row each, names for
    every label, a pixel range only for images) and moved to the CPU, detached; its metadata indexed 0..N-1.
    A source is scanned once (with a progress bar): its labels and metadata fill what ``data`` leaves out."""
    inputs, labels, metadata, class_names = data.inputs, data.labels, data.metadata, data.class_names
    if isinstance(inputs, Source):
        inputs.scan(progress)
        labels = inputs.labels if labels is None else labels
        metadata = inputs.metadata if metadata is None else metadata
    elif not isinstance(inputs, torch.Tensor) or not inputs.is_floating_point():
        kind = inputs.dtype if isinstance(inputs, torch.Tensor) else type(inputs).__name__
        raise TypeError(
            f"inputs: expected a floating-point torch.Tensor (N, ...), a torch Dataset or a proactiv source, got {kind}"
        )
    elif not _all_finite(inputs):
        raise ValueError("inputs: the clean inputs contain NaN or Inf")
    if labels is None:
        raise ValueError("labels: expected one per input (class indices or target tensors), got None")
    labels = torch.as_tensor(labels)
    if labels.shape[0] != inputs.shape[0]:
        raise ValueError(
            f"labels: {labels.shape[0]} labels for {inputs.shape[0]} inputs; expected one per input"
        )
    if metadata is not None:
        if not isinstance(metadata, pd.DataFrame):
            raise TypeError(f"metadata: expected a pandas DataFrame, got {type(metadata).__name__}")
        if len(metadata) != inputs.shape[0]:
            raise ValueError(
                f"metadata: {len(metadata)} rows for {inputs.shape[0]} inputs; expected one per input"
            )
        metadata = metadata.reset_index(drop=True)
    if class_names is not None and not labels.is_floating_point() and labels.numel():
        if int(labels.max()) >= len(class_names) or int(labels.min()) < 0:
            raise ValueError(
                f"labels: label {int(labels.max())} has no name in class_names ({len(class_names)} names)"
            )
    span = data.pixel_range
    if span is not None and not (math.isfinite(span) and span > 0 and inputs.ndim == 4):
        raise ValueError(
            f"pixel_range={span!r}: PSNR/SSIM need a finite span > 0 and images (N, C, H, W); "
            f"the inputs have shape {tuple(inputs.shape)}"
        )
    if isinstance(inputs, torch.Tensor):
        inputs = inputs.detach().cpu()
    return replace(data, inputs=inputs, labels=labels.cpu(), metadata=metadata)


def _all_finite(inputs: torch.Tensor, rows: int = 256) -> bool:
    """Whether every input is finite, checked ``rows`` at a time: ``isfinite`` of all at once made temporaries
    of 1.7× the inputs (a 12 GB sweep was killed for memory)."""
    return all(bool(torch.isfinite(inputs[s : s + rows]).all()) for s in range(0, len(inputs), rows))


def _labels_for(kind: OutputKind, labels: torch.Tensor) -> torch.Tensor:
    """The labels as an output kind reads them: class indices (N,), 0/1 rows (N, L) as floats (multi-label) or
    float target tensors; errors name the kind and what it expected."""
    got = f"got {labels.dtype} labels of shape {tuple(labels.shape)}"
    if kind.target == "label":
        if labels.is_floating_point() or labels.dim() != 1:
            raise ValueError(f"labels: output={kind.name!r} reads class indices, integer (N,); {got}")
        return labels
    if kind.name == "multilabel_logits":
        if labels.dim() != 2 or not ((labels == 0) | (labels == 1)).all():
            raise ValueError(
                f"labels: output='multilabel_logits' reads 0/1 rows (N, L), a column per label; {got}"
            )
        return labels.float()
    if not labels.is_floating_point():
        raise ValueError(
            f"labels: output={kind.name!r} compares outputs to float target tensors; {got} (class indices are "
            "output='logits')"
        )
    return labels


def _projector(model: nn.Module, projection, defaults: dict, device) -> Projector:
    """The projector of a sweep: the one given, or one built from ProjectionSpec settings over the data's
    defaults."""
    if isinstance(projection, Projector):
        return projection
    if projection is not None and not isinstance(projection, (ProjectionSpec, dict)):
        raise TypeError(
            "projection: expected a Projector, a ProjectionSpec or a dict of its fields, "
            f"got {type(projection).__name__}"
        )
    spec = as_option(ProjectionSpec, projection, "projection")
    return Projector(model, device=device, **{**defaults, **spec.given()})


def _unit_sizes(n: int, units: UnitsSpec) -> tuple[int, int]:
    """Instances and grid points per unit of work: ``units.instances`` (at most N) × as many points as keep a
    unit near ``units.projections``."""
    instances = max(1, min(units.instances, n))
    return instances, max(1, math.ceil(units.projections / instances))


def _units_of_work(n: int, n_points: int, sizes: tuple[int, int]) -> list[Unit]:
    """Every unit of a sweep: each block of instances × each block of grid points, instance block by instance
    block (a source is then read in order, each block once in a row)."""
    per_instance, per_point = sizes
    iblocks = [np.arange(s, min(n, s + per_instance)) for s in range(0, n, per_instance)]
    gblocks = [np.arange(s, min(n_points, s + per_point)) for s in range(0, n_points, per_point)]
    return [Unit(g, i, ib, gb) for i, ib in enumerate(iblocks) for g, gb in enumerate(gblocks)]


def _header(model, data: TaskData, grid: Grid, projector: Projector, seed: int, arrays: ArraysSpec,
            sizes: tuple[int, int], schema: RunSchema) -> dict:  # fmt: skip
    """run.json's header: the config that decides the records (a resumed run must match it), the
    fingerprints of the model and data, and the schema."""
    source = {"data_source": data.inputs.describe()} if isinstance(data.inputs, Source) else {}
    return {
        "config": {
            **data.config,
            **source,
            "grid": grid.spec(),
            "projection": projector.settings(),
            "seed": int(seed),
            "n_instances": len(data.inputs),
            "class_names": list(data.class_names) if data.class_names is not None else None,
            "arrays": {"keep": arrays.keep, "per_class": int(arrays.per_class)},
            "units": {"instances": sizes[0], "points": sizes[1]},
            "pixel_range": data.pixel_range,
        },
        "fingerprints": {
            "model": model_hash(model),
            "data": data_hash(data.inputs, data.labels, data.metadata),
            "package_version": __version__,
        },
        "schema": schema.to_dict(),
    }


def _write(writer: RunWriter, shared: _Units, units: list[Unit], runner: Executor, progress: bool,
           model_source: str | None) -> None:  # fmt: skip
    """Compute the units not written yet and write each as it arrives; the run is marked complete, or
    interrupted when anything stops it (a resume continues from the units written). A model swept in memory
    (``model_source`` "run") is kept with the run, and the data of any run whose model is not rebuilt from a
    config, so analyses can rebuild both."""
    try:
        if model_source == "run" and not writer.keep_model(shared.model):
            model_source = None
        if model_source not in (None, "config"):
            writer.keep_data({"inputs": shared.inputs, "labels": shared.labels, "metadata": shared.metadata,
                              "class_names": shared.class_names, "frontend": shared.frontend})  # fmt: skip
        done = writer.completed_units()
        todo = [unit for unit in units if unit.name not in done]
        total = sum(unit.size for unit in units)
        with progress_bar("projections", progress) as bar:
            task = bar.add_task("projecting", total=total, completed=total - sum(u.size for u in todo))
            results = runner.run(shared, todo, lambda k: bar.advance(task, k))
            with contextlib.closing(results):  # stops an executor's outstanding work if writing fails
                for unit, (records, arrays, clean) in results:
                    if clean is not None:
                        _write_clean(writer, shared, unit, clean)
                    writer.write_unit(unit.name, records, arrays)
        writer.finish("complete")
    except BaseException:
        writer.finish("interrupted")
        raise


def _write_clean(writer: RunWriter, shared: _Units, unit: Unit, clean: np.ndarray) -> None:
    """The clean model inputs of a unit's kept instances (with their targets, for tensor targets)."""
    mine = np.isin(unit.ids, shared.kept)
    targets = None if shared.classifier else shared.labels[torch.as_tensor(unit.ids[mine])].numpy()
    writer.write_clean(unit.iblock, clean[mine], unit.ids[mine], targets)


def model_inputs(
    grid: Grid,
    frontend: Callable | None,
    x: torch.Tensor,
    ids,
    seed: int,
    point: int | None = None,
    values: dict[str, float] | None = None,
    draws: dict[str, float] | None = None,
) -> torch.Tensor:
    """What the model sees of raw inputs ``x`` (instances ``ids``) under grid point ``point``, or under any
    parameter ``values`` (columns left out at identity; off-grid values too; random draws seeded by ``draws``
    when given, see :meth:`~proactiv.transforms.Grid.apply_values`), or clean when neither is given: raw-domain
    transforms, the frontend, then feature-domain transforms — the sweep's own path, with its seeds."""
    ids = [int(i) for i in ids]
    with torch.no_grad():
        if point is None and values is None:
            return frontend(x) if frontend is not None else x
        apply = (
            (lambda z, stage: grid.apply(z, ids, int(point), seed, stage))
            if point is not None
            else (lambda z, stage: grid.apply_values(z, ids, values, seed, stage, draws))
        )
        xt = apply(x, "input")
        xt = apply(frontend(xt) if frontend is not None else xt, "feature")
    if not torch.isfinite(xt).all():
        where = grid[int(point)].values if point is not None else values
        raise ValueError(f"grid point {where}: the transformed inputs contain NaN/Inf")
    return xt


def run_scale(inputs: torch.Tensor, frontend: Callable | None, sample: int = 256) -> float | None:
    """The typical scale of a run's clean model inputs (the median of their own scales, on up to ``sample``
    instances spread evenly over them): what the steps of a constant xT are sized by. None when every one is
    constant."""
    rows = torch.as_tensor(
        np.unique(np.linspace(0, len(inputs) - 1, min(sample, len(inputs))).round()).astype(int)
    )
    with torch.no_grad():
        x = inputs[rows]
        own = own_scales(frontend(x) if frontend is not None else x)
    return float(own[own > 0].median()) if (own > 0).any() else None


def _schema(data: TaskData, projector: Projector, output: dict) -> RunSchema:
    """The run's schema from what :func:`sweep` was given (see :func:`proactiv.schema.input_spec` for the
    default input kind) and what the model returns (``output``, see :func:`proactiv.outputs.output_of`)."""
    inputs, labels, metadata, frontend, pixel_range = (
        data.inputs, data.labels, data.metadata, data.frontend, data.pixel_range
    )  # fmt: skip
    target = OUTPUT_KINDS[output["kind"]].target
    classifier = target == "label"
    with torch.no_grad():
        shape = tuple(frontend(inputs[:1]).shape[1:]) if frontend is not None else tuple(inputs.shape[1:])
    rebuild = frontend_config(frontend)
    sample_rate = data.sample_rate
    if sample_rate is None and rebuild is not None:  # a frontend that knows the audio rate it expects
        sample_rate = rebuild["config"].get("sample_rate")
    spec = input_spec(
        data.input_kind,
        shape,
        sample_rate=sample_rate,
        value_range=(0.0, float(pixel_range)) if pixel_range is not None else None,
        frontend=frontend is not None,
    )
    counts = None if metadata is None else {str(c): int(metadata[c].nunique()) for c in metadata.columns}
    images = pixel_range is not None and inputs.ndim == 4
    has_cutoff = projector.cutoff is not None
    decided = classifier or output["kind"] == "multilabel_logits"  # records are right or wrong by a rule
    return RunSchema(
        target=target,
        input=spec,
        outcome="accuracy" if decided else "within_cutoff" if has_cutoff else None,
        desired=desired_output(target, projector.loss),
        cutoff=float(projector.cutoff) if has_cutoff else None,
        frontend=rebuild,
        group_column=group_column(classifier, counts),
        metrics=expected_metrics(classifier, images, images and not classifier and labels.dim() == 4),
        model=data.model_spec if data.model_spec is not None else {"source": "run"},
        output=output,
    )


def _groups(labels, metadata, schema: RunSchema) -> np.ndarray:
    """Each instance's class, by the schema's group column (labels, a metadata column, or one group)."""
    if schema.group_column == "label_name":
        return labels.numpy()
    if schema.group_column is not None:
        name = schema.group_column.removeprefix("meta.")
        if metadata is None or name not in metadata.columns:
            raise ValueError(
                f"schema.group_column={schema.group_column!r}: no metadata column {name!r} to group by"
            )
        return metadata[name].astype(str).to_numpy()
    return np.zeros(labels.shape[0], dtype=np.int64)


def _kept_instances(groups: np.ndarray, keep: str, per_class: int) -> np.ndarray:
    """Instances whose arrays are kept: all, none, or the first ``per_class`` of every class."""
    if keep == "all":
        return np.arange(len(groups))
    if keep == "none" or len(groups) == 0:
        return np.arange(0)
    return np.sort(np.concatenate([np.nonzero(groups == g)[0][:per_class] for g in np.unique(groups)]))


def _repeat(t: torch.Tensor, k: int) -> torch.Tensor:
    """``t`` stacked ``k`` times along the first axis (one copy per grid point of a unit)."""
    return t.repeat(k, *([1] * (t.dim() - 1)))


@dataclass
class _Units:
    """What every unit of a sweep shares; :meth:`run` transforms, projects, measures and records one unit."""

    model: nn.Module
    projector: Projector
    grid: Grid
    frontend: Callable | None
    inputs: torch.Tensor
    labels: torch.Tensor
    metadata: pd.DataFrame | None
    class_names: Sequence[str] | None
    seed: int
    kept: np.ndarray
    pixel_range: float | None = None
    #: the step scale of constant inputs (see :meth:`Projector.project`): :func:`run_scale`
    scale: float | None = None
    #: outputs are multi-label logits: records are correct when every label is decided right
    multilabel: bool = False

    @property
    def classifier(self) -> bool:
        return not self.labels.is_floating_point()

    def transform(
        self, x: torch.Tensor, ids: np.ndarray, points: np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The clean model inputs and the transformed ones of every grid point, stacked point by point."""
        with torch.no_grad():
            clean = self.frontend(x) if self.frontend is not None else x
            batches = []
            for p in points:
                xt = self.grid.apply(x, ids.tolist(), int(p), self.seed, "input")
                if self.frontend is not None:
                    xt = self.frontend(xt)
                xt = self.grid.apply(xt, ids.tolist(), int(p), self.seed, "feature")
                if not torch.isfinite(xt).all():
                    raise ValueError(
                        f"grid point {int(p)} {self.grid[int(p)].values}: the transformed inputs contain NaN/Inf"
                    )
                batches.append(xt)
        return clean, torch.cat(batches)

    def measure(self, clean, xt, result: ProjectionResult, labels, targets) -> dict[str, np.ndarray]:
        """The difference metrics of each projection (:func:`proactiv.metrics.differences`)."""
        k = xt.shape[0] // clean.shape[0]
        out_clean = _repeat(self.projector.predict(clean), k)
        return differences(
            _repeat(clean, k),
            xt,
            result.inputs,
            out_clean,
            result.outputs_before,
            result.outputs_after,
            result.loss_before,
            result.loss_after,
            labels if self.classifier else None,
            targets=targets,
            cutoff=self.projector.cutoff,
            pixel_range=self.pixel_range,
            multilabel=self.multilabel,
        )

    def record(self, ids, points, labels, metrics, result: ProjectionResult) -> pd.DataFrame:
        """One row per (instance, grid point): ids, labels, grid values, metadata, metrics, steps, converged,
        status (why its projection ended: :data:`proactiv.schema.STATUSES`)."""
        inst, point = np.tile(ids, len(points)), np.repeat(points, len(ids))
        frame = {"instance": inst.astype(np.int64)}
        if self.classifier:
            frame["label"] = labels.numpy().astype(np.int64)
            names = self.class_names or [str(c) for c in range(int(labels.max()) + 1)]
            frame["label_name"] = np.asarray(names, dtype=object)[frame["label"]]
        else:
            frame["label"] = np.full(len(inst), -1, dtype=np.int64)
            frame["label_name"] = np.full(len(inst), "", dtype=object)
        frame["point"] = point.astype(np.int64)
        values = np.asarray(
            [[self.grid[int(p)].values[c] for c in self.grid.columns] for p in points], dtype=np.float64
        )
        for j, col in enumerate(self.grid.columns):
            frame[col] = np.repeat(values[:, j], len(ids))
        if self.metadata is not None:
            for col in self.metadata.columns:
                frame[f"meta.{col}"] = self.metadata[col].to_numpy()[inst]
        frame.update(metrics)
        frame["steps"] = result.steps.numpy()
        frame["converged"] = result.converged.numpy()
        frame["status"] = result.statuses
        return pd.DataFrame(frame)

    def arrays(self, ids, points, xt, result: ProjectionResult) -> dict[str, np.ndarray] | None:
        """xT and x̂T of the kept instances (and f(xT), f(x̂T) for tensor targets), or None."""
        inst, point = np.tile(ids, len(points)), np.repeat(points, len(ids))
        keep = np.isin(inst, self.kept)
        if not keep.any():
            return None
        arrays = {
            "instance": inst[keep],
            "point": point[keep],
            "x_t": xt.numpy()[keep],
            "x_proj": result.inputs.numpy()[keep],
        }
        if not self.classifier:  # what the model made of them: the views show f(xT) next to f(x̂T)
            arrays["y_t"] = result.outputs_before.numpy()[keep]
            arrays["y_proj"] = result.outputs_after.numpy()[keep]
        return arrays

    def run(self, ids: np.ndarray, points: np.ndarray, advance: Callable[[int], None]):
        """Transform, project, measure and record one unit: (records, arrays or None, clean inputs or None)."""
        clean, xt = self.transform(self.inputs[torch.as_tensor(ids)], ids, points)
        labels = _repeat(self.labels[torch.as_tensor(ids)], len(points))
        targets = _repeat(clean, len(points)) if self.projector.loss == "own_prediction" else labels
        result = self.projector.project(xt, targets, on_done=advance, scale=self.scale)
        metrics = self.measure(clean, xt, result, labels, targets)
        records = self.record(ids, points, labels, metrics, result)
        kept_clean = clean.numpy() if np.isin(ids, self.kept).any() else None
        return records, self.arrays(ids, points, xt, result), kept_clean


def sweep_config(
    cfg,
    out: str | os.PathLike,
    device: str = "auto",
    resume: bool = False,
    progress: bool = True,
    executor: str | Executor = "local",
    address: str | None = None,
) -> Run:
    """Run the sweep a validated :class:`~proactiv.config.SweepConfig` describes (what ``proactiv sweep`` does),
    computed by ``executor`` (``"local"`` or ``"ray"``, on the Ray cluster at ``address``; there ``device`` says
    whether tasks ask for GPUs and the driver keeps the CPU): the config's sections are :func:`sweep`'s options,
    its task is the data, and the run records the task, model and data sections it can be rebuilt from."""
    execution = ExecutionSpec(executor=executor, address=address, device=device, progress=progress)
    task = load_task(cfg)
    record = cfg.model_dump(mode="json", exclude={"grid", "projection", "arrays", "seed", "units"})
    rebuild = cfg.model_dump(mode="json", include={"task", "domain", "model", "data"})
    data = replace(
        task,
        config={**record, "task_description": task.description},
        model_spec={"source": "config", "config": rebuild},
    )
    return sweep(task.model, data, cfg.build_grid(), out, projection=cfg.projection, arrays=cfg.arrays,
                 units=cfg.units, execution=execution, seed=cfg.seed, resume=resume)  # fmt: skip

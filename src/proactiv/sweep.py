"""Sweep: instances × grid points → projections → difference metrics → run store.

The work is cut into units (a block of grid points × a block of instances). Each unit is transformed,
projected in one queue (its grid points share the working batch) and written as its own shard, so a killed
sweep resumes at the first unit without a completion marker and gives the same records as an uninterrupted one.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from proactiv import __version__
from proactiv.fingerprint import data_hash, model_hash
from proactiv.metrics import differences
from proactiv.optimize import Projector
from proactiv.progress import progress_bar
from proactiv.store import Run, RunWriter, open_run, unit_name
from proactiv.transforms import Grid

KEEP_ARRAYS = ("none", "sample", "all")
#: metadata columns that name an instance's class in runs without class labels (image-to-image), first found
#: wins: arrays are kept per value of it, and the analysis groups per-class views by it
GROUP_META = ("class", "label", "digit", "letter", "category")


def sweep(
    model: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    grid: Grid,
    out: str | os.PathLike,
    projector: Projector | None = None,
    class_names: Sequence[str] | None = None,
    metadata: pd.DataFrame | None = None,
    seed: int = 0,
    resume: bool = False,
    frontend: Callable[[torch.Tensor], torch.Tensor] | None = None,
    keep_arrays: str = "sample",
    arrays_per_class: int = 2,
    instances_per_unit: int = 64,
    projections_per_unit: int = 1024,
    progress: bool = True,
    config: dict | None = None,
    pixel_range: float | None = None,
) -> Run:
    """Project every instance at every grid point and store the records in the run directory ``out``.

    Parameters
    ----------
    model : the frozen, differentiable model (on model inputs: features when ``frontend`` is given).
    inputs : clean raw inputs (N, ...), float.
    labels : class labels (N,) for classifiers, or target tensors (N, *out) for image-to-image / regression.
    grid : the transforms to sweep; raw-domain transforms act on ``inputs``, feature-domain ones after
        ``frontend``.
    projector : projection settings (default: ``Projector(model)``).
    class_names, metadata : names for labels; a DataFrame with one row per instance (stored as ``meta.*``).
    seed : run seed; every random draw is seeded by (seed, instance, grid point).
    resume : continue an existing run (refused if its config, model or data differ).
    frontend : maps raw inputs to model inputs (e.g. waveform → log-mel); projection acts on its output.
    keep_arrays : ``"none"``, ``"sample"`` (all points of the first ``arrays_per_class`` instances of each
        class) or ``"all"``.
    config : extra settings to record in run.json (e.g. the YAML task and model source).
    pixel_range : for images (N, C, H, W), the span of valid pixel values (1.0 for [0, 1]): records then get
        PSNR and SSIM columns (see :mod:`proactiv.metrics`).
    """
    projector = projector or Projector(model)
    inputs, labels, metadata = _check(inputs, labels, metadata, class_names, keep_arrays)
    if pixel_range is not None and not (math.isfinite(pixel_range) and pixel_range > 0 and inputs.dim() == 4):
        raise ValueError(
            f"pixel_range={pixel_range!r}: PSNR/SSIM need a finite span > 0 and images (N, C, H, W); "
            f"the inputs have shape {tuple(inputs.shape)}"
        )
    n = inputs.shape[0]
    classifier = not labels.is_floating_point()
    instances_per_unit = max(1, min(int(instances_per_unit), n))
    points_per_unit = max(1, math.ceil(int(projections_per_unit) / instances_per_unit))
    header = {
        "config": {
            **(config or {}),
            "grid": grid.spec(),
            "projection": projector.settings(),
            "seed": int(seed),
            "n_instances": n,
            "class_names": list(class_names) if class_names is not None else None,
            "frontend": repr(frontend) if frontend is not None else None,
            "arrays": {"keep": keep_arrays, "per_class": int(arrays_per_class)},
            "units": {"instances": instances_per_unit, "points": points_per_unit},
            "pixel_range": pixel_range,
        },
        "fingerprints": {
            "model": model_hash(model),
            "data": data_hash(inputs, labels, metadata),
            "package_version": __version__,
        },
    }
    writer = RunWriter(out, header, resume)
    try:
        kept = _kept_instances(_groups(labels, metadata, classifier), keep_arrays, arrays_per_class)
        iblocks = [np.arange(s, min(n, s + instances_per_unit)) for s in range(0, n, instances_per_unit)]
        gblocks = [
            np.arange(s, min(len(grid), s + points_per_unit)) for s in range(0, len(grid), points_per_unit)
        ]
        units = _Units(
            model, projector, grid, frontend, inputs, labels, metadata, class_names, seed, kept, pixel_range
        )
        done = writer.completed_units()
        todo = [
            (g, i) for g in range(len(gblocks)) for i in range(len(iblocks)) if unit_name(g, i) not in done
        ]
        total = n * len(grid)
        finished = total - sum(len(gblocks[g]) * len(iblocks[i]) for g, i in todo)
        with progress_bar("projections", progress) as bar:
            task = bar.add_task("projecting", total=total, completed=finished)
            for g, i in todo:
                ids, points = iblocks[i], gblocks[g]
                records, arrays, clean = units.run(ids, points, lambda k: bar.advance(task, k))
                if clean is not None:
                    mine = np.isin(ids, kept)
                    targets = None if classifier else labels[torch.as_tensor(ids[mine])].numpy()
                    writer.write_clean(i, clean[mine], ids[mine], targets)
                writer.write_unit(unit_name(g, i), records, arrays)
        writer.finish("complete")
    except BaseException:
        writer.finish("interrupted")
        raise
    return open_run(out)


def _check(inputs, labels, metadata, class_names, keep_arrays):
    if not isinstance(inputs, torch.Tensor) or not inputs.is_floating_point():
        kind = inputs.dtype if isinstance(inputs, torch.Tensor) else type(inputs).__name__
        raise TypeError(f"inputs: expected a floating-point torch.Tensor (N, ...), got {kind}")
    labels = torch.as_tensor(labels)
    if labels.shape[0] != inputs.shape[0]:
        raise ValueError(
            f"labels: {labels.shape[0]} labels for {inputs.shape[0]} inputs; expected one per input"
        )
    if not torch.isfinite(inputs).all():
        raise ValueError("inputs: the clean inputs contain NaN or Inf")
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
    if keep_arrays not in KEEP_ARRAYS:
        raise ValueError(f"keep_arrays={keep_arrays!r}: expected one of {KEEP_ARRAYS}")
    return inputs.detach().cpu(), labels.cpu(), metadata


def _groups(labels, metadata, classifier) -> np.ndarray:
    """Each instance's class: its label, else the first :data:`GROUP_META` metadata column, else one group."""
    if classifier:
        return labels.numpy()
    for col in GROUP_META:
        if metadata is not None and col in metadata.columns:
            return metadata[col].astype(str).to_numpy()
    return np.zeros(labels.shape[0], dtype=np.int64)


def _kept_instances(groups: np.ndarray, keep: str, per_class: int) -> np.ndarray:
    """Instances whose arrays are kept: all, none, or the first ``per_class`` of every class."""
    if keep == "all":
        return np.arange(len(groups))
    if keep == "none" or len(groups) == 0:
        return np.arange(0)
    return np.sort(np.concatenate([np.nonzero(groups == g)[0][:per_class] for g in np.unique(groups)]))


@dataclass
class _Units:
    """What every unit of a sweep shares; :meth:`run` transforms, projects and measures one unit."""

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

    def run(self, ids: np.ndarray, points: np.ndarray, advance: Callable[[int], None]):
        """Transform, project and measure one unit: (records DataFrame, arrays dict or None, clean or None)."""
        classifier = not self.labels.is_floating_point()
        x = self.inputs[torch.as_tensor(ids)]
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
        xt = torch.cat(batches)
        k = len(points)
        lab = self.labels[torch.as_tensor(ids)]
        clean_rep = clean.repeat(k, *([1] * (clean.dim() - 1)))
        lab_rep = lab.repeat(k, *([1] * (lab.dim() - 1)))
        targets = clean_rep if self.projector.loss == "own_prediction" else lab_rep
        result = self.projector.project(xt, targets, on_done=advance)
        out_clean = self.projector.predict(clean).repeat(k, *([1] * (result.outputs_before.dim() - 1)))
        cols = differences(
            clean_rep,
            xt,
            result.inputs,
            out_clean,
            result.outputs_before,
            result.outputs_after,
            result.loss_before,
            result.loss_after,
            lab_rep if classifier else None,
            targets=targets,
            cutoff=self.projector.cutoff,
            pixel_range=self.pixel_range,
        )
        inst = np.tile(ids, k)
        point = np.repeat(points, len(ids))
        frame = {"instance": inst.astype(np.int64)}
        if classifier:
            frame["label"] = lab_rep.numpy().astype(np.int64)
            names = (
                self.class_names
                if self.class_names is not None
                else [str(c) for c in range(int(lab.max()) + 1)]
            )
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
        frame.update(cols)
        frame["steps"] = result.steps.numpy()
        frame["converged"] = result.converged.numpy()
        records = pd.DataFrame(frame)
        keep = np.isin(inst, self.kept)
        arrays = None
        if keep.any():
            arrays = {
                "instance": inst[keep],
                "point": point[keep],
                "x_t": xt.numpy()[keep],
                "x_proj": result.inputs.numpy()[keep],
            }
            if not classifier:  # what the model made of them: the views show f(xT) next to f(x̂T)
                arrays["y_t"] = result.outputs_before.numpy()[keep]
                arrays["y_proj"] = result.outputs_after.numpy()[keep]
        return records, arrays, clean.numpy() if np.isin(ids, self.kept).any() else None


def sweep_config(
    cfg, out: str | os.PathLike, device: str = "auto", resume: bool = False, progress: bool = True
) -> Run:
    """Run the sweep a validated :class:`~proactiv.config.SweepConfig` describes (what ``proactiv sweep`` does)."""
    from proactiv.tasks import load_task

    task = load_task(cfg)
    settings = {**task.projection_defaults, **cfg.projection.given()}
    projector = Projector(task.model, device=device, **settings)
    record = cfg.model_dump(mode="json", exclude={"grid", "projection", "arrays", "seed", "units"})
    return sweep(
        task.model,
        task.inputs,
        task.labels,
        cfg.build_grid(),
        out,
        projector=projector,
        class_names=task.class_names,
        metadata=task.metadata,
        seed=cfg.seed,
        resume=resume,
        frontend=task.frontend,
        keep_arrays=cfg.arrays.keep,
        arrays_per_class=cfg.arrays.per_class,
        instances_per_unit=cfg.units.instances,
        projections_per_unit=cfg.units.projections,
        progress=progress,
        config={**record, "task_description": task.description},
        pixel_range=task.pixel_range,
    )

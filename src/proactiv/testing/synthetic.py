"""Synthetic runs with planted answers: for tests (yours and ours), benchmarks, and trying the analyses, the
report and the dashboard without a model (``proactiv.testing.write_synthetic_run("runs/try")``).

:func:`write_synthetic_run` writes a run directory through :class:`~proactiv.store.RunWriter`, as a sweep
would, with records whose outcome follows known rules:

- accuracy collapses at every SNR below ``fail_below_snr`` (only 20 % of those records stay correct);
- every record of the voice ``bad_voice`` fails, whatever the transform;
- kept arrays: x̂T − xT is small noise, plus a constant ``bias_shift`` in rows ``bias_rows`` of every input
  of class ``bias_class`` (a band of a spectrogram, a strip of an image, a stretch of a 1-D signal).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from proactiv.schema import RunSchema, input_spec, metric_units
from proactiv.store import Run, RunWriter, open_run, unit_name
from proactiv.transforms import Grid, get

#: the metric columns of a synthetic run's records
SYNTHETIC_METRICS = (
    "d_x",
    "d_x_l2",
    "d_x_mse",
    "d_x_clean",
    "d_t",
    "d_y",
    "loss_t",
    "loss_proj",
    "loss_change",
    "steps",
)


def synthetic_grid(
    snr_db: Sequence[float] = (math.inf, 20, 10, 5, 0, -5), gain_db: Sequence[float] = (0, -6, 6)
) -> Grid:
    return Grid([get("noise", snr_db=list(snr_db)), get("gain", gain_db=list(gain_db))])


#: The 50-point grid and 12 KWS classes the 100 k-record benchmarks share (2000 instances × 50 points).
BENCH_CLASSES = (
    "yes",
    "no",
    "up",
    "down",
    "left",
    "right",
    "on",
    "off",
    "stop",
    "go",
    "_unknown_",
    "_silence_",
)


def bench_grid() -> Grid:
    """SNR (10 values) × gain (5 values): the grid of the analysis and dashboard benchmarks."""
    return synthetic_grid(snr_db=[math.inf, 30, 20, 15, 10, 5, 0, -5, -10, -20], gain_db=[0, -12, -6, 6, 12])


def write_synthetic_run(
    path: str | os.PathLike,
    n_instances: int = 120,
    classes: Sequence[str] = ("yes", "no", "up", "down"),
    grid: Grid | None = None,
    shape: tuple[int, ...] = (40, 101),
    voices: Sequence[str] = ("v0", "v1", "v2", "v3"),
    fail_below_snr: float = 2.5,
    bad_voice: str | None = "v3",
    bias_class: str | None = "yes",
    bias_rows: tuple[int, int] = (10, 14),
    bias_shift: float = 1.0,
    keep_per_class: int = 2,
    instances_per_unit: int = 64,
    classifier: bool = True,
    seed: int = 0,
    input_kind: str | None = None,
) -> Run:
    """Write a run whose breakpoint, worst slice and class bias are known (see the module docstring).

    ``input_kind`` says what the inputs are (default: a spectrogram for 2-D ``shape``, a vector for 1-D)."""
    grid = grid or synthetic_grid()
    rng = np.random.default_rng(seed)
    labels = np.arange(n_instances) % len(classes)
    meta = pd.DataFrame(
        {
            "voice": np.asarray(voices)[(np.arange(n_instances) // len(classes)) % len(voices)],
            "gender": np.where(np.arange(n_instances) % 3 == 0, "female", "male"),
            "rate": rng.integers(120, 200, n_instances),
            "path": [f"clips/{i:05d}.wav" for i in range(n_instances)],
        }
    )
    kept = np.concatenate([np.nonzero(labels == c)[0][:keep_per_class] for c in range(len(classes))])
    spectrogram = len(shape) == 2
    header = {
        "config": {
            "task": "synthetic",
            "grid": grid.spec(),
            "n_instances": n_instances,
            "class_names": list(classes) if classifier else None,
            "arrays": {"keep": "sample", "per_class": keep_per_class},
            "projection": {
                "loss": "cross_entropy" if classifier else "mse",
                "cutoff": 0.05,
                "max_steps": 200,
            },
        },
        "fingerprints": {"model": "synthetic", "data": f"synthetic-{seed}"},
        "schema": RunSchema(
            target="label" if classifier else "tensor",
            input=input_spec(
                input_kind or ("spectrogram" if spectrogram else "vector"),
                shape,
                sample_rate=16000 if input_kind == "waveform" else None,
            ),
            outcome="accuracy" if classifier else None,
            cutoff=0.05,
            group_column="label_name" if classifier else None,
            metrics=metric_units(SYNTHETIC_METRICS),
        ).to_dict(),
    }
    writer = RunWriter(path, header, resume=False)
    values = pd.DataFrame([p.values for p in grid])
    snr_col = next(c for c in grid.columns if c.endswith("snr_db"))
    for block, start in enumerate(range(0, n_instances, instances_per_unit)):
        ids = np.arange(start, min(n_instances, start + instances_per_unit))
        inst, point = np.tile(ids, len(grid)), np.repeat(np.arange(len(grid)), len(ids))
        snr = values[snr_col].to_numpy()[point]
        correct = np.ones(len(inst), dtype=bool)
        low = snr < fail_below_snr
        correct[low] = rng.random(int(low.sum())) < 0.2
        if bad_voice is not None:
            correct &= meta.voice.to_numpy()[inst] != bad_voice
        frame = {"instance": inst, "label": labels[inst] if classifier else np.full(len(inst), -1)}
        frame["label_name"] = (
            np.asarray(classes, dtype=object)[labels[inst]]
            if classifier
            else np.full(len(inst), "", dtype=object)
        )
        frame["point"] = point
        for col in grid.columns:
            frame[col] = values[col].to_numpy()[point]
        for col in meta.columns:
            frame[f"meta.{col}"] = meta[col].to_numpy()[inst]
        loss_t = np.where(correct, 0.1, 3.0) + rng.random(len(inst)) * 0.1
        d_x = np.where(correct, 0.01, 0.05) + rng.random(len(inst)) * 0.01
        frame.update(d_x=d_x, d_x_l2=d_x * math.sqrt(math.prod(shape)), d_x_mse=d_x**2, d_x_clean=d_x * 1.5,
                     d_t=np.where(np.isinf(snr), 0.0, 0.1), d_y=np.where(correct, 0.0, 2.0), loss_t=loss_t,
                     loss_proj=np.full(len(inst), 0.04), loss_change=loss_t - 0.04)  # fmt: skip
        if classifier:
            wrong = (labels[inst] + 1) % len(classes)
            frame.update(pred_clean=labels[inst], pred_t=np.where(correct, labels[inst], wrong), pred_proj=labels[inst],
                         correct_clean=np.ones(len(inst), dtype=bool), correct_t=correct,
                         correct_proj=np.ones(len(inst), dtype=bool), flipped=~correct)  # fmt: skip
        frame.update(steps=np.where(correct, 0, 40), converged=np.ones(len(inst), dtype=bool),
                     status=np.full(len(inst), "converged", dtype=object))  # fmt: skip
        keep = np.isin(inst, kept)
        arrays = None
        if keep.any():
            x_t = rng.normal(0, 1, (int(keep.sum()), *shape)).astype(np.float32)
            diff = rng.normal(0, 0.05, x_t.shape).astype(np.float32)
            if bias_class in classes and classifier:
                hit = labels[inst[keep]] == list(classes).index(bias_class)
                band = slice(*bias_rows)
                diff[(hit, ..., band, slice(None)) if len(shape) > 1 else (hit, band)] += bias_shift
            arrays = {"instance": inst[keep], "point": point[keep], "x_t": x_t, "x_proj": x_t + diff}
            here = ids[np.isin(ids, kept)]
            writer.write_clean(block, rng.normal(0, 1, (len(here), *shape)).astype(np.float32), here)
        writer.write_unit(unit_name(0, block), pd.DataFrame(frame), arrays)
    writer.finish("complete")
    return open_run(path)


def sweep_image_run(
    path: str | os.PathLike, image_to_image: bool = True, n_instances: int = 12, size: int = 12, seed: int = 0
) -> Run:
    """A real (tiny, seconds) sweep of an image model, for trying and testing image views: random
    1×``size``×``size`` images in [0, 1] (``pixel_range`` 1.0) over rotate [0, 30°] × blur [0, 1 px], every
    array kept.

    ``image_to_image``: an identity "denoiser" (a 3×3 convolution with centre 1) whose target is the clean
    image, so at the identity point input and output equal the target (PSNR ∞, within the loss cutoff) and
    every other point is outside the cutoff (a breakpoint at 30° and at 1 px); ``meta.digit`` (instance mod
    3) groups the instances. Else a fixed random 3-class CNN, labelled with its own clean predictions.
    """
    import torch
    from torch import nn

    from proactiv.config import ArraysSpec, ExecutionSpec
    from proactiv.optimize import Projector
    from proactiv.sweep import sweep
    from proactiv.task_data import TaskData

    torch.manual_seed(seed)
    x = torch.rand(n_instances, 1, size, size)
    grid = Grid([get("rotate", degrees=[0, 30]), get("blur", sigma=[0, 1])])
    options = dict(arrays=ArraysSpec(keep="all"), execution=ExecutionSpec(progress=False), seed=seed)
    if image_to_image:
        model = nn.Conv2d(1, 1, 3, padding=1, bias=False)
        with torch.no_grad():
            model.weight.zero_()
            model.weight[0, 0, 1, 1] = 1.0
        projector = Projector(model, loss="mse", cutoff=1e-3, max_steps=300, lr=0.05)
        meta = pd.DataFrame({"digit": np.arange(n_instances) % 3})
        data = TaskData(x, x.clone(), metadata=meta, pixel_range=1.0)
        return sweep(model, data, grid, path, projection=projector, **options)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(4 * size * size, 3)
    )
    with torch.no_grad():
        labels = model(x).argmax(1)
    projector = Projector(model, cutoff=0.3, max_steps=200, lr=0.05)
    data = TaskData(x, labels, class_names=["a", "b", "c"], pixel_range=1.0)
    return sweep(model, data, grid, path, projection=projector, **options)


def planted_cue(
    shape: tuple[int, int] = (16, 16), region=(slice(5, 8), slice(9, 12)), n: int = 32, seed: int = 0
):
    """A model whose only evidence for class 1 is the mean of ``region`` of a (1, *shape) input — a small patch
    of an image, or a few rows (a narrow band) of a spectrogram-like map — while class 0 reads the whole input
    weakly; with ``n`` inputs it calls class 0 and their desired label 1. A projection engine that shows what
    the model wants to see puts the bias map's weight on ``region`` (see :func:`cue_shares`)."""
    import torch
    from torch import nn

    class PlantedCue(nn.Module):
        def forward(self, x):
            cue = x[(slice(None), 0, *region)].flatten(1).mean(1)
            return torch.stack([2.0 * x.flatten(1).mean(1), 8.0 * (cue - 0.5)], 1)

    gen = torch.Generator().manual_seed(seed)
    return PlantedCue(), torch.rand(n, 1, *shape, generator=gen) * 0.4, torch.ones(n, dtype=torch.long)


def cue_shares(change, region) -> tuple[float, float]:
    """In the bias map of ``change`` (x̂T − xT, (N, 1, H, W)), the share of its largest |elements| (as many as the
    cue has) that lie in ``region`` (how high the cue ranks) and the share of its |mass| there (how much the
    cue stands out: about the region's share of the area when the map is uniform)."""
    import torch

    bias = change.mean(0)[0].abs()
    inside = torch.zeros_like(bias, dtype=torch.bool)
    inside[region] = True
    top = bias.flatten().topk(int(inside.sum())).indices
    return float(inside.flatten()[top].float().mean()), float(bias[inside].sum() / bias.sum())


__all__ = [
    "BENCH_CLASSES",
    "bench_grid",
    "cue_shares",
    "planted_cue",
    "sweep_image_run",
    "synthetic_grid",
    "write_synthetic_run",
]

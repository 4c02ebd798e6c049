"""The faithfulness step on synthetic runs shaped like the demos: a KWS-sized spectrogram CNN (40 mel bands × 101
frames, 12 classes) and a digits-sized image CNN (1 × 28 × 28, 10 classes), both seeded random networks labelled
with their own predictions (so every record's explained class is the one the model sees). Seconds per method for
``--records`` records on x (each: infidelity, max-sensitivity, deletion against random, the randomisation
cascade), then the step with its default methods, and its figures (of random networks: for the time, not the
verdicts). ``--run`` times a real run instead.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_faithfulness.py [--records 32] [--threads 1] [--run RUN]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from proactiv.analysis.faithfulness import DEFAULT_METHODS, faithfulness_summary, faithfulness_table
from proactiv.analysis.runview import open_view
from proactiv.config import ArraysSpec, ExecutionSpec
from proactiv.optimize import Projector
from proactiv.store import open_run
from proactiv.sweep import sweep
from proactiv.task_data import TaskData
from proactiv.transforms import Grid, get

FIGURES = [
    "infidelity_rel",
    "max_sensitivity",
    "deletion_auc",
    "random_auc",
    "deletion_ratio",
    "randomised_spearman",
]


def spectrogram_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Unflatten(1, (1, 40)), nn.Conv2d(1, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 12),
    ).eval()  # fmt: skip


def image_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16 * 7 * 7, 10),
    ).eval()  # fmt: skip


def synthetic_run(kind: str, folder: Path, n: int):
    gen = torch.Generator().manual_seed(0)
    if kind == "spectrogram":
        model, x, extra = (
            spectrogram_cnn(),
            torch.randn(n, 40, 101, generator=gen) - 4,
            {"input_kind": "spectrogram"},
        )
    else:
        model, x, extra = image_cnn(), torch.rand(n, 1, 28, 28, generator=gen), {"pixel_range": 1.0}
    with torch.no_grad():
        labels = model(x).argmax(1)
    grid = Grid([get("gain", gain_db=[0.0, -6.0])])
    return sweep(model, TaskData(x, labels, **extra), grid, folder / kind, projection=Projector(model, max_steps=5),
                 arrays=ArraysSpec(keep="all"), execution=ExecutionSpec(progress=False))  # fmt: skip


def bench(run, records: int) -> None:
    view = open_view(run)
    model = run.model(device="cpu")
    print(f"\n{run.path}: {run.schema.input.kind} {run.schema.input.shape}, {records} records on x, "
          f"{torch.get_num_threads()} thread(s)")  # fmt: skip
    for method in (*DEFAULT_METHODS, "occlusion"):
        began = time.perf_counter()
        table = faithfulness_table(view, methods=[method], max_records=records, model=model, device="cpu")
        took = time.perf_counter() - began
        print(f"  {method:>20}: {took:6.1f} s ({took / max(len(table), 1):.2f} s per record)")
    began = time.perf_counter()
    table = faithfulness_table(view, max_records=records, model=model, device="cpu")
    took = time.perf_counter() - began
    print(f"  the step's default methods ({', '.join(table.attrs['methods'])}): {took:.1f} s; "
          f"cascade {', '.join(table.attrs['randomised'])}")  # fmt: skip
    summary = faithfulness_summary(table).set_index("method")
    with pd.option_context("display.width", 200, "display.precision", 3):
        print(summary[[*FIGURES, "deletion", "randomisation"]].to_string())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--run", default=None, help="time this run instead of the synthetic ones")
    args = parser.parse_args()
    if args.records < 1 or args.threads < 1:
        parser.error("--records and --threads must be at least 1")
    torch.set_num_threads(args.threads)
    if args.run:
        bench(open_run(args.run), args.records)
        return
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("spectrogram", "image"):
            bench(synthetic_run(kind, Path(tmp), args.records), args.records)


if __name__ == "__main__":
    main()

"""CKA speed and memory on real runs: per layer, minibatch CKA between the model's activations on clean x and
on the regenerated xT (the ``cka`` step's :func:`~proactiv.analysis.cka.transform_cka`).

- the KWS demo run (``runs/kws-demo``: 36 clips × 54 grid points = 1944 xT, the DS-CNN's 10 layers), plus
  layer × layer CKA between the trained DS-CNN and the same architecture untrained on those 1944 inputs;
- the digits reference run (``runs/digits-reference``: 200 digits × 450 points, or ``--digits-points`` of them
  a seeded sample of the grid, the CNN's 3 layers).

Each case runs in its own process, so the peak memory printed (max RSS) is that case's alone; "all
activations" is what holding every layer's activations of every input at once would have taken instead.

    python benchmarks/bench_cka.py [--digits-points 450] [--batch-size 64] [--case kws|digits]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

import proactiv as pv  # noqa: E402
from proactiv.analysis.cka import (  # noqa: E402
    compare_models_cka,
    departure_sentence,
    model_layers,
    transform_cka,
)
from proactiv.sweep import model_inputs  # noqa: E402
from proactiv.transforms.grid import Grid  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RUNS = {"kws": ROOT / "runs" / "kws-demo", "digits": ROOT / "runs" / "digits-reference"}


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _spread(grid: Grid, points: int) -> list[int]:
    """A seeded sample of ``points`` grid point ids (all of them when ``points`` ≥ the grid's size)."""
    if points >= len(grid):
        return list(range(len(grid)))
    return sorted(np.random.default_rng(0).choice(len(grid), size=points, replace=False).tolist())


def _all_activations_mb(task, grid, seed, n_inputs: int) -> float:
    """Memory every layer's activations of ``n_inputs`` inputs would take at once (float32)."""
    from proactiv.analysis.cka import layer_activations

    x = model_inputs(grid, task.frontend, task.inputs[:4], range(4), seed)
    widths = sum(a.shape[1] for a in next(layer_activations(task.model, x, batch_size=4)).values())
    return 2 * n_inputs * widths * 4 / 2**20  # clean and transformed


def run_case(case: str, digits_points: int, batch_size: int) -> None:
    torch.set_num_threads(1)
    run = pv.open_run(RUNS[case])
    started = time.perf_counter()
    task = run.task()
    task.model.eval()
    loaded = time.perf_counter() - started
    grid, seed = run.grid, int(run.config["seed"])
    n = len(task.inputs)
    points = _spread(grid, digits_points) if case == "digits" else list(range(len(grid)))
    n_inputs = n * len(points)
    print(f"\n== {case}: {RUNS[case].name}, {n} instances × {len(points)} grid points = {n_inputs} xT; "
          f"layers {model_layers(task.model)}")  # fmt: skip
    print(f"  task rebuilt in {loaded:.1f} s; peak RSS so far {_peak_mb():.0f} MB")
    rss_before = _peak_mb()
    started = time.perf_counter()
    table = transform_cka(task, grid, seed, max_instances=n, batch_size=batch_size, points=points)
    seconds = time.perf_counter() - started
    print(f"  transform CKA: {seconds:.1f} s ({n_inputs / seconds:.0f} xT/s, batch {batch_size}); "
          f"peak RSS {_peak_mb():.0f} MB (was {rss_before:.0f} MB before); all activations at once would be "
          f"{_all_activations_mb(task, grid, seed, n_inputs):.0f} MB")  # fmt: skip
    wide = table.pivot_table(index=["layer_index", "layer"], columns=["column", "value"], values="cka")
    with pd.option_context("display.width", 250, "display.max_columns", 50, "display.precision", 3):
        print(wide.to_string())
    print("  " + departure_sentence(table))
    if case == "kws":
        compare_untrained(task, run.grid, seed, batch_size)


def compare_untrained(task, grid: Grid, seed: int, batch_size: int) -> None:
    """Layer × layer CKA between the trained DS-CNN and the same architecture untrained, on every xT."""
    from proactiv.tasks.kws.models import build_model

    torch.manual_seed(0)
    untrained = build_model("dscnn", len(task.class_names or [])).eval()
    ids = list(range(len(task.inputs)))
    x = torch.cat(
        [model_inputs(grid, task.frontend, task.inputs, ids, seed, point=p) for p in range(len(grid))]
    )
    started = time.perf_counter()
    inner = task.model.net if hasattr(task.model, "net") else task.model
    table = compare_models_cka(inner, untrained, x, batch_size=batch_size)
    seconds = time.perf_counter() - started
    print(
        f"\n  trained vs untrained DS-CNN, layer × layer on {len(x)} xT: {seconds:.1f} s; peak RSS {_peak_mb():.0f} MB"
    )
    diag = table[table.index_a == table.index_b]
    print("  same layer: " + ", ".join(f"{r.layer_a} {r.cka:.2f}" for r in diag.itertuples()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=tuple(RUNS))
    parser.add_argument("--digits-points", type=int, default=450)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    if args.case:
        run_case(args.case, args.digits_points, args.batch_size)
        return
    for case in RUNS:  # one process per case: each peak memory is its own
        cmd = [sys.executable, __file__, "--case", case, "--digits-points", str(args.digits_points),
               "--batch-size", str(args.batch_size)]  # fmt: skip
        subprocess.run(cmd, check=True)


if __name__ == "__main__":
    main()

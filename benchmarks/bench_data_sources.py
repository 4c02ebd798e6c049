"""Peak memory of a sweep over a dataset too large for memory, and its records against the in-memory sweep's.

Issue 31 asks for 20 000 synthesised 3×224×224 images (12 GB of float32) swept with a small model at a peak RSS
≤ 2 GB, with the records of the in-memory sweep. Each mode runs in its own process, so its peak RSS
(``ru_maxrss``) is its own:

- ``source``: ``pv.sweep(model, ImagesDataset(n), ...)`` — a map-style torch Dataset that makes image i from its
  index when asked, read a unit at a time;
- ``memory``: the same images stacked into one tensor first (needs about 12 GB at 20 000).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_data_sources.py --n 20000 --out /tmp/bench-sources
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_data_sources.py --n 2000 --out DIR   # a quick look

It prints one line per mode (wall time, peak RSS, records) and whether the records are equal.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset

SIZE, CLASSES = 224, 10
#: projection steps: the benchmark measures reading and memory, not the optimiser (no pixel range either, so no
#: SSIM, which costs more than a projection at this size)
STEPS = 3


class ImagesDataset(Dataset):
    """Image i, made from its index (a class's colour blob on noise), and its label i % 10."""

    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        g = torch.Generator().manual_seed(i)
        label = i % CLASSES
        x = torch.rand(3, SIZE, SIZE, generator=g) * 0.5
        x[label % 3, 32 * (label // 3) : 32 * (label // 3) + 64, 64:160] += 0.5
        return x, label


def small_model() -> nn.Module:
    """A few-thousand-parameter CNN (patches of 8, one conv, pooled); its weights are seeded, not trained."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, kernel_size=8, stride=8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(8, CLASSES),
    ).eval()  # fmt: skip


def sweep(mode: str, n: int, out: Path) -> dict:
    import proactiv as pv

    data = ImagesDataset(n)
    if mode == "memory":
        xs = torch.empty(n, 3, SIZE, SIZE)
        for i in range(n):
            xs[i] = data[i][0]
        data = pv.TaskData(inputs=xs, labels=torch.arange(n) % CLASSES)
    else:
        data = pv.sources.from_dataset(data)
    grid = pv.Grid([pv.transforms.get("brightness", delta=[0.3])])  # one point: 20 000 projections a mode
    start = time.perf_counter()
    run = pv.sweep(small_model(), data, grid, out, projection=pv.ProjectionSpec(max_steps=STEPS),
                   execution=pv.ExecutionSpec(progress=False))  # fmt: skip
    return {
        "mode": mode,
        "n": n,
        "seconds": round(time.perf_counter() - start, 1),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "records": len(run.records),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000, help="images (default 20000)")
    parser.add_argument("--out", type=Path, required=True, help="a folder for the runs (a mode's run is removed before it is swept)")
    parser.add_argument("--modes", nargs="+", default=["source", "memory"], choices=["source", "memory"])
    parser.add_argument("--mode", help=argparse.SUPPRESS)  # one sweep, in a process of its own
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(sweep(args.mode, args.n, args.out / args.mode)))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for mode in args.modes:
        shutil.rmtree(args.out / mode, ignore_errors=True)
        cmd = [sys.executable, __file__, "--mode", mode, "--n", str(args.n), "--out", str(args.out)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"{mode} sweep failed:\n{done.stderr[-3000:]}")
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        r = results[-1]
        print(f"{mode:>6}: {r['n']} images, {r['records']} records, {r['seconds']} s, peak RSS {r['peak_rss_gb']} GB")
    if all((args.out / m / "run.json").exists() for m in ("source", "memory")):  # this call's, or an earlier one's
        import pandas as pd

        import proactiv as pv

        order = ["instance", "point"]
        runs = [pv.open_run(args.out / m) for m in ("source", "memory")]
        a, b = (run.records.sort_values(order).reset_index(drop=True) for run in runs)
        try:
            pd.testing.assert_frame_equal(a, b)
            same = "equal"
        except AssertionError as err:
            same = f"DIFFERENT: {str(err).splitlines()[0]}"
        prints = " / ".join(run.header["fingerprints"]["data"] for run in runs)
        print(f"records of the source and memory runs: {same}; data fingerprints {prints}")


if __name__ == "__main__":
    main()

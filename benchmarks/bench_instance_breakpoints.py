"""Per-instance breakpoints: the adaptive search (coarse scan + bisection) against a dense scan of the same
lattice (values spaced by the resolution over the same range), on the KWS demo run (36 clips × SNR, speed,
pitch) and the digits CNN (100 instances × rotate, blur, image noise): model evaluations (forward passes of
one input), seconds, and how often the adaptive breakpoint is the dense scan's first flip ("agree") or within
one coarse step of it ("near": where flips flicker on and off before the boundary, the dense scan's first
flip is the first flicker). Goal: ≥ 5× fewer evaluations. Runs on one thread.

    OMP_NUM_THREADS=1 python benchmarks/bench_instance_breakpoints.py [--instances 100]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import proactiv as pv
from proactiv.analysis.instance_breakpoints import COARSE, instance_boundary, instance_breakpoints

RUNS = ("runs/kws-demo", "runs/digits-reference")
GOAL = 5.0


def timed(fn, *args, **kwargs):
    started = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=100)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for path in RUNS:
        run = pv.open_run(path)
        print(f"\n{path}: {', '.join(run.grid.columns)}")
        task, seconds = timed(run.task)
        print(f"  task rebuilt in {seconds:.1f} s")
        common = dict(max_instances=args.instances, device="cpu", task=task)
        adaptive, t_a = timed(instance_breakpoints, run, **common)
        dense, t_d = timed(instance_breakpoints, run, method="dense", **common)
        adaptive, dense = adaptive.table, dense.table
        same = np.isclose(adaptive.breakpoint, dense.breakpoint) | (
            adaptive.breakpoint.isna() & dense.breakpoint.isna()
        )
        # near: both flip and the adaptive flip lies within one coarse step of the dense one (flicker)
        near = same | ((adaptive.range_fraction - dense.range_fraction).abs() <= 1 / COARSE + 1e-9)
        n = adaptive.instance.nunique()
        print(f"  {n} instances; resolution per parameter: "
              + ", ".join(f"{c} {r:g}" for c, r in adaptive.groupby("column").resolution.first().items()))  # fmt: skip
        print(f"  {'parameter':<22}{'adaptive evals':>15}{'dense evals':>13}{'ratio':>8}{'agree':>8}{'near':>8}"
              f"{'flips':>7}")  # fmt: skip
        for col in dict.fromkeys(adaptive.column):
            m = adaptive.column == col
            ea, ed = adaptive.evaluations[m].sum(), dense.evaluations[m].sum()
            print(f"  {col:<22}{ea:>15}{ed:>13}{ed / ea:>7.1f}×{same[m].mean():>8.1%}{near[m].mean():>8.1%}"
                  f"{adaptive.breakpoint[m].notna().sum():>7}")  # fmt: skip
        ea, ed = adaptive.evaluations.sum(), dense.evaluations.sum()
        print(f"  {'all':<22}{ea:>15}{ed:>13}{ed / ea:>7.1f}×{same.mean():>8.1%}{near.mean():>8.1%}")
        print(f"  per instance: {ea / n:.1f} evaluations adaptive vs {ed / n:.1f} dense; "
              f"{t_a:.2f} s vs {t_d:.2f} s ({t_d / t_a:.1f}×)")  # fmt: skip
        missed = (~same & adaptive.breakpoint.isna()).sum()
        later = (adaptive.range_fraction - dense.range_fraction)[~same].dropna()
        if (~same).any():
            print(f"  disagreements: {int((~same).sum())}; {int(missed)} where the coarse scan stepped over every flip"
                  + (f"; elsewhere the adaptive flip lies later by a median {later.median():.3f} of the side's range"
                     if len(later) else ""))  # fmt: skip
        first = adaptive.dropna(subset=["breakpoint"]).sort_values("range_fraction").iloc[0]
        cols = run.grid.columns
        curve, t_b = timed(
            instance_boundary, run, int(first.instance), cols[0], cols[1], device="cpu", task=task
        )
        print(f"  boundary curve of instance {int(first.instance)} in ({cols[0]}, {cols[1]}): "
              f"{curve.value_a.nunique()} values, {curve.evaluations.sum()} evaluations, {t_b:.2f} s")  # fmt: skip
        ok = ed / ea >= GOAL
        print(f"  goal ≥ {GOAL:g}× fewer evaluations: {'met' if ok else 'MISSED'}")


if __name__ == "__main__":
    main()

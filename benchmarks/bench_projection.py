"""Projection speed and fidelity: the per-sample engine (defaults) against the reference rule.

Both run in this process on the same model (the digits CNN, or the KWS model on log-mel dB features) and the
same transformed inputs:
  * default   — ``Projector(model)``: per-sample stopping, compaction, step size relative to the input scale,
                all grid points in one queue;
  * reference — ``criterion="batch_mean"``, Adam, lr 1e-3, cutoff 0.05, 500 steps, one grid point at a time
                (as the paper's code does).
Prints projections/s, converged fraction, median steps, the median d_x ratio on samples both converge, and the
peak RSS of whole sweeps with 4× more grid points (memory must not grow with the grid).

    python benchmarks/bench_projection.py [--per-class 10] [--repeats 3]
    python benchmarks/bench_projection.py --task kws --per-class 2   # after `make demo`
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time

import torch

import proactiv as pv
from proactiv.tasks.digits import load_task

GRIDS = {
    "digits": [
        pv.transforms.get("noise", snr_db=[20, 5, 0, -5]),
        pv.transforms.get("clip", level=[1.0, 0.5, 0.3, 0.2]),
    ],
    "kws": [
        pv.transforms.get("audio_noise", snr_db=[20, 10, 0]),
        pv.transforms.get("speed", factor=[0.8, 1.0, 1.25]),
    ],
}


def load_kws(per_class: int, model_dir: str, data_dir: str):
    """The trained KWS model on log-mel features and test clips (made by `make demo`)."""
    from proactiv.config import parse_config
    from proactiv.tasks import load_task as load_any

    cfg = parse_config(
        {
            "task": "kws",
            "model": {"path": model_dir},
            "data": {"root": data_dir, "instances_per_class": per_class},
            "grid": [{"type": "gain"}],
        }
    )
    return load_any(cfg)


def transformed(task, grid):
    """Model inputs of every grid point (through the task's frontend when it has one)."""
    ids = list(range(task.inputs.shape[0]))
    out = []
    for p in range(len(grid)):
        x = grid.apply(task.inputs, ids, p, seed=0)
        out.append(task.frontend(x) if task.frontend is not None else x)
    return out


def run_default(task, xs):
    x, y = torch.cat(xs), task.labels.repeat(len(xs))
    return pv.Projector(task.model, device="cpu").project(x, y)


def run_reference(task, xs):
    proj = pv.Projector(
        task.model,
        lr=1e-3,
        cutoff=0.05,
        max_steps=500,
        criterion="batch_mean",
        batch_size=len(task.labels),
        device="cpu",
    )
    parts = [proj.project(x, task.labels) for x in xs]
    return pv.ProjectionResult(
        *(torch.cat([getattr(r, f) for r in parts]) for f in pv.ProjectionResult.__dataclass_fields__)
    )


def sweep_peak_rss(points: int, per_class: int) -> float:
    """Peak RSS (MiB) of a fresh process sweeping ``points`` grid points."""
    code = f"""
import resource, tempfile, torch, proactiv as pv
from proactiv.tasks.digits import load_task
task = load_task({per_class})
grid = pv.Grid([pv.transforms.get("noise", snr_db=list(range(40, 40 - {points}, -1)))])
with tempfile.TemporaryDirectory() as d:
    pv.sweep(task.model, task.inputs, task.labels, grid, d + "/run", progress=False, keep_arrays="none")
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-class", type=int, default=10, help="instances per class (10 classes)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--task", choices=sorted(GRIDS), default="digits")
    ap.add_argument("--model", default="models/kws-dscnn", help="kws model folder")
    ap.add_argument("--data", default="data/kws", help="kws corpus folder")
    args = ap.parse_args()
    torch.set_num_threads(2)
    task = (
        load_task(args.per_class)
        if args.task == "digits"
        else load_kws(args.per_class, args.model, args.data)
    )
    grid = pv.Grid(GRIDS[args.task])
    with torch.no_grad():
        xs = transformed(task, grid)
    n = sum(x.shape[0] for x in xs)
    print(
        f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"
    )
    print(
        f"task {args.task}: {task.inputs.shape[0]} instances x {len(grid)} grid points = {n} projections, "
        f"input shape {tuple(xs[0].shape[1:])}"
    )
    rates = {"default": [], "reference": []}
    results = {}
    for _ in range(args.repeats):
        for name, fn in (("reference", run_reference), ("default", run_default)):
            t0 = time.perf_counter()
            results[name] = fn(task, xs)
            rates[name].append(n / (time.perf_counter() - t0))
    d, r = results["default"], results["reference"]
    dx = {k: (v.inputs - torch.cat(xs)).flatten(1).norm(dim=1) for k, v in results.items()}
    both = d.converged & r.converged
    moved = both & (d.loss_before >= 0.05)
    rows = []
    for name, res in results.items():
        rows.append(
            {
                "mode": name,
                "proj_per_s": statistics.median(rates[name]),
                "converged": res.converged.float().mean().item(),
                "median_steps": res.steps.float().median().item(),
                "median_d_x_moved": dx[name][moved].median().item(),
            }
        )
    print(f"{'mode':10s} {'proj/s':>10s} {'converged':>10s} {'med steps':>10s} {'med d_x*':>10s}")
    for row in rows:
        print(
            f"{row['mode']:10s} {row['proj_per_s']:10.1f} {row['converged']:10.3f} {row['median_steps']:10.0f} "
            f"{row['median_d_x_moved']:10.4f}"
        )
    speedup = statistics.median(a / b for a, b in zip(rates["default"], rates["reference"], strict=True))
    ratio_moved = (dx["default"][moved].median() / dx["reference"][moved].median()).item()
    ratio_both = (dx["default"][both].median() / dx["reference"][both].median()).item()
    print(f"* on the {int(moved.sum())} samples both converge that needed steps")
    print(f"speed-up (median of per-repeat ratios): {speedup:.1f}x")
    print(
        f"median d_x ratio default/reference: {ratio_moved:.3f} (needed steps), {ratio_both:.3f} (all both-converged)"
    )
    if args.task != "digits":
        return
    small, large = sweep_peak_rss(8, args.per_class), sweep_peak_rss(32, args.per_class)
    print(
        f"peak RSS of a whole sweep: 8 grid points {small:.0f} MiB, 32 grid points {large:.0f} MiB "
        f"(ratio {large / small:.2f})"
    )
    print(json.dumps({"speedup": speedup, "d_x_ratio": ratio_moved, "rss_8": small, "rss_32": large}))


if __name__ == "__main__":
    main()

"""Projection speed and fidelity: the engine's defaults against the engine before them and the reference rule.

All run in this process on the same model (the digits CNN, or the KWS DS-CNN on log-mel dB features) and the
same transformed inputs:
  * default   — ``Projector(model)``: Polyak steps along the gradient toward the cutoff, per-sample stopping,
                compaction, batch norm folded into the convolutions, all grid points in one queue;
  * before    — the defaults up to 0.1: per-sample Adam at 1 % of each input's scale per step, no folding;
  * reference — (``--reference``) ``criterion="batch_mean"``, Adam, lr 1e-3, cutoff 0.05, 500 steps, one grid
                point at a time (as the paper's code does; slow: minutes on KWS).
Prints projections/s (median of the repeats; the speed-up is the median of per-repeat ratios), converged
fraction, median steps, the median d_x ratio on samples both converge that needed steps, how concentrated the
change is (median share of |x̂T − xT| in the top 10 % of elements), how a planted cue ranks in a bias map
(:func:`proactiv.testing.planted_cue`, hand-set) and how a learnt one does (:func:`proactiv.testing.shortcut.
trained_cue`, three trained CNNs under contrast 0.3: the median rank of its window of 196 and the median mass
share); on digits also the peak RSS of whole sweeps with 4× more grid points.

    python benchmarks/bench_projection.py [--per-class 10] [--repeats 3]
    python benchmarks/bench_projection.py --task kws --per-class 4   # after `make demo`
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import torch

import proactiv as pv
from proactiv.tasks.digits import load_task
from proactiv.testing import cue_shares, planted_cue
from proactiv.testing.shortcut import trained_cue, window_rank

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


#: the engines compared: Projector settings (the task's own defaults, e.g. a clamp, are added)
ENGINES = {
    "default": {},
    "before": {"optimizer": "adam", "fold_batch_norm": False},
}


def run_engine(task, xs, settings):
    x, y = torch.cat(xs), task.labels.repeat(len(xs))
    return pv.Projector(task.model, device="cpu", **task.projection_defaults, **settings).project(x, y)


def concentration(change: torch.Tensor) -> torch.Tensor:
    """Per sample: the share of |x̂T − xT| in its top 10 % of elements (0.1 when spread evenly)."""
    a = change.abs().flatten(1)
    return a.topk(max(1, a.shape[1] // 10), dim=1).values.sum(1) / a.sum(1).clamp_min(1e-12)


def planted_cue_shares(settings) -> tuple[float, float]:
    """Rank and mass share of a planted 3 × 3 cue in the bias map this engine draws."""
    region = (slice(5, 8), slice(9, 12))
    model, x, y = planted_cue((16, 16), region)
    result = pv.Projector(model, device="cpu", max_steps=3000, **settings).project(x, y)
    return cue_shares(result.inputs - x, region)


@functools.cache
def trained_cues() -> list:
    """Three trained shortcut CNNs (seeds 0–2) and their held-out ``cue`` images at contrast 0.3."""
    cases = []
    for seed in range(3):
        model, x, y = trained_cue(seed=seed)
        cases.append((model, x * 0.3 + 0.7 * x.mean((2, 3), keepdim=True), y))
    return cases


def trained_cue_shares(settings) -> tuple[float, float]:
    """Median rank of a learnt cue's window (of 196) and median mass share in the bias maps this engine draws."""
    ranks, masses = [], []
    for model, x, y in trained_cues():
        result = pv.Projector(model, device="cpu", **settings).project(x, y)
        rank, mass = window_rank(result.inputs - x)
        ranks.append(rank)
        masses.append(mass)
    return statistics.median(ranks), statistics.median(masses)


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
from proactiv.testing import cue_shares, planted_cue
task = load_task({per_class})
grid = pv.Grid([pv.transforms.get("noise", snr_db=list(range(40, 40 - {points}, -1)))])
with tempfile.TemporaryDirectory() as d:
    pv.sweep(task.model, (task.inputs, task.labels), grid, d + "/run", arrays=pv.ArraysSpec(keep="none"),
             execution=pv.ExecutionSpec(progress=False))
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
    ap.add_argument("--reference", action="store_true", help="also run the reference rule (slow)")
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
    engines = dict(ENGINES)
    if args.reference:
        engines["reference"] = None
    rates = {name: [] for name in engines}
    results = {}
    for _ in range(args.repeats):
        for name, settings in engines.items():
            t0 = time.perf_counter()
            results[name] = run_reference(task, xs) if settings is None else run_engine(task, xs, settings)
            rates[name].append(n / (time.perf_counter() - t0))
    x = torch.cat(xs)
    dx = {k: (v.inputs - x).flatten(1).norm(dim=1) for k, v in results.items()}
    base = results["before"]
    print(f"{'engine':10s} {'proj/s':>8s} {'speed-up':>9s} {'converged':>10s} {'med steps':>10s} "
          f"{'d_x ratio':>10s} {'top-10 %':>9s} {'cue rank':>9s} {'cue mass':>9s} {'learnt':>7s} {'mass':>6s}")  # fmt: skip
    summary = {}
    for name, res in results.items():
        moved = res.converged & base.converged & (base.steps > 0) & (res.steps > 0)
        speedup = statistics.median(a / b for a, b in zip(rates[name], rates["before"], strict=True))
        ratio = (dx[name][moved].median() / dx["before"][moved].median()).item()
        conc = concentration(res.inputs - x)[res.steps > 0].median().item()
        rank, mass = planted_cue_shares(engines[name]) if engines[name] is not None else (float("nan"),) * 2
        learnt = trained_cue_shares(engines[name]) if engines[name] is not None else (float("nan"),) * 2
        summary[name] = {"proj_per_s": statistics.median(rates[name]), "speedup": speedup,
                         "converged": res.converged.float().mean().item(), "d_x_ratio": ratio,
                         "median_steps": res.steps[res.steps > 0].float().median().item(),
                         "concentration": conc, "cue_rank": rank, "cue_mass": mass,
                         "learnt_cue_rank": learnt[0], "learnt_cue_mass": learnt[1]}  # fmt: skip
        row = summary[name]
        print(f"{name:10s} {row['proj_per_s']:8.1f} {speedup:8.2f}x {row['converged']:10.3f} "
              f"{row['median_steps']:10.0f} {ratio:10.3f} {conc:9.3f} {rank:9.2f} {mass:9.3f} {learnt[0]:7.0f} "
              f"{learnt[1]:6.3f}")  # fmt: skip
    print("d_x ratio: median d_x against the engine before, on the samples both converge that needed steps")
    print(f"load average: {os.getloadavg()[0]:.2f}")
    print(json.dumps(summary))
    if args.task != "digits":
        return
    small, large = sweep_peak_rss(8, args.per_class), sweep_peak_rss(32, args.per_class)
    print(
        f"peak RSS of a whole sweep: 8 grid points {small:.0f} MiB, 32 grid points {large:.0f} MiB "
        f"(ratio {large / small:.2f})"
    )
    print(json.dumps({"rss_8": small, "rss_32": large}))


if __name__ == "__main__":
    main()

"""Mitigation on the KWS demo: retrain the keyword model with clips augmented toward the demo run's worst slices
(``proactiv kws train --augment-from RUN``), sweep the retrained model with the demo's config, and compare the
two runs: the old run's worst slices (the same records in both), the clean grid point and the whole grid.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_mitigation.py [--run runs/kws-demo] \
        [--config examples/kws_demo.yaml] [--model models/kws-dscnn-mitigated] [--after runs/kws-demo-mitigated] \
        [--control MODEL]

Training is cached (skipped when MODEL holds one trained with the same data, settings and plan) and the sweep
resumes, so a second call only prints. ``--control MODEL`` also sweeps a model trained by the same trainer
without the plan (``proactiv kws train --out MODEL --threads 1``), to tell the plan's effect from
the trainer's.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from proactiv.augment_plan import register_planner
from proactiv.config import load_config
from proactiv.mitigation import AugmentPlan, augmentation_plan, compare
from proactiv.store import open_run
from proactiv.sweep import sweep_config
from proactiv.tasks.kws.cli import train
from proactiv.tasks.kws.models import DEFAULT_ARCH


def sweep_with(config: Path, model: Path, out: Path):
    """The config's sweep with its model replaced (resumed when ``out`` holds part of it)."""
    cfg = load_config(config)
    cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"path": model.resolve()})})
    return sweep_config(cfg, out, resume=out.exists(), progress=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=Path("runs/kws-demo"))
    parser.add_argument("--config", type=Path, default=Path("examples/kws_demo.yaml"))
    parser.add_argument("--data", type=Path, default=Path("data/kws"))
    parser.add_argument("--model", type=Path, default=Path("models/kws-dscnn-mitigated"))
    parser.add_argument("--after", type=Path, default=Path("runs/kws-demo-mitigated"))
    parser.add_argument("--epochs", type=int, default=45, help="as make demo trains the demo model")
    parser.add_argument("--control", type=Path, default=None, help="a model trained without the plan")
    args = parser.parse_args()
    torch.set_num_threads(1)
    register_planner(augmentation_plan)  # what the `proactiv` command registers for --augment-from
    started = time.perf_counter()
    train(data=args.data, out=args.model, arch=DEFAULT_ARCH, seed=0, epochs=args.epochs, time_budget=None, threads=1,
          exclude_engine=None, augment_from=args.run, force=False, progress=False)  # fmt: skip
    print(f"training: {time.perf_counter() - started:.0f} s (0 when cached)")
    print(AugmentPlan.load(args.model).describe())
    started = time.perf_counter()
    after = sweep_with(args.config, args.model, args.after)
    print(f"sweep of the retrained model: {time.perf_counter() - started:.0f} s -> {after.path}")
    before = open_run(args.run)
    table = compare(before, after, n_slices=3)
    pairs = [("retrained with the plan", table)]
    if args.control is not None:
        control = sweep_with(args.config, args.control, args.after.with_name(args.after.name + "-control"))
        pairs.append(("trained without the plan (control)", compare(before, control, n_slices=3)))
    for title, t in pairs:
        print(f"\n{args.run} (before) vs {title} (after): accuracy")
        print(t.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()

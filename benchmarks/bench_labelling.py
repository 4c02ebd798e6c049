"""Choosing what to label on the keyword demo (issue 28, parts 3-4): random, uncertainty, the assertion bandit
and weak labels from consistency, each selection fine-tuning a copy of the demo model.

The pool: 1-s windows (every 100 ms) of half the demo's running-speech speakers, and the validation clips under
white, pink or babble noise at 5-20 dB, their labels hidden from the strategies. Held out: the test clips under
the same kinds of noise, and the other speakers' running speech, clean and under white noise at 10 dB. For each
strategy, budget and seed: select, fine-tune (see :mod:`proactiv.tasks.kws.finetune`), evaluate. Everything on
one thread. The same experiment is ``proactiv kws label-experiment``; see :mod:`proactiv.tasks.kws.labelling`.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_labelling.py            # ~10-15 min on one core
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_labelling.py --budget 50 --seed 0   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from proactiv.monitor.labelling import STRATEGIES
from proactiv.monitor.labelling_experiment import summarise
from proactiv.tasks.kws.labelling import SUMMARY, markdown, run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models/kws-dscnn"), help="copied, never written")
    parser.add_argument("--data", type=Path, default=Path("data/kws"))
    parser.add_argument("--out", type=Path, default=Path("runs/bench-labelling"))
    parser.add_argument("--budget", type=int, nargs="+", default=[50, 100, 200])
    parser.add_argument("--seed", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--strategy", nargs="+", default=list(STRATEGIES), choices=STRATEGIES)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--round-size", type=int, default=50)
    parser.add_argument("--pool-clips", type=int, default=None)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    start, load = time.perf_counter(), os.getloadavg()[0]
    table = run(args.data, args.model, args.out, strategies=args.strategy, budgets=args.budget, seeds=args.seed,
                epochs=args.epochs, lr=args.lr, round_size=args.round_size, pool_clips=args.pool_clips,
                progress=not args.no_progress)  # fmt: skip
    wall = time.perf_counter() - start
    summary = summarise(table, SUMMARY)
    print(markdown(summary))
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, 1 torch thread"
    print(f"\n{len(table) - len(args.seed)} rows (strategy × budget × seed) in {wall:.0f} s ({wall / 60:.1f} min) on {machine}; "
          f"load average {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")  # fmt: skip
    (args.out / "bench.json").write_text(json.dumps({"wall_s": wall, "machine": machine, "load_start": load,
                                                     "load_end": os.getloadavg()[0]}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()

"""Benchmark the cost of an ensemble: training time of one network against ``--members`` networks side by side.

Trains a few epochs of each on the demo corpus's training split, alternating (one, then the ensemble, then one
again ...) so that both see the same load on a shared machine, and prints the median seconds per epoch and the
median of the per-round ratios.

    .venv/bin/python benchmarks/bench_kws_members.py --data .cache/kws-demo     # ~3 min on 2 idle cores
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from proactiv.tasks.kws.augment import Augment, load_noise_bank
from proactiv.tasks.kws.train import UNKNOWN, fit, load_corpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=".cache/kws-demo", help="a synthesised corpus (proactiv kws synth)")
    parser.add_argument("--members", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=2, help="epochs per timed training")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    for name, least in (("members", 2), ("epochs", 1), ("rounds", 1), ("threads", 1)):
        if getattr(args, name) < least:
            parser.error(f"--{name} {getattr(args, name)}: expected at least {least}")
    if not Path(args.data).is_dir():
        parser.error(
            f"--data {args.data}: no such folder; make one with `proactiv kws synth --out {args.data}`"
        )

    torch.set_num_threads(args.threads)
    splits, names = load_corpus(args.data)
    train = splits["train"]
    augment = Augment(
        noise_bank=load_noise_bank(args.data), context_bank=train.waves[train.labels == names.index(UNKNOWN)]
    )
    empty = splits["validation"].select(splits["validation"].labels.numpy() < 0)  # no per-epoch validation
    per_epoch = {1: [], args.members: []}
    for r in range(args.rounds):
        for members in per_epoch:
            start = time.perf_counter()
            fit(train, empty, names, epochs=args.epochs, augment=augment, members=members, progress=False)
            per_epoch[members].append((time.perf_counter() - start) / args.epochs)
        print(
            f"round {r + 1}: "
            + ", ".join(f"{m} network(s) {v[-1]:.1f} s/epoch" for m, v in per_epoch.items())
        )
    ratios = [b / a for a, b in zip(per_epoch[1], per_epoch[args.members], strict=True)]
    print(
        f"median s/epoch: one network {statistics.median(per_epoch[1]):.1f}, {args.members} networks "
        f"{statistics.median(per_epoch[args.members]):.1f}; median ratio {statistics.median(ratios):.2f} "
        f"(per round {', '.join(f'{x:.2f}' for x in ratios)}; {args.threads} threads)"
    )


if __name__ == "__main__":
    main()

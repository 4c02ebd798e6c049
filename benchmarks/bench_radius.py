"""Adversarial and certified radius per instance on the KWS demo run (DS-CNN on log-mel features) and on a
subset of the digits CNN run: seconds per instance, median radii, and the check certified ≤ adversarial.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_radius.py [--kws RUN] [--digits RUN] [--n 50]
"""

from __future__ import annotations

import argparse

import torch

from proactiv.analysis.radius import radius
from proactiv.store import open_run


def bench(path: str, n: int | None) -> None:
    run = open_run(path)
    table = radius(run, norm=["l2", "linf"], certified=True, max_instances=n)
    print(
        f"\n{path}: {len(table)} instances, {table.seconds.mean():.2f} s per instance (both norms, both bounds)"
    )
    for p in ("l2", "linf"):
        found, proved = table[f"radius_{p}"], table.get(f"certified_{p}")
        line = f"  {p:>4}: median found {found.median():.4g}"
        if proved is not None:
            sound = bool((proved <= found).all())
            line += (f", median certified {proved.median():.4g}, certified > 0 on {int((proved > 0).sum())}/"
                     f"{len(table)}, certified ≤ found on every instance: {sound}")  # fmt: skip
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kws", default="runs/kws-demo")
    parser.add_argument("--digits", default="runs/digits-reference")
    parser.add_argument("--n", type=int, default=50, help="digits instances (spread over the run)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    bench(args.kws, None)
    bench(args.digits, args.n)


if __name__ == "__main__":
    main()

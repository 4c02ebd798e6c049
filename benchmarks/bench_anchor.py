"""Anchors: seconds, model evaluations and the rule found for single records, on the planted gain-threshold run
(:mod:`proactiv.testing.threshold`, a vector model) and, when it is here, on the KWS demo run (36 clips × SNR,
speed, pitch; worked on a copy, so nothing is written beside it). Goal: one anchor (the studio built, the search
and its local surrogate) in at most 30 s on 2 cores on the KWS demo. Runs on one thread unless told.

    OMP_NUM_THREADS=1 python benchmarks/bench_anchor.py [--records 4] [--threads 2]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import torch

import proactiv as pv
from proactiv.analysis.anchor import anchor
from proactiv.testing.threshold import THRESHOLDS_DB, plant_threshold_run, point_of
from proactiv.whatif import Studio

KWS = Path("runs/kws-demo")
GOAL_S = 30.0


def timed(fn, *args, **kwargs):
    started = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - started


def report(studio: Studio, records: list[tuple[int, int]], built: float) -> float:
    """Anchor each (instance, point), print one line per record; the slowest anchor's seconds."""
    slowest = 0.0
    for instance, point in records:
        found, seconds = timed(anchor, studio.run, instance, point, studio=studio)
        slowest = max(slowest, seconds)
        local = found.surrogate
        fidelity = f"{local.fidelity:.2f}" if local else "-"
        print(f"  #{instance} @ {point}: {seconds:5.1f} s (+{built:.1f} s studio), {found.samples} samples,"
              f" surrogate R² {fidelity}: {found.describe()}")  # fmt: skip
    return slowest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=4, help="records of the KWS demo to anchor")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (2: both cores of the goal)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="bench-anchor-") as tmp:
        run = plant_threshold_run(Path(tmp) / "planted")
        studio, built = timed(Studio, run, device="cpu")
        print(f"planted gain thresholds {THRESHOLDS_DB} dB (gain × noise, LevelGate):")
        report(studio, [(i, point_of(run, g)) for i in range(len(THRESHOLDS_DB)) for g in (-9.0, 3.0)], built)
        if not (KWS / "run.json").exists():
            print(f"{KWS}: not here, skipped")
            return
        copy = Path(tmp) / "kws-demo"
        shutil.copytree(KWS, copy)
        studio, built = timed(Studio, pv.open_run(copy), device="cpu")
        records = studio.run.records
        wrong = records[~records.correct_t.astype(bool)].sort_values(["instance", "point"])
        right = records[records.correct_t.astype(bool)].sort_values(["instance", "point"])
        half = max(args.records // 2, 1)
        picks = [*wrong.iloc[:: max(len(wrong) // half, 1)].head(half).itertuples(),
                 *right.iloc[:: max(len(right) // half, 1)].head(half).itertuples()]  # fmt: skip
        print(f"\n{KWS}: {', '.join(studio.grid.columns)}; {len(records)} records, {len(wrong)} wrong")
        slowest = report(studio, [(int(r.instance), int(r.point)) for r in picks], built)
        total = slowest + built
        print(f"  slowest anchor with its studio: {total:.1f} s; goal ≤ {GOAL_S:g} s: "
              f"{'met' if total <= GOAL_S else 'MISSED'}")  # fmt: skip


if __name__ == "__main__":
    main()

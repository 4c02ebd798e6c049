"""Analysis and report speed on a large run: 100 k records (2000 instances × 50 grid points), 12 classes,
log-mel-shaped inputs (40 × 101) kept for 2 instances per class, voice/gender/rate/path metadata.

The run is synthetic (proactiv.testing: written by the run store as a sweep would) so the
benchmark measures analysis alone. Prints seconds per analysis step (median of --repeats, each from a
cold analysis directory), the report, and the machine load, and checks the 2-minute budget.

    python benchmarks/bench_analysis.py [--instances 2000] [--repeats 3] [--method tsne]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from proactiv.analysis import STEPS, analyze
from proactiv.analysis.pipeline import read_manifest
from proactiv.report import write_report
from proactiv.testing import BENCH_CLASSES as CLASSES
from proactiv.testing import bench_grid, write_synthetic_run

BUDGET_S = 120.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--method", default="tsne", choices=("tsne", "umap", "pca"))
    args = parser.parse_args()

    grid = bench_grid()
    root = Path(tempfile.mkdtemp(prefix="bench-analysis-"))
    try:
        started = time.perf_counter()
        run = write_synthetic_run(
            root / "run", n_instances=args.instances, classes=CLASSES, grid=grid,
            voices=[f"voice{i}" for i in range(8)], instances_per_unit=64,
        )  # fmt: skip
        n = args.instances * len(grid)
        print(f"wrote {n} records in {time.perf_counter() - started:.1f} s ({run.path})")
        print(
            f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())} on {os.cpu_count()} cores"
        )
        steps = {s: [] for s in STEPS}
        totals, reports = [], []
        for _ in range(args.repeats):
            shutil.rmtree(run.path / "analysis", ignore_errors=True)
            (run.path / "report.html").unlink(missing_ok=True)
            t0 = time.perf_counter()
            analyze(run, method=args.method)
            totals.append(time.perf_counter() - t0)
            for step, entry in read_manifest(run)["steps"].items():
                steps[step].append(entry["seconds"])
            t0 = time.perf_counter()
            write_report(run, method=args.method)
            reports.append(time.perf_counter() - t0)
        print(f"\n{'step':22s} median s  (of {args.repeats})")
        for step, times in steps.items():
            print(f"{step:22s} {statistics.median(times):8.2f}")
        analysis, report = statistics.median(totals), statistics.median(reports)
        print(f"{'analysis total':22s} {analysis:8.2f}")
        print(f"{'report (HTML, figures)':22s} {report:8.2f}")
        print(f"{'analysis + report':22s} {analysis + report:8.2f}   budget {BUDGET_S:.0f} s for {n} records")
        print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
        print(f"report size: {(run.path / 'report.html').stat().st_size / 1e6:.1f} MB")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

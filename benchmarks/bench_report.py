"""The static report on a large run: its size, how long it takes to build, and how long headless Chromium
takes to open it until every figure has drawn.

By default a 90 000-record synthetic run (1800 instances × 50 grid points, 12 classes, 40 × 101 log-mel-shaped
inputs, arrays kept for 2 instances per class); ``--runs DIR...`` measures real runs too (their missing
analyses are computed first, not timed; the report goes to a temporary file, the run is left as it was).
Load time is the median of ``--repeats`` fresh browsers (a new profile each): from navigation until every
figure's plot has an SVG. Goal: open in < 3 s.

    python benchmarks/bench_report.py [--instances 1800] [--repeats 3] [--method pca] [--runs runs/kws-demo ...]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from proactiv.analysis import analyze
from proactiv.report import write_report
from proactiv.testing import BENCH_CLASSES, bench_grid, write_synthetic_run

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' headless-Chromium helper
from tests.dashboard.browser import chromium  # noqa: E402

GOAL_S = 3.0
#: true once every figure placeholder of the page holds a drawn plotly plot
RENDERED = (
    "var divs = document.querySelectorAll('div.plot');"
    "return divs.length > 0 && Array.from(divs).every(d => d.querySelector('.main-svg'));"
)


def load_seconds(page: Path, timeout: float = 120.0) -> float:
    """Seconds from navigation until every figure of ``page`` has drawn, in a fresh headless Chromium."""
    with chromium() as driver:
        driver.set_page_load_timeout(timeout)
        driver.get(page.resolve().as_uri())  # returns after the load event: the figures draw before it
        deadline = time.monotonic() + timeout
        while not driver.execute_script(RENDERED):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{page}: figures not drawn after {timeout:.0f} s")
            time.sleep(0.05)
        return driver.execute_script("return performance.now()") / 1000.0


def measure(name: str, run, out: Path, repeats: int, method: str) -> None:
    start = time.perf_counter()
    analyze(run, method=method)
    analysed = time.perf_counter() - start
    start = time.perf_counter()
    write_report(run, out=out, method=method)
    built = time.perf_counter() - start
    loads = [load_seconds(out) for _ in range(repeats)]
    load = statistics.median(loads)
    verdict = "within" if load < GOAL_S else "OVER"
    print(f"{name}: {out.stat().st_size / 1e6:.2f} MB, build {built:.2f} s (analysis before it {analysed:.1f} s), "
          f"load {load:.2f} s (median of {', '.join(f'{t:.2f}' for t in loads)}): {verdict} the {GOAL_S:g} s goal",
          flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=1800, help="synthetic instances (× 50 grid points)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--method", default="pca", help="embedding method when analyses are missing")
    parser.add_argument(
        "--runs", type=Path, nargs="*", default=[], help="real run directories to measure too"
    )
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-report-"))
    try:
        run = write_synthetic_run(root / "synthetic", n_instances=args.instances, classes=BENCH_CLASSES,
                                  grid=bench_grid(), keep_per_class=2, instances_per_unit=600)  # fmt: skip
        n = len(run.records)
        measure(f"synthetic ({n:,} records)", run, root / "synthetic.html", args.repeats, args.method)
        for path in args.runs:
            measure(str(path), path, root / f"{path.name}.html", args.repeats, args.method)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

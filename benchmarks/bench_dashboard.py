"""Dashboard responsiveness on a large run: every callback, called directly as the server would, on a
100 k-record synthetic run (2000 instances × 50 grid points, 12 classes, 40 × 101 log-mel-shaped inputs).

The budget is < 1 s per callback on 2 cores. Analysis (t-SNE embeddings, bias maps) is computed first and
not timed here (see bench_analysis.py). Prints the median and worst of --repeats calls per callback.
Griffin-Lim audio needs a KWS model; the synthetic run has none, so its "audio" callback only reports that.

The what-if studio needs a run with a model: on each --whatif-run (default: the KWS and digits demo runs)
it times a transform change (targets ≤ 1 s) and a projection (≤ 3 s) as the tab's callbacks
make them, figures included, on the run's worst kept records (failures first), one torch thread.

    python benchmarks/bench_dashboard.py [--instances 2000] [--repeats 5] [--kws-run runs/kws-try]
                                         [--whatif-run runs/kws-demo --whatif-run runs/digits-demo]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from proactiv.analysis import analyze
from proactiv.dashboard import panels as views
from proactiv.dashboard.data import Filter, RunData
from proactiv.testing import BENCH_CLASSES as CLASSES
from proactiv.testing import bench_grid, write_synthetic_run

BUDGET_S = 1.0
#: what-if studio targets: a transform change, a projection (seconds)
WHATIF_BUDGET_S = {"transform": 1.0, "projection": 3.0}
WHATIF_RUNS = [Path("runs/kws-demo"), Path("runs/digits-demo")]


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), max(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--kws-run", type=Path, help="a feature-domain KWS run: also time Griffin-Lim audio")
    parser.add_argument("--whatif-run", type=Path, action="append",
                        help="a run with a model: time the what-if studio (repeatable; default: the demo runs)")  # fmt: skip
    args = parser.parse_args()

    grid = bench_grid()
    root = Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    try:
        start = time.perf_counter()
        a = write_synthetic_run(root / "a", n_instances=args.instances, classes=CLASSES, grid=grid)
        b = write_synthetic_run(root / "b", n_instances=args.instances, classes=CLASSES, grid=grid, seed=1,
                                fail_below_snr=7.5)  # fmt: skip
        analyze(a)
        analyze(b, steps=["curves", "breakpoints", "slices", "embedding_points"])
        print(f"setup (write + analyse): {time.perf_counter() - start:.1f} s")
        start = time.perf_counter()
        data, other = RunData(a.path), RunData(b.path, compute=False)
        print(
            f"open run (records into DuckDB): {time.perf_counter() - start:.2f} s, {data.n_records:,} records"
        )

        every = views.slices_rows(data, None)
        lasso = [int(p) for p in data.per_point(Filter()).query("`noise.snr_db` > 12").point]
        big = list(range(0, args.instances, 2))  # a lasso over half of all instances
        by_points = {"points": lasso, "instances": None, "slice": None}
        by_instances = {"points": None, "instances": big, "slice": None}
        by_slice = {"points": None, "instances": None, "slice": int(every[0]["slice"])}
        kept = views.kept_rows(data, by_slice) or views.kept_rows(data, None)  # large runs keep few records
        chosen = {"instance": kept[0]["instance"], "point": kept[0]["point"]}
        classes, values = views.bias_options(data)
        selected = {"points": [{"customdata": p} for p in big]}
        cases: dict[str, Callable[[], object]] = {
            "summary": lambda: views.summary_children(data),
            "overview (no filter)": lambda: views.overview(data, None, None, None, None),
            "overview (instance lasso)": lambda: views.overview(data, by_instances, None, None, "flip_rate"),
            "embeddings (no filter)": lambda: views.embeddings(data, None, None, None),
            "embeddings (point lasso)": lambda: views.embeddings(data, by_points, None, "accuracy"),
            "filter update (1000 ids)": lambda: views.update_filter("emb-instances", None, None, selected, None, None),
            "slices (instance lasso)": lambda: views.slices_rows(data, by_instances),
            "kept records (slice)": lambda: views.kept_rows(data, by_slice),
            "record detail": lambda: views.record_detail(data, chosen),
            "record audio": lambda: views.record_sound(data, chosen),
            "bias map": lambda: views.bias_view(data, classes[0], values[3]["value"]),
            "compare": lambda: views.compare([data, other], None, None),
            "compare per grid point": lambda: views.compare_grid([data, other]),
            "compare side by side": lambda: views.compare_side([data, other], "noise.snr_db"),
            "compare side (by metric)": lambda: views.compare_side([data, other], "accuracy"),
        }  # fmt: skip
        print(f"{'callback':<28} {'median s':>9} {'worst s':>9}")
        worst = 0.0
        for name, fn in cases.items():
            med, top = timed(fn, args.repeats)
            worst = max(worst, top)
            print(f"{name:<28} {med:9.3f} {top:9.3f}")
        if args.kws_run is not None:
            kws = RunData(args.kws_run, compute=False)
            rows = views.kept_rows(kws, None)[: args.repeats + 1]
            first = {"instance": rows[0]["instance"], "point": rows[0]["point"]}
            cold = timed(lambda: views.record_sound(kws, first), 1)[0]  # loads the model
            times = [timed(lambda r=r: views.record_sound(kws, r), 1)[0] for r in rows[1:]]
            print(f"{'KWS audio, first (model)':<28} {cold:9.3f}")
            print(f"{'KWS audio (Griffin-Lim x3)':<28} {statistics.median(times):9.3f} {max(times):9.3f}")
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        verdict = "within" if worst < BUDGET_S else "OVER"
        print(
            f"worst callback {worst:.3f} s: {verdict} the {BUDGET_S:.0f} s budget (load average {load:.1f})"
        )
        # the server's memory: this process holds what a served dashboard holds (both runs, their analyses)
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak memory of this process (two runs open, as served): {peak_mb:,.0f} MB")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    for path in args.whatif_run or WHATIF_RUNS:
        if path.exists():
            whatif_times(path, args.repeats)
        else:
            print(f"what-if studio: no run at {path} (make it with `make demo` / `make demo-digits`)")


def whatif_times(path: Path, repeats: int) -> None:
    """Median and worst of ``repeats`` transform changes and projections in the what-if tab of one run."""
    import torch

    from proactiv.dashboard.panels import whatif

    torch.set_num_threads(1)
    data = RunData(path, compute=False)
    start = time.perf_counter()
    rows = views.kept_rows(data, None)[:repeats]  # the worst kept records, failures first
    _, _, sliders = whatif.controls(data, rows[0])  # builds the studio: the model and raw inputs
    print(f"what-if studio of {path.name}: first open {time.perf_counter() - start:.2f} s")
    ids = [row.children[1].id for row in sliders]
    scales = [whatif.scale(p) for p in whatif.studio(data).parameters()]

    def positions(row: dict, k: int | None = None) -> list[float]:
        """The slider positions of a record's grid values; with ``k``, the first slider moved off the grid (to
        another place for each k)."""
        at = [s.position(data.run.grid[int(row["point"])].values[s.parameter.column]) for s in scales]
        if k is not None:
            at[0] = scales[0].low + (k + 0.37) / (repeats + 1) * (scales[0].high - scales[0].low)
        return at

    cases = {
        "transform": [lambda k=k, r=r: whatif.transform_view(data, r["instance"], ids, positions(r, k))
                      for k, r in enumerate(rows)],
        "projection": [lambda r=r: whatif.projection_view(data, r["instance"], ids, positions(r))
                       for r in rows],
    }  # fmt: skip
    for name, calls in cases.items():
        times = [timed(call, 1)[0] for call in calls]
        verdict = "within" if statistics.median(times) <= WHATIF_BUDGET_S[name] else "OVER"
        print(f"{'what-if ' + name:<28} {statistics.median(times):9.3f} {max(times):9.3f}  "
              f"({verdict} the {WHATIF_BUDGET_S[name]:.0f} s target, median of {len(times)})")  # fmt: skip


if __name__ == "__main__":
    main()

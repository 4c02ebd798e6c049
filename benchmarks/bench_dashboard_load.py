"""The dashboard under load: many concurrent callback requests over HTTP to a dashboard served on 127.0.0.1
(on waitress, as ``proactiv serve`` runs it) over a 100 k-record synthetic run (2000 instances x 50 grid points,
12 classes), written through the store.

The requests are the main callbacks as a user's clicks make them (:func:`tests.dashboard.loadtest.main_callbacks`:
summary, overview, embeddings, slices, kept records, record detail, bias map; unfiltered and under a lasso),
cycled to --requests and sent --concurrency at a time. Prints how many were answered with each HTTP status,
the wall time, the throughput, the latency over all requests (median, p95) and per callback (median, worst),
and the process's peak memory. The test (tests/test_bad_input.py) asserts that 200 at once are all answered.
--werkzeug also serves the same app on werkzeug's threaded development server (what ``proactiv serve`` ran
before waitress: a thread per connection), first, for a before/after in one run.

    python benchmarks/bench_dashboard_load.py [--instances 2000] [--requests 200] [--concurrency 200]
                                              [--method pca] [--threads 8 [16 ...]] [--werkzeug]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

from proactiv.analysis import analyze
from proactiv.dashboard.app import build_app
from proactiv.dashboard.data import RunData
from proactiv.testing import BENCH_CLASSES, bench_grid, write_synthetic_run

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' HTTP driver of a served dashboard
from tests.dashboard import loadtest  # noqa: E402


@contextlib.contextmanager
def werkzeug_served(app):
    """``app`` on werkzeug's threaded development server (a thread per connection), as ``proactiv serve`` ran it
    before waitress; the base URL."""
    from werkzeug.serving import WSGIRequestHandler, make_server

    class Unlogged(WSGIRequestHandler):
        def log_request(self, *args, **kwargs) -> None:
            pass

    server = make_server(loadtest.LOCAL, 0, app.server, threaded=True, request_handler=Unlogged)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{loadtest.LOCAL}:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


def load(name: str, serving, data, args) -> None:
    """Send the batch to the app as ``serving`` serves it and print what came back."""
    with serving as url:
        bodies = loadtest.main_callbacks(loadtest.dependencies(url), data)
        batch = [bodies[i % len(bodies)] for i in range(args.requests)]
        start = time.perf_counter()
        answers = loadtest.send_all(url, batch, args.concurrency)
        wall = time.perf_counter() - start
    statuses = collections.Counter(a.status for a in answers)
    print(f"\n{name}: {args.requests} requests, {args.concurrency} at a time, on {url}: {wall:.1f} s "
          f"({args.requests / wall:.1f} requests/s); answered: {dict(sorted(statuses.items()))}")  # fmt: skip
    seconds = sorted(a.seconds for a in answers)
    p95 = seconds[min(len(seconds) - 1, round(0.95 * len(seconds)) - 1)]
    print(f"latency over all requests: median {statistics.median(seconds):.2f} s, p95 {p95:.2f} s, "
          f"worst {seconds[-1]:.2f} s")  # fmt: skip
    by_kind = collections.defaultdict(list)
    for body, answer in zip(batch, answers, strict=True):
        by_kind[body["output"].strip(".").split("...")[0]].append(answer.seconds)
    print(f"{'callback (first output)':<28} {'n':>4} {'median s':>9} {'worst s':>9}")
    for kind, times in by_kind.items():
        print(f"{kind:<28} {len(times):4d} {statistics.median(times):9.3f} {max(times):9.3f}")
    failed = args.requests - statuses.get(200, 0)
    print("all answered" if not failed else f"{failed} requests NOT answered with 200")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--method", default="pca", help="embedding method of the analysis: pca | tsne | umap")
    parser.add_argument("--threads", type=int, nargs="+", default=[loadtest.THREADS],
                        help="waitress threads (several: one load each, on the same run)")  # fmt: skip
    parser.add_argument(
        "--werkzeug", action="store_true", help="first serve on werkzeug's threaded server too"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)

    root = Path(tempfile.mkdtemp(prefix="bench-dashboard-load-"))
    try:
        start = time.perf_counter()
        run = write_synthetic_run(root / "run", n_instances=args.instances, classes=BENCH_CLASSES,
                                  grid=bench_grid(), instances_per_unit=500)  # fmt: skip
        analyze(run, method=args.method)
        data = RunData(run.path, compute=False)
        print(
            f"setup (write, analyse, open): {time.perf_counter() - start:.1f} s, {data.n_records:,} records"
        )
        app = build_app([data])
        if args.werkzeug:
            load("werkzeug, threaded (a thread per connection)", werkzeug_served(app), data, args)
        for threads in args.threads:
            load(f"waitress, {threads} threads", loadtest.served(app, threads=threads), data, args)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"\npeak memory of this process (server and clients): {peak:.0f} MB; "
              f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Surrogate fit time and fidelity: the EBM and the GBM (+ SHAP for every record) on the KWS demo run and on a
100 k-record synthetic run (2000 instances × 50 grid points, a failing voice and an SNR breakpoint planted), on
one thread.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_surrogate.py [--kws runs/kws-demo] [--instances 2000]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import torch

from proactiv.analysis.runview import open_view
from proactiv.analysis.surrogate import surrogate
from proactiv.testing import BENCH_CLASSES, bench_grid, write_synthetic_run


def bench(name: str, path, max_records: int) -> None:
    view = open_view(path)
    print(f"\n{name}: {view.n_records} records, {view.query('SELECT count(DISTINCT instance) n FROM records').n[0]} "
          f"instances, at most {max_records} fitted")  # fmt: skip
    for method in ("ebm", "gbm"):
        started = time.perf_counter()
        s = surrogate(view, method, max_records=max_records)
        took = time.perf_counter() - started
        f = s.fidelity
        top = ", ".join(f"{r.feature} {r.importance:.2g}" for r in s.importance.head(3).itertuples())
        print(f"  {method}: {took:.1f} s (fit + contributions of every record); held-out {f['metric']} "
              f"{f['score']:.3f}, accuracy {f['accuracy']:.3f} vs base rate {f['base_rate']:.3f} on {f['n_test']} "
              f"records; top: {top}")  # fmt: skip
        print(f"       {s.sentence()}" + (f" [{s.warning}]" if s.warning else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kws", default="runs/kws-demo")
    parser.add_argument("--instances", type=int, default=2000)
    parser.add_argument("--max-records", type=int, default=20000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if Path(args.kws).is_dir():
        bench(args.kws, args.kws, args.max_records)
    root = Path(tempfile.mkdtemp(prefix="bench-surrogate-"))
    try:
        run = write_synthetic_run(root / "run", n_instances=args.instances, classes=BENCH_CLASSES, grid=bench_grid(),
                                  voices=[f"voice{i}" for i in range(8)], bad_voice="voice3")  # fmt: skip
        bench("synthetic", run.path, args.max_records)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

"""What a sweep costs per unit of work and per record, local and on Ray, and what 10^8 projections would need:
each config is swept by the local executor and by the Ray executor (a local Ray of ``--workers`` CPUs), the two
runs are compared file by file, and the per-unit times, bytes per record and per kept array are printed (the
figures of docs/scaling.md).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_scaling.py [CONFIG ...] [--workers 2] [--unit 128]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from proactiv.config import load_config
from proactiv.executors import LocalExecutor, RayExecutor
from proactiv.sweep import sweep_config

TARGET = 10**8  # projections of the sweep to plan for


class Timed:
    """Wraps an executor and notes when each unit's result arrives (seconds after the previous one); with
    ``parts``, also the seconds spent transforming and projecting (local executor only)."""

    def __init__(self, inner, parts: bool = False):
        self.inner, self.name, self.gaps, self.sizes = inner, inner.name, [], []
        self.parts = {"transform": 0.0, "project": 0.0} if parts else None

    def _clock(self, name, fn):
        def timed(*args, **kw):
            start = time.perf_counter()
            try:
                return fn(*args, **kw)
            finally:
                self.parts[name] += time.perf_counter() - start

        return timed

    def run(self, units, todo, advance):
        if self.parts is not None:
            units.transform = self._clock("transform", units.transform)
            units.projector.project = self._clock("project", units.projector.project)
        last = self.start = time.perf_counter()
        cpu = time.process_time()
        for unit, result in self.inner.run(units, todo, advance):
            now = time.perf_counter()
            self.gaps.append(now - last)
            self.sizes.append(unit.size)
            last = now
            yield unit, result
        self.end, self.cpu = time.perf_counter(), time.process_time() - cpu


def sizes(run) -> dict[str, int]:
    """Bytes of the record shards, of the kept-pair array files and of the clean-input files of a run."""

    def total(pattern: str) -> int:
        return sum(p.stat().st_size for p in run.path.glob(pattern))

    return {
        "records": total("records/part-*.parquet"),
        "pairs": total("arrays/part-*.npz"),
        "clean": total("arrays/clean-*.npz"),
    }


def same_files(a, b) -> bool:
    """Whether two runs hold the same record shards and array files, byte for byte."""

    def names(r):
        return sorted(p.relative_to(r.path) for s in ("records", "arrays") for p in (r.path / s).iterdir())

    return names(a) == names(b) and all(
        (a.path / n).read_bytes() == (b.path / n).read_bytes() for n in names(a)
    )


def bench(config: str, workers: int, unit: int | None, root: Path) -> None:
    cfg = load_config(config)
    if unit is not None:
        cfg.units.projections = unit
    local, ray_ = Timed(LocalExecutor(), parts=True), Timed(RayExecutor())
    a = sweep_config(cfg, root / "local", progress=False, executor=local)
    b = sweep_config(cfg, root / "ray", progress=False, executor=ray_)
    n, seconds, cpu = len(a.records), local.end - local.start, local.cpu
    kept = sum(len(np.load(p)["instance"]) for p in a.array_files())
    size, per_unit, per_proj = sizes(a), pd.Series(local.gaps), cpu / n
    share = {k: v / seconds for k, v in local.parts.items()}
    steady = (ray_.end - ray_.start - ray_.gaps[0]) / max(1, n - ray_.sizes[0])
    print(f"\n{config}: {n} projections in {len(per_unit)} units of {min(local.sizes)}-{max(local.sizes)}, "
          f"mean {a.records.steps.mean():.1f} steps, {a.records.converged.mean():.1%} converged")  # fmt: skip
    print(f"  records identical local vs Ray (frames): {a.records.equals(b.records)}; "
          f"every shard and array file byte-equal: {same_files(a, b)}")  # fmt: skip
    print(f"  local, {torch.get_num_threads()} thread: {seconds:.1f} s wall, {cpu:.1f} s CPU; per unit median "
          f"{per_unit.median():.2f} s wall (max {per_unit.max():.2f}); {1000 * per_proj:.2f} CPU-ms per projection: "
          f"{share['transform']:.0%} transforms, {share['project']:.0%} projection, the rest metrics and "
          f"writing")  # fmt: skip
    print(f"  Ray, {workers} workers: {ray_.end - ray_.start:.1f} s wall, first unit after {ray_.gaps[0]:.1f} s "
          f"(worker start), then {1000 * steady:.2f} wall-ms per projection ({seconds / n / steady:.2f}x local "
          f"wall); driver CPU {1000 * ray_.cpu / len(ray_.gaps):.1f} ms per unit (scheduling, receiving, "
          f"writing)")  # fmt: skip
    print(f"  bytes per record {size['records'] / n:.0f} (Parquet, {len(a.shard_files())} shards); per kept pair "
          f"{size['pairs'] / max(1, kept):.0f} (xT + x̂T, {kept} pairs); clean inputs {size['clean']} in all")  # fmt: skip
    hours = TARGET * per_proj / 3600
    print(f"  10^8 projections: {hours:,.0f} CPU-hours at {torch.get_num_threads()} thread per worker; "
          f"{hours / 24:,.0f} workers for one day, {hours / 100:,.1f} h on 100 workers; records "
          f"{TARGET * size['records'] / n / 1e9:,.1f} GB")  # fmt: skip


def bench_store(shards: int, rows: int, root: Path) -> None:
    """How reading records scales with the number of shards: DuckDB over ``shards`` files of ``rows`` records
    (the store's layout) against the same records compacted into one file."""
    import duckdb

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({f"m{j}": rng.random(rows) for j in range(24)})
    frame.insert(0, "instance", np.arange(rows) % 64)
    frame.insert(1, "point", np.arange(rows) // 64)
    (root / "shards").mkdir(parents=True)
    files = [root / "shards" / f"part-{k:05d}.parquet" for k in range(shards)]
    for f in files:
        frame.to_parquet(f, index=False)
    pd.concat([frame] * shards, ignore_index=True).to_parquet(root / "compact.parquet", index=False)
    sql = "SELECT point, count(*), avg(m0), avg((m1 < 0.5)::INT) FROM read_parquet({}) GROUP BY point"
    for name, listing in (
        (f"{shards} shards", "[" + ", ".join(f"'{f}'" for f in files) + "]"),
        ("1 compacted file", f"'{root / 'compact.parquet'}'"),
    ):
        start = time.perf_counter()
        duckdb.connect().execute(sql.format(listing)).fetchall()
        print(
            f"  {shards * rows:,} records in {name}: a grouped query takes {time.perf_counter() - start:.2f} s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="*", default=["examples/kws_demo.yaml", "examples/digits_demo.yaml"])
    parser.add_argument("--workers", type=int, default=2, help="CPUs of the local Ray (one per task)")
    parser.add_argument("--unit", type=int, default=128, help="projections per unit (0: the config's own)")
    parser.add_argument("--shards", type=int, default=2000, help="shards of the store read test (0: skip it)")
    args = parser.parse_args()
    import ray

    torch.set_num_threads(1)
    ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
    root = Path(tempfile.mkdtemp(prefix="bench-scaling-"))
    try:
        for i, config in enumerate(args.configs):
            bench(config, args.workers, args.unit or None, root / str(i))
        if args.shards:
            print("\nstore:")
            bench_store(args.shards, 1024, root / "store")
    finally:
        ray.shutdown()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

"""TracIn costs on the KWS model (feature- and waveform-domain runs) and on the digits CNN: preparing the
training set in the run's model inputs, the first record (which also stores the exact per-example vectors), each
further record, and self-influence over the whole training set; with the checkpoints' size and what the
self-influence ranking puts on top.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_influence.py [--kws-model DIR] [--data data/kws]
        [--out /tmp/bench-influence] [--records 5]

The KWS model needs checkpoints: ``proactiv kws train --data data/kws --out DIR --force`` writes them (a model
trained before they existed has none). The digits CNN is trained into a fresh cache under ``--out`` (about 10 s),
so it has them. Small runs (one noise or rotation grid, every array kept) are swept into ``--out`` first.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from proactiv.analysis.influence import MAX_VECTOR_BYTES, TracIn
from proactiv.analysis.steps import StepContext
from proactiv.config import parse_config
from proactiv.store import open_run
from proactiv.sweep import sweep_config


def small_run(out: Path, config: dict):
    """The run of ``config`` in ``out`` (swept once)."""
    if not (out / "run.json").exists():
        sweep_config(parse_config(config, str(out)), out, device="cpu", progress=False)
    return open_run(out)


def bench(name: str, run, n_records: int) -> None:
    began = time.perf_counter()
    tracin = TracIn(run, StepContext(run, device="cpu").task())
    prepared = time.perf_counter() - began
    c = tracin.checkpoints
    print(f"\n{name}: {len(tracin.labels)} training examples, inputs {tuple(tracin.inputs.shape[1:])}, {len(c)} "
          f"checkpoints (epochs {[e.epoch for e in c.entries]}, {c.bytes / 1e6:.2f} MB in {c.folder})")  # fmt: skip
    print(f"  prepare (training set read and mapped into model inputs): {prepared:.1f} s")
    records = run.records
    chosen = records[~records.correct_t].head(n_records)
    if chosen.empty:
        chosen = records.head(n_records)
    times = []
    for _, r in chosen.iterrows():
        began = time.perf_counter()
        table = tracin.record(int(r.instance), int(r.point), k=10)
        times.append(time.perf_counter() - began)
    stored = tracin.vector_bytes <= MAX_VECTOR_BYTES
    how = "stores the exact vectors" if stored else "vectors not stored, a pass over the training set each"
    print(f"  TracIn per record (xT and x̂T, k=10): first {times[0]:.2f} s ({how}: {tracin.vector_bytes / 1e6:.0f} "
          f"MB), then {sum(times[1:]) / max(1, len(times) - 1):.3f} s each")  # fmt: skip
    top = table[(table.on == "x_t") & (table.role == "proponent")].head(3)
    meta = [c for c in top.columns if c in ("meta.word", "meta.engine", "meta.speaker")]
    print(f"  last record ({int(r.instance)}, {int(r.point)}): {r.label_name} called "
          f"{table.target_name.iloc[0]} on xT; its top proponents:\n"
          + top[["train_index", "score", "label_name", *meta]].to_string(index=False))  # fmt: skip
    began = time.perf_counter()
    ranked = tracin.self_influence()
    print(f"  self-influence over the training set: {time.perf_counter() - began:.1f} s; of the top 20, "
          f"{int((~ranked.head(20).agree).sum())} carry a label the model does not predict (all: "
          f"{int((~ranked.agree).sum())} of {len(ranked)})")  # fmt: skip
    print(
        ranked.head(10)[["rank", "train_index", "score", "label_name", "pred_name", *meta]].to_string(
            index=False
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kws-model", default="models/kws-dscnn")
    parser.add_argument("--data", default="data/kws")
    parser.add_argument("--out", default="/tmp/bench-influence")
    parser.add_argument("--records", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    os.environ["PROACTIV_CACHE"] = str(out / "cache")  # the digits CNN trained afresh, with checkpoints
    for domain in ("feature", "waveform"):
        config = {
            "task": "kws",
            "domain": domain,
            "model": {"path": str(Path(args.kws_model).resolve())},
            "data": {"root": str(Path(args.data).resolve()), "split": "test", "instances_per_class": 1},
            "grid": [{"type": "audio_noise", "snr_db": [float("inf"), 0, -5]}],
            "projection": {"cutoff": 0.05, "max_steps": 50},
            "arrays": {"keep": "all"},
        }
        bench(f"KWS {domain} domain", small_run(out / f"kws-{domain}", config), args.records)
    digits = {
        "task": "digits",
        "data": {"instances_per_class": 3},
        "grid": [{"type": "rotate", "degrees": [0, 60]}],
        "projection": {"max_steps": 100},
        "arrays": {"keep": "all"},
    }
    bench("digits CNN", small_run(out / "digits", digits), args.records)


if __name__ == "__main__":
    main()

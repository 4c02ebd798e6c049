"""Attributions on kept records of the KWS demo run (DS-CNN on log-mel features) and a digits run: records per
second for saliency, Grad-CAM, integrated gradients and occlusion (each record attributed on x, xT and x̂T), the
projected time for 1 000 records, the attribution-shift table on top of saliency, and integrated gradients'
completeness on the real model (sum of attributions vs f(x) − f(baseline)).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_attribution.py [--kws RUN] [--digits RUN] [--wave RUN]
        [--threads 1]

Runs that keep fewer records than asked repeat their kept records.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from proactiv.analysis.arrays import kept_pairs
from proactiv.analysis.attribution import (
    METHODS,
    attribute,
    attribution_maps,
    attribution_table,
    baseline_for,
    spread,
)
from proactiv.store import open_run

#: records timed per method (the slow ones on fewer, projected to 1 000)
TIMED = {"saliency": 1000, "gradcam": 1000, "integrated_gradients": 100, "occlusion": 200}


def records(run, n: int):
    """``n`` kept records spread over the run, repeating them when it keeps fewer."""
    pairs = spread(kept_pairs(run), n)
    return pairs.iloc[np.resize(np.arange(len(pairs)), n)].reset_index(drop=True)


def completeness(run, model, n: int = 32) -> np.ndarray:
    """|sum of IG attributions − (f(x) − f(baseline))| / |f(x) − f(baseline)| for the desired class of ``n``
    kept xT."""
    att = attribute(run, records(run, n), "integrated_gradients", inputs=("x_t",), model=model)
    x = torch.from_numpy(att.inputs["x_t"])
    base = baseline_for(run.schema.input, x)
    label = torch.from_numpy(att.targets["x_t"]).long()
    with torch.no_grad():
        gap = (model(x) - model(base + torch.zeros_like(x))).gather(1, label[:, None])[:, 0]
    maps = attribution_maps(model, x, label, "integrated_gradients", baseline=base)
    return ((maps.flatten(1).sum(1) - gap).abs() / gap.abs().clamp_min(1e-6)).numpy()


def bench(path: str, batch_size: int) -> None:
    run = open_run(path)
    model = run.model(device="cpu")
    print(
        f"\n{path}: {run.schema.input.kind} {run.schema.input.shape}, {len(kept_pairs(run))} kept records, "
        f"batch {batch_size}, {torch.get_num_threads()} thread(s)"
    )
    for method in METHODS:
        chosen = records(run, TIMED[method])
        began = time.perf_counter()
        att = attribute(run, chosen, method, model=model, batch_size=batch_size)
        took = time.perf_counter() - began
        rate = len(att) / took
        layer = f" (layer {att.layer})" if att.layer else ""
        print(
            f"  {method:>20}{layer}: {len(att):5d} records (x, xT, x̂T) in {took:6.1f} s = {rate:7.1f} records/s"
            f" → 1 000 records in {1000 / rate:6.1f} s"
        )
    began = time.perf_counter()
    table = attribution_table(run, records(run, 1000), "saliency", model=model, batch_size=batch_size)
    took = time.perf_counter() - began
    print(
        f"  attribution-shift table (saliency, 1 000 records, {table.shape[1] - 2} columns): {took:.1f} s; "
        f"median Spearman ρ(xT, x̂T) {table['attr.spearman_t_proj'].median():.2f}, median share outside the "
        f"clean support: x {table['attr.outside_x'].median():.0%}, xT {table['attr.outside_t'].median():.0%}, "
        f"x̂T {table['attr.outside_proj'].median():.0%}"
    )
    err = completeness(run, model)
    print(
        f"  integrated gradients completeness on 32 xT: median error {np.median(err):.2%}, max {err.max():.2%}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kws", default="runs/kws-demo")
    parser.add_argument("--digits", default="runs/digits-reference")
    parser.add_argument("--wave", default=None, help="a waveform-domain KWS run (domain: waveform), if any")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for path in (args.kws, args.wave, args.digits):
        if path:
            bench(path, args.batch_size)


if __name__ == "__main__":
    main()

"""Benchmark KWS training on the synthesised demo corpus: accuracy overall, per engine, per class, held-out engine.

Re-runnable: the corpus is synthesised once into ``--data`` (cached), then one model is trained on every
engine and one without ``--held-out`` (flite by default), which is then tested on all of that engine's clips.

    .venv/bin/python benchmarks/bench_kws_train.py                 # demo corpus, dscnn, ~8 min on 2 idle cores
    .venv/bin/python benchmarks/bench_kws_train.py --arch cnn --epochs 20
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from proactiv.tasks.kws.models import build_model, count_macs, count_params
from proactiv.tasks.kws.synth import synthesize
from proactiv.tasks.kws.train import train


def step_ms(arch: str, batch: int = 64, repeats: int = 5) -> float:
    """Wall-clock milliseconds per sample of one training step (forward + backward + Adam) on features."""
    model = build_model(arch)
    opt = torch.optim.AdamW(model.parameters())
    x, y = torch.randn(batch, 40, 101), torch.randint(0, 12, (batch,))

    def step():
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - start) / repeats / batch * 1000


def show(title: str, report: dict) -> None:
    engines = ", ".join(f"{k} {v:.1%}" for k, v in report["per_engine"].items())
    classes = ", ".join(f"{k} {v:.0%}" for k, v in report["per_class"].items())
    print(f"  {title}: {report['accuracy']:.2%} of {report['n']} clips | per engine: {engines}")
    print(f"    per class: {classes}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=".cache/kws-demo", help="corpus folder (synthesised when absent)")
    parser.add_argument("--size", default="demo", choices=["tiny", "demo", "large"])
    parser.add_argument("--arch", default="dscnn", choices=["cnn", "dscnn"])
    parser.add_argument("--epochs", type=int, default=30, help="training epochs (0: fit --time-budget)")
    parser.add_argument("--time-budget", type=float, default=270.0, help="seconds per model when --epochs 0")
    parser.add_argument(
        "--threads", type=int, default=2, help="torch threads (1 is faster on a busy machine)"
    )
    parser.add_argument("--held-out", default="flite", help="engine left out of the second run ('' to skip)")
    parser.add_argument("--out", default=".cache/bench-kws", help="where models and metrics go")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    synthesize(args.data, size=args.size, seed=args.seed, progress=True)
    print(f"corpus {args.data} ({args.size}) ready in {time.perf_counter() - start:.0f} s")
    model = build_model(args.arch)
    print(
        f"{args.arch}: {count_params(model):,} parameters, {count_macs(model) / 1e6:.2f} M multiply-adds, "
        f"{step_ms(args.arch):.2f} ms/sample forward+backward (batch 64, {args.threads} threads)"
    )
    budget = args.time_budget if not args.epochs else None
    kw = dict(
        arch=args.arch, epochs=args.epochs or None, time_budget_s=budget, seed=args.seed, threads=args.threads
    )
    summary = {}
    metrics = train(args.data, out=Path(args.out) / "all-engines", **kw)
    print(f"all engines: trained {metrics['epochs']} epochs in {metrics['train_seconds']:.0f} s")
    show("test (held-out voices)", metrics["test"])
    summary["all"] = {k: metrics[k] for k in ("train_seconds", "epochs", "test", "validation")}
    if args.held_out:
        metrics = train(
            args.data, out=Path(args.out) / f"without-{args.held_out}", exclude_engines=(args.held_out,), **kw
        )
        print(
            f"without {args.held_out}: trained {metrics['epochs']} epochs in {metrics['train_seconds']:.0f} s"
        )
        show("test (held-out voices, other engines)", metrics["test"])
        show(f"held-out engine {args.held_out} (all its clips)", metrics["held_out"])
        summary["held_out"] = {k: metrics[k] for k in ("train_seconds", "epochs", "test", "held_out")}
    path = Path(args.out) / "summary.json"
    path.write_text(json.dumps(summary, indent=2))
    print(f"summary written to {path}")


if __name__ == "__main__":
    main()

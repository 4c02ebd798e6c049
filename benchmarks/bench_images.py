"""Image tasks: training, the reference study's 450-point grid, and what projection shows about the denoiser.

    python benchmarks/bench_images.py [--per-class 2] [--denoise-per-class 5] [--parts training,reference,denoise,emnist]

Prints (1) the digits CNN's training time and held-out accuracy at 28×28 (and at the native 8×8), (2) the
450-point rotation × blur × noise sweep over ``--per-class`` digits per class: projections/s, converged
fraction, median steps, the time the full study (20 per class) would take, accuracy per rotation and the
breakpoints the analysis finds, (3) the denoiser's training time and, per corruption alone (the other
transforms at identity), how often its output is within the cutoff of the clean digit, PSNR of f(xT) and of
f(x̂T), and how far the input had to move (d_x) — the corruption it cannot undo needs the largest move.
``--parts …,emnist`` adds (4): reading EMNIST-letters-sized IDX files (124 800 + 20 800 images, written here
with synthetic content: timing only) and the 2-epoch CNN training the emnist task does when given no model.
Times are wall-clock on this machine; each figure is the median of ``--repeats`` runs where repeated.
"""

from __future__ import annotations

import argparse
import gzip
import platform
import shutil
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import yaml

import proactiv as pv
from proactiv.config import parse_config
from proactiv.sweep import sweep_config
from proactiv.tasks import digits
from proactiv.tasks.digits.denoise import train_denoiser
from proactiv.tasks.digits.emnist import load_emnist
from proactiv.tasks.digits.model import train_digits_cnn
from proactiv.tasks.digits.task import EMNIST_EPOCHS

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def training(repeats: int) -> None:
    for size in (28, 8):
        split = digits.digits_split(0, size)
        runs = [timed(lambda split=split: train_digits_cnn(*split["train"], seed=0)) for _ in range(repeats)]
        model = runs[0][0]
        x, y = split["test"]
        with torch.no_grad():
            acc = (model(x).argmax(1) == y).float().mean().item()
        secs = statistics.median(t for _, t in runs)
        params = sum(p.numel() for p in model.parameters())
        print(
            f"digits CNN {size}x{size}: {params} parameters, trained in {secs:.1f} s, test accuracy {acc:.3f}"
        )


def reference_study(per_class: int, out: Path) -> None:
    spec = yaml.safe_load((EXAMPLES / "digits_reference.yaml").read_text())
    spec["data"]["instances_per_class"] = per_class
    cfg = parse_config(spec, "digits_reference.yaml")
    digits.load_task(1)  # train/cache the model outside the timed sweep
    shutil.rmtree(out, ignore_errors=True)
    run, secs = timed(lambda: sweep_config(cfg, out, progress=False))
    rec = run.records
    full = 20 * 10 * 450
    print(
        f"reference grid: {len(rec)} projections ({per_class}/class x 450 points) in {secs:.0f} s = "
        f"{len(rec) / secs:.0f} proj/s; converged {rec.converged.mean():.3f}, median {rec.steps.median():.0f} steps;"
        f" the full study ({full}) would take ~{full / len(rec) * secs / 60:.0f} min"
    )
    ident = rec[rec.point == run.grid.identity_point()]
    print(
        f"  accuracy at the identity point {ident.correct_t.mean():.3f}, over the grid {rec.correct_t.mean():.3f}"
    )
    for col in run.grid.columns:
        alone = rec
        for other in run.grid.columns:
            if other != col:
                alone = alone[alone[other] == 0]
        acc = alone.groupby(col).correct_t.mean()
        print(
            f"  accuracy vs {col} (others at identity): "
            + ", ".join(f"{v:g}: {a:.2f}" for v, a in acc.items())
        )
    bp = pv.analysis.breakpoints(run)
    identity = {c: t.param.identity for c, t in zip(run.grid.columns, run.grid.transforms, strict=True)}
    for _, row in bp[bp.scope == "all"].iterrows():
        others = [f"{c}={v:g}" for c, v in identity.items() if c != row["column"]]
        if set(others) == set(row["condition"].split(", ")):  # the breakpoint of one transform acting alone
            print(
                f"  breakpoint {row['column']} = {row['value']:g} "
                f"({row['metric']} {row['reference']:.2f} at identity; {row['before']:.2f} at {row['previous']:g},"
                f" {row['after']:.2f} at {row['value']:g})"
            )


def denoiser_study(per_class: int, out: Path) -> None:
    train = digits.digits_split(0, 28)["train"][0]
    _, secs = timed(lambda: train_denoiser(train))
    print(f"denoiser: trained in {secs:.0f} s on {train.shape[0]} digits (noise levels 0-0.5)")
    spec = yaml.safe_load((EXAMPLES / "denoise_demo.yaml").read_text())
    spec["data"]["instances_per_class"] = per_class
    shutil.rmtree(out, ignore_errors=True)
    run, secs = timed(lambda: sweep_config(parse_config(spec, "denoise_demo.yaml"), out, progress=False))
    rec = run.records
    print(f"denoise sweep: {len(rec)} projections in {secs:.0f} s, converged {rec.converged.mean():.3f}")
    print(f"  {'corruption':<22}{'within cutoff':>14}{'PSNR f(xT)':>12}{'PSNR f(x̂T)':>12}{'d_x':>8}")
    for col in run.grid.columns:
        identity = {c: t.param.identity for c, t in zip(run.grid.columns, run.grid.transforms, strict=True)}
        alone = rec
        for other, value in identity.items():
            if other != col:
                alone = alone[alone[other] == value]
        for value, g in alone.groupby(col):
            if value == identity[col]:
                continue
            print(
                f"  {col + ' = ' + format(value, 'g'):<22}{g.correct_t.mean():>14.2f}"
                f"{g.psnr_out_t.median():>12.1f}{g.psnr_out_proj.median():>12.1f}{g.d_x.median():>8.3f}"
            )


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(header + array.astype(np.uint8).tobytes())


def emnist_scale(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    gen = np.random.default_rng(0)
    for split, n in (("train", 124_800), ("test", 20_800)):
        write_idx(out / f"emnist-letters-{split}-images-idx3-ubyte.gz", gen.integers(0, 256, (n, 28, 28)))
        write_idx(out / f"emnist-letters-{split}-labels-idx1-ubyte.gz", np.arange(n) % 26 + 1)
    (x, y, names), secs = timed(lambda: load_emnist(out, "train"))
    print(f"EMNIST-sized files: read {x.shape[0]} training images ({len(names)} classes) in {secs:.1f} s")
    _, secs = timed(lambda: train_digits_cnn(x, y, 0, EMNIST_EPOCHS, len(names)))
    print(f"  the emnist task's CNN ({EMNIST_EPOCHS} epochs on them) trains in {secs:.0f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per-class", type=int, default=2)
    ap.add_argument("--denoise-per-class", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("/tmp/bench-images"))
    ap.add_argument(
        "--parts",
        default="training,reference,denoise",
        help="comma-separated: training, reference, denoise, emnist (EMNIST-sized read + training timing)",
    )
    args = ap.parse_args()
    print(
        f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}"
    )
    parts = {
        "training": lambda: training(args.repeats),
        "reference": lambda: reference_study(args.per_class, args.out / "reference"),
        "denoise": lambda: denoiser_study(args.denoise_per_class, args.out / "denoise"),
        "emnist": lambda: emnist_scale(args.out / "emnist"),
    }
    for name in args.parts.split(","):
        if name not in parts:
            ap.error(f"--parts: unknown part {name!r}; choose from {', '.join(parts)}")
        parts[name]()


if __name__ == "__main__":
    main()

"""ONNX round trip of the KWS demo model (DS-CNN on log-mel features) and the digits CNN: export and conversion
time, the converted model's largest difference from onnxruntime on real inputs, and forward+backward (gradient
with respect to the input, what projection runs) of the converted model against the original torch model.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_onnx.py [--kws models/kws-dscnn/model.pt] [--corpus data/kws]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from proactiv import models
from proactiv.fold import fold_batch_norm
from proactiv.tasks import digits
from proactiv.tasks.kws import SpeechCommands
from proactiv.tasks.kws.models import load_model


def step_seconds(model, x: torch.Tensor, repeats: int) -> float:
    """Median seconds of one forward + backward to the input on batch ``x``."""
    times = []
    for _ in range(repeats + 1):
        z = x.clone().requires_grad_(True)
        start = time.perf_counter()
        model(z).logsumexp(1).sum().backward()
        times.append(time.perf_counter() - start)
    return sorted(times[1:])[repeats // 2]


def bench(name: str, model, x: torch.Tensor, folder: Path, repeats: int) -> None:
    start = time.perf_counter()
    path = models.export_onnx(model, x[:1], folder / f"{name}.onnx")
    exported = time.perf_counter() - start
    start = time.perf_counter()
    converted = models.from_onnx(path, sample=x)
    seconds = time.perf_counter() - start
    with torch.no_grad():
        to_torch = float((converted(x) - model(x)).abs().max())
    print(
        f"\n{name}: batch {tuple(x.shape)}, {path.stat().st_size / 1e3:.0f} kB ONNX (opset {converted.opset})"
    )
    print(f"  export {exported:.2f} s, conversion + onnxruntime check {seconds:.2f} s")
    print(
        f"  max |converted − onnxruntime| {converted.max_abs_diff:.3g}, max |converted − torch| {to_torch:.3g}"
    )
    times = {
        "torch": step_seconds(model, x, repeats),
        "torch, batch norm folded (what projection runs)": step_seconds(fold_batch_norm(model), x, repeats),
        "converted from ONNX": step_seconds(converted, x, repeats),
    }
    for label, t in times.items():
        print(f"  forward+backward {label}: {t * 1e3:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kws", default="models/kws-dscnn/model.pt")
    parser.add_argument("--corpus", default="data/kws")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    models._onnx_libraries()
    print(f"importing onnx, onnxruntime and onnx2torch: {time.perf_counter() - start:.2f} s")
    with tempfile.TemporaryDirectory() as tmp:
        kws = load_model(args.kws)
        corpus = SpeechCommands(args.corpus, split="test")
        clips = torch.stack([corpus[i][0] for i in range(args.batch)])
        with torch.no_grad():
            features = kws.frontend(clips)
        bench("kws-dscnn", kws, features, Path(tmp), args.repeats)
        task = digits.load_task(instances_per_class=None)
        bench("digits-cnn", task.model, task.inputs[: args.batch], Path(tmp), args.repeats)


if __name__ == "__main__":
    main()

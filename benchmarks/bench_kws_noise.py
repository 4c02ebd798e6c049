"""Benchmark the keyword model in noise beside today's model: every figure of the demo model's targets in one run.

Trains a model with today's recipe on the demo corpus (or takes ``--model``), and measures it and the baseline
(``--baseline``, read only) on the same material: per noise kind (the demo grid's white noise; hum and synthetic
babble, which training never mixes in) and SNR at speed 1 and pitch 0, accuracy and the share of keywords
decided ``_silence_``; the same under white noise averaged over the demo grid's speed × pitch cells; held-out
voices per engine and per kind of voice; held-out unknown words and near-misses taken for a keyword; false
accepts per hour and the hit rate on running speech, clean and in white noise; the training time.

    .venv/bin/python benchmarks/bench_kws_noise.py                     # trains one model: ~15 min on 2 idle cores
    .venv/bin/python benchmarks/bench_kws_noise.py --model models/kws-dscnn --baseline /tmp/old-model
    .venv/bin/python benchmarks/bench_kws_noise.py --model A --also seed1=B --also narrow=C   # more models
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from proactiv.tasks.kws import noise_robustness
from proactiv.tasks.kws.inference import compute_features, predict
from proactiv.tasks.kws.models import load_model
from proactiv.tasks.kws.openset import evaluate as open_set
from proactiv.tasks.kws.speech_commands import SpeechCommands
from proactiv.tasks.kws.synth import synthesize
from proactiv.tasks.kws.train import accuracy_report, train
from proactiv.tasks.kws.voices import synthesis_kind


def held_out_voices(model, data: str) -> dict:
    """Accuracy on the test split (voices never trained on), overall, per engine and per kind of voice."""
    test = SpeechCommands(data, split="test")
    meta = test.metadata
    speech = (meta.label_name != "_silence_").to_numpy()
    pred = predict(model, compute_features(model.frontend, test.waveforms()))
    report = accuracy_report(pred, test.labels, meta.engine.where(speech, "_background_").to_numpy(),
                             model.class_names)  # fmt: skip
    right = (pred == test.labels).numpy()
    kinds = np.array(
        [synthesis_kind(e, v) if s else "" for e, v, s in zip(meta.engine, meta.voice, speech, strict=True)]
    )
    report["per_kind"] = {k: float(right[kinds == k].mean()) for k in sorted(set(kinds) - {""})}
    return report


#: the ``_unknown_`` offsets around the model's own at which :func:`trade` measures it
TRADE_STEPS = (-0.5, -0.25, 0.0, 0.25)


def trade(model, data: str) -> list[dict]:
    """What the one calibration knob trades: at ``_unknown_`` offsets around the model's own (the ``_silence_``
    offset kept), held-out voices, the open set and white noise at 10 dB. Tells whether a target is missed by
    the model or by where calibration put it on its curve."""
    if model.logit_offset is None:  # an uncalibrated model has no knob
        return []
    unknown = list(model.class_names).index("_unknown_")
    own = model.logit_offset.clone()
    points = []
    try:
        for step in TRADE_STEPS:
            model.logit_offset = own.clone()
            model.logit_offset[unknown] += step
            voices, opened = held_out_voices(model, data), open_set(model, data)
            white = noise_robustness.evaluate(
                model, data, kinds=("white",), snrs_db=(10.0,), speech_snrs_db=()
            )
            speech = opened.get("running_speech", {})
            points.append({
                "unknown_offset": float(model.logit_offset[unknown]), "voices": voices["accuracy"],
                "min_engine": min(v for e, v in voices["per_engine"].items() if not e.startswith("_")),
                "unknown_fa": opened["unknown_words"]["false_accept_rate"],
                "near_miss_fa": opened["unknown_words"]["near_miss"]["false_accept_rate"],
                "fa_per_hour": speech.get("false_accepts_per_hour", math.nan),
                "white_10db": white["kinds"]["white"]["10"]["accuracy"],
            })  # fmt: skip
    finally:
        model.logit_offset = own
    return points


def measure(model, data: str, grid_per_class: int) -> dict:
    found = {"voices": held_out_voices(model, data), **open_set(model, data)}
    found["noise"] = noise_robustness.evaluate(model, data, speech_snrs_db=(20.0, 10.0, 5.0))
    if grid_per_class:
        found["grid_mean"] = noise_robustness.grid_mean(model, data, per_class=grid_per_class)
    found.get("running_speech", {}).pop("accepts", None)
    found["trade"] = trade(model, data)
    return found


def table(rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))


def report(found: dict[str, dict], seconds: dict[str, float]) -> None:
    """Print the figures of every model side by side."""
    names = list(found)
    print("\nheld-out voices and the open set")
    rows = [["model", "held-out voices", "per engine", "per kind of voice", "unknown FA", "near-miss FA",
             "FA/hour", "hit rate", "training s"]]  # fmt: skip
    for name in names:
        f = found[name]
        speech = f.get("running_speech", {})
        rows.append([
            name, f"{f['voices']['accuracy']:.1%}",
            " ".join(f"{e} {v:.1%}" for e, v in f["voices"]["per_engine"].items() if not e.startswith("_")),
            " ".join(f"{k} {v:.1%}" for k, v in f["voices"]["per_kind"].items()),
            f"{f['unknown_words']['false_accept_rate']:.1%}",
            f"{f['unknown_words']['near_miss']['false_accept_rate']:.1%}",
            f"{speech.get('false_accepts_per_hour', math.nan):.0f}", f"{speech.get('hit_rate', math.nan):.0%}",
            f"{seconds[name]:.0f}" if name in seconds else "-",
        ])  # fmt: skip
    table(rows)
    for kind in noise_robustness.KINDS:
        print(f"\n{kind} noise, speed 1, pitch 0: accuracy / keywords decided _silence_ / decided _unknown_")
        snrs = list(found[names[0]]["noise"]["kinds"][kind])
        rows = [["model", *[f"{s} dB" for s in snrs]]]
        for name in names:
            levels = found[name]["noise"]["kinds"][kind]
            rows.append([name, *[f"{levels[s]['accuracy']:.2f} / {levels[s]['keywords_as_silence']:.2f} / "
                                 f"{levels[s]['keywords_as_unknown']:.2f}" for s in snrs]])  # fmt: skip
        table(rows)
    if all("grid_mean" in found[n] for n in names):
        print("\nwhite noise, mean over the demo grid's speed x pitch: accuracy / keywords decided _silence_")
        snrs = list(found[names[0]]["grid_mean"])
        rows = [["model", *[f"{s} dB" for s in snrs]]]
        for name in names:
            grid = found[name]["grid_mean"]
            rows.append(
                [name, *[f"{grid[s]['accuracy']:.2f} / {grid[s]['keywords_as_silence']:.2f}" for s in snrs]]
            )
        table(rows)
    print(
        "\nthe _unknown_ offset's trade: held-out voices (lowest engine) / unknown FA / near-miss FA / FA per hour"
        " / white 10 dB accuracy"
    )
    rows = [["model", "offset", "voices", "unknown FA", "near-miss FA", "FA/hour", "white 10 dB"]]
    for name in names:
        if not found[name]["trade"]:
            rows.append([name, "none: an uncalibrated model has no _unknown_ offset to move", *[""] * 5])
        for p in found[name]["trade"]:
            rows.append([name, f"{p['unknown_offset']:+.2f}", f"{p['voices']:.1%} ({p['min_engine']:.1%})",
                         f"{p['unknown_fa']:.1%}", f"{p['near_miss_fa']:.1%}", f"{p['fa_per_hour']:.0f}",
                         f"{p['white_10db']:.3f}"])  # fmt: skip
    table(rows)
    print("\nrunning speech, clean and in white noise: false accepts per hour / hit rate")
    snrs = list(found[names[0]]["noise"].get("running_speech_white", {}))
    rows = [["model", "clean", *[f"{s} dB" for s in snrs]]]
    for name in names:
        speech = {
            "clean": found[name].get("running_speech", {}),
            **found[name]["noise"]["running_speech_white"],
        }
        rows.append(
            [
                name,
                *[
                    f"{speech[s]['false_accepts_per_hour']:.0f} / {speech[s]['hit_rate']:.0%}"
                    for s in ("clean", *snrs)
                ],
            ]
        )
    table(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", default="data/kws", help="corpus folder (the demo's; synthesised when absent)"
    )
    parser.add_argument("--baseline", default="", help="a model folder to compare with (read only)")
    parser.add_argument("--model", default="", help="an already trained model folder to evaluate instead")
    parser.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="NAME=FOLDER",
        help="another model folder to measure beside them (repeatable), e.g. a second seed",
    )
    parser.add_argument("--out", default=".cache/bench-kws-noise", help="where the new model goes")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--grid-per-class", type=int, default=10, help="clips per class for the grid mean (0: skip)"
    )
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    synthesize(args.data, seed=0, progress=True)
    print(f"corpus {args.data} ready in {time.perf_counter() - start:.0f} s")
    folders, seconds = {}, {}
    if args.baseline:
        folders["baseline"] = Path(args.baseline)
    for also in args.also:
        name, sep, folder = also.partition("=")
        if not sep or not name or not folder:
            parser.error(f"--also {also!r}: expected NAME=FOLDER")
        folders[name] = Path(folder)
    if args.model:
        folders["new"] = Path(args.model)
    else:
        folders["new"] = Path(args.out) / f"seed-{args.seed}"
        train(args.data, out=folders["new"], seed=args.seed, threads=args.threads)
    for name, folder in folders.items():
        metrics_file = folder / "metrics.json"
        if metrics_file.exists():
            seconds[name] = json.loads(metrics_file.read_text())["train_seconds"]
    found = {}
    for name, folder in folders.items():
        start = time.perf_counter()
        found[name] = measure(load_model(folder / "model.pt"), args.data, args.grid_per_class)
        print(f"{name} ({folder}) measured in {time.perf_counter() - start:.0f} s")
    path = Path(args.out) / "summary.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"models": {k: str(v) for k, v in folders.items()}, "found": found}, indent=1,
                               default=str))  # fmt: skip
    print(f"summary written to {path}")
    report(found, seconds)


if __name__ == "__main__":
    main()

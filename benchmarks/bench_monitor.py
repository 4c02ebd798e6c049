"""The monitor over an hour of 16-kHz audio with the demo keyword model, and what each correction changes.

Speed: the demo corpus's running speech, repeated (each repetition under its own seeded white noise at 20 dB
SNR, so no two are alike) to ``--minutes`` of audio, written to a WAV file and monitored as `proactiv monitor`
does (1-s windows every 100 ms, every built-in assertion, two transformed copies per window, the three
corrections): windows per second, wall time and peak RSS. The issue's bar: an hour in under 5 minutes on
2 cores.

Corrections (``--corrections``): the running speech once, clean and under the sweep's ``audio_noise``
transform (white and babble at 10 dB SNR), scored against the keywords said: false accepts per hour and hit
rate of the raw decisions, each correction alone and all of them; beside them the task's own stream rule
(:func:`proactiv.tasks.kws.openset.running_speech`, sentence by sentence) for reference.

    .venv/bin/python benchmarks/bench_monitor.py --corrections
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from proactiv.tasks.kws.decision import StreamRule
from proactiv.tasks.kws.monitor import (
    load_folder,
    monitor_recording,
    read_stream,
    running_speech_stream,
    score,
)
from proactiv.tasks.kws.openset import running_speech
from proactiv.tasks.kws.synth import SAMPLE_RATE
from proactiv.tasks.kws.wavio import write_wav
from proactiv.transforms.base import BatchGenerator, derive_seed
from proactiv.transforms.generic import Noise


def hour_of_audio(data: Path, minutes: float) -> np.ndarray:
    """The running speech repeated to ``minutes``, each repetition under its own seeded 20-dB white noise."""
    speech, _ = running_speech_stream(data)
    noise, parts, total, k = Noise([20.0]), [], 0, 0
    while total < minutes * 60 * SAMPLE_RATE:
        noisy = noise.apply(torch.from_numpy(speech)[None], 20.0, BatchGenerator([derive_seed(7, k)]))[0]
        parts.append(noisy.numpy())
        total, k = total + len(speech), k + 1
    return np.concatenate(parts)[: int(minutes * 60 * SAMPLE_RATE)]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_hour(data: Path, minutes: float, path: Path) -> None:
    """Write the benchmark's recording (run in a child process, so its memory is not counted as the monitor's)."""
    torch.set_num_threads(1)
    write_wav(path, np.clip(hour_of_audio(data, minutes), -1, 1), SAMPLE_RATE)


def speed(model, data: Path, minutes: float, work: Path) -> None:
    path = work / "hour.wav"
    child = multiprocessing.get_context("spawn").Process(target=write_hour, args=(data, minutes, path))
    child.start()
    child.join()
    if child.exitcode != 0:
        sys.exit(f"could not write the benchmark's recording {path} (exit code {child.exitcode})")
    rule = StreamRule()
    stream = read_stream(path, rule)
    start = time.perf_counter()
    store = monitor_recording(stream, model, work / "store", rule, progress=sys.stderr.isatty(), device="cpu")
    wall = time.perf_counter() - start
    summary = store.summary()
    print(f"monitored {summary['minutes']:.1f} min of 16-kHz audio: {summary['steps']} windows in {wall:.1f} s "
          f"({summary['steps'] / wall:.0f} windows/s, {summary['minutes'] * 60 / wall:.1f}x real time) with "
          f"{torch.get_num_threads()} threads; peak RSS {peak_rss_mb():.0f} MB (reading the file and monitoring); "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")  # fmt: skip
    print(
        "violations per minute: "
        + ", ".join(f"{a} {v['per_minute']:.2f}" for a, v in summary["assertions"].items())
    )
    verdict = "under" if wall < 300 * minutes / 60 else "OVER"
    print(f"{verdict} the bar of 5 minutes per hour of audio ({wall / (minutes / 60):.0f} s per hour)")


def corrections(model, data: Path, work: Path) -> None:
    rule = StreamRule()
    reference = running_speech(data, model, rule)
    print(f"\nthe task's stream rule, sentence by sentence (clean): {reference['false_accepts_per_hour']:.0f} false "
          f"accepts per hour, hit rate {reference['hit_rate']:.0%}")  # fmt: skip
    conditions = [
        ("clean", None, "white"),
        ("white noise 10 dB", 10.0, "white"),
        ("babble 10 dB", 10.0, "babble"),
    ]
    print(f"{'condition':<18} {'decision':<18} {'FA/h':>7} {'hit rate':>9}")
    for label, snr, color in conditions:
        wave, truth = running_speech_stream(data, snr, color, seed=0)
        path = work / f"speech-{color}-{snr}.wav"
        write_wav(path, np.clip(wave, -1, 1), SAMPLE_RATE)
        store = monitor_recording(read_stream(path, rule), model, work / f"store-{color}-{snr}", rule, progress=False,
                                  device="cpu")  # fmt: skip
        for column, found in score(store, truth).items():
            name = {"decision": "raw", "corrected": "all corrections"}.get(column, column.removeprefix("c."))
            print(f"{label:<18} {name:<18} {found['per_hour']:7.0f} {found['hit_rate']:9.0%}")
        print(f"{'':<18} ({store.seconds / 60:.1f} min, {len(truth)} keywords said)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models/kws-dscnn"))
    parser.add_argument("--data", type=Path, default=Path("data/kws"))
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--corrections", action="store_true", help="also measure the corrections")
    parser.add_argument("--no-speed", action="store_true", help="skip the hour")
    args = parser.parse_args()
    if args.minutes <= 0 or args.threads < 1:
        parser.error(f"--minutes {args.minutes}, --threads {args.threads}: expected positive values")
    torch.set_num_threads(args.threads)
    if not (args.model / "model.pt").is_file():
        sys.exit(f"no demo model in {args.model} (no model.pt yet): train it with `make demo` or "
                 f"`proactiv kws train --data {args.data} --out {args.model}`, or pass --model FOLDER")  # fmt: skip
    if not (args.data / "_running_speech_" / "sentences.csv").is_file():
        sys.exit(
            f"no running speech in {args.data}: synthesise the demo corpus with `proactiv kws synth --out {args.data}`"
        )
    model = load_folder(args.model)
    print(f"model {args.model} ({model.arch}), corpus {args.data}, {torch.get_num_threads()} threads")
    with tempfile.TemporaryDirectory(prefix="bench-monitor-") as tmp:
        if not args.no_speed:
            speed(model, args.data, args.minutes, Path(tmp))
        if args.corrections:
            corrections(model, args.data, Path(tmp))


if __name__ == "__main__":
    main()

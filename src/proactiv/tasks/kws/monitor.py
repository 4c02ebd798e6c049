"""The keyword spotter under :func:`proactiv.monitor`: its assertions and corrections set from its own stream
rule, a recording's keywords read from a labels file, and false accepts per hour and the hit rate of every
decision the store keeps (raw, each correction, all), scored as the open-set evaluation scores running speech
(:func:`~proactiv.tasks.kws.openset.match_firings`).

A firing here is the beginning of a keyword in a decision column. On the raw decisions that is every window
whose decision turns to a keyword, which fires far more often than the task's :class:`StreamRule`; the
corrections flicker suppression (``hops`` windows) and refractory hold (``refractory_s``) are that rule's two
halves, and majority over transformed copies is a third it lacks, so each can be measured on its own.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from proactiv.monitor import (
    DEFAULT_COPIES,
    Alternation,
    Consistency,
    EnergyFloor,
    Flicker,
    HoldRefractory,
    MajorityOfCopies,
    MonitorStore,
    Refractory,
    SuppressFlicker,
    WaveStream,
    monitor,
)
from proactiv.tasks.kws.decision import StreamRule
from proactiv.tasks.kws.models import KeywordModel, load_model
from proactiv.tasks.kws.openset import match_firings
from proactiv.tasks.kws.synth import SAMPLE_RATE, SPEECH_DIR
from proactiv.tasks.kws.wavio import read_wav

LABEL_COLUMNS = ("keyword", "start_s", "end_s")


def load_folder(path: str | os.PathLike, device: str = "cpu") -> KeywordModel:
    """A keyword model from a folder written by ``proactiv kws train`` (its ``model.pt``) or a model file."""
    path = Path(path)
    if path.is_dir():
        if not (path / "model.pt").is_file():
            raise ValueError(
                f"{path}: no model.pt in this folder; train one with `proactiv kws train --out {path}`"
            )
        path = path / "model.pt"
    elif not path.exists():
        raise ValueError(f"--model {path}: no such folder or file")
    return load_model(path, device)


def keywords_of(model: KeywordModel) -> list[str]:
    return [n for n in model.class_names if not n.startswith("_")]


def assertions_for(
    model: KeywordModel, rule: StreamRule, energy_floor_db: float = -50.0, copies: Sequence = DEFAULT_COPIES
) -> list:
    """Every built-in assertion watching the model's keywords, with the stream rule's hops and refractory time
    (consistency under ``copies``)."""
    words = keywords_of(model)
    return [Flicker(rule.hops, words), Alternation(rule.refractory_s, words), Refractory(rule.refractory_s, words),
            Consistency(copies, words), EnergyFloor(energy_floor_db, classes=words)]  # fmt: skip


def corrections_for(model: KeywordModel, rule: StreamRule) -> list:
    """Majority over the copies, then flicker suppression and the refractory hold of the stream rule (majority
    first: it reads the copies of the raw window)."""
    return [
        MajorityOfCopies(),
        SuppressFlicker(rule.hops),
        HoldRefractory(rule.refractory_s, keywords_of(model)),
    ]


def read_stream(path: str | os.PathLike, rule: StreamRule) -> WaveStream:
    """A recording as the stream the model hears: 16-kHz mono, cut by the stream rule; refused by name when not."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such WAV file")
    wave, rate = read_wav(path)
    if wave.ndim != 1:
        raise ValueError(
            f"{path}: {wave.shape[1]} channels; the monitor reads mono audio (mix it down first)"
        )
    if rate != SAMPLE_RATE:
        raise ValueError(
            f"{path}: sample rate {rate} Hz, the keyword model expects {SAMPLE_RATE} Hz "
            f"(resample it, e.g. `sox {path.name} -r {SAMPLE_RATE} out.wav`)"
        )
    return WaveStream(wave, rate, rule.window_s, rule.hop_s, name=path.name, source=str(path.resolve()))


def read_labels(path: str | os.PathLike, class_names: Sequence[str]) -> list[tuple[str, float, float]]:
    """The keywords said in a recording, from a CSV with columns keyword, start_s, end_s (seconds)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"--labels {path}: no such file")
    frame = pd.read_csv(path)
    missing = [c for c in LABEL_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{path}: no column {', '.join(missing)}; expected columns {', '.join(LABEL_COLUMNS)}"
        )
    for row in frame.itertuples():
        if row.keyword not in class_names:
            raise ValueError(
                f"{path} row {row.Index + 2}: keyword {row.keyword!r} is not one of the model's classes"
            )
        if not (np.isfinite([row.start_s, row.end_s]).all() and row.start_s < row.end_s):
            raise ValueError(
                f"{path} row {row.Index + 2}: start_s {row.start_s}, end_s {row.end_s}; expected start < end"
            )
    return [(str(r.keyword), float(r.start_s), float(r.end_s)) for r in frame.itertuples()]


def score(store: MonitorStore, truth: Sequence[tuple[str, float, float]]) -> dict[str, dict]:
    """Per decision column: false accepts, false accepts per hour and the hit rate of the keywords in ``truth``
    (NaN without any)."""
    hours = store.seconds / 3600
    out = {}
    for column in store.decision_columns():
        fired = store.firings(column)
        hits, false = match_firings(list(zip(fired.start_s, fired.end_s, fired.name, strict=True)), truth)
        out[column] = {"false_accepts": len(false), "per_hour": len(false) / hours if hours else float("nan"),
                       "hit_rate": float(np.mean(hits)) if hits else float("nan"), "keywords": len(hits)}  # fmt: skip
    return out


def running_speech_stream(
    root: str | os.PathLike,
    snr_db: float | None = None,
    color: str = "white",
    seed: int = 0,
    sentences: pd.DataFrame | None = None,
) -> tuple[np.ndarray, list[tuple[str, float, float]]]:
    """The corpus's running speech as one recording (its sentences one after another) and the keywords said in
    it; with ``snr_db``, each sentence mixed with noise of ``color`` at that SNR (the sweep's ``audio_noise``
    transform, seeded by sentence); ``sentences``: some rows of its ``sentences.csv`` (default: all)."""
    from proactiv.transforms.audio import AudioNoise
    from proactiv.transforms.base import BatchGenerator, derive_seed

    listed = Path(root) / SPEECH_DIR / "sentences.csv"
    if not listed.is_file():
        raise ValueError(
            f"{root}: no running speech ({listed} is missing); synthesise it with `proactiv kws synth`"
        )
    frame = pd.read_csv(listed) if sentences is None else sentences
    noise = AudioNoise([snr_db], color=color) if snr_db is not None else None
    parts, truth, at = [], [], 0.0
    for sentence in frame.itertuples():
        wave, rate = read_wav(Path(root) / sentence.path)
        if rate != SAMPLE_RATE or wave.ndim != 1:
            raise ValueError(f"{Path(root) / sentence.path}: expected {SAMPLE_RATE}-Hz mono running speech")
        if noise is not None:
            generator = BatchGenerator([derive_seed(seed, sentence.Index)])
            wave = noise.apply(torch.from_numpy(wave)[None], float(snr_db), generator)[0].numpy()
        if isinstance(sentence.keyword, str) and sentence.keyword:
            truth.append(
                (sentence.keyword, at + sentence.keyword_start_ms / 1000, at + sentence.keyword_end_ms / 1000)
            )
        parts.append(wave.astype(np.float32))
        at += len(wave) / SAMPLE_RATE
    return np.concatenate(parts), truth


def monitor_recording(
    stream: WaveStream,
    model: KeywordModel,
    out: str | os.PathLike,
    rule: StreamRule | None = None,
    corrections: bool = True,
    **options,
) -> MonitorStore:
    """Monitor a recording with the keyword model: its assertions and (unless ``corrections=False``) its
    corrections, events = its keywords; ``options`` go to :func:`proactiv.monitor`."""
    rule = rule or StreamRule()
    return monitor(model.waveform_model(), stream, assertions_for(model, rule),
                   corrections_for(model, rule) if corrections else (), out=out,
                   class_names=model.class_names, events=keywords_of(model), **options)  # fmt: skip

"""How a keyword model holds up in noise: the demo grid's white noise, and noise kinds its training never mixed in.

A keyword spotter fails in noise in two ways accuracy alone hides: a keyword decided ``_silence_`` (the noise
is heard, the word is not) and one decided ``_unknown_``. Per noise kind and SNR, on the test split's keyword
and unknown-word clips (voices and words never used in training), each clip mixed by the sweep's own
:class:`~proactiv.transforms.audio.AudioNoise` with its own seed (the same noise for every model and every SNR):
accuracy, keyword recall, the share of keywords decided ``_silence_`` and ``_unknown_``, and unknown words
taken for a keyword; on the running speech mixed with white noise: false accepts per hour and the hit rate.

Kinds: ``white`` (the demo grid's), ``hum`` (mains hum, tonal) and ``babble`` (synthetic speech-shaped
talkers). Training mixes in the corpus's background files only (white, pink and brown noise, babble of training
voices), so hum and the synthetic babble tell whether a gain is noise in general or the grid's noise learnt.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from proactiv.progress import progress_bar
from proactiv.tasks.kws.inference import compute_features, predict
from proactiv.tasks.kws.openset import running_speech
from proactiv.tasks.kws.speech_commands import SpeechCommands
from proactiv.transforms.audio import AudioNoise, Pitch, Speed
from proactiv.transforms.base import BatchGenerator

KINDS = ("white", "hum", "babble")
SNRS_DB = (math.inf, 20.0, 10.0, 5.0, 0.0, -5.0)
#: the demo grid's other axes, over which :func:`grid_mean` averages
GRID_SPEEDS = (0.8, 1.0, 1.25)
GRID_PITCHES = (-4.0, 0.0, 4.0)


def snr_key(snr_db: float) -> str:
    """How an SNR names its entry in the metrics (JSON keys are strings): ``"inf"``, ``"20"``, ``"-5"``."""
    return "inf" if math.isinf(snr_db) else f"{snr_db:g}"


def clip_measures(pred: torch.Tensor, labels: torch.Tensor, class_names: Sequence[str]) -> dict:
    """Accuracy over all clips, keyword recall, the shares of keyword clips decided ``_silence_`` and
    ``_unknown_``, and the share of ``_unknown_`` clips decided as a keyword (NaN where there are no clips)."""
    names = list(class_names)
    keyword_ids = torch.tensor([i for i, n in enumerate(names) if not n.startswith("_")])
    keyword = torch.isin(labels, keyword_ids)

    def share(mask: torch.Tensor, of: torch.Tensor) -> float:
        return mask[of].double().mean().item() if of.any() else float("nan")

    measures = {
        "n": int(len(labels)),
        "accuracy": share(pred == labels, torch.ones_like(keyword)),
        "keyword_recall": share(pred == labels, keyword),
    }
    for name in ("_silence_", "_unknown_"):
        if name in names:
            measures[f"keywords_as{name[:-1]}"] = share(pred == names.index(name), keyword)
    if "_unknown_" in names:
        measures["unknown_taken_for_keyword"] = share(
            torch.isin(pred, keyword_ids), labels == names.index("_unknown_")
        )
    return measures


def mixed(waves: torch.Tensor, kind: str, snr_db: float, seeds: Sequence[int]) -> torch.Tensor:
    """``waves`` (N, samples) with ``kind`` noise at ``snr_db``, clip i's noise drawn from ``seeds[i]``."""
    if math.isnan(snr_db) or snr_db == -math.inf:
        raise ValueError(f"noise at snr_db={snr_db!r}: expected a number of dB, or +inf for no noise")
    if math.isinf(snr_db):
        return waves
    return AudioNoise(color=kind).transform(waves, snr_db, BatchGenerator(seeds))


def _clip_seeds(seed: int, kind: str, n: int) -> list[int]:
    """One seed per clip and noise kind: the same noise under every SNR and for every model."""
    base = int(np.random.default_rng([seed, KINDS.index(kind) if kind in KINDS else 99]).integers(2**31))
    return [base + i for i in range(n)]


def held_out_clips(data_root: str | os.PathLike) -> tuple[torch.Tensor, torch.Tensor]:
    """The test split's keyword and unknown-word clips (no silence clips: noise has no SNR against them)."""
    test = SpeechCommands(data_root, split="test", silence_per_class=0)
    return test.waveforms(), test.labels


def _decide(model, waves: torch.Tensor, device: str) -> torch.Tensor:
    return predict(model, compute_features(model.frontend.to(device), waves, device), device)


def evaluate(
    model,
    data_root: str | os.PathLike,
    *,
    kinds: Sequence[str] = KINDS,
    snrs_db: Sequence[float] = SNRS_DB,
    speech_snrs_db: Sequence[float] = (math.inf, 20.0, 10.0, 5.0, 0.0),
    seed: int = 0,
    batch: int = 256,
    device: str = "cpu",
    progress: bool = False,
) -> dict:
    """Every measure of the module docstring for ``model`` (a :class:`~proactiv.tasks.kws.models.KeywordModel`,
    deciding with its own calibration) on the corpus ``data_root``."""
    waves, labels = held_out_clips(data_root)
    names = list(model.class_names)
    report = {"seed": seed, "clips": int(len(labels)), "kinds": {}}
    noisy = [s for s in snrs_db if not math.isinf(s)]
    with progress_bar("evaluations", progress) as bar:
        task = bar.add_task("noise robustness", total=1 + len(kinds) * len(noisy) + len(speech_snrs_db))
        clean = clip_measures(_decide(model, waves, device), labels, names)
        bar.advance(task)
        for kind in kinds:
            seeds = _clip_seeds(seed, kind, len(waves))
            levels = {"inf": clean} if len(noisy) < len(snrs_db) else {}
            for snr in noisy:
                pred = torch.cat([
                    _decide(model, mixed(waves[i : i + batch], kind, snr, seeds[i : i + batch]), device)
                    for i in range(0, len(waves), batch)
                ])  # fmt: skip
                levels[snr_key(snr)] = clip_measures(pred, labels, names)
                bar.advance(task)
            report["kinds"][kind] = levels
        speech, base = {}, _clip_seeds(seed + 1, "white", 1)[0]  # sentence i's noise: seed base + i
        for snr in speech_snrs_db:
            found = running_speech(
                Path(data_root), model, device=device,
                corrupt=None if math.isinf(snr) else lambda w, i, s=snr: mixed(w[None], "white", s, [base + i])[0],
            )  # fmt: skip
            bar.advance(task)
            if found is None:
                break
            speech[snr_key(snr)] = {
                k: found[k] for k in ("false_accepts", "false_accepts_per_hour", "hit_rate", "hours")
            }
        if speech:
            report["running_speech_white"] = speech
    return report


def grid_mean(
    model,
    data_root: str | os.PathLike,
    *,
    per_class: int = 20,
    snrs_db: Sequence[float] = SNRS_DB,
    speeds: Sequence[float] = GRID_SPEEDS,
    pitches: Sequence[float] = GRID_PITCHES,
    seed: int = 0,
    device: str = "cpu",
) -> dict:
    """Measures under white noise averaged over the demo grid's speed × pitch cells, on up to ``per_class``
    test clips of each class (the transforms in the grid's order: noise, speed, pitch); per SNR."""
    waves, labels = held_out_clips(data_root)
    rng = np.random.default_rng(seed)
    keep = np.concatenate([
        rng.permutation(np.flatnonzero(labels.numpy() == c))[:per_class] for c in sorted(set(labels.tolist()))
    ])  # fmt: skip
    waves, labels = waves[keep], labels[keep]
    seeds = _clip_seeds(seed, "white", len(waves))
    names = list(model.class_names)
    out = {}
    for snr in snrs_db:
        noisy = mixed(waves, "white", snr, seeds)
        cells = []
        for speed in speeds:
            fast = noisy if speed == 1.0 else Speed().transform(noisy, speed, BatchGenerator(seeds))
            for pitch in pitches:
                moved = fast if pitch == 0.0 else Pitch().transform(fast, pitch, BatchGenerator(seeds))
                cells.append(clip_measures(_decide(model, moved, device), labels, names))
        out[snr_key(snr)] = {k: float(np.mean([c[k] for c in cells])) for k in cells[0] if k != "n"}
        out[snr_key(snr)]["n"] = int(len(labels))
    return out

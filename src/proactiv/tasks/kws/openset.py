"""Open-set evaluation of a keyword model: what it does with words and speech that are not its keywords.

Held-out voices' accuracy hides the number that matters in deployment, the false accepts. Three measures,
each per engine, on material of the test split only (voices, and unknown words, never used in training):

Unknown words
    The test split's ``_unknown_`` clips taken for a keyword (the false-accept rate), near-misses apart,
    with the words taken for each keyword (``confusions``). On a synthesised corpus the split is by word,
    so every one of these words is new to the model.
Homophones
    Clips of words said like a keyword (``know``, ``write``): how often they are taken for that keyword.
    Reported apart and never counted as false accepts: from one clip no model can tell them apart.
Running speech
    Sentences of common words, slid over with a 1-s window (:class:`~proactiv.tasks.kws.decision.StreamRule`):
    false accepts per hour of audio (every firing except the hit of a sentence's own keyword), and the hit
    rate on the sentences that hold a keyword (it fires in a window overlapping the keyword).

A corpus without the homophone or running-speech folders (the real Speech Commands) gets the unknown-word
measure only.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from proactiv.tasks.kws.decision import StreamRule
from proactiv.tasks.kws.inference import compute_features, predict
from proactiv.tasks.kws.speech_commands import SpeechCommands, load_clip
from proactiv.tasks.kws.synth import HOMOPHONES_DIR, SAMPLE_RATE, SPEECH_DIR, UNKNOWN
from proactiv.tasks.kws.wavio import read_wav


def decide(model, waves: torch.Tensor, device: str = "cpu") -> np.ndarray:
    """The model's clip decisions (class indices) for waveforms (N, samples), through its own frontend."""
    if len(waves) == 0:
        return np.zeros(0, dtype=int)
    return predict(model, compute_features(model.frontend.to(device), waves, device), device).numpy()


def _rate(accepted: np.ndarray) -> float:
    return float(accepted.mean()) if len(accepted) else float("nan")


def _accepts(frame: pd.DataFrame, accepted: np.ndarray) -> dict:
    """Clip count, false-accept rate and the rate per engine."""
    engines = frame["engine"].to_numpy() if "engine" in frame else np.full(len(frame), "all")
    return {
        "n": int(len(frame)),
        "false_accept_rate": _rate(accepted),
        "per_engine": {str(e): _rate(accepted[engines == e]) for e in sorted(set(engines))},
    }


def unknown_words(frame: pd.DataFrame, pred: np.ndarray, class_names: list[str]) -> dict:
    """False accepts of ``_unknown_`` clips (``frame``: their metadata, with ``word`` and, from a synthesised
    corpus, ``kind`` and ``resembles``) given the decisions ``pred``: overall, near-misses and other words
    apart, which keyword they were taken for, and per word (most false accepts first)."""
    names = np.asarray(class_names)
    accepted = np.array([not n.startswith("_") for n in names[pred]], dtype=bool)
    kinds = frame["kind"].to_numpy() if "kind" in frame else np.full(len(frame), "other")
    report = _accepts(frame, accepted)
    for kind in ("near_miss", "other"):
        report[kind] = _accepts(frame[kinds == kind], accepted[kinds == kind])
    report["taken_for"] = pd.Series(names[pred][accepted]).value_counts().astype(int).to_dict()
    table = pd.DataFrame(
        {
            "word": frame["word"].to_numpy(),
            "kind": kinds,
            "resembles": frame["resembles"].to_numpy() if "resembles" in frame else "",
            "accepted": accepted,
            "taken_for": np.where(accepted, names[pred], ""),
        }
    )
    words = []
    for (word, kind, resembles), rows in table.groupby(["word", "kind", "resembles"], sort=False):
        taken = rows.taken_for[rows.accepted].value_counts().astype(int).to_dict()
        if taken:
            words.append({"word": word, "kind": kind, "resembles": resembles, "n": int(len(rows)),
                          "false_accepts": int(rows.accepted.sum()), "taken_for": taken})  # fmt: skip
    report["confusions"] = sorted(words, key=lambda w: (-w["false_accepts"], w["word"]))
    return report


def homophones(root: Path, model, device: str = "cpu") -> dict | None:
    """How often homophones of a keyword are taken for it (and for any keyword); None without any."""
    listed = root / HOMOPHONES_DIR / "metadata.csv"
    if not listed.exists():
        return None
    frame = pd.read_csv(listed, keep_default_na=False)
    if frame.empty:
        return None
    waves = torch.from_numpy(np.stack([load_clip(root / p) for p in frame.path]))
    names = np.asarray(model.class_names)[decide(model, waves, device)]
    return {
        "n": int(len(frame)),
        "words": sorted(set(frame.word)),
        "taken_for_their_keyword": _rate(names == frame.resembles.to_numpy()),
        "taken_for_a_keyword": _rate(np.array([not n.startswith("_") for n in names], dtype=bool)),
    }


def match_firings(
    firings: Sequence[tuple[float, float, str]], truth: Sequence[tuple[str, float, float]]
) -> tuple[list[bool], list[int]]:
    """Firings (window start, window end, class name), in order, against the keywords said (keyword, start,
    end; one unit for all): a firing is the hit of the first keyword it names and overlaps that no firing hit
    before, else a false accept. Returns whether each keyword was hit and the positions of the false accepts."""
    hit, false = [False] * len(truth), []
    for i, (start, end, name) in enumerate(firings):
        for k, (word, lo, hi) in enumerate(truth):
            if not hit[k] and word == name and start < hi and end > lo:
                hit[k] = True
                break
        else:
            false.append(i)
    return hit, false


def running_speech(
    root: Path,
    model,
    rule: StreamRule | None = None,
    device: str = "cpu",
    corrupt: Callable[[torch.Tensor, int], torch.Tensor] | None = None,
) -> dict | None:
    """False accepts per hour and the keyword hit rate on the corpus's running speech; None without any.

    ``corrupt(wave, i)`` changes sentence ``i``'s waveform before it is windowed (e.g. noise mixed in at an
    SNR over the whole sentence, seeded by ``i``)."""
    listed = root / SPEECH_DIR / "sentences.csv"
    if not listed.exists():
        return None
    frame = pd.read_csv(listed)
    if frame.empty:
        return None
    rule = rule or StreamRule()
    names = list(model.class_names)
    keywords = [i for i, n in enumerate(names) if not n.startswith("_")]
    rows = []
    for sentence in frame.itertuples():
        wave, rate = read_wav(root / sentence.path)
        if rate != SAMPLE_RATE or wave.ndim != 1:
            raise ValueError(f"{root / sentence.path}: expected {SAMPLE_RATE}-Hz mono running speech")
        wave = torch.from_numpy(wave)
        if corrupt is not None:
            wave = corrupt(wave, int(sentence.Index))
        windows = rule.windows(wave, SAMPLE_RATE)
        keyword = sentence.keyword if isinstance(sentence.keyword, str) else ""
        fired = [(window * rule.hop_s * 1000, (window * rule.hop_s + rule.window_s) * 1000, names[cls])
                 for window, cls in rule.fire(decide(model, windows, device), keywords)]  # fmt: skip
        truth = [(keyword, sentence.keyword_start_ms, sentence.keyword_end_ms)] if keyword else []
        hits, false = match_firings(fired, truth)
        rows += [(sentence.engine, fired[i][2], sentence.path, round(fired[i][0] / 1000, 2)) for i in false]
        frame.loc[sentence.Index, "hit"] = bool(hits) and hits[0]
    accepts = pd.DataFrame(rows, columns=["engine", "taken_for", "path", "window_start_s"])
    per_engine = {}
    for engine, part in frame.groupby("engine"):
        hours = float(part.seconds.sum()) / 3600
        count = int((accepts.engine == engine).sum())
        per_engine[str(engine)] = {"hours": hours, "false_accepts": count, "per_hour": count / hours}
    with_keyword = frame.keyword.fillna("").astype(str) != ""
    hours = float(frame.seconds.sum()) / 3600
    return {
        "rule": rule.describe(),
        "sentences": int(len(frame)),
        "hours": hours,
        "false_accepts": int(len(accepts)),
        "false_accepts_per_hour": len(accepts) / hours,
        "per_engine": per_engine,
        "taken_for": accepts.taken_for.value_counts().astype(int).to_dict(),
        "keyword_sentences": int(with_keyword.sum()),
        "hit_rate": _rate(frame.hit[with_keyword].to_numpy(dtype=bool)),
        "accepts": accepts.to_dict("records"),
    }


def evaluate(
    model, data_root: str | os.PathLike, rule: StreamRule | None = None, device: str = "cpu"
) -> dict:
    """Every open-set measure of ``model`` (a :class:`~proactiv.tasks.kws.models.KeywordModel`, which decides
    with its own calibration) on the corpus ``data_root`` (see the module docstring)."""
    root = Path(data_root)
    test = SpeechCommands(root, split="test", silence_per_class=0)
    unknown = (test.metadata.label_name == UNKNOWN).to_numpy()
    pred = decide(model, test.waveforms()[torch.as_tensor(np.flatnonzero(unknown))], device)
    report = {"unknown_words": unknown_words(test.metadata[unknown], pred, list(model.class_names))}
    for name, measure in (("homophones", homophones(root, model, device)),
                          ("running_speech", running_speech(root, model, rule, device))):  # fmt: skip
        if measure is not None:
            report[name] = measure
    return report

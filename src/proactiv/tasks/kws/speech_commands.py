"""Loader for the Speech Commands folder layout: the real data set (v0.02) or a synthesised corpus.

The layout is ``ROOT/<word>/<speaker>_nohash_<n>.wav`` with ``validation_list.txt`` and
``testing_list.txt`` (relative paths; every other clip is training data) and ``_background_noise_/``.
Words outside the 10 keywords are ``_unknown_``; ``_silence_`` clips are cut from the background files,
deterministically for a seed. ``metadata.csv`` (written by :func:`proactiv.tasks.kws.synth.synthesize`) is
optional: when present its columns are added to :attr:`SpeechCommands.metadata`.

How clips are conformed to 1 s of 16-kHz mono (:func:`load_clip`):

- a corrupt, truncated, empty or non-WAV file raises ``ValueError`` naming the file and the problem;
- integer PCM of 8, 16, 24 or 32 bits is read; float or compressed WAV is rejected (``ValueError``);
- several channels are averaged to mono;
- another sample rate is resampled to 16 kHz (polyphase, ``scipy.signal.resample_poly``);
- a shorter clip is zero-padded at the end (as TensorFlow's loader does for Speech Commands);
- a longer clip is centre-cropped to 1 s (real Speech Commands clips are at most 1 s; a longer recording
  most likely has its word near the middle).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from proactiv.tasks.kws.synth import BACKGROUND_DIR, CLASS_NAMES, KEYWORDS, SAMPLE_RATE, SILENCE, UNKNOWN
from proactiv.tasks.kws.wavio import read_wav, resample

__all__ = ["SPLITS", "SpeechCommands", "load_clip"]

SPLITS = ("train", "validation", "test")
_LISTS = {"validation": "validation_list.txt", "test": "testing_list.txt"}


def load_clip(path: str | os.PathLike) -> np.ndarray:
    """A WAV file as exactly 1 s of 16-kHz mono float32 (see the module docstring for the rules)."""
    return _fit(_mono_16k(path))


def _mono_16k(path: str | os.PathLike) -> np.ndarray:
    samples, rate = read_wav(path)
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    return resample(samples, rate, SAMPLE_RATE) if rate != SAMPLE_RATE else samples


def _fit(samples: np.ndarray) -> np.ndarray:
    """Zero-pad at the end or centre-crop to ``SAMPLE_RATE`` samples."""
    if len(samples) >= SAMPLE_RATE:
        start = (len(samples) - SAMPLE_RATE) // 2
        return np.ascontiguousarray(samples[start : start + SAMPLE_RATE], dtype=np.float32)
    return np.pad(samples, (0, SAMPLE_RATE - len(samples))).astype(np.float32)


class SpeechCommands(Dataset):
    """Keyword-spotting clips in the Speech Commands layout, as 12 classes (:data:`CLASS_NAMES`).

    Parameters
    ----------
    root
        Folder in the Speech Commands layout (the real v0.02 data or a synthesised corpus).
    split
        ``"train"``, ``"validation"``, ``"test"`` or None for every clip.
    silence_per_class
        Number of ``_silence_`` clips as a multiple of the mean keyword-class size in this split
        (0 for none). Each is 1 s cut from a background file at a random start, scaled by a random gain
        in [0, 1), drawn from a generator seeded by (seed, split). Their ``split`` is the requested split
        (``"all"`` when ``split`` is None); ``noise_start`` and ``noise_gain`` in :attr:`metadata` say which cut.
    unknown_per_class
        None keeps every ``_unknown_`` clip; a number keeps that multiple of the mean keyword-class size,
        chosen by a seeded shuffle.
    seed
        Decides the silence clips and the unknown subset.

    Items are ``(waveform, label)``: a float32 tensor of shape ``(16000,)`` and the class index. Audio is
    read lazily, so a bad file raises ``ValueError`` when it is first read.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str | None = "test",
        *,
        silence_per_class: float = 1.0,
        unknown_per_class: float | None = None,
        seed: int = 0,
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.root}: no such folder (expected the Speech Commands layout)")
        if split is not None and split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; choose one of {SPLITS} or None")
        self.split = split
        self.class_names = list(CLASS_NAMES)
        clips = self._select(self._scan(), split, unknown_per_class, seed)
        silence = self._silence(clips, silence_per_class, seed)
        self.metadata = pd.concat([clips, silence], ignore_index=True) if len(silence) else clips
        if "label" in self.metadata:  # metadata.csv's class-name column
            self.metadata.loc[self.metadata.label_name == SILENCE, "label"] = SILENCE
        self.labels = torch.tensor(
            [self.class_names.index(n) for n in self.metadata.label_name], dtype=torch.long
        )
        self._waveforms: torch.Tensor | None = None

    # ------------------------------------------------------------------------------------------ index

    def _scan(self) -> pd.DataFrame:
        """Every clip under a word folder, with its split, label name, speaker and metadata.csv columns."""
        paths = sorted(
            f"{word.name}/{wav.name}"
            for word in self.root.iterdir()
            if word.is_dir() and not word.name.startswith(("_", "."))
            for wav in word.glob("*.wav")
            if not wav.name.startswith(".")
        )
        if not paths:
            raise ValueError(
                f"{self.root}: no <word>/*.wav clips found (expected the Speech Commands layout)"
            )
        frame = pd.DataFrame({"path": paths})
        frame["word"] = frame.path.str.split("/").str[0]
        frame["label_name"] = frame.word.where(frame.word.isin(KEYWORDS), UNKNOWN)
        frame["speaker"] = frame.path.str.split("/").str[1].str.split("_nohash_").str[0]
        frame["split"] = "train"
        for split, name in _LISTS.items():
            listed = self.root / name
            if listed.exists():
                frame.loc[frame.path.isin(listed.read_text().split()), "split"] = split
            elif self.split in ("train", split):
                raise ValueError(f"{listed}: missing, so the {split} split is unknown; use split=None")
        extra = self.root / "metadata.csv"
        if extra.exists():
            more = pd.read_csv(extra, keep_default_na=False)
            more = more[["path", *(c for c in more.columns if c not in frame.columns)]]
            frame = frame.merge(more, on="path", how="left")
        return frame

    @staticmethod
    def _select(frame: pd.DataFrame, split: str | None, unknown_per_class: float | None, seed: int):
        if split is not None:
            frame = frame[frame.split == split]
        if unknown_per_class is not None:
            unknown = np.flatnonzero(frame.label_name == UNKNOWN)
            keep = round(unknown_per_class * _mean_keyword_count(frame))
            rng = np.random.default_rng([seed, 1, SPLITS.index(split) if split else len(SPLITS)])
            drop = rng.permutation(unknown)[keep:]
            frame = frame.drop(frame.index[drop])
        return frame.reset_index(drop=True)

    def _silence(self, clips: pd.DataFrame, per_class: float, seed: int) -> pd.DataFrame:
        """Silence rows: which background file, where it starts and its gain."""
        count = round(per_class * _mean_keyword_count(clips))
        if count == 0:
            return pd.DataFrame()
        files = sorted(p for p in (self.root / BACKGROUND_DIR).glob("*.wav") if not p.name.startswith("."))
        if not files:
            raise ValueError(
                f"{self.root / BACKGROUND_DIR}: no background .wav files to cut _silence_ clips from; "
                "pass silence_per_class=0"
            )
        self._background = {f"{BACKGROUND_DIR}/{f.name}": _mono_16k(f) for f in files}
        names = list(self._background)
        rng = np.random.default_rng([seed, 2, SPLITS.index(self.split) if self.split else len(SPLITS)])
        chosen = rng.integers(len(names), size=count)
        starts = [
            int(rng.integers(max(1, len(self._background[names[c]]) - SAMPLE_RATE + 1))) for c in chosen
        ]
        return pd.DataFrame(
            {
                "path": [names[c] for c in chosen],
                "word": SILENCE,
                "label_name": SILENCE,
                "speaker": BACKGROUND_DIR,
                "split": self.split or "all",
                "noise_start": starts,
                "noise_gain": rng.uniform(0.0, 1.0, size=count).round(4),
            }
        )

    # ------------------------------------------------------------------------------------------ items

    def __len__(self) -> int:
        return len(self.metadata)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if self._waveforms is not None:
            return self._waveforms[index], int(self.labels[index])
        return torch.from_numpy(self._load(index)), int(self.labels[index])

    def _load(self, index: int) -> np.ndarray:
        row = self.metadata.iloc[index]
        if row.label_name != SILENCE:
            return load_clip(self.root / row.path)
        noise = self._background[row.path]
        start = int(row.noise_start)
        return _fit(noise[start : start + SAMPLE_RATE] * np.float32(row.noise_gain))

    def waveforms(self) -> torch.Tensor:
        """All clips as one ``(N, 16000)`` float32 tensor, read on first call and cached."""
        if self._waveforms is None:
            stacked = (
                np.stack([self._load(i) for i in range(len(self))])
                if len(self)
                else np.zeros((0, SAMPLE_RATE))
            )
            self._waveforms = torch.from_numpy(stacked.astype(np.float32))
        return self._waveforms


def _mean_keyword_count(frame: pd.DataFrame) -> float:
    counts = frame.label_name[frame.label_name.isin(KEYWORDS)].value_counts()
    return float(counts.mean()) if len(counts) else 0.0

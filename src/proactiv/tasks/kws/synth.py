"""Offline synthesis of a spoken-commands corpus in the Speech Commands folder layout.

With no network there is no Speech Commands download, so ``synthesize`` builds a stand-in with the
text-to-speech engines of Debian's main archive (espeak-ng, flite, festival). The result has the layout of
the real data set, so everything downstream works unchanged on either::

    DATA/<word>/<speaker>_nohash_<n>.wav   16 kHz mono 16-bit PCM, exactly 1 s
    DATA/validation_list.txt               relative paths of the validation clips
    DATA/testing_list.txt                  relative paths of the test clips
    DATA/_background_noise_/*.wav          white, pink and brown noise and babble, 10 s each
    DATA/metadata.csv                      one row per clip (extra to the real set)
    DATA/_homophones_/<word>/<speaker>_nohash_<n>.wav   test speakers saying homophones of keywords
    DATA/_homophones_/metadata.csv         their rows (not in the Speech Commands lists: see below)
    DATA/_running_speech_/<speaker>_<n>.wav   sentences of running speech said by test speakers
    DATA/_running_speech_/sentences.csv    one row per sentence: text, keyword and its times
    DATA/.complete                         marker with the options' fingerprint

Who speaks, with which delivery and in which split is planned in :mod:`proactiv.tasks.kws.voices`; the
engines that speak are driven by :mod:`proactiv.tasks.kws.engines`. This module writes the corpus.

Classes
    10 keywords, ``_unknown_`` (words of a large vocabulary, each in a folder named after it, as in the real
    set; 40 % near-misses of a keyword; split by word as well as by speaker: see
    :mod:`proactiv.tasks.kws.vocabulary`) and ``_silence_``, which, as in the real set, has no folder: the
    loader cuts silence clips from ``_background_noise_``. ``kind`` (``keyword``, ``near_miss``, ``other``,
    ``homophone``) and ``resembles`` (the keyword a near-miss or homophone resembles) say what each word is.
Open-set material
    Homophones of keywords (``know``, ``write``) are no ``_unknown_`` a model could learn, so they sit in
    their own folder, outside the classes, for the open-set evaluation; so does the running speech, for
    the streaming evaluation (:mod:`proactiv.tasks.kws.openset`).
Determinism and caching
    Every random choice is drawn from a generator seeded by (seed, speaker, word, repetition) and the
    engines are deterministic, so the same options give byte-identical files in any order and with any
    number of workers. Files are written atomically; a killed run resumes per speaker. A finished corpus is
    marked ``.complete`` with the options' fingerprint; calling again with the same options returns at once.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor, as_completed
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from proactiv.io import write_text
from proactiv.tasks.kws.engines import _ENGINES, SAMPLE_RATE, Plan, _render, _render_sentence
from proactiv.tasks.kws.vocabulary import lexicon_fingerprint
from proactiv.tasks.kws.voices import (
    HOMOPHONES_DIR,
    KEYWORDS,
    SIZES,
    SPEECH_DIR,
    Sentence,
    Speaker,
    _assign_splits,
    _available_voices,
    _clips,
    _rng,
    _sentences,
    _speakers,
    _unknown_words,
    missing_engines,
    vocabulary,
)
from proactiv.tasks.kws.wavio import read_wav, write_wav

__all__ = [
    "BACKGROUND_DIR",
    "CLASS_NAMES",
    "COLUMNS",
    "HOMOPHONES_DIR",
    "KEYWORDS",
    "SAMPLE_RATE",
    "SENTENCE_COLUMNS",
    "SILENCE",
    "SIZES",
    "SPEECH_DIR",
    "UNKNOWN",
    "missing_engines",
    "synthesize",
]

UNKNOWN = "_unknown_"
SILENCE = "_silence_"
CLASS_NAMES = (*KEYWORDS, UNKNOWN, SILENCE)
BACKGROUND_DIR = "_background_noise_"
COLUMNS = (
    "path", "word", "label", "speaker", "engine", "voice", "variant",
    "rate", "pitch", "amplitude", "shift", "gender", "offset_ms", "split", "kind", "resembles",
)  # fmt: skip
SENTENCE_COLUMNS = (
    "path", "text", "keyword", "keyword_start_ms", "keyword_end_ms", "seconds", "speaker", "engine", "voice",
    "variant", "gender", "rate", "pitch", "amplitude", "shift", "split",
)  # fmt: skip

_VERSION = 4  # bump whenever the synthesis changes its output
_BACKGROUND_SECONDS = 10
_FESTIVAL_GROUP = 6  # festival speakers per festival process


def _fingerprint(size: str, seed: int, available: dict[str, tuple[str, ...]]) -> dict:
    options = {
        "version": _VERSION,
        "size": size,
        "seed": seed,
        "voices": {k: list(v) for k, v in available.items()},
        "vocabulary": {"wordfreq": metadata.version("wordfreq"), "lexicon": lexicon_fingerprint()},
    }
    digest = hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()[:16]
    return {**options, "fingerprint": digest}


def _owned(out: Path) -> list[Path]:
    """Everything a synthesis may create in ``out`` (what ``force=True`` removes): the word folders (any
    lower-case name: the vocabulary depends on the options), the open-set folders and the lists."""
    names = [BACKGROUND_DIR, HOMOPHONES_DIR, SPEECH_DIR, ".parts", "metadata.csv", "validation_list.txt",
             "testing_list.txt", ".complete", ".in_progress"]  # fmt: skip
    words = [p.name for p in out.iterdir() if p.is_dir() and re.fullmatch(r"[a-z]+", p.name)]
    return [out / name for name in [*words, *names]]


def _prepare(out: Path, fingerprint: dict, force: bool) -> bool:
    """Check ``out`` against the options; True when it already holds this corpus, complete."""
    for marker in (".complete", ".in_progress"):
        path = out / marker
        if path.exists():
            old = json.loads(path.read_text())
            if old.get("fingerprint") == fingerprint["fingerprint"] and not force:
                return marker == ".complete"
            same_request = all(old.get(k) == fingerprint[k] for k in ("size", "seed"))
            if same_request and not force:  # an older synthesis (or vocabulary) for the same options
                warnings.warn(f"{out}: rebuilding a corpus made by an older synthesis ({_describe(old)})",
                              stacklevel=3)  # fmt: skip
            elif not force:
                raise ValueError(
                    f"{out} holds a corpus synthesised with other options ({_describe(old)}), not "
                    f"({_describe(fingerprint)}); pass force=True to rebuild it or choose another folder"
                )
            for owned in _owned(out):
                if owned.is_dir():
                    shutil.rmtree(owned)
                else:
                    owned.unlink(missing_ok=True)
            break
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} is not empty and holds no synthesised corpus; refusing to write into it")
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / ".in_progress", json.dumps(fingerprint, sort_keys=True))
    return False


def _describe(options: dict) -> str:
    return ", ".join(f"{k}={options.get(k)!r}" for k in ("size", "seed", "version", "voices", "vocabulary"))


def _unit(out: Path, plan: Plan, splits: dict[str, str]) -> int:
    """Synthesise, render and write the clips of some speakers of one engine; return the clips written.

    Each speaker's metadata part is written last and marks it done, so a rerun skips finished speakers.
    """
    todo = [(s, clips) for s, clips in plan if not (out / ".parts" / f"{s.id}.csv").exists()]
    if not todo:
        return 0
    with tempfile.TemporaryDirectory(prefix="proactiv-synth-") as tmp:
        raws = _ENGINES[todo[0][0].voice.engine](todo, Path(tmp))
        for (speaker, clips), paths in zip(todo, raws, strict=True):
            rows = []
            for clip, raw in zip(clips, paths, strict=True):
                path = clip.path(speaker)
                audio, offset = _render(raw, clip, f"{speaker.id} saying {clip.word!r}")
                write_wav(out / path, audio, SAMPLE_RATE)
                label = clip.word if clip.word in KEYWORDS else UNKNOWN
                rows.append((path, clip.word, label, speaker.id, speaker.voice.engine, speaker.voice.name,
                             speaker.variant, clip.rate, clip.pitch, clip.amplitude, clip.shift,
                             speaker.gender, offset * 1000 / SAMPLE_RATE, splits[speaker.id], clip.kind,
                             clip.resembles))  # fmt: skip
            frame = pd.DataFrame(rows, columns=list(COLUMNS))
            write_text(out / ".parts" / f"{speaker.id}.csv", frame.to_csv(index=False))
    return sum(len(clips) for _, clips in todo)


def _speech_unit(out: Path, speaker: Speaker, sentences: list[Sentence], split: str) -> int:
    """Synthesise and write the running speech of one speaker; return the sentences written.

    Its part (``.parts/<speaker>.sentences.csv``) is written last and marks it done, as for clips.
    """
    part = out / ".parts" / f"{speaker.id}.sentences.csv"
    if part.exists():
        return 0
    with tempfile.TemporaryDirectory(prefix="proactiv-speech-") as tmp:
        pieces = [piece for sentence in sentences for piece in sentence.pieces]
        (raws,) = _ENGINES[speaker.voice.engine]([(speaker, pieces)], Path(tmp))
        rows, first = [], 0
        for sentence in sentences:
            mine = raws[first : first + len(sentence.pieces)]
            first += len(sentence.pieces)
            audio, spans = _render_sentence(mine, sentence, f"{speaker.id} saying {sentence.text!r}")
            write_wav(out / sentence.path(speaker), audio, SAMPLE_RATE)
            k = next((i for i, p in enumerate(sentence.pieces) if p.word == sentence.keyword), None)
            start, end = (np.array(spans[k]) * 1000 / SAMPLE_RATE) if k is not None else (np.nan, np.nan)
            delivery = sentence.pieces[0]
            rows.append((sentence.path(speaker), sentence.text, sentence.keyword, start, end,
                         len(audio) / SAMPLE_RATE, speaker.id, speaker.voice.engine, speaker.voice.name,
                         speaker.variant, speaker.gender, delivery.rate, delivery.pitch, delivery.amplitude,
                         delivery.shift, split))  # fmt: skip
        write_text(part, pd.DataFrame(rows, columns=list(SENTENCE_COLUMNS)).to_csv(index=False))
    return len(sentences)


def _background(out: Path, meta: pd.DataFrame, seed: int) -> None:
    """White, pink and brown noise (spectral shaping of white noise) and babble of training clips."""
    n = _BACKGROUND_SECONDS * SAMPLE_RATE
    rng = _rng(seed, "background")
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.maximum(np.fft.rfftfreq(n, 1 / SAMPLE_RATE), 1.0)
    noises = {"white_noise": np.fft.irfft(spectrum, n)}
    noises["pink_noise"] = np.fft.irfft(spectrum / np.sqrt(freqs), n)
    noises["brown_noise"] = np.fft.irfft(spectrum / freqs, n)
    # babble from training speakers only (never a held-out voice), saying unknown words only
    pool = meta[(meta.split == "train") & (meta.label == UNKNOWN)]
    pool = pool if len(pool) else meta[meta.split == "train"]
    babble = np.zeros(n)
    for _ in range(6):
        stream, start = [], 0
        while start < n:
            clip, _ = read_wav(out / pool.path.iloc[rng.integers(len(pool))])
            stream.append(clip)
            start += len(clip)
        babble += np.roll(np.concatenate(stream)[:n], rng.integers(n))
    noises["babble"] = babble
    (out / BACKGROUND_DIR).mkdir(exist_ok=True)
    for name, noise in noises.items():
        scaled = noise * (0.1 / np.sqrt(np.mean(noise**2)))
        write_wav(out / BACKGROUND_DIR / f"{name}.wav", scaled, SAMPLE_RATE)


def synthesize(
    out: str | os.PathLike,
    *,
    size: str = "demo",
    seed: int = 0,
    jobs: int | None = None,
    progress: bool = True,
    force: bool = False,
) -> pd.DataFrame:
    """Synthesise a spoken-commands corpus in the Speech Commands layout under ``out``; return its metadata.

    Parameters
    ----------
    out
        Target folder: new, empty, or holding an earlier (complete or interrupted) synthesis.
    size
        ``"tiny"`` (10 speakers, 3 keywords, for tests), ``"demo"`` (~7 k clips and 3 minutes of running
        speech per engine) or ``"large"`` (~ 20 k clips).
    seed
        Decides the splits and every delivery (rate, pitch, level, offset); same seed, same bytes.
    jobs
        Parallel workers (default: the number of CPUs).
    progress
        Show a progress bar with an ETA.
    force
        Rebuild when ``out`` holds a corpus made with other options (otherwise that is a ``ValueError``;
        one made for the same size and seed by an older synthesis is rebuilt with a warning).

    Returns
    -------
    pandas.DataFrame
        ``metadata.csv``: one row per clip with the columns in ``COLUMNS``.
    """
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; choose one of {sorted(SIZES)}")
    out = Path(out)
    available = _available_voices()
    if not available:
        packages = sorted({p for pkgs in missing_engines().values() for p in pkgs})
        raise RuntimeError(
            f"no text-to-speech engine found; install with: apt-get install -y {' '.join(packages)}"
        )
    missing = missing_engines()
    if missing:
        packages = sorted({p for pkgs in missing.values() for p in pkgs})
        warnings.warn(
            f"synthesising without {sorted(missing)}: install all voices with "
            f"`apt-get install -y {' '.join(packages)}`",
            stacklevel=2,
        )
    fingerprint = _fingerprint(size, seed, available)
    if _prepare(out, fingerprint, force):
        return pd.read_csv(out / "metadata.csv", keep_default_na=False)

    spec = SIZES[size]
    vocab = vocabulary(spec, seed)
    speakers = _speakers(spec, available)
    splits = _assign_splits(speakers, seed)
    unknown = _unknown_words(speakers, splits, spec, vocab)
    plan = [(s, _clips(s, unknown[s.id], spec, vocab, seed)) for s in speakers]
    speech = _sentences(speakers, splits, spec, vocab, seed)
    talkers = [s for s in speakers if s.id in speech]
    for folder in {str(Path(c.path(s)).parent) for s, clips in plan for c in clips} | {SPEECH_DIR}:
        (out / folder).mkdir(parents=True, exist_ok=True)
        for stale in (out / folder).glob(".*.tmp"):  # left by a killed run
            stale.unlink()
    (out / ".parts").mkdir(exist_ok=True)
    units = [(_speech_unit, (out, s, speech[s.id], splits[s.id]), len(speech[s.id])) for s in talkers]
    units += _units(out, plan, splits)  # the longest units first, so the workers finish together
    _run_units(units, jobs or os.cpu_count() or 1, progress)

    parts = [pd.read_csv(out / ".parts" / f"{s.id}.csv", keep_default_na=False) for s, _ in plan]
    everything = pd.concat(parts).sort_values("path", ignore_index=True)
    meta = everything[everything.kind != "homophone"].reset_index(drop=True)
    _background(out, meta, seed)
    for split, name in (("validation", "validation_list.txt"), ("test", "testing_list.txt")):
        write_text(out / name, "".join(f"{p}\n" for p in meta.path[meta.split == split]))
    homophones = everything[everything.kind == "homophone"]
    write_text(out / HOMOPHONES_DIR / "metadata.csv", homophones.to_csv(index=False))
    sentences = pd.DataFrame(columns=list(SENTENCE_COLUMNS))
    if talkers:
        sentences = pd.concat([pd.read_csv(out / ".parts" / f"{s.id}.sentences.csv") for s in talkers])
    write_text(out / SPEECH_DIR / "sentences.csv", sentences.sort_values("path").to_csv(index=False))
    write_text(out / "metadata.csv", meta.to_csv(index=False))
    write_text(out / ".complete", json.dumps(fingerprint, sort_keys=True))
    (out / ".in_progress").unlink()
    shutil.rmtree(out / ".parts")
    return pd.read_csv(out / "metadata.csv", keep_default_na=False)


def _units(out: Path, plan: Plan, splits: dict[str, str]) -> list[tuple]:
    """The clip units ``(function, arguments, clips)``: one espeak or flite speaker, or up to
    ``_FESTIVAL_GROUP`` festival speakers of one voice (one festival process), festival first."""
    units = []
    for engine in ("festival", "flite", "espeak"):
        items = [(s, clips) for s, clips in plan if s.voice.engine == engine]
        groups = [[item] for item in items]
        if engine == "festival":
            groups = []
            for voice in sorted({s.voice.name for s, _ in items}):
                same = [item for item in items if item[0].voice.name == voice]
                groups += [same[i : i + _FESTIVAL_GROUP] for i in range(0, len(same), _FESTIVAL_GROUP)]
        units += [(_unit, (out, group, splits), sum(len(c) for _, c in group)) for group in groups]
    return units


def _run_units(units: list[tuple], jobs: int, progress: bool) -> None:
    """Run the units (``(function, arguments, count)``, in their order) on ``jobs`` threads (each drives
    engine subprocesses), showing progress with an ETA; a unit finished by an earlier run returns at once."""
    from proactiv.progress import progress_bar

    with progress_bar("clips", progress) as bar, ThreadPoolExecutor(jobs) as pool:
        task = bar.add_task("synthesising spoken commands", total=sum(n for _, _, n in units))
        futures = {pool.submit(fn, *args): n for fn, args, n in units}
        for future in as_completed(futures):
            bar.advance(task, futures[future])
            future.result()

"""Offline synthesis of a spoken-commands corpus in the Speech Commands folder layout.

With no network there is no Speech Commands download, so ``synthesize`` builds a stand-in with the
text-to-speech engines of Debian's main archive (espeak-ng, flite, festival). The result has the layout of
the real data set, so everything downstream works unchanged on either::

    DATA/<word>/<speaker>_nohash_<n>.wav   16 kHz mono 16-bit PCM, exactly 1 s
    DATA/validation_list.txt               relative paths of the validation clips
    DATA/testing_list.txt                  relative paths of the test clips
    DATA/_background_noise_/*.wav          white, pink and brown noise and babble, 10 s each
    DATA/metadata.csv                      one row per clip (extra to the real set)
    DATA/.complete                         marker with the options' fingerprint

Speakers
    A speaker is engine + voice + variant. espeak-ng speakers are an English voice (accent) with a voice
    variant (``+m3``, ``+f2``, ``+klatt``, ...). flite and festival have few voices, so each voice also gives
    pseudo-speakers: a resample-based shift of ``s`` semitones (formants and pitch scale by ``2**(s/12)``,
    like a longer or shorter vocal tract) combined with a base pitch offset ``p`` set through the engine's
    F0 control, which compensates the shift, so formants and pitch vary independently. Their variant is
    named ``s+2p-3``. Voices without F0 control (flite rms, festival's HTS slt) only get shifts (``s+2``).
Deliveries
    Each speaker says each keyword ``reps`` times with its own rate, pitch and level. ``rate`` is a
    speaking-rate factor (1 = engine default; espeak ``-s 175*rate``, flite ``duration_stretch=1/rate``,
    festival ``Duration_Stretch`` for diphone voices and hts_engine ``-r`` for HTS). ``pitch`` is the net F0
    change in semitones from the voice's default (espeak ``-p`` ~ 50 + 5.5 per semitone; flite
    ``int_f0_target_mean`` and festival ``int_lr_params`` target mean scaled from the voice's default F0;
    for voices without F0 control the per-clip pitch is realised by the resample shift, recorded in
    ``shift``). ``amplitude`` is the clip's peak level (full scale = 1), applied after synthesis so it means
    the same for every engine. The word is trimmed of leading and trailing silence (frame energy 40 dB
    below the loudest 10-ms frame), then placed at a random offset (``offset_ms``) in the 1-s clip. A word
    still longer than 1 s is not time-compressed: the clip keeps the first second from the start of speech.
Classes
    10 keywords, ``_unknown_`` (20 other words, each in a folder named after it, as in the real set; about
    1.5x the clips of one keyword class) and ``_silence_``, which, as in the real set, has no folder: the
    loader cuts silence clips from ``_background_noise_``.
Splits
    By speaker, never by clip, stratified by engine: per engine 20 % of the speakers (at least one) are
    test speakers and 10 % (at least one) validation speakers. Pseudo-speakers of one flite/festival voice
    can fall into different splits; the ``voice`` column allows a stricter per-voice evaluation.
Determinism and caching
    Every random choice is drawn from a generator seeded by (seed, speaker, word, repetition) and the
    engines are deterministic, so the same options give byte-identical files in any order and with any
    number of workers. Files are written atomically; a killed run resumes per speaker. A finished corpus is
    marked ``.complete`` with the options' fingerprint; calling again with the same options returns at once.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import shutil
import subprocess
import tempfile
import warnings
import zlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from proactiv.tasks.kws.wavio import read_wav, resample, write_wav

__all__ = [
    "BACKGROUND_DIR",
    "CLASS_NAMES",
    "COLUMNS",
    "KEYWORDS",
    "SAMPLE_RATE",
    "SILENCE",
    "SIZES",
    "UNKNOWN",
    "UNKNOWN_WORDS",
    "missing_engines",
    "synthesize",
]

SAMPLE_RATE = 16000
KEYWORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
UNKNOWN_WORDS = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    "bed", "bird", "cat", "dog", "happy", "house", "tree", "wow", "marvin", "sheila",
)  # fmt: skip
UNKNOWN = "_unknown_"
SILENCE = "_silence_"
CLASS_NAMES = (*KEYWORDS, UNKNOWN, SILENCE)
BACKGROUND_DIR = "_background_noise_"
COLUMNS = (
    "path", "word", "label", "speaker", "engine", "voice", "variant",
    "rate", "pitch", "amplitude", "shift", "gender", "offset_ms", "split",
)  # fmt: skip

_VERSION = 1  # bump whenever the synthesis changes its output
_UNKNOWN_RATIO = 1.5  # _unknown_ clips per keyword-class clip
_TEST_SHARE, _VALIDATION_SHARE = 0.2, 0.1
_BACKGROUND_SECONDS = 10
_TRIM_DB = 40.0
_FESTIVAL_GROUP = 6  # festival speakers per festival process


@dataclass(frozen=True)
class Size:
    """How big a corpus is: speakers per engine, repetitions per (speaker, keyword), words."""

    speakers: dict[str, int]
    reps: int
    keywords: tuple[str, ...]
    unknown_words: tuple[str, ...]


SIZES = {
    "tiny": Size({"espeak": 4, "flite": 3, "festival": 3}, 1, ("yes", "no", "up"), ("cat",)),
    "demo": Size({"espeak": 112, "flite": 60, "festival": 54}, 2, KEYWORDS, UNKNOWN_WORDS),
    "large": Size({"espeak": 320, "flite": 150, "festival": 120}, 3, KEYWORDS, UNKNOWN_WORDS),
}

# ---------------------------------------------------------------------------------------------- voices

ESPEAK_VOICES = (
    "en-gb", "en-us", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd", "en-029", "en-us-nyc",
)  # fmt: skip
# espeak-ng voice variants (`espeak-ng --voices=variant`) with their listed gender; novelty variants
# (whisper, demonic, robots) are left out. The base voice without a variant is male.
ESPEAK_VARIANTS = {
    **{f"m{i}": "male" for i in range(1, 9)},
    **{f"f{i}": "female" for i in range(1, 6)},
    **{name: "male" for name in ("klatt", "klatt2", "klatt3", "klatt4", "klatt5", "klatt6")},
    **{name: "female" for name in (
        "Alicia", "Andrea", "Annie", "aunty", "belinda", "linda", "steph", "steph2", "steph3", "anika",
        "grandma",
    )},
    **{name: "male" for name in (
        "adam", "Alex", "Andy", "antonio", "benjamin", "boris", "caleb", "david", "Denis", "Diogo", "ed",
        "edward", "Gene", "gustave", "Henrique", "Hugo", "iven", "Jacky", "john", "Lee", "max", "Michael",
        "michel", "miguel", "Mike", "norbert", "paul", "pedro", "quincy", "rob", "robert", "sandro",
        "shelby", "travis", "victor", "zac", "grandpa", "croak",
    )},
}  # fmt: skip


@dataclass(frozen=True)
class Voice:
    """One engine voice: short name, what the engine calls it, gender and default F0 (None: no F0 control)."""

    engine: str
    name: str
    engine_name: str
    gender: str
    f0: float | None = None
    f0_std: float | None = None


FLITE_VOICES = (
    Voice("flite", "kal", "kal", "male", 104.0),  # 8 kHz
    Voice("flite", "kal16", "kal16", "male", 105.0),
    Voice("flite", "awb", "awb", "male", 126.0),
    Voice("flite", "rms", "rms", "male"),  # ignores int_f0_target_mean
    Voice("flite", "slt", "slt", "female", 178.0),
)
FESTIVAL_VOICES = (  # F0 defaults from the voices' own int_lr_params
    Voice("festival", "kal", "kal_diphone", "male", 105.0, 14.0),
    Voice("festival", "ked", "ked_diphone", "male", 105.0, 15.0),
    Voice("festival", "slt", "cmu_us_slt_arctic_hts", "female"),  # HTS: F0 comes from the model; 32 kHz
)
_FESTIVAL_PACKAGES = {"kal": "festvox-kallpc16k", "ked": "festvox-kdlpc16k", "slt": "festvox-us-slt-hts"}
_ENGINE_PACKAGES = {"espeak": "espeak-ng", "flite": "flite", "festival": "festival"}
_BINARIES = {"espeak": "espeak-ng", "flite": "flite", "festival": "festival"}


@functools.cache
def _available_voices() -> dict[str, tuple[str, ...]]:
    """Short names of the voices each installed engine offers (engines that are absent are left out)."""
    found: dict[str, tuple[str, ...]] = {}
    if shutil.which(_BINARIES["espeak"]):
        found["espeak"] = ESPEAK_VOICES
    if shutil.which(_BINARIES["flite"]):
        listed = subprocess.run(["flite", "-lv"], capture_output=True, text=True).stdout.split()
        found["flite"] = tuple(v.name for v in FLITE_VOICES if v.engine_name in listed)
    if shutil.which(_BINARIES["festival"]):
        with tempfile.TemporaryDirectory() as tmp:
            script = Path(tmp) / "voices.scm"
            script.write_text("(print (voice.list))\n")
            out = subprocess.run(["festival", "--batch", str(script)], capture_output=True, text=True).stdout
        listed = out.replace("(", " ").replace(")", " ").split()
        found["festival"] = tuple(v.name for v in FESTIVAL_VOICES if v.engine_name in listed)
    return {engine: voices for engine, voices in found.items() if voices}


def missing_engines() -> dict[str, list[str]]:
    """Engines or engine voices that are not installed, mapped to the Debian packages that provide them.

    An empty dict means every engine and voice the synthesis can use is present.
    """
    available = _available_voices()
    missing: dict[str, list[str]] = {}
    for engine, package in _ENGINE_PACKAGES.items():
        if not shutil.which(_BINARIES[engine]):
            missing[engine] = [package]
    have_festival = set(available.get("festival", ()))
    voice_packages = [pkg for name, pkg in _FESTIVAL_PACKAGES.items() if name not in have_festival]
    if voice_packages:
        missing.setdefault("festival", []).extend(voice_packages)
    have_flite = set(available.get("flite", ()))
    if "flite" not in missing and any(v.name not in have_flite for v in FLITE_VOICES):
        missing["flite"] = ["flite"]
    return missing


# -------------------------------------------------------------------------------------------- speakers


@dataclass(frozen=True)
class Speaker:
    """engine + voice + variant; ``shift``/``pitch`` are the pseudo-speaker's semitone offsets."""

    voice: Voice
    variant: str
    gender: str
    shift: int = 0
    pitch: int = 0

    @property
    def id(self) -> str:
        return f"{self.voice.engine}-{self.voice.name}-{self.variant}".lower()


def _stable_order(items: Sequence, key: str) -> list:
    """A fixed pseudo-random order of ``items`` that depends on nothing but the items (not on numpy)."""
    return sorted(items, key=lambda item: zlib.crc32(f"{key}:{item}".encode()))


def _pseudo_speakers(voice: Voice) -> list[Speaker]:
    """The pseudo-speaker grid of a flite or festival voice, unshifted voice first, in a fixed order."""
    if voice.f0 is None:
        shifts = [s for s in _stable_order(range(-5, 6), voice.name) if s != 0]
        return [Speaker(voice, "s+0", voice.gender)] + [
            Speaker(voice, f"s{s:+d}", voice.gender, s, s) for s in shifts
        ]
    grid = [(s, p) for s in range(-3, 4) for p in range(-4, 5) if (s, p) != (0, 0)]
    combos = _stable_order(grid, voice.name)
    return [Speaker(voice, "s+0p+0", voice.gender)] + [
        Speaker(voice, f"s{s:+d}p{p:+d}", voice.gender, s, p) for s, p in combos
    ]


def _espeak_speakers(names: Sequence[str]) -> list[list[Speaker]]:
    """Per espeak voice, its speakers: the base voice and its variants, rotated so voices differ."""
    variants = ["default", *ESPEAK_VARIANTS]
    result = []
    for i, name in enumerate(names):
        voice = Voice("espeak", name, name, "male")
        rotated = variants[(7 * i) % len(variants) :] + variants[: (7 * i) % len(variants)]
        result.append([Speaker(voice, v, ESPEAK_VARIANTS.get(v, "male")) for v in rotated])
    return result


def _speakers(size: Size, available: dict[str, tuple[str, ...]]) -> list[Speaker]:
    """``size.speakers[engine]`` speakers per available engine, spread round-robin over its voices."""
    speakers = []
    for engine, count in size.speakers.items():
        if engine not in available:
            continue
        if engine == "espeak":
            per_voice = _espeak_speakers(available[engine])
        else:
            table = FLITE_VOICES if engine == "flite" else FESTIVAL_VOICES
            per_voice = [_pseudo_speakers(v) for v in table if v.name in available[engine]]
        chosen: list[Speaker] = []
        for rank in range(max(len(v) for v in per_voice)):
            chosen += [voice[rank] for voice in per_voice if rank < len(voice)]
        speakers += chosen[:count]
    return speakers


def _assign_splits(speakers: Sequence[Speaker], seed: int) -> dict[str, str]:
    """Speaker id -> split, by speaker and stratified by engine (at least one test and validation each)."""
    splits = {}
    for engine in sorted({s.voice.engine for s in speakers}):
        ids = sorted(s.id for s in speakers if s.voice.engine == engine)
        order = _rng(seed, "split", engine).permutation(len(ids))
        n_test = max(1, math.ceil(_TEST_SHARE * len(ids)))
        n_val = max(1, math.ceil(_VALIDATION_SHARE * len(ids)))
        for rank, idx in enumerate(order):
            splits[ids[idx]] = "test" if rank < n_test else "validation" if rank < n_test + n_val else "train"
    return splits


# ----------------------------------------------------------------------------------------------- clips


@dataclass(frozen=True)
class Clip:
    """One utterance to synthesise and how to deliver it."""

    word: str
    n: int
    rate: float
    pitch: float  # net semitones from the voice's default F0
    amplitude: float  # peak level
    shift: float  # resample-based shift in semitones
    place: float  # in [0, 1): where in the free space of the 1-s clip the word starts

    def path(self, speaker: Speaker) -> str:
        return f"{self.word}/{speaker.id}_nohash_{self.n}.wav"


def _rng(seed: int, *keys: str) -> np.random.Generator:
    """A generator that depends only on the seed and the keys (stable across runs and processes)."""
    return np.random.default_rng([seed, *(zlib.crc32(k.encode()) for k in keys)])


def _clips(speaker: Speaker, index: int, size: Size, seed: int) -> list[Clip]:
    """The utterances of one speaker: every keyword ``reps`` times, plus its share of unknown words."""
    n_unknown = math.ceil(_UNKNOWN_RATIO * size.reps)
    words = [w for w in size.keywords for _ in range(size.reps)]
    words += [size.unknown_words[(index * n_unknown + k) % len(size.unknown_words)] for k in range(n_unknown)]
    clips, seen = [], dict.fromkeys(words, 0)
    for word in words:
        n, seen[word] = seen[word], seen[word] + 1
        rng = _rng(seed, speaker.id, word, str(n))
        rate = round(float(np.exp(rng.uniform(np.log(0.8), np.log(1.25)))), 3)
        jitter = round(float(rng.uniform(-1.5, 1.5)), 2)
        amplitude = round(float(np.exp(rng.uniform(np.log(0.1), np.log(0.9)))), 3)
        place = float(rng.uniform())
        if speaker.voice.engine == "espeak":
            pitch, shift = 2 * jitter, 0.0
        elif speaker.voice.f0 is None:  # no F0 control: pitch only through the resample shift
            pitch = shift = round(speaker.shift + jitter, 2)
        else:
            pitch, shift = round(speaker.pitch + jitter, 2), float(speaker.shift)
        clips.append(Clip(word, n, rate, pitch, amplitude, shift, place))
    return clips


# --------------------------------------------------------------------------------------------- engines


def _run(cmd: list[str]) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()}")


def _engine_pitch(voice: Voice, clip: Clip) -> float:
    """The F0 to ask the engine for, so that after the resample shift the net change is ``clip.pitch``."""
    assert voice.f0 is not None
    return voice.f0 * 2.0 ** ((clip.pitch - clip.shift) / 12.0)


Plan = Sequence[tuple[Speaker, Sequence[Clip]]]  # speakers with their clips, synthesised together


def _synth_espeak(plan: Plan, tmp: Path) -> list[list[Path]]:
    """One espeak-ng process per clip."""
    outs = []
    for k, (speaker, clips) in enumerate(plan):
        name = speaker.voice.engine_name + ("" if speaker.variant == "default" else f"+{speaker.variant}")
        outs.append([tmp / f"{k}-{i}.wav" for i in range(len(clips))])
        for clip, out in zip(clips, outs[-1], strict=True):
            speed = str(round(175 * clip.rate))
            pitch = str(min(99, max(0, round(50 + 5.5 * clip.pitch))))
            _run(["espeak-ng", "-v", name, "-s", speed, "-p", pitch, "-w", str(out), clip.word])
    return outs


def _synth_flite(plan: Plan, tmp: Path) -> list[list[Path]]:
    """One flite process per clip."""
    outs = []
    for k, (speaker, clips) in enumerate(plan):
        outs.append([tmp / f"{k}-{i}.wav" for i in range(len(clips))])
        for clip, out in zip(clips, outs[-1], strict=True):
            cmd = [
                "flite",
                "-voice",
                speaker.voice.engine_name,
                "--setf",
                f"duration_stretch={1 / clip.rate:.4f}",
            ]
            if speaker.voice.f0 is not None:
                cmd += ["--setf", f"int_f0_target_mean={_engine_pitch(speaker.voice, clip):.2f}"]
            _run([*cmd, "-t", clip.word, "-o", str(out)])
    return outs


def _synth_festival(plan: Plan, tmp: Path) -> list[list[Path]]:
    """One ``festival --batch`` script for all clips of the plan (festival's start-up costs ~0.3 s)."""
    lines, outs = [], []
    for k, (speaker, clips) in enumerate(plan):
        voice = speaker.voice
        lines.append(f"(voice_{voice.engine_name})")
        outs.append([tmp / f"{k}-{i}.wav" for i in range(len(clips))])
        for clip, out in zip(clips, outs[-1], strict=True):
            if voice.f0 is None:  # HTS: speed through hts_engine's -r; F0 comes from the model
                lines.append(
                    f"(set! hts_engine_params (append {voice.engine_name}::hts_engine_params "
                    f'\'(("-r" {clip.rate:.4f}))))'
                )
            else:  # diphone: duration stretch (voice default 1.1) and the intonation model's target F0
                factor = _engine_pitch(voice, clip) / voice.f0
                lines.append(f"(Parameter.set 'Duration_Stretch {1.1 / clip.rate:.4f})")
                lines.append(
                    f"(set! int_lr_params '((target_f0_mean {voice.f0 * factor:.2f}) "
                    f"(target_f0_std {voice.f0_std * factor:.2f}) (model_f0_mean 170) (model_f0_std 34)))"
                )
            lines.append(f'(utt.save.wave (SynthText "{clip.word}") "{out}" \'riff)')
    script = tmp / "script.scm"
    script.write_text("\n".join(lines) + "\n")
    _run(["festival", "--batch", str(script)])
    absent = [str(p) for paths in outs for p in paths if not p.exists()]
    if absent:
        raise RuntimeError(f"festival did not write {absent}")
    return outs


_ENGINES = {"espeak": _synth_espeak, "flite": _synth_flite, "festival": _synth_festival}

# ---------------------------------------------------------------------------------------------- signal


def _trim(x: np.ndarray) -> np.ndarray:
    """Cut leading and trailing frames (10 ms) more than 40 dB below the loudest frame."""
    frame = SAMPLE_RATE // 100
    n = len(x) // frame
    rms = np.sqrt(np.mean(x[: n * frame].reshape(n, frame).astype(np.float64) ** 2, axis=1))
    loud = np.flatnonzero(rms > rms.max() * 10 ** (-_TRIM_DB / 20))
    return x[loud[0] * frame : (loud[-1] + 1) * frame]


def _render(raw: Path, clip: Clip, where: str) -> tuple[np.ndarray, int]:
    """Engine output -> the 1-s 16-kHz clip and the word's offset in samples."""
    x, rate = read_wav(raw)
    x = resample(x, rate * 2.0 ** (clip.shift / 12.0), SAMPLE_RATE)
    if len(x) < SAMPLE_RATE // 100 or not np.any(x):
        raise RuntimeError(f"the engine produced no audio for {where}")
    word = _trim(x)[:SAMPLE_RATE]  # longer than 1 s: keep the first second from the start of speech
    offset = int(clip.place * (SAMPLE_RATE - len(word) + 1))
    out = np.zeros(SAMPLE_RATE, np.float32)
    out[offset : offset + len(word)] = word * (clip.amplitude / np.abs(word).max())
    return out, offset


# ------------------------------------------------------------------------------------------ corpus dir


def _fingerprint(size: str, seed: int, available: dict[str, tuple[str, ...]]) -> dict:
    options = {
        "version": _VERSION,
        "size": size,
        "seed": seed,
        "voices": {k: list(v) for k, v in available.items()},
    }
    digest = hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()[:16]
    return {**options, "fingerprint": digest}


def _write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def _owned(out: Path) -> list[Path]:
    """Everything a synthesis may create in ``out`` (what ``force=True`` removes)."""
    names = [*KEYWORDS, *UNKNOWN_WORDS, BACKGROUND_DIR, ".parts", "metadata.csv", "validation_list.txt",
             "testing_list.txt", ".complete", ".in_progress"]  # fmt: skip
    return [out / name for name in names]


def _prepare(out: Path, fingerprint: dict, force: bool) -> bool:
    """Check ``out`` against the options; True when it already holds this corpus, complete."""
    for marker in (".complete", ".in_progress"):
        path = out / marker
        if path.exists():
            old = json.loads(path.read_text())
            if old.get("fingerprint") == fingerprint["fingerprint"] and not force:
                return marker == ".complete"
            if not force:
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
    _write_text(out / ".in_progress", json.dumps(fingerprint, sort_keys=True))
    return False


def _describe(options: dict) -> str:
    return ", ".join(f"{k}={options.get(k)!r}" for k in ("size", "seed", "version", "voices"))


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
                             speaker.gender, offset * 1000 / SAMPLE_RATE, splits[speaker.id]))  # fmt: skip
            frame = pd.DataFrame(rows, columns=list(COLUMNS))
            _write_text(out / ".parts" / f"{speaker.id}.csv", frame.to_csv(index=False))
    return sum(len(clips) for _, clips in todo)


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
        ``"tiny"`` (10 speakers, 4 words, for tests), ``"demo"`` (~5 k clips, about a minute on 2 cores)
        or ``"large"`` (~ 20 k clips).
    seed
        Decides the splits and every delivery (rate, pitch, level, offset); same seed, same bytes.
    jobs
        Parallel workers (default: the number of CPUs).
    progress
        Show a progress bar with an ETA.
    force
        Rebuild when ``out`` holds a corpus made with other options (otherwise that is a ``ValueError``).

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
    speakers = _speakers(spec, available)
    splits = _assign_splits(speakers, seed)
    plan = [(s, _clips(s, i, spec, seed)) for i, s in enumerate(speakers)]
    for word in {c.word for _, clips in plan for c in clips}:
        (out / word).mkdir(exist_ok=True)
        for stale in (out / word).glob(".*.tmp"):  # left by a killed run
            stale.unlink()
    (out / ".parts").mkdir(exist_ok=True)
    _run_units(out, plan, splits, jobs or os.cpu_count() or 1, progress)

    meta = pd.concat([pd.read_csv(out / ".parts" / f"{s.id}.csv", keep_default_na=False) for s, _ in plan])
    meta = meta.sort_values("path", ignore_index=True)
    _background(out, meta, seed)
    for split, name in (("validation", "validation_list.txt"), ("test", "testing_list.txt")):
        _write_text(out / name, "".join(f"{p}\n" for p in meta.path[meta.split == split]))
    _write_text(out / "metadata.csv", meta.to_csv(index=False))
    _write_text(out / ".complete", json.dumps(fingerprint, sort_keys=True))
    (out / ".in_progress").unlink()
    shutil.rmtree(out / ".parts")
    return pd.read_csv(out / "metadata.csv", keep_default_na=False)


def _run_units(out: Path, plan: Plan, splits: dict[str, str], jobs: int, progress: bool) -> None:
    """Run the units on ``jobs`` threads (each drives engine subprocesses), showing progress with an ETA.

    A unit is one espeak or flite speaker, or up to ``_FESTIVAL_GROUP`` festival speakers of one voice
    (one festival process); the largest units go first so the workers finish together.
    """
    from proactiv.progress import progress_bar

    units = []
    for engine in ("festival", "flite", "espeak"):
        items = [(s, clips) for s, clips in plan if s.voice.engine == engine]
        if engine == "festival":
            for voice in sorted({s.voice.name for s, _ in items}):
                same = [item for item in items if item[0].voice.name == voice]
                units += [same[i : i + _FESTIVAL_GROUP] for i in range(0, len(same), _FESTIVAL_GROUP)]
        else:
            units += [[item] for item in items]
    done = sum(len(clips) for s, clips in plan if (out / ".parts" / f"{s.id}.csv").exists())
    with progress_bar("clips", progress) as bar, ThreadPoolExecutor(jobs) as pool:
        task = bar.add_task(
            "synthesising spoken commands", total=sum(len(c) for _, c in plan), completed=done
        )
        for future in as_completed([pool.submit(_unit, out, unit, splits) for unit in units]):
            bar.advance(task, future.result())

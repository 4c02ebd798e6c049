"""Who says what, and how: the voices of the engines, the speakers made from them, their deliveries, splits.

Speakers
    A speaker is engine + voice + variant. espeak-ng speakers are an English voice (accent) with a voice
    variant (``+m3``, ``+f2``, ``+klatt``, ...). Training also hears espeak speakers with a random timbre
    (:class:`Timbre`, variant ``r017``): espeak-ng has only 62 variants, the held-out voices a model missed
    were those unlike any variant it had heard, and random timbres fill the space between. They are a
    training device, like augmentation, so they are never validation or test speakers: those are voices
    people designed to sound human. flite and festival have few voices, so each voice also gives
    pseudo-speakers: a resample-based shift of ``s`` semitones (formants and pitch scale by ``2**(s/12)``,
    like a longer or shorter vocal tract) combined with a base pitch offset ``p`` set through the engine's
    F0 control, which compensates the shift, so formants and pitch vary independently. Their variant is
    named ``s+2p-3``. Voices without F0 control (flite rms, festival's HTS slt) only get shifts (``s+2``).
Deliveries
    Each speaker says each keyword ``reps`` times with its own rate, pitch and level (a :class:`Clip`):
    ``rate`` is a speaking-rate factor (1 = engine default), ``pitch`` the net F0 change in semitones from
    the voice's default (for voices without F0 control realised by the resample shift, recorded in
    ``shift``), ``amplitude`` the clip's peak level and ``place`` where the word sits in the 1-s clip. How
    each engine realises them is in :mod:`proactiv.tasks.kws.engines`.
Splits
    By speaker, never by clip, stratified by engine: per engine 20 % of the speakers (at least one) are
    test speakers and 10 % (at least one) validation speakers; random-timbre speakers are all training
    speakers. Pseudo-speakers of one flite/festival voice
    can fall into different splits; the ``voice`` column allows a stricter per-voice evaluation. The
    ``_unknown_`` words are split too (:mod:`proactiv.tasks.kws.vocabulary`): a speaker says only its split's
    words, so test and validation clips hold neither a voice nor an unknown word heard in training.
Unknown words, homophones, running speech
    Each speaker says ``unknown`` words of its split, 40 % of them near-misses of the keywords (every keyword's
    in turn), dealt so that consecutive speakers say different words. Test speakers also say one homophone
    of a keyword each, and the running speech: per engine ``sentences`` sentences of common words (no
    keyword, no homophone), every fourth with one keyword said alone in its middle, at known times.

Every random choice is drawn from a generator seeded by (seed, speaker, word, repetition), so the plan of a
corpus depends on nothing but its options.
"""

from __future__ import annotations

import functools
import math
import shutil
import subprocess
import tempfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from proactiv.tasks.kws.vocabulary import SPLITS, Vocabulary, build_vocabulary, sentence

KEYWORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
_NEAR_SHARE = 0.4  # share of a speaker's unknown words that are near-misses of a keyword
_KEYWORD_SENTENCE = 4  # every fourth sentence of running speech holds a keyword
_SENTENCE_WORDS = (6, 14)  # words per sentence of running speech, uniform in this range
_TEST_SHARE, _VALIDATION_SHARE = 0.2, 0.1


@dataclass(frozen=True)
class Size:
    """How big a corpus is: speakers per engine, repetitions per (speaker, keyword), the keywords, the size of
    the unknown vocabulary, unknown words per speaker, sentences of running speech per engine, and the
    espeak speakers with a random timbre (training only, on top of ``speakers``)."""

    speakers: dict[str, int]
    reps: int
    keywords: tuple[str, ...]
    vocabulary: int
    unknown: int
    sentences: int
    timbres: int = 0


SIZES = {
    "tiny": Size({"espeak": 4, "flite": 3, "festival": 3}, 1, ("yes", "no", "up"), 200, 2, 4, 2),
    "demo": Size({"espeak": 112, "flite": 60, "festival": 54}, 2, KEYWORDS, 2000, 10, 60, 56),
    "large": Size({"espeak": 320, "flite": 150, "festival": 120}, 3, KEYWORDS, 4000, 15, 120),
}


def vocabulary(size: Size, seed: int) -> Vocabulary:
    """The unknown vocabulary of a corpus size (see :mod:`proactiv.tasks.kws.vocabulary`): never a word of
    the ten keyword classes, even when a small corpus says only some of them."""
    return build_vocabulary(size.vocabulary, KEYWORDS, seed)


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
#: voices that join recorded diphones (flite's kal voices, festival's kal and ked); the other flite and festival
#: voices are statistical-parametric (clustergen, HTS) and espeak-ng's are formant synthesis
_DIPHONE = {("flite", "kal"), ("flite", "kal16"), ("festival", "kal"), ("festival", "ked")}


def synthesis_kind(engine: str, voice: str) -> str:
    """How a voice makes speech: ``formant``, ``diphone`` or ``statistical-parametric``. One accuracy per engine
    hides which kind of voice a model cannot hear yet, so held-out figures are given per kind too."""
    if engine == "espeak":
        return "formant"
    return "diphone" if (engine, voice) in _DIPHONE else "statistical-parametric"


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
class Timbre:
    """A random espeak-ng voice variant: gender, pitch range and the settings of its variant file.

    Drawn over the span of espeak-ng's own variants: per-formant frequency (a gender scale times a jitter
    per formant), strength and bandwidth; base pitch and range; at times a tone curve (bass, mid, treble),
    flutter, roughness, breath, echo or the Klatt synthesiser. See espeak-ng's ``docs/voices.md`` for what
    each setting does. The jitter is wide (±25 % on the vowel formants F1-F3, ±45 % on the others) because
    espeak's own variants move single formants that far (boris: F3 at 57 %, norbert: F2 at 75 % and a tone
    curve): at ±12 % and without tone curves those were the test voices the model missed most.
    """

    name: str
    gender: str
    settings: tuple[str, ...]

    def variant_file(self) -> str:
        """The text of its espeak-ng variant file (``espeak-ng-data/voices/!v/<name>``)."""
        return (
            "\n".join(("language variant", f"name {self.name}", f"gender {self.gender}", *self.settings))
            + "\n"
        )


def espeak_timbre(k: int) -> Timbre:
    """The ``k``-th random timbre (the same for every corpus: it depends on nothing but ``k``)."""
    rng = _rng(0, "timbre", str(k))
    female = bool(rng.uniform() < 0.5)
    base = rng.uniform(135, 215) if female else rng.uniform(60, 115)
    settings = [f"pitch {base:.0f} {base * rng.uniform(1.15, 1.8):.0f}"]
    scale = rng.uniform(1.05, 1.25) if female else rng.uniform(0.88, 1.05)
    for f in range(9):
        spread = 0.25 if 1 <= f <= 3 else 0.45  # the vowel formants F1-F3 vary less than the others
        freq = 100 * scale * rng.uniform(1 - spread, 1 + spread)
        settings.append(f"formant {f} {freq:.0f} {rng.uniform(55, 150):.0f} {rng.uniform(75, 180):.0f}")
    settings.append(f"consonants {rng.uniform(70, 120):.0f}")
    if rng.uniform() < 0.5:
        bands = (rng.uniform(300, 900), rng.uniform(900, 2000), rng.uniform(2000, 5000))
        settings.append("tone " + " ".join(f"{hz:.0f} {rng.integers(40, 256)}" for hz in bands))
    if rng.uniform() < 0.5:
        settings.append(f"flutter {rng.integers(0, 25)}")
    if rng.uniform() < 0.3:
        settings.append(f"roughness {rng.integers(1, 5)}")
    if rng.uniform() < 0.25:
        settings.append("breath " + " ".join(str(b) for b in rng.integers(0, 4, size=8)))
    if rng.uniform() < 0.15:
        settings.append(f"echo {rng.integers(20, 140)} {rng.integers(10, 40)}")
    if rng.uniform() < 0.2:
        settings.append(f"klatt {rng.integers(1, 7)}")
    return Timbre(f"r{k:03d}", "female" if female else "male", tuple(settings))


@dataclass(frozen=True)
class Speaker:
    """engine + voice + variant; ``shift``/``pitch`` are the pseudo-speaker's semitone offsets; ``timbre`` is
    an espeak speaker's random variant (None: the variant is one of espeak-ng's own)."""

    voice: Voice
    variant: str
    gender: str
    shift: int = 0
    pitch: int = 0
    timbre: Timbre | None = None

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


def _timbre_speakers(names: Sequence[str], count: int) -> list[Speaker]:
    """``count`` espeak speakers with random timbres, the voices (accents) in turn, each timbre heard once."""
    speakers = []
    for k in range(count):
        timbre = espeak_timbre(k)
        voice = Voice("espeak", names[k % len(names)], names[k % len(names)], "male")
        speakers.append(Speaker(voice, timbre.name, timbre.gender, timbre=timbre))
    return speakers


def _speakers(size: Size, available: dict[str, tuple[str, ...]]) -> list[Speaker]:
    """``size.speakers[engine]`` speakers per available engine, spread round-robin over its voices, then
    ``size.timbres`` espeak speakers with random timbres."""
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
        if engine == "espeak":
            speakers += _timbre_speakers(available[engine], size.timbres)
    return speakers


def _assign_splits(speakers: Sequence[Speaker], seed: int) -> dict[str, str]:
    """Speaker id -> split, by speaker and stratified by engine (at least one test and validation each);
    speakers with a random timbre are training speakers."""
    splits = {s.id: "train" for s in speakers if s.timbre is not None}
    for engine in sorted({s.voice.engine for s in speakers}):
        ids = sorted(s.id for s in speakers if s.voice.engine == engine and s.timbre is None)
        order = _rng(seed, "split", engine).permutation(len(ids))
        n_test = max(1, math.ceil(_TEST_SHARE * len(ids)))
        n_val = max(1, math.ceil(_VALIDATION_SHARE * len(ids)))
        for rank, idx in enumerate(order):
            splits[ids[idx]] = "test" if rank < n_test else "validation" if rank < n_test + n_val else "train"
    return splits


# ------------------------------------------------------------------------------------------ deliveries


HOMOPHONES_DIR = "_homophones_"  # homophones of keywords: test material outside the Speech Commands layout
SPEECH_DIR = "_running_speech_"  # sentences of running speech


@dataclass(frozen=True)
class Clip:
    """One utterance to synthesise and how to deliver it; ``kind`` is ``keyword``, ``near_miss``, ``other``
    or ``homophone`` (``resembles`` names the keyword of a near-miss or homophone), or ``speech`` for a
    piece of a sentence."""

    word: str
    n: int
    rate: float
    pitch: float  # net semitones from the voice's default F0
    amplitude: float  # peak level
    shift: float  # resample-based shift in semitones
    place: float  # in [0, 1): where in the free space of the 1-s clip the word starts
    kind: str = "keyword"
    resembles: str = ""

    def path(self, speaker: Speaker) -> str:
        folder = f"{HOMOPHONES_DIR}/" if self.kind == "homophone" else ""
        return f"{folder}{self.word}/{speaker.id}_nohash_{self.n}.wav"


@dataclass(frozen=True)
class Sentence:
    """A sentence of running speech: pieces said one after another with ``pauses_ms`` between them, in one
    delivery (the pieces' rate, pitch, shift; ``amplitude`` is the sentence's peak). A keyword, when there
    is one, is a piece of its own, so its place in the recording is known."""

    n: int
    pieces: tuple[Clip, ...]
    keyword: str
    pauses_ms: tuple[float, ...]

    @property
    def text(self) -> str:
        return " ".join(piece.word for piece in self.pieces)

    def path(self, speaker: Speaker) -> str:
        return f"{SPEECH_DIR}/{speaker.id}_{self.n}.wav"


def _rng(seed: int, *keys: str) -> np.random.Generator:
    """A generator that depends only on the seed and the keys (stable across runs and processes)."""
    return np.random.default_rng([seed, *(zlib.crc32(k.encode()) for k in keys)])


def _delivery(speaker: Speaker, rng: np.random.Generator) -> tuple[float, float, float, float]:
    """Rate, net pitch (semitones), peak amplitude and resample shift of one utterance."""
    rate = round(float(np.exp(rng.uniform(np.log(0.8), np.log(1.25)))), 3)
    jitter = round(float(rng.uniform(-1.5, 1.5)), 2)
    amplitude = round(float(np.exp(rng.uniform(np.log(0.1), np.log(0.9)))), 3)
    if speaker.voice.engine == "espeak":
        pitch, shift = 2 * jitter, 0.0
    elif speaker.voice.f0 is None:  # no F0 control: pitch only through the resample shift
        pitch = shift = round(speaker.shift + jitter, 2)
    else:
        pitch, shift = round(speaker.pitch + jitter, 2), float(speaker.shift)
    return rate, pitch, amplitude, shift


def _unknown_words(
    speakers: Sequence[Speaker], splits: dict[str, str], size: Size, vocab: Vocabulary
) -> dict[str, list[str]]:
    """Speaker id -> the unknown words it says: ``size.unknown`` words of its split (near-misses first), then
    for a test speaker one homophone. Words are dealt in turn within a split, so speakers say different ones."""
    homophones = sorted(vocab.homophones)
    n_near = round(_NEAR_SHARE * size.unknown)
    out = {}
    for split in SPLITS:
        near, other = vocab.near_misses(split), vocab.others(split)
        quota = n_near if near else 0
        for i, speaker in enumerate(s for s in speakers if splits[s.id] == split):
            words = [near[(i * quota + k) % len(near)] for k in range(quota)]
            words += [
                other[(i * (size.unknown - quota) + k) % len(other)] for k in range(size.unknown - quota)
            ]
            if split == "test" and homophones:
                words.append(homophones[i % len(homophones)])
            out[speaker.id] = words
    return out


def _clips(speaker: Speaker, unknown: Sequence[str], size: Size, vocab: Vocabulary, seed: int) -> list[Clip]:
    """The utterances of one speaker: every keyword ``reps`` times, then its unknown words (and homophone)."""
    words = [w for w in size.keywords for _ in range(size.reps)] + list(unknown)
    clips, seen = [], dict.fromkeys(words, 0)
    for word in words:
        n, seen[word] = seen[word], seen[word] + 1
        rng = _rng(seed, speaker.id, word, str(n))
        rate, pitch, amplitude, shift = _delivery(speaker, rng)
        place = float(rng.uniform())
        kind = "keyword" if word in size.keywords else vocab.kind(word)
        resembles = vocab.resembles.get(word) or vocab.homophones.get(word, "")
        clips.append(Clip(word, n, rate, pitch, amplitude, shift, place, kind, resembles))
    return clips


def _sentences(
    speakers: Sequence[Speaker], splits: dict[str, str], size: Size, vocab: Vocabulary, seed: int
) -> dict[str, list[Sentence]]:
    """Speaker id -> its sentences of running speech: ``size.sentences`` per engine, dealt in turn to the
    engine's test speakers; every ``_KEYWORD_SENTENCE``-th holds a keyword (each keyword in turn)."""
    out: dict[str, list[Sentence]] = {}
    for engine in sorted({s.voice.engine for s in speakers}):
        tests = [s for s in speakers if s.voice.engine == engine and splits[s.id] == "test"]
        for k in range(size.sentences):
            speaker = tests[k % len(tests)]
            rng = _rng(seed, "sentence", engine, str(k))
            words = sentence(vocab, rng, int(rng.integers(_SENTENCE_WORDS[0], _SENTENCE_WORDS[1] + 1)))
            rate, pitch, amplitude, shift = _delivery(speaker, rng)
            keyword = ""
            texts = [" ".join(words)]
            if k % _KEYWORD_SENTENCE == _KEYWORD_SENTENCE - 1:
                keyword = size.keywords[(k // _KEYWORD_SENTENCE) % len(size.keywords)]
                cut = int(rng.integers(1, len(words)))
                texts = [" ".join(words[:cut]), keyword, " ".join(words[cut:])]
            pieces = tuple(
                Clip(t, i, rate, pitch, amplitude, shift, 0.0, "speech") for i, t in enumerate(texts)
            )
            pauses = tuple(round(float(rng.uniform(80.0, 200.0)), 1) for _ in texts[1:])
            mine = out.setdefault(speaker.id, [])
            mine.append(Sentence(len(mine), pieces, keyword, pauses))
    return out

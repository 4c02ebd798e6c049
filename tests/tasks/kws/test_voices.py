"""The speaker inventory and the corpus plan, without running an engine: speakers, deliveries, splits."""

import math
from collections import Counter

import pandas as pd
import pytest

from proactiv.tasks.kws.voices import (
    ESPEAK_VARIANTS,
    ESPEAK_VOICES,
    FESTIVAL_VOICES,
    FLITE_VOICES,
    KEYWORDS,
    SIZES,
    UNKNOWN_WORDS,
    Size,
    _assign_splits,
    _clips,
    _pseudo_speakers,
    _speakers,
)

EVERY_VOICE = {
    "espeak": ESPEAK_VOICES,
    "flite": tuple(v.name for v in FLITE_VOICES),
    "festival": tuple(v.name for v in FESTIVAL_VOICES),
}
F0_VOICE = next(v for v in FLITE_VOICES if v.f0 is not None)
PLAIN_VOICE = next(v for v in FLITE_VOICES if v.f0 is None)


def test_pseudo_speakers_vary_shift_and_pitch_independently():
    speakers = _pseudo_speakers(F0_VOICE)
    assert speakers[0].variant == "s+0p+0" and (speakers[0].shift, speakers[0].pitch) == (0, 0)
    combos = {(s.shift, s.pitch) for s in speakers}
    assert len(combos) == len(speakers) == 7 * 9  # shifts -3..3 x pitches -4..4
    assert {s.variant for s in speakers} >= {"s-3p+4", "s+2p-3"}


def test_voices_without_f0_control_only_get_shifts():
    speakers = _pseudo_speakers(PLAIN_VOICE)
    assert [s.variant for s in speakers][0] == "s+0"
    assert sorted(s.shift for s in speakers) == list(range(-5, 6))
    assert all(s.pitch == s.shift for s in speakers)


def test_speakers_are_unique_spread_over_voices_and_capped_per_engine():
    spec = SIZES["demo"]
    speakers = _speakers(spec, EVERY_VOICE)
    assert len({s.id for s in speakers}) == len(speakers)
    per_engine = Counter(s.voice.engine for s in speakers)
    assert per_engine == spec.speakers
    for engine, voices in EVERY_VOICE.items():  # round robin: the first speakers use every voice once
        first = [s.voice.name for s in speakers if s.voice.engine == engine][: len(voices)]
        assert sorted(first) == sorted(voices)
    espeak = [s for s in speakers if s.voice.engine == "espeak"]
    assert {s.gender for s in espeak} == {"male", "female"}
    assert all(s.gender == ESPEAK_VARIANTS.get(s.variant, "male") for s in espeak)


def test_an_engine_that_is_not_installed_gives_no_speakers():
    speakers = _speakers(SIZES["tiny"], {"festival": ("kal",)})
    assert {(s.voice.engine, s.voice.name) for s in speakers} == {("festival", "kal")}
    assert len(speakers) == SIZES["tiny"].speakers["festival"]


def test_splits_are_by_speaker_stratified_by_engine_and_seeded():
    speakers = _speakers(SIZES["demo"], EVERY_VOICE)
    splits = _assign_splits(speakers, seed=0)
    assert set(splits) == {s.id for s in speakers}
    for engine, count in SIZES["demo"].speakers.items():
        shares = Counter(splits[s.id] for s in speakers if s.voice.engine == engine)
        assert shares["test"] == pytest.approx(0.2 * count, abs=1)
        assert shares["validation"] == pytest.approx(0.1 * count, abs=1)
    assert _assign_splits(speakers, seed=0) == splits
    assert _assign_splits(speakers, seed=1) != splits
    few = _assign_splits(_speakers(SIZES["tiny"], EVERY_VOICE), seed=0)  # 3 or 4 speakers per engine
    for engine in EVERY_VOICE:
        assert {v for k, v in few.items() if k.startswith(engine)} == {"train", "validation", "test"}


def test_demo_plan_is_balanced_and_split_by_engine():
    """The default size's plan with every voice: class balance, unknown-word spread, split coverage."""
    spec = SIZES["demo"]
    speakers = _speakers(spec, EVERY_VOICE)
    clips = [c for i, s in enumerate(speakers) for c in _clips(s, i, spec, 0)]
    assert 4000 <= len(clips) <= 6000
    words = pd.Series([c.word for c in clips])
    keyword_class = words[words == "yes"].size
    unknown = words[~words.isin(KEYWORDS)]
    assert keyword_class <= unknown.size <= 1.5 * keyword_class
    assert set(unknown) == set(UNKNOWN_WORDS) and unknown.value_counts().min() >= 0.8 * unknown.size / 20
    splits = _assign_splits(speakers, 0)
    for engine in EVERY_VOICE:
        ids = [s.id for s in speakers if s.voice.engine == engine]
        assert len(ids) >= 40
        test = [i for i in ids if splits[i] == "test"]
        assert len(test) >= math.ceil(0.15 * len(ids)) and any(splits[i] == "validation" for i in ids)
        if engine != "espeak":  # several voices of each small engine are held out
            voices = {s.voice.name for s in speakers if s.id in test}
            assert len(voices) >= 2


def test_each_speaker_says_every_keyword_reps_times_with_seeded_deliveries():
    spec = Size({"flite": 2}, 3, ("yes", "no"), ("cat", "dog", "bird"))
    speaker = _pseudo_speakers(F0_VOICE)[5]
    clips = _clips(speaker, 0, spec, seed=0)
    words = Counter(c.word for c in clips)
    assert words["yes"] == words["no"] == 3 and sum(words[w] for w in ("cat", "dog", "bird")) == 5
    assert sorted(c.n for c in clips if c.word == "yes") == [0, 1, 2]
    assert clips == _clips(speaker, 0, spec, seed=0) and clips != _clips(speaker, 0, spec, seed=1)
    assert _clips(speaker, 1, spec, seed=0) != clips  # another speaker index: other unknown words
    for c in clips:
        assert 0.8 <= c.rate <= 1.25 and 0.1 <= c.amplitude <= 0.9 and 0 <= c.place < 1
        assert c.shift == speaker.shift and abs(c.pitch - speaker.pitch) <= 1.5
        assert c.path(speaker) == f"{c.word}/{speaker.id}_nohash_{c.n}.wav"


def test_deliveries_of_voices_without_f0_control_realise_pitch_by_the_shift():
    spec = SIZES["tiny"]
    speaker = _pseudo_speakers(PLAIN_VOICE)[3]
    assert all(c.pitch == c.shift != 0 for c in _clips(speaker, 0, spec, seed=0))
    espeak = _speakers(spec, {"espeak": ESPEAK_VOICES})[0]
    assert all(c.shift == 0 and abs(c.pitch) <= 3 for c in _clips(espeak, 0, spec, seed=0))

"""The speaker inventory and the corpus plan, without running an engine: speakers, deliveries, splits."""

import math
from collections import Counter

import pytest

from proactiv.tasks.kws.voices import (
    ESPEAK_VARIANTS,
    ESPEAK_VOICES,
    FESTIVAL_VOICES,
    FLITE_VOICES,
    HOMOPHONES_DIR,
    KEYWORDS,
    SIZES,
    SPEECH_DIR,
    Size,
    _assign_splits,
    _clips,
    _pseudo_speakers,
    _sentences,
    _speakers,
    _unknown_words,
    espeak_timbre,
    vocabulary,
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
    per_engine = Counter(s.voice.engine for s in speakers if s.timbre is None)
    assert per_engine == spec.speakers
    for engine, voices in EVERY_VOICE.items():  # round robin: the first speakers use every voice once
        first = [s.voice.name for s in speakers if s.voice.engine == engine][: len(voices)]
        assert sorted(first) == sorted(voices)
    espeak = [s for s in speakers if s.voice.engine == "espeak"]
    assert {s.gender for s in espeak} == {"male", "female"}
    assert all(s.gender == ESPEAK_VARIANTS.get(s.variant, "male") for s in espeak if s.timbre is None)


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


@pytest.fixture(scope="module")
def demo_plan():
    """The default size's plan with every voice: speakers, splits, vocabulary, unknown words, clips."""
    spec = SIZES["demo"]
    speakers = _speakers(spec, EVERY_VOICE)
    splits = _assign_splits(speakers, 0)
    vocab = vocabulary(spec, 0)
    unknown = _unknown_words(speakers, splits, spec, vocab)
    clips = {s.id: _clips(s, unknown[s.id], spec, vocab, 0) for s in speakers}
    return spec, speakers, splits, vocab, clips


def test_demo_plan_is_balanced_and_split_by_engine(demo_plan):
    spec, speakers, splits, _, plan = demo_plan
    clips = [c for mine in plan.values() for c in mine if c.kind != "homophone"]
    assert 7500 <= len(clips) <= 9000
    kinds = Counter(c.kind for c in clips)
    assert kinds["keyword"] == len(speakers) * spec.reps * len(KEYWORDS)
    unknown = kinds["near_miss"] + kinds["other"]
    assert unknown == len(speakers) * spec.unknown and kinds["near_miss"] == pytest.approx(
        0.4 * unknown, abs=1
    )
    words = Counter(c.word for c in clips if c.kind == "other")
    assert len(words) > 1000 and max(words.values()) <= 3  # a large vocabulary, each word said a few times
    for engine in EVERY_VOICE:
        ids = [s.id for s in speakers if s.voice.engine == engine]
        assert len(ids) >= 40
        test = [i for i in ids if splits[i] == "test"]
        assert len(test) >= math.ceil(0.15 * spec.speakers[engine]) and any(
            splits[i] == "validation" for i in ids
        )
        if engine != "espeak":  # several voices of each small engine are held out
            voices = {s.voice.name for s in speakers if s.id in test}
            assert len(voices) >= 2


def test_unknown_words_are_split_by_word_as_well_as_by_speaker(demo_plan):
    _, speakers, splits, vocab, plan = demo_plan
    said = {split: set() for split in ("train", "validation", "test")}
    for s in speakers:
        said[splits[s.id]] |= {c.word for c in plan[s.id] if c.kind in ("near_miss", "other")}
    assert not said["train"] & said["test"] and not said["train"] & said["validation"]
    for split, words in said.items():
        assert words <= set(vocab.words[split])
    near = Counter(vocab.resembles[w] for w in said["test"] if w in vocab.resembles)
    assert set(near) == set(KEYWORDS)  # every keyword's near-misses are tested
    homophones = [(s.id, c) for s in speakers for c in plan[s.id] if c.kind == "homophone"]
    assert {splits[i] for i, _ in homophones} == {"test"} and len(homophones) == list(splits.values()).count(
        "test"
    )
    assert all(
        c.path(s).startswith(f"{HOMOPHONES_DIR}/")
        for s in speakers
        for c in plan[s.id]
        if c.kind == "homophone"
    )
    assert {c.resembles for _, c in homophones} == {"no", "right"}


def test_running_speech_is_said_by_test_speakers_with_keywords_at_known_pieces(demo_plan):
    spec, speakers, splits, vocab, _ = demo_plan
    speech = _sentences(speakers, splits, spec, vocab, seed=0)
    assert {splits[i] for i in speech} == {"test"}
    by_engine = Counter(i.split("-")[0] for i, mine in speech.items() for _ in mine)
    assert by_engine == dict.fromkeys(EVERY_VOICE, spec.sentences)
    sentences = [(i, s) for i, mine in speech.items() for s in mine]
    with_keyword = [s for _, s in sentences if s.keyword]
    assert len(with_keyword) == 3 * spec.sentences // 4 and {s.keyword for s in with_keyword} == set(KEYWORDS)
    for s in with_keyword:
        assert len(s.pieces) == 3 and s.pieces[1].word == s.keyword and len(s.pauses_ms) == 2
    for _, s in sentences:
        words = s.text.split()
        assert not (set(words) - {s.keyword}) & (set(KEYWORDS) | set(vocab.homophones))
        assert len({(p.rate, p.pitch, p.amplitude) for p in s.pieces}) == 1  # one delivery
    speaker = next(sp for sp in speakers if sp.id == sentences[0][0])
    assert sentences[0][1].path(speaker) == f"{SPEECH_DIR}/{speaker.id}_0.wav"
    assert _sentences(speakers, splits, spec, vocab, seed=0) == speech


def test_each_speaker_says_every_keyword_reps_times_with_seeded_deliveries():
    spec = Size({"flite": 2}, 3, ("yes", "no"), 50, 5, 0)
    vocab = vocabulary(spec, 0)
    speaker = _pseudo_speakers(F0_VOICE)[5]
    unknown = ["cat", "dog", "bird", "cat", "so"]
    clips = _clips(speaker, unknown, spec, vocab, seed=0)
    words = Counter(c.word for c in clips)
    assert words["yes"] == words["no"] == 3 and sum(words[w] for w in ("cat", "dog", "bird", "so")) == 5
    assert sorted(c.n for c in clips if c.word == "yes") == [0, 1, 2]
    assert sorted(c.n for c in clips if c.word == "cat") == [0, 1]
    assert clips == _clips(speaker, unknown, spec, vocab, seed=0)
    assert clips != _clips(speaker, unknown, spec, vocab, seed=1)
    assert {(c.word, c.kind, c.resembles) for c in clips if c.word in ("yes", "so")} == {
        ("yes", "keyword", ""), ("so", "near_miss", "no")
    }  # fmt: skip
    for c in clips:
        assert 0.8 <= c.rate <= 1.25 and 0.1 <= c.amplitude <= 0.9 and 0 <= c.place < 1
        assert c.shift == speaker.shift and abs(c.pitch - speaker.pitch) <= 1.5
        assert c.path(speaker) == f"{c.word}/{speaker.id}_nohash_{c.n}.wav"


def test_deliveries_of_voices_without_f0_control_realise_pitch_by_the_shift():
    spec = SIZES["tiny"]
    vocab = vocabulary(spec, 0)
    speaker = _pseudo_speakers(PLAIN_VOICE)[3]
    assert all(c.pitch == c.shift != 0 for c in _clips(speaker, ["cat"], spec, vocab, seed=0))
    espeak = _speakers(spec, {"espeak": ESPEAK_VOICES})[0]
    assert all(c.shift == 0 and abs(c.pitch) <= 3 for c in _clips(espeak, ["cat"], spec, vocab, seed=0))


def test_random_timbre_speakers_are_extra_espeak_training_speakers_each_heard_once():
    spec = SIZES["demo"]
    speakers = _speakers(spec, EVERY_VOICE)
    drawn = [s for s in speakers if s.timbre is not None]
    assert len(drawn) == spec.timbres and {s.voice.engine for s in drawn} == {"espeak"}
    assert len({s.timbre.name for s in drawn}) == len(drawn)  # every timbre is one speaker
    assert {s.voice.name for s in drawn} == set(ESPEAK_VOICES)  # said in every accent
    assert all(s.variant == s.timbre.name and s.gender == s.timbre.gender for s in drawn)
    assert {s.gender for s in drawn} == {"male", "female"}
    splits = _assign_splits(speakers, seed=0)
    assert {splits[s.id] for s in drawn} == {"train"}  # never a held-out voice
    stock = [s for s in speakers if s.timbre is None]
    assert _assign_splits(stock, seed=0) == {
        s.id: splits[s.id] for s in stock
    }  # the stock split is unchanged


def test_random_timbres_are_fixed_and_differ():
    first, again, other = espeak_timbre(5), espeak_timbre(5), espeak_timbre(6)
    assert first == again and first.settings != other.settings
    text = first.variant_file().splitlines()
    assert text[:3] == ["language variant", "name r005", f"gender {first.gender}"]
    assert sum(line.startswith("formant ") for line in text) == 9
    base, top = (int(v) for v in next(t for t in text if t.startswith("pitch ")).split()[1:])
    assert 60 <= base < top <= 2 * 215


def test_random_timbres_move_single_formants_as_far_as_espeaks_own_variants_do():
    # espeak's boris puts F3 at 57 % and F0 at 47 %, norbert F2 at 75 % with a tone curve; timbres that stay
    # within ±12 % of a gender scale never reach such voices (they were the test voices missed most)
    timbres = [espeak_timbre(k) for k in range(200)]
    percent = {f: [] for f in range(9)}
    for timbre in timbres:
        for line in timbre.settings:
            if line.startswith("formant "):
                f, freq = (int(v) for v in line.split()[1:3])
                percent[f].append(freq)
    vowel = [v for f in (1, 2, 3) for v in percent[f]]
    other = [v for f in (0, 4, 5, 6, 7, 8) for v in percent[f]]
    assert min(vowel) <= 75 and max(vowel) >= 140
    assert min(other) <= 55
    tones = [line for t in timbres for line in t.settings if line.startswith("tone ")]
    assert 60 <= len(tones) <= 140 and all(len(line.split()) == 7 for line in tones)

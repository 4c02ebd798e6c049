"""The unknown vocabulary: near-misses and homophones by phonemes, and a word-disjoint split."""

import numpy as np
import pytest

from proactiv.tasks.kws.vocabulary import SPLITS, build_vocabulary, cmu_lexicon, resembles, sentence
from proactiv.tasks.kws.voices import KEYWORDS


@pytest.fixture(scope="module")
def vocab():
    return build_vocabulary(300, KEYWORDS, seed=0)


@pytest.mark.parametrize(
    ("word", "keyword", "near"),
    [
        ("Y EH T", "Y EH S", True),  # yet/yes: one phoneme substituted
        ("S T AA P S", "S T AA P", True),  # stops/stop: one inserted
        ("D R EH S", "Y EH S", True),  # dress/yes: vowel and coda shared (two phonemes away)
        ("N AY T", "R AY T", True),  # night/right
        ("AH N D", "AH P", False),  # and/up: only the vowel (and an empty onset) shared
        ("HH AW S", "D AW N", False),  # house/down: only the vowel
        ("T EY B AH L", "S T AA P", False),
    ],
)
def test_near_misses_share_all_but_one_phoneme_or_two_of_onset_vowel_coda(word, keyword, near):
    assert resembles(tuple(word.split()), tuple(keyword.split())) is near


def test_homophones_are_kept_out_of_every_split(vocab):
    assert vocab.homophones["know"] == "no" and vocab.homophones["write"] == "right"
    every = [w for split in SPLITS for w in vocab.words[split]]
    assert not set(vocab.homophones) & set(every)
    assert not set(KEYWORDS) & set(every) and len(every) == len(set(every)) >= 300
    assert vocab.kind("know") == "homophone" and vocab.kind("the") == "other"


def test_split_is_word_disjoint_and_stratified_by_resembled_keyword(vocab):
    sets = {s: set(vocab.words[s]) for s in SPLITS}
    assert not sets["train"] & sets["test"] and not sets["train"] & sets["validation"]
    assert not sets["test"] & sets["validation"]
    n = sum(map(len, sets.values()))
    assert 0.2 < len(sets["test"]) / n < 0.3 and 0.1 < len(sets["validation"]) / n < 0.2
    for keyword in ("right", "no", "on"):  # keywords with many near-misses get some in every split
        assert all(any(vocab.resembles.get(w) == keyword for w in sets[s]) for s in SPLITS)
    near = vocab.near_misses("train")
    assert set(near) == {w for w in sets["train"] if w in vocab.resembles}
    assert len({vocab.resembles[w] for w in near[:5]}) == 5  # interleaved over the keywords
    assert vocab.resembles["night"] == "right" and vocab.kind("night") == "near_miss"


def test_same_options_same_vocabulary_other_seed_other_split(vocab):
    build_vocabulary.cache_clear()
    assert build_vocabulary(300, KEYWORDS, seed=0) == vocab
    other = build_vocabulary(300, KEYWORDS, seed=1)
    assert other.words != vocab.words and sorted(sum(other.words.values(), ())) == sorted(
        sum(vocab.words.values(), ())
    )


def test_sentences_hold_no_keyword_and_no_homophone(vocab):
    rng = np.random.default_rng(0)
    words = [w for _ in range(50) for w in sentence(vocab, rng, 10)]
    assert not set(words) & (set(KEYWORDS) | set(vocab.homophones))
    assert words.count("the") > 5 and len(set(words)) > 100  # frequent words common, but not only those


def test_bad_requests_are_named():
    with pytest.raises(ValueError, match="at least one"):
        build_vocabulary(0, KEYWORDS)
    with pytest.raises(ValueError, match="zyxwv"):
        build_vocabulary(10, ("yes", "zyxwv"))


def test_festival_lexicon_is_read_as_arpabet_with_one_pronunciation_per_distinct_entry(tmp_path):
    path = tmp_path / "lexicon.out"
    path.write_text(
        'MNCL\n("a" dt (((ax) 0)))\n("a" n (((ey) 1)))\n("Live" j (((l ay v) 1)))\n'
        '("live" v (((l ih v) 1)))\n("live" n (((l ih v) 1)))\n("about" nil (((ax) 0) ((b aw t) 1)))\n'
    )
    assert cmu_lexicon(path) == {
        "a": [["AH0"], ["EY1"]],
        "live": [["L", "AY1", "V"], ["L", "IH1", "V"]],
        "about": [["AH0", "B", "AW1", "T"]],
    }
    with pytest.raises(FileNotFoundError, match="missing.out.*apt-get install -y festlex-cmu"):
        cmu_lexicon(tmp_path / "missing.out")

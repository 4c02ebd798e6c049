"""Corpus synthesis with the real TTS engines (size "tiny"): layout, format, metadata, splits, determinism,
caching, resuming after a crash, and what happens without engines."""

import filecmp
import json
import re
import shutil
import time
import wave

import numpy as np
import pandas as pd
import pytest

from proactiv.tasks.kws import synth
from proactiv.tasks.kws.engines import SENTENCE_MARGIN_S
from proactiv.tasks.kws.speech_commands import SpeechCommands
from proactiv.tasks.kws.synth import (
    BACKGROUND_DIR,
    CLASS_NAMES,
    COLUMNS,
    HOMOPHONES_DIR,
    KEYWORDS,
    SAMPLE_RATE,
    SENTENCE_COLUMNS,
    SPEECH_DIR,
    UNKNOWN,
    missing_engines,
    synthesize,
)
from proactiv.tasks.kws.wavio import read_wav

if not any(shutil.which(b) for b in ("espeak-ng", "flite", "festival")):
    pytest.skip(
        "no TTS engine installed (apt-get install -y espeak-ng flite festival festvox-kallpc16k "
        "festvox-kdlpc16k festvox-us-slt-hts)",
        allow_module_level=True,
    )

ENGINES = {"espeak", "flite", "festival"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny") / "data"
    start = time.perf_counter()
    meta = synthesize(out, size="tiny", seed=0, progress=False)
    return out, meta, time.perf_counter() - start


def _files(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_constants():
    assert len(CLASS_NAMES) == 12 and CLASS_NAMES[:10] == KEYWORDS
    assert CLASS_NAMES[10:] == ("_unknown_", "_silence_")
    assert SAMPLE_RATE == 16000


def test_all_engines_installed():
    """CI installs every engine; a missing one would silently shrink the corpus."""
    assert missing_engines() == {}


def test_layout_and_audio_format(corpus):
    out, meta, seconds = corpus
    assert seconds < 30
    assert set(meta.word) >= {"yes", "no", "up"} and len(set(meta.word)) >= 15
    files = _files(out)
    extra = (BACKGROUND_DIR, HOMOPHONES_DIR, SPEECH_DIR)
    wavs = [f for f in files if f.endswith(".wav") and not f.startswith(extra)]
    assert sorted(meta.path) == wavs
    for rel in wavs:
        word, name = rel.split("/")
        assert re.fullmatch(r"[a-z0-9+-]+_nohash_\d+\.wav", name), name
        with wave.open(str(out / rel)) as handle:
            assert (handle.getframerate(), handle.getnchannels(), handle.getsampwidth()) == (16000, 1, 2)
            assert handle.getnframes() == SAMPLE_RATE
    assert {"metadata.csv", "validation_list.txt", "testing_list.txt", ".complete"} <= set(files)
    assert not [f for f in files if f.endswith(".tmp") or f.startswith(".parts")]


def test_background_noise(corpus):
    out, _, _ = corpus
    names = sorted(p.name for p in (out / BACKGROUND_DIR).glob("*.wav"))
    assert names == ["babble.wav", "brown_noise.wav", "pink_noise.wav", "white_noise.wav"]
    spectra = {}
    for name in names:
        x, rate = read_wav(out / BACKGROUND_DIR / name)
        assert rate == 16000 and x.ndim == 1 and len(x) >= 5 * rate
        assert 0.05 < np.sqrt(np.mean(x**2)) < 0.2
        power = np.abs(np.fft.rfft(x)) ** 2
        freqs = np.fft.rfftfreq(len(x), 1 / rate)
        spectra[name] = (
            power[(freqs > 100) & (freqs < 500)].mean() / power[(freqs > 4000) & (freqs < 6000)].mean()
        )
    # white is flat, pink falls ~ 1/f, brown ~ 1/f^2: low/high band power ratios are ordered
    assert spectra["white_noise.wav"] < 2 < spectra["pink_noise.wav"] < spectra["brown_noise.wav"]


def test_metadata(corpus):
    out, meta, _ = corpus
    assert list(meta.columns) == list(COLUMNS)
    pd.testing.assert_frame_equal(meta, pd.read_csv(out / "metadata.csv", keep_default_na=False))
    assert (meta.label == meta.word.where(meta.word.isin(KEYWORDS), UNKNOWN)).all()
    assert set(meta.engine) == ENGINES
    assert set(meta.gender) <= {"male", "female", "unknown"}
    assert (meta.speaker == meta.engine + "-" + meta.voice.str.lower() + "-" + meta.variant.str.lower()).all()
    assert meta.path.map(lambda p: p.split("/")[1].split("_nohash_")[0]).eq(meta.speaker).all()
    assert meta.rate.between(0.8, 1.25).all() and meta.amplitude.between(0.1, 0.9).all()
    assert set(meta[meta.engine == "festival"].voice) == {"kal", "ked", "slt"}
    # balanced: unknown has at most ~1.5x (tiny: 2x, one repetition rounded up) of a keyword class
    counts = meta.label.value_counts()
    assert counts[UNKNOWN] <= 2 * counts["yes"] and counts["yes"] == counts["no"] == counts["up"]


def test_clip_placement_and_level(corpus):
    """The word starts at offset_ms (silence before it) and its peak equals the recorded amplitude."""
    out, meta, _ = corpus
    for row in meta.itertuples():
        x, _ = read_wav(out / row.path)
        start = round(row.offset_ms * SAMPLE_RATE / 1000)
        assert not np.any(x[:start]), row.path
        assert np.any(x[start : start + 160]), row.path
        assert abs(np.abs(x).max() - row.amplitude) < 2e-4, row.path


def test_speaker_disjoint_splits_cover_every_engine(corpus):
    out, meta, _ = corpus
    assert meta.groupby("speaker").split.nunique().eq(1).all()
    for engine in ENGINES:
        assert set(meta[meta.engine == engine].split) == {"train", "validation", "test"}
    espeak = meta[meta.engine == "espeak"].drop_duplicates("speaker")
    assert (espeak.split == "test").mean() >= 0.15
    for split, name in (("validation", "validation_list.txt"), ("test", "testing_list.txt")):
        listed = (out / name).read_text().splitlines()
        assert listed == sorted(meta.path[meta.split == split])


def test_unknown_words_are_held_out_by_word_and_homophones_kept_apart(corpus):
    out, meta, _ = corpus
    unknown = meta[meta.label == UNKNOWN]
    assert (
        set(unknown.kind) == {"near_miss", "other"} and (meta.kind[meta.label != UNKNOWN] == "keyword").all()
    )
    assert (unknown.resembles[unknown.kind == "near_miss"] != "").all()
    words = {split: set(unknown.word[unknown.split == split]) for split in ("train", "validation", "test")}
    assert not words["train"] & words["test"] and not words["train"] & words["validation"]
    homophones = pd.read_csv(out / HOMOPHONES_DIR / "metadata.csv", keep_default_na=False)
    assert list(homophones.columns) == list(COLUMNS) and set(homophones.kind) == {"homophone"}
    assert set(homophones.split) == {"test"} and set(homophones.word) == {"know"} and len(homophones) == 3
    assert all((out / p).exists() for p in homophones.path)
    listed = (out / "testing_list.txt").read_text()
    loaded = SpeechCommands(out, split=None, silence_per_class=0).metadata
    assert HOMOPHONES_DIR not in listed and not loaded.path.str.startswith(HOMOPHONES_DIR).any()
    assert len(loaded) == len(meta)


def test_running_speech_has_keywords_at_the_times_it_says(corpus):
    out, meta, _ = corpus
    sentences = pd.read_csv(out / SPEECH_DIR / "sentences.csv")
    assert list(sentences.columns) == list(SENTENCE_COLUMNS) and len(sentences) == 3 * 4
    assert set(sentences.split) == {"test"} and set(sentences.engine) == ENGINES
    assert set(sentences.speaker) <= set(meta.speaker[meta.split == "test"])
    with_keyword = sentences[sentences.keyword.notna()]
    assert len(with_keyword) == 3 and set(with_keyword.keyword) <= {"yes", "no", "up"}
    margin = round(SENTENCE_MARGIN_S * SAMPLE_RATE)
    for row in sentences.itertuples():
        x, rate = read_wav(out / row.path)
        assert rate == SAMPLE_RATE and len(x) == round(row.seconds * SAMPLE_RATE)
        assert not x[:margin].any() and not x[-margin:].any() and abs(np.abs(x).max() - row.amplitude) < 2e-4
        words = row.text.split()
        assert 6 <= len(words) - (1 if isinstance(row.keyword, str) else 0) <= 14
    for row in with_keyword.itertuples():
        x, _ = read_wav(out / row.path)
        start, end = (round(t * SAMPLE_RATE / 1000) for t in (row.keyword_start_ms, row.keyword_end_ms))
        assert margin < start < end < len(x) - margin and 0.15 < (end - start) / SAMPLE_RATE < 1.0
        assert row.keyword in row.text.split() and x[start : start + 160].any()
        assert not x[start - 80 : start].any() and not x[end : end + 80].any()  # the pauses around it


def test_same_seed_gives_identical_bytes(corpus, tmp_path):
    out, _, _ = corpus
    again = tmp_path / "again"
    synthesize(again, size="tiny", seed=0, progress=False, jobs=1)
    assert _files(again) == _files(out)
    mismatch = filecmp.cmpfiles(out, again, _files(out), shallow=False)[1]
    assert mismatch == []


def test_other_seed_differs(tmp_path, corpus):
    _, meta, _ = corpus
    other = synthesize(tmp_path / "s1", size="tiny", seed=1, progress=False)
    assert not other[["rate", "pitch", "offset_ms"]].equals(meta[["rate", "pitch", "offset_ms"]])


def test_cached_second_call_is_fast_and_writes_nothing(corpus):
    out, meta, _ = corpus
    before = {f: (out / f).stat().st_mtime_ns for f in _files(out)}
    start = time.perf_counter()
    again = synthesize(out, size="tiny", seed=0, progress=False)
    assert time.perf_counter() - start < 1.0
    pd.testing.assert_frame_equal(again, meta)
    assert {f: (out / f).stat().st_mtime_ns for f in _files(out)} == before


def test_other_options_need_force(corpus, tmp_path):
    out, _, _ = corpus
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    with pytest.raises(ValueError, match="force=True"):
        synthesize(copy, size="tiny", seed=3, progress=False)
    meta = synthesize(copy, size="tiny", seed=3, force=True, progress=False)
    assert json.loads((copy / ".complete").read_text())["seed"] == 3
    wavs = [
        f
        for f in _files(copy)
        if f.endswith(".wav") and not f.startswith((BACKGROUND_DIR, HOMOPHONES_DIR, SPEECH_DIR))
    ]
    assert wavs == sorted(meta.path)  # nothing left over from the seed-0 corpus


def test_a_corpus_of_an_older_synthesis_is_rebuilt_with_a_warning(corpus, tmp_path):
    out, meta, _ = corpus
    copy = tmp_path / "old"
    shutil.copytree(out, copy)
    marker = json.loads((copy / ".complete").read_text())
    (copy / ".complete").write_text(json.dumps({**marker, "version": 1, "fingerprint": "older"}))
    (copy / "xylophone").mkdir()  # a word folder the old synthesis made and the new one does not
    with pytest.warns(UserWarning, match="older synthesis"):
        again = synthesize(copy, size="tiny", seed=0, progress=False)
    pd.testing.assert_frame_equal(again, meta)
    assert json.loads((copy / ".complete").read_text()) == marker and not (copy / "xylophone").exists()


def test_refuses_foreign_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        synthesize(tmp_path, size="tiny", progress=False)
    with pytest.raises(ValueError, match="unknown size"):
        synthesize(tmp_path / "x", size="huge", progress=False)


def test_resumes_after_a_crash(corpus, tmp_path, monkeypatch):
    """A synthesis killed midway resumes where it stopped and ends byte-identical to an uninterrupted one."""
    out, _, _ = corpus
    target = tmp_path / "resumed"
    render, calls = synth._render, []

    def crash_after_some(*args):
        calls.append(1)
        if len(calls) > 25:
            raise KeyboardInterrupt("killed")
        return render(*args)

    monkeypatch.setattr(synth, "_render", crash_after_some)
    with pytest.raises(KeyboardInterrupt):
        synthesize(target, size="tiny", seed=0, progress=False, jobs=1)
    assert (target / ".in_progress").exists() and not (target / ".complete").exists()
    done = len(list((target / ".parts").glob("*.csv")))
    assert 0 < done < 10
    monkeypatch.setattr(synth, "_render", render)
    synthesize(target, size="tiny", seed=0, progress=False)
    assert _files(target) == _files(out)
    assert filecmp.cmpfiles(out, target, _files(out), shallow=False)[1] == []


@pytest.fixture
def without(monkeypatch):
    """Pretend some engine binaries are not installed."""

    def hide(*binaries):
        real = shutil.which
        monkeypatch.setattr(synth.shutil, "which", lambda name: None if name in binaries else real(name))
        synth._available_voices.cache_clear()

    yield hide
    monkeypatch.undo()
    synth._available_voices.cache_clear()


def test_no_engine_is_a_clear_error(without, tmp_path):
    without("espeak-ng", "flite", "festival")
    assert missing_engines()["festival"] == [
        "festival",
        "festvox-kallpc16k",
        "festvox-kdlpc16k",
        "festvox-us-slt-hts",
    ]
    with pytest.raises(RuntimeError, match="apt-get install -y espeak-ng festival festvox"):
        synthesize(tmp_path / "x", size="tiny", progress=False)


def test_missing_engine_warns_and_uses_the_others(without, tmp_path):
    without("flite")
    assert missing_engines() == {"flite": ["flite"]}
    with pytest.warns(UserWarning, match="apt-get install -y flite"):
        meta = synthesize(tmp_path / "x", size="tiny", progress=False)
    assert set(meta.engine) == {"espeak", "festival"}

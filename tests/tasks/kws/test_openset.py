"""Open-set evaluation on a tiny corpus of tones, with a model that hears tones: held-out unknown words taken
for keywords (near-misses apart), homophones apart, and the streaming evaluation of running speech."""

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from proactiv.tasks.kws import noise_robustness
from proactiv.tasks.kws.decision import StreamRule
from proactiv.tasks.kws.frontend import LogMel
from proactiv.tasks.kws.models import KeywordModel
from proactiv.tasks.kws.openset import evaluate, unknown_words
from proactiv.tasks.kws.synth import CLASS_NAMES, HOMOPHONES_DIR, SENTENCE_COLUMNS, SPEECH_DIR
from proactiv.tasks.kws.wavio import write_wav

SR = 16000
#: the model's tone per class: "yes" 500 Hz, "no" 900 Hz, "_unknown_" 2200 Hz
TONES = {"yes": 500.0, "no": 900.0, "_unknown_": 2200.0}


class ToneNet(nn.Module):
    """Logits: the peak level (dB) of each class's tone band; silence a fixed -60 dB; other classes never."""

    def __init__(self, frontend: LogMel):
        super().__init__()
        centres = frontend.centre_frequencies()
        self.bins = {CLASS_NAMES.index(c): int((centres - hz).abs().argmin()) for c, hz in TONES.items()}

    def forward(self, feats):
        out = torch.full((len(feats), len(CLASS_NAMES)), -1e3)
        for cls, band in self.bins.items():
            out[:, cls] = feats[:, band, :].amax(1)
        out[:, CLASS_NAMES.index("_silence_")] = -60.0
        return out


def tone(hz: float, seconds: float, level: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (level * np.sin(2 * np.pi * hz * t) * np.hanning(len(t))).astype(np.float32)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SR), np.float32)


def clip(hz: float) -> np.ndarray:
    return np.concatenate([silence(0.3), tone(hz, 0.4, 0.3), silence(0.3)])


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Test words: "yet" (a near-miss of yes, said as yes's tone), "cat" (an unknown word), keywords; the
    homophone "know" said as no's tone; running speech of unknown-word tones, one sentence with a loud "yes"
    at a known time, one with a loud "no" where no keyword belongs."""
    root = tmp_path_factory.mktemp("openset")
    rows = []
    for word, hz, kind, near, engine in [
        ("yes", 500, "keyword", "", "a"), ("no", 900, "keyword", "", "b"), ("yet", 500, "near_miss", "yes", "a"),
        ("yet", 500, "near_miss", "yes", "b"), ("cat", 2200, "other", "", "a"), ("cat", 2200, "other", "", "b"),
    ]:  # fmt: skip
        path = f"{word}/s-{engine}_nohash_{len(rows)}.wav"
        (root / word).mkdir(exist_ok=True)
        write_wav(root / path, clip(hz), SR)
        label = word if kind == "keyword" else "_unknown_"
        rows.append(
            {"path": path, "word": word, "label": label, "engine": engine, "kind": kind, "resembles": near}
        )
    pd.DataFrame(rows).to_csv(root / "metadata.csv", index=False)
    (root / "testing_list.txt").write_text("".join(f"{r['path']}\n" for r in rows))
    (root / "validation_list.txt").write_text("")
    (root / HOMOPHONES_DIR / "know").mkdir(parents=True)
    write_wav(root / HOMOPHONES_DIR / "know" / "s-a_nohash_0.wav", clip(900), SR)
    homophone = {
        "path": f"{HOMOPHONES_DIR}/know/s-a_nohash_0.wav",
        "word": "know",
        "resembles": "no",
        "engine": "a",
    }
    pd.DataFrame([homophone]).to_csv(root / HOMOPHONES_DIR / "metadata.csv", index=False)

    def words(n):
        return [part for _ in range(n) for part in (tone(2200, 0.3, 0.05), silence(0.15))]

    sentences = []
    for name, engine, middle, keyword in [
        ("s0", "a", None, ""),
        ("s1", "a", 500, "yes"),
        ("s2", "b", 900, ""),
    ]:
        parts = [silence(0.5), *words(4)]
        start = sum(map(len, parts)) / SR
        if middle is not None:
            parts += [tone(middle, 0.4, 0.5), silence(0.15)]
        parts += [*words(4), silence(0.5)]
        wave = np.concatenate(parts)
        path = f"{SPEECH_DIR}/{name}.wav"
        (root / SPEECH_DIR).mkdir(exist_ok=True)
        write_wav(root / path, wave, SR)
        row = dict.fromkeys(SENTENCE_COLUMNS, "")
        row.update(path=path, text=name, keyword=keyword, seconds=len(wave) / SR, engine=engine, split="test",
                   keyword_start_ms=start * 1000 if keyword else np.nan,
                   keyword_end_ms=(start + 0.4) * 1000 if keyword else np.nan)  # fmt: skip
        sentences.append(row)
    pd.DataFrame(sentences).to_csv(root / SPEECH_DIR / "sentences.csv", index=False)
    return root, sum(r["seconds"] for r in sentences)


@pytest.fixture(scope="module")
def model():
    frontend = LogMel()
    return KeywordModel(
        ToneNet(frontend), arch="tone", frontend=frontend, class_names=list(CLASS_NAMES), extra={}
    )


def test_held_out_unknown_words_taken_for_keywords_near_misses_apart(corpus, model):
    report = evaluate(model, corpus[0])["unknown_words"]
    assert report["n"] == 4 and report["false_accept_rate"] == 0.5
    assert report["near_miss"]["false_accept_rate"] == 1.0 and report["other"]["false_accept_rate"] == 0.0
    assert report["per_engine"] == {"a": 0.5, "b": 0.5}
    assert report["taken_for"] == {"yes": 2}
    assert report["confusions"] == [
        {
            "word": "yet",
            "kind": "near_miss",
            "resembles": "yes",
            "n": 2,
            "false_accepts": 2,
            "taken_for": {"yes": 2},
        }
    ]


def test_homophones_are_reported_apart(corpus, model):
    found = evaluate(model, corpus[0])["homophones"]
    assert found == {"n": 1, "words": ["know"], "taken_for_their_keyword": 1.0, "taken_for_a_keyword": 1.0}


def test_streaming_counts_hits_and_false_accepts_per_hour(corpus, model):
    root, seconds = corpus
    speech = evaluate(model, root, rule=StreamRule(hop_s=0.1, hops=3))["running_speech"]
    assert speech["sentences"] == 3 and speech["keyword_sentences"] == 1
    assert speech["hit_rate"] == 1.0  # the loud "yes" fires inside the window that holds it
    assert speech["false_accepts"] == 1 and speech["taken_for"] == {"no": 1}  # the "no" where none belongs
    assert speech["hours"] == pytest.approx(seconds / 3600)
    assert type(speech["hours"]) is float and type(speech["per_engine"]["a"]["per_hour"]) is float
    assert speech["false_accepts_per_hour"] == pytest.approx(3600 / seconds)
    assert speech["per_engine"]["a"]["false_accepts"] == 0 and speech["per_engine"]["b"]["false_accepts"] == 1
    assert speech["accepts"][0]["path"].endswith("s2.wav") and "3 consecutive" in speech["rule"]["decision"]
    # a rule that needs the keyword in more windows than a 0.4-s word fills misses it
    strict = evaluate(model, root, rule=StreamRule(hop_s=0.05, hops=30))["running_speech"]
    assert strict["hit_rate"] == 0.0 and strict["false_accepts"] == 0


def test_a_corpus_without_open_set_material_gets_the_word_measure_only(corpus, model, tmp_path):
    import shutil

    root = tmp_path / "plain"
    shutil.copytree(corpus[0], root, ignore=shutil.ignore_patterns(HOMOPHONES_DIR, SPEECH_DIR))
    assert set(evaluate(model, root)) == {"unknown_words"}
    table = pd.DataFrame({"word": ["cat", "dog"], "engine": ["a", "a"]})  # no kind column: all "other"
    report = unknown_words(table, np.array([0, 10]), list(CLASS_NAMES))
    assert report["other"]["false_accept_rate"] == 0.5 and report["near_miss"]["n"] == 0


def test_clip_measures_split_keyword_errors_into_silence_and_unknown():
    names = list(CLASS_NAMES)
    yes, no, unknown, quiet = (names.index(n) for n in ("yes", "no", "_unknown_", "_silence_"))
    labels = torch.tensor([yes, yes, yes, no, unknown, unknown])
    pred = torch.tensor([yes, quiet, unknown, quiet, yes, unknown])
    found = noise_robustness.clip_measures(pred, labels, names)
    assert found == {"n": 6, "accuracy": 2 / 6, "keyword_recall": 0.25, "keywords_as_silence": 0.5,
                     "keywords_as_unknown": 0.25, "unknown_taken_for_keyword": 0.5}  # fmt: skip


def test_noise_is_the_same_for_every_snr_and_model_and_leaves_clean_clips_alone():
    waves = torch.from_numpy(np.stack([clip(500), clip(900)]))
    assert noise_robustness.mixed(waves, "white", float("inf"), [1, 2]) is waves
    loud, quiet = (noise_robustness.mixed(waves, "hum", snr, [1, 2]) - waves for snr in (0.0, 20.0))
    torch.testing.assert_close(quiet, loud / 10, rtol=1e-4, atol=1e-7)  # one noise, scaled by 20 dB
    again = noise_robustness.mixed(waves, "hum", 0.0, [1, 2]) - waves
    assert torch.equal(again, loud) and not torch.equal(loud[0], loud[1])
    for bad in (float("nan"), float("-inf")):
        with pytest.raises(ValueError, match="snr_db"):
            noise_robustness.mixed(waves, "white", bad, [1, 2])


def test_noise_robustness_on_the_tone_corpus(corpus, model):
    root, _ = corpus
    found = noise_robustness.evaluate(
        model, root, snrs_db=(float("inf"), 10.0, -30.0), speech_snrs_db=(float("inf"), -30.0)
    )
    assert set(found["kinds"]) == set(noise_robustness.KINDS) and found["clips"] == 6
    for levels in found["kinds"].values():
        assert list(levels) == ["inf", "10", "-30"]
        assert levels["inf"]["keyword_recall"] == 1.0
    assert found["kinds"]["white"]["10"]["keyword_recall"] == 1.0  # a tone 10 dB over white noise is heard
    assert found["kinds"]["white"]["-30"]["keyword_recall"] < 1.0  # 30 dB under it, it is not
    speech = found["running_speech_white"]
    assert (
        speech["inf"]["hit_rate"] == 1.0 and speech["inf"]["false_accepts"] == 1
    )  # test_streaming's figures
    assert speech["-30"]["hit_rate"] == 0.0  # a "yes" 30 dB under white noise is not heard

"""The Speech Commands loader on a hand-made tree in the real layout (no metadata.csv) with awkward files,
and on a synthesised corpus."""

import shutil
import wave

import numpy as np
import pytest
import torch

from proactiv.tasks.kws.speech_commands import SpeechCommands, load_clip
from proactiv.tasks.kws.synth import BACKGROUND_DIR, CLASS_NAMES, synthesize
from proactiv.tasks.kws.wavio import write_wav

RATE = 16000


def _tone(freq: float, seconds: float, rate: int = RATE, level: float = 0.5) -> np.ndarray:
    return level * np.sin(2 * np.pi * freq * np.arange(int(seconds * rate)) / rate)


@pytest.fixture
def tree(tmp_path):
    """Real-layout tree: 3 keywords x 4 speakers, unknown words, lists, background noise, README."""
    speakers = ["0a7c2a8d", "1b2c3d4e", "c0ffee00", "deadbeef"]
    for w, word in enumerate(["yes", "no", "stop", "cat", "backward"]):
        (tmp_path / word).mkdir()
        for s, speaker in enumerate(speakers):
            for n in range(2 if word == "cat" else 1):
                write_wav(tmp_path / word / f"{speaker}_nohash_{n}.wav", _tone(200 + 50 * w + s, 0.9), RATE)
    (tmp_path / "validation_list.txt").write_text("yes/1b2c3d4e_nohash_0.wav\nno/1b2c3d4e_nohash_0.wav\n")
    tests = [f"{w}/deadbeef_nohash_{n}.wav" for w in ["yes", "no", "stop", "backward"] for n in [0]]
    (tmp_path / "testing_list.txt").write_text(
        "\n".join([*tests, "cat/deadbeef_nohash_0.wav", "cat/deadbeef_nohash_1.wav"]) + "\n"
    )
    (tmp_path / BACKGROUND_DIR).mkdir()
    write_wav(
        tmp_path / BACKGROUND_DIR / "white_noise.wav",
        np.random.default_rng(0).uniform(-0.5, 0.5, 3 * RATE),
        RATE,
    )
    (tmp_path / BACKGROUND_DIR / "README.md").write_text("not audio")
    return tmp_path


def test_splits_labels_and_speakers(tree):
    test = SpeechCommands(tree, "test", silence_per_class=0)
    assert test.class_names == list(CLASS_NAMES)
    assert sorted(test.metadata.path) == sorted(
        ["yes/deadbeef_nohash_0.wav", "no/deadbeef_nohash_0.wav", "stop/deadbeef_nohash_0.wav",
         "backward/deadbeef_nohash_0.wav", "cat/deadbeef_nohash_0.wav", "cat/deadbeef_nohash_1.wav"]
    )  # fmt: skip
    assert set(test.metadata.speaker) == {"deadbeef"}
    names = dict(zip(test.metadata.path, test.metadata.label_name, strict=True))
    assert names["backward/deadbeef_nohash_0.wav"] == names["cat/deadbeef_nohash_0.wav"] == "_unknown_"
    assert [CLASS_NAMES[i] for i in test.labels] == list(test.metadata.label_name)
    train = SpeechCommands(tree, "train", silence_per_class=0)
    assert len(train) == 24 - 2 - 6  # all clips minus validation and test
    assert not set(train.metadata.path) & set(test.metadata.path)
    assert set(train.metadata.speaker) == {"0a7c2a8d", "1b2c3d4e", "c0ffee00"}
    everything = SpeechCommands(tree, None, silence_per_class=0)
    assert len(everything) == 24 and set(everything.metadata.split) == {"train", "validation", "test"}
    assert {"path", "label_name", "speaker", "word", "split"} <= set(everything.metadata.columns)


def test_items_and_waveforms(tree):
    data = SpeechCommands(tree, "train", silence_per_class=0)
    wave0, label0 = data[0]
    assert wave0.dtype == torch.float32 and wave0.shape == (RATE,) and isinstance(label0, int)
    stacked = data.waveforms()
    assert stacked.shape == (len(data), RATE) and data.waveforms() is stacked  # cached
    torch.testing.assert_close(stacked[0], wave0)
    assert data.labels.dtype == torch.long and data.labels.shape == (len(data),)
    assert torch.all(stacked[:, int(0.9 * RATE) :] == 0)  # 0.9-s clips are zero-padded at the end


def test_silence_from_background_is_deterministic(tree):
    a = SpeechCommands(tree, "train", silence_per_class=1.0, seed=5)
    b = SpeechCommands(tree, "train", silence_per_class=1.0, seed=5)
    c = SpeechCommands(tree, "train", silence_per_class=1.0, seed=6)
    silence = torch.tensor((a.metadata.label_name == "_silence_").to_numpy())
    assert silence.sum() == 2  # the mean keyword class: yes 2, no 2, stop 3 training clips
    assert (a.labels[silence] == CLASS_NAMES.index("_silence_")).all()
    assert set(a.metadata.path[silence.numpy()]) == {f"{BACKGROUND_DIR}/white_noise.wav"}
    torch.testing.assert_close(a.waveforms(), b.waveforms())
    assert not torch.equal(a.waveforms()[silence], c.waveforms()[silence])
    noise = a.waveforms()[silence]
    assert noise.abs().max() <= 0.5 and noise.std() > 0
    other_split = SpeechCommands(tree, "test", silence_per_class=1.0, seed=5)
    assert other_split.metadata.noise_start.dropna().tolist() != a.metadata.noise_start.dropna().tolist()


def test_unknown_per_class_subsamples(tree):
    all_unknown = SpeechCommands(tree, "train", silence_per_class=0)
    assert (all_unknown.metadata.label_name == "_unknown_").sum() == 9
    few = SpeechCommands(tree, "train", silence_per_class=0, unknown_per_class=1.0, seed=1)
    assert (few.metadata.label_name == "_unknown_").sum() == 2  # round(7 / 3)
    assert set(few.metadata.path) < set(all_unknown.metadata.path)


def test_stereo_is_mixed_to_mono(tree):
    left, right = _tone(300, 1.0, level=0.6), _tone(700, 1.0, level=0.2)
    write_wav(tree / "yes" / "0a7c2a8d_nohash_0.wav", np.stack([left, right], axis=1), RATE)
    clip = load_clip(tree / "yes" / "0a7c2a8d_nohash_0.wav")
    np.testing.assert_allclose(clip, (left + right) / 2, atol=1e-4)


def test_other_sample_rate_is_resampled(tree):
    write_wav(tree / "yes" / "0a7c2a8d_nohash_0.wav", _tone(500, 0.5, rate=8000), 8000)
    data = SpeechCommands(tree, "train", silence_per_class=0)
    index = data.metadata.index[data.metadata.path == "yes/0a7c2a8d_nohash_0.wav"][0]
    clip = data[index][0].numpy()
    assert clip.shape == (RATE,)
    np.testing.assert_allclose(clip[1000:7000], _tone(500, 0.5)[1000:7000], atol=2e-3)
    assert not np.any(clip[8100:])  # 0.5 s of audio, then zero padding


def test_long_clip_is_centre_cropped(tree):
    ramp = np.linspace(-0.9, 0.9, 2 * RATE)
    write_wav(tree / "no" / "0a7c2a8d_nohash_0.wav", ramp, RATE)
    clip = load_clip(tree / "no" / "0a7c2a8d_nohash_0.wav")
    np.testing.assert_allclose(clip, ramp[RATE // 2 : RATE // 2 + RATE], atol=1e-4)


def test_other_pcm_widths_load(tree):
    path = tree / "stop" / "0a7c2a8d_nohash_0.wav"
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(1)
        handle.setframerate(RATE)
        handle.writeframes(np.full(RATE, 192, np.uint8).tobytes())
    np.testing.assert_allclose(load_clip(path), 0.5)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [(b"", "empty"), (b"ID3\x03 definitely an mp3", "RIFF"), ("cut", "truncated")],
)
def test_bad_file_names_the_file(tree, payload, reason):
    path = tree / "yes" / "0a7c2a8d_nohash_0.wav"
    path.write_bytes(path.read_bytes()[:2000] if payload == "cut" else payload)
    data = SpeechCommands(tree, "train", silence_per_class=0)
    index = int(data.metadata.index[data.metadata.path == "yes/0a7c2a8d_nohash_0.wav"][0])
    with pytest.raises(ValueError, match=reason) as info:
        data[index]
    assert str(path) in str(info.value)
    with pytest.raises(ValueError, match="0a7c2a8d_nohash_0.wav"):
        data.waveforms()


def test_argument_and_layout_errors(tree, tmp_path_factory):
    with pytest.raises(ValueError, match="unknown split"):
        SpeechCommands(tree, "dev")
    with pytest.raises(FileNotFoundError):
        SpeechCommands(tree / "nope")
    with pytest.raises(ValueError, match="no <word>"):
        SpeechCommands(tmp_path_factory.mktemp("empty"))
    shutil.rmtree(tree / BACKGROUND_DIR)
    with pytest.raises(ValueError, match="silence_per_class=0"):
        SpeechCommands(tree, "train")
    (tree / "testing_list.txt").unlink()
    with pytest.raises(ValueError, match="testing_list.txt"):
        SpeechCommands(tree, "test", silence_per_class=0)
    assert len(SpeechCommands(tree, None, silence_per_class=0)) == 24


@pytest.mark.skipif(not shutil.which("espeak-ng"), reason="needs espeak-ng (apt-get install -y espeak-ng)")
def test_synthesised_corpus_loads_with_its_metadata(tmp_path):
    meta = synthesize(tmp_path / "data", size="tiny", progress=False)
    test = SpeechCommands(tmp_path / "data", "test")
    speech = test.metadata[test.metadata.label_name != "_silence_"]
    assert sorted(speech.path) == sorted(meta.path[meta.split == "test"])
    assert {"engine", "voice", "variant", "rate", "pitch", "gender", "offset_ms"} <= set(
        test.metadata.columns
    )
    assert (speech.speaker == speech.path.map(dict(zip(meta.path, meta.speaker, strict=True)))).all()
    assert (test.metadata.label_name == "_silence_").sum() == len(speech[speech.label_name == "yes"])
    assert test.waveforms().shape == (len(test), RATE)
    assert set(test.metadata.label) == set(test.metadata.label_name)

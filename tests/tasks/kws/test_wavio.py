"""WAV reading/writing/resampling: PCM widths, channels, clear errors for bad files, atomic writes."""

import struct
import wave

import numpy as np
import pytest

from proactiv.tasks.kws.wavio import read_wav, resample, write_wav


def _write_pcm(path, frames: np.ndarray, width: int, rate: int = 16000, channels: int = 1) -> None:
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(channels)
        handle.setsampwidth(width)
        handle.setframerate(rate)
        handle.writeframes(frames.tobytes())


def test_write_read_roundtrip_16bit(tmp_path):
    x = np.sin(np.linspace(0, 40, 1600)).astype(np.float32) * 0.8
    write_wav(tmp_path / "a.wav", x, 16000)
    y, rate = read_wav(tmp_path / "a.wav")
    assert rate == 16000 and y.dtype == np.float32 and y.shape == x.shape
    assert np.max(np.abs(y - x)) <= 0.5 / 32768
    with wave.open(str(tmp_path / "a.wav")) as handle:
        assert (handle.getsampwidth(), handle.getnchannels()) == (2, 1)
    assert [p.name for p in tmp_path.iterdir()] == ["a.wav"]  # no temp file left behind


def test_write_clips_out_of_range(tmp_path):
    write_wav(tmp_path / "a.wav", np.array([2.0, -3.0, 0.5]), 8000)
    y, _ = read_wav(tmp_path / "a.wav")
    np.testing.assert_array_equal(y, [32767 / 32768, -1.0, 0.5])


@pytest.mark.parametrize(
    ("width", "raw", "expected"),
    [
        (1, np.array([0, 128, 255], np.uint8), [-1.0, 0.0, 127 / 128]),
        (2, np.array([-32768, 0, 16384], "<i2"), [-1.0, 0.0, 0.5]),
        (4, np.array([-(2**31), 0, 2**30], "<i4"), [-1.0, 0.0, 0.5]),
    ],
)
def test_integer_pcm_widths(tmp_path, width, raw, expected):
    _write_pcm(tmp_path / "a.wav", raw, width)
    y, _ = read_wav(tmp_path / "a.wav")
    np.testing.assert_allclose(y, expected, atol=1e-6)


def test_24bit_pcm(tmp_path):
    values = [-(2**23), 0, 2**22, 2**23 - 1]
    raw = b"".join(struct.pack("<i", v)[:3] for v in values)
    with wave.open(str(tmp_path / "a.wav"), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(3)
        handle.setframerate(16000)
        handle.writeframes(raw)
    y, _ = read_wav(tmp_path / "a.wav")
    np.testing.assert_allclose(y, [-1.0, 0.0, 0.5, (2**23 - 1) / 2**23], atol=1e-7)


def test_stereo_keeps_channels(tmp_path):
    frames = np.array([[1000, -1000], [2000, -2000], [3000, -3000]], "<i2")
    _write_pcm(tmp_path / "s.wav", frames, 2, channels=2)
    y, _ = read_wav(tmp_path / "s.wav")
    assert y.shape == (3, 2)
    np.testing.assert_allclose(y[:, 0], -y[:, 1])


def _float_wav(path) -> None:
    """A valid IEEE-float (format 3) WAV, which only integer-PCM readers reject."""
    data = np.zeros(16, "<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, 16000, 64000, 4, 32)
    body = (
        b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    )
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def test_bad_files_raise_value_error_naming_file(tmp_path):
    good = tmp_path / "good.wav"
    write_wav(good, np.zeros(1600), 16000)
    cases = {
        "empty.wav": (b"", "empty"),
        "text.wav": (b"this is not audio at all, just some text", "RIFF"),
        "header.wav": (good.read_bytes()[:20], "truncated"),
        "cut.wav": (good.read_bytes()[:1000], "truncated"),
        "noframes.wav": (None, "no audio frames"),
    }
    for name, (payload, reason) in cases.items():
        path = tmp_path / name
        if payload is None:
            write_wav(path, np.zeros(0), 16000)
        else:
            path.write_bytes(payload)
        with pytest.raises(ValueError, match=reason) as info:
            read_wav(path)
        assert str(path) in str(info.value)
    _float_wav(tmp_path / "float.wav")
    with pytest.raises(ValueError, match="integer PCM") as info:
        read_wav(tmp_path / "float.wav")
    assert "float.wav" in str(info.value)
    with pytest.raises(ValueError, match="missing.wav"):
        read_wav(tmp_path / "missing.wav")


def _peak_hz(x: np.ndarray, rate: float) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[np.argmax(spectrum)])


def test_resample_keeps_frequency():
    t = np.arange(8000) / 8000
    y = resample(np.sin(2 * np.pi * 440 * t), 8000, 16000)
    assert y.dtype == np.float32 and len(y) == 16000
    assert abs(_peak_hz(y, 16000) - 440) < 2


def test_fractional_input_rate_shifts_pitch():
    """Declaring the input rate k times higher shifts frequencies up and shortens the signal by k."""
    t = np.arange(16000) / 16000
    k = 2 ** (3 / 12)
    y = resample(np.sin(2 * np.pi * 400 * t), 16000 * k, 16000)
    assert abs(len(y) - 16000 / k) <= 2
    assert abs(_peak_hz(y, 16000) - 400 * k) < 3


def test_same_rate_is_identity():
    x = np.arange(5, dtype=np.float32)
    np.testing.assert_array_equal(resample(x, 16000, 16000), x)

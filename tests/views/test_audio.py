"""Audio of model inputs, decided by the run's schema alone: a WAV data URI the browser plays (peak-normalised
when too loud), waveforms played at their sample rate, spectrograms inverted through the run's own frontend,
and a sentence saying why when there is nothing to listen to."""

import base64
import io
import wave
from types import SimpleNamespace

import numpy as np
import torch

from proactiv.schema import RunSchema, frontend_config, input_spec
from proactiv.tasks.kws.frontend import LogMel
from proactiv.views.audio import input_audio, wav_data_uri


def _wav(uri: str) -> tuple[int, np.ndarray]:
    with wave.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))) as w:
        return w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


def _run(kind: str, shape, sample_rate=None, frontend=None) -> SimpleNamespace:
    spec = input_spec(kind, shape, sample_rate=sample_rate)
    return SimpleNamespace(schema=RunSchema(target="label", input=spec, frontend=frontend))


def test_wav_data_uri_is_a_wav():
    uri = wav_data_uri(np.sin(np.linspace(0, 100, 1600)) * 3, 16000)
    raw = base64.b64decode(uri.split(",", 1)[1])
    assert uri.startswith("data:audio/wav;base64,") and raw[:4] == b"RIFF" and len(raw) == 44 + 3200


def test_loud_clips_are_normalised_and_quiet_ones_kept():
    rate, loud = _wav(wav_data_uri(np.array([0.0, 4.0, -2.0, np.nan]), 8000))
    assert rate == 8000 and loud.tolist() == [0, 32767, -16383, 0]  # peak at full scale, NaN silent
    assert _wav(wav_data_uri(np.array([0.25, -0.5]), 8000))[1].tolist() == [8191, -16383]  # not amplified


def test_waveforms_play_as_the_model_received_them():
    x, x_t = np.zeros(1600), np.sin(np.arange(1600) * 0.3) * 0.5
    players, note = input_audio(_run("waveform", (1600,), 16000), {"x": x, "x_t": x_t, "x_proj": None})
    assert [name for name, _ in players] == ["x", "x_t"]  # an input that is not there gets no player
    rate, pcm = _wav(players[1][1])
    assert rate == 16000 and len(pcm) == 1600 and np.allclose(pcm / 32767, x_t, atol=1e-4)
    assert note == "waveforms as the model received them (16000 Hz)"
    assert input_audio(_run("waveform", (1600,)), {"x": x}) == (
        [],
        "waveform inputs without a sample rate in the run schema: cannot play them",
    )


def test_spectrograms_are_inverted_through_the_runs_frontend():
    frontend = LogMel()
    clip = torch.sin(torch.arange(16000) * 0.2).unsqueeze(0) * 0.3
    mel = frontend(clip)[0].numpy()
    run = _run("spectrogram", mel.shape, 16000, frontend_config(frontend))
    cache: dict = {}
    players, note = input_audio(run, {"x_t": mel, "x_proj": mel + 1.0}, cache)
    assert [name for name, _ in players] == ["x_t", "x_proj"] and "approximate" in note
    rate, pcm = _wav(players[0][1])
    assert rate == 16000 and abs(len(pcm) - 16000) <= frontend.hop_length and np.abs(pcm).max() > 1000
    assert isinstance(cache["frontend"], LogMel)  # rebuilt once, reused by the next record
    players, note = input_audio(run, {"x_t": mel[:7]}, cache)
    assert players == [] and note.startswith(f"inputs of shape {mel[:7].shape} are not spectrograms")


def test_inputs_that_cannot_be_heard_say_why():
    assert input_audio(_run("vector", (8,)), {"x": np.zeros(8)}) == (
        [],
        "vector inputs (not a sound): nothing to listen to",
    )
    plain = _run("spectrogram", (40, 101), 16000)
    assert input_audio(plain, {"x": np.zeros((40, 101))})[1] == (
        "spectrogram inputs (no frontend to invert): nothing to listen to"
    )
    gone = _run("spectrogram", (40, 101), 16000, {"class": "nowhere:Frontend", "config": {}})
    players, note = input_audio(gone, {"x": np.zeros((40, 101))})
    assert players == [] and note.startswith("cannot rebuild this run's frontend to invert it to audio")

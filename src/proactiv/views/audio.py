"""Audio of model inputs, for the dashboard's and the report's players: WAV data URIs, decided by the run's
schema alone.

Waveform inputs play as they are, at the schema's sample rate. Spectrogram inputs whose frontend the schema
can rebuild are turned into sound by that frontend's own ``invert`` (the log-mel frontend's: Griffin-Lim; no
model file needed), and the page says it is an approximation. Anything else gets a message saying why there is
nothing to listen to.
"""

from __future__ import annotations

import base64
import io
import wave

import numpy as np

from proactiv.schema import build_frontend
from proactiv.store import Run


def wav_data_uri(samples: np.ndarray, sample_rate: int) -> str:
    """Mono float samples → a 16-bit WAV ``data:`` URI (peak-normalised when louder than full scale)."""
    x = np.asarray(samples, dtype=np.float64).reshape(-1)
    x = np.nan_to_num(x)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak > 1.0:
        x = x / peak
    pcm = (np.clip(x, -1.0, 1.0) * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(sample_rate))
        w.writeframes(pcm.tobytes())
    return "data:audio/wav;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _frontend(run: Run, cache: dict):
    """The run's frontend rebuilt from its schema (once per ``cache``), or the reason it cannot be."""
    if "frontend" not in cache:
        try:
            cache["frontend"] = build_frontend(run.schema.frontend)
        except (ValueError, TypeError, KeyError) as err:
            cache["frontend"] = f"cannot rebuild this run's frontend to invert it to audio: {err}"
    return cache["frontend"]


def input_audio(
    run: Run, arrays: dict[str, np.ndarray | None], cache: dict | None = None
) -> tuple[list[tuple[str, str]], str]:
    """Players (label, data URI) for the given model inputs of a run (e.g. x, xT, x̂T of a record), and a note
    on what they are or why there are none; ``cache`` keeps the rebuilt frontend between calls."""
    schema = run.schema
    spec = schema.input
    names = [k for k, v in arrays.items() if v is not None]
    if not schema.audible:
        why = "no frontend to invert" if spec.spectrogram else "not a sound"
        return [], f"{spec.kind} inputs ({why}): nothing to listen to"
    if spec.kind == "waveform":
        if spec.sample_rate is None:
            return [], "waveform inputs without a sample rate in the run schema: cannot play them"
        return [(k, wav_data_uri(arrays[k], spec.sample_rate)) for k in names], (
            f"waveforms as the model received them ({spec.sample_rate} Hz)"
        )
    frontend = _frontend(run, {} if cache is None else cache)
    if isinstance(frontend, str):
        return [], frontend
    if not callable(getattr(frontend, "invert", None)):
        return (
            [],
            f"this run's frontend ({type(frontend).__name__}) has no invert(): cannot play its spectrograms",
        )
    import torch

    stack = np.stack([np.squeeze(arrays[k]).astype(np.float32) for k in names])
    try:
        waves = frontend.invert(torch.from_numpy(stack)).numpy()
    except ValueError as err:
        return (
            [],
            f"inputs of shape {tuple(stack.shape[1:])} are not spectrograms of this run's frontend ({err})",
        )
    players = [(k, wav_data_uri(w, spec.sample_rate)) for k, w in zip(names, waves, strict=True)]
    return players, "spectrogram inputs: audio inverted through the run's frontend (approximate)"

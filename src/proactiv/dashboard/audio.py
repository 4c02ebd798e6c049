"""Audio for the record detail: WAV data URIs for ``html.Audio``.

Waveform-domain runs play their stored waveforms. Feature-domain (log-mel) runs are inverted with
Griffin-Lim through the run's own model frontend (``run.config["model"]["path"]``), and the page says it is an
approximation. Image runs, and feature runs without a readable model, get a message instead of a player.
"""

from __future__ import annotations

import base64
import io
import wave
from pathlib import Path

import numpy as np

from proactiv.dashboard.data import RunData

DEFAULT_RATE = 16000


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


def _frontend(data: RunData):
    """The LogMel frontend of a feature-domain KWS run's model (cached on the RunData), or an error text."""
    if "frontend" in data._cache:
        return data._cache["frontend"]
    model = data.run.config.get("model") or {}
    path = model.get("path") if isinstance(model, dict) else None
    result: object
    if not path:
        result = "this run names no model file, so its log-mel cannot be inverted to audio"
    else:
        file = Path(path)
        file = file / "model.pt" if file.is_dir() else file
        try:
            from proactiv.tasks.kws import load_model

            result = load_model(file).frontend
        except Exception as err:  # missing/unreadable model: say so in the page
            result = f"cannot load the model frontend from {file.name}: {err}"
    data._cache["frontend"] = result
    return result


def record_audio(data: RunData, arrays: dict[str, np.ndarray | None]) -> tuple[list[tuple[str, str]], str]:
    """Players (label, data URI) for x, xT and x̂T of a record, and a note on what they are."""
    cfg = data.run.config
    sample = arrays["x_t"]
    squeezed = np.squeeze(sample)
    feature = cfg.get("domain") == "feature" or bool(cfg.get("frontend"))
    if squeezed.ndim == 1:
        rate = int(cfg.get("sample_rate") or DEFAULT_RATE)
        players = [(k, wav_data_uri(v, rate)) for k, v in arrays.items() if v is not None]
        return players, f"waveforms as the model received them ({rate} Hz)"
    if not feature or cfg.get("task") not in ("kws", "synthetic"):
        return [], "image task: nothing to listen to"
    frontend = _frontend(data)
    if isinstance(frontend, str):
        return [], frontend
    import torch

    from proactiv.tasks.kws.frontend import griffin_lim

    names = [k for k, v in arrays.items() if v is not None]
    stack = np.stack([np.squeeze(arrays[k]).astype(np.float32) for k in names])
    if stack.ndim != 3 or stack.shape[1] != frontend.n_mels:
        return [], f"inputs of shape {tuple(stack.shape[1:])} are not log-mel spectrograms of this frontend"
    waves = griffin_lim(torch.from_numpy(stack), frontend, n_iter=32).numpy()
    rate = int(frontend.sample_rate)
    players = [(k, wav_data_uri(w, rate)) for k, w in zip(names, waves, strict=True)]
    return players, "feature-domain run: audio is a Griffin-Lim inversion of the log-mel (approximate)"

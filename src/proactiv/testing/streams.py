"""A stream whose decisions are planted, for testing stream assertions, corrections and their views: tones a
hand-set model (:class:`ToneModel`) hears, one class per tone, cut in windows as long as the hop (so each
window holds one planted segment and nothing of its neighbours), with each built-in assertion's violation
planted at known steps (:data:`PLANTED`)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

SR = 16000
HOP = 0.1
CLASSES = ["_silence_", "yes", "no", "up"]
KEYWORDS = ["yes", "no", "up"]
#: the tone of each keyword: a whole number of cycles in a 0.1-s window, on a 10-Hz FFT bin
TONES = {"yes": 1000.0, "no": 2000.0, "up": 3000.0}
#: the silence class's fixed logit (dB): a tone below it is decided as silence
SILENCE_DB = -90.0


class ToneModel(nn.Module):
    """Logits in dB: the mean power of each keyword's tone (its FFT bin ± 2), silence fixed at -90 dB."""

    class_names = CLASSES

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[-1]
        power = torch.fft.rfft(x.double(), dim=-1).abs().pow(2) * 2 / n**2
        out = [torch.full((len(x),), SILENCE_DB, dtype=torch.float64)]
        for name in KEYWORDS:
            k = round(TONES[name] * n / SR)
            out.append(10 * torch.log10(power[:, k - 2 : k + 3].sum(1) + 1e-30))
        return torch.stack(out, 1).float()


def tone(name: str, steps: int, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(round(steps * HOP * SR)) / SR
    return (amplitude * np.sin(2 * np.pi * TONES[name] * t)).astype(np.float32)


def silence(steps: int) -> np.ndarray:
    return np.zeros(round(steps * HOP * SR), dtype=np.float32)


#: (what, first step, last step) of every planted violation, by the assertion that must find it
PLANTED = {
    "flicker": [71],  # a one-step "no" at 70 among silence: known when silence comes back at 71
    "alternation": [105],  # "yes" 100-104 then "up" from 105: two keywords within 1 s
    "refractory": [147],  # "up" begins at 140 and again at 147 (0.7 s later)
    "energy_floor": list(range(180, 190)),  # a "yes" tone at -63 dBFS, decided confidently
    "consistency": list(range(210, 220)),  # a "no" just under silence's -90 dB: 3 dB louder it is "no"
}


def planted_wave() -> np.ndarray:
    a_quiet = float(np.sqrt(2 * 10 ** (-91.5 / 10)))  # the tone's mean power at -91.5 dB
    parts = [
        silence(20), tone("yes", 20), silence(30),  # 0-69
        tone("no", 1), silence(29),  # 70, 71-99
        tone("yes", 5), tone("up", 10), silence(25),  # 100-104, 105-114, 115-139
        tone("up", 4), silence(3), tone("up", 4), silence(29),  # 140-143, 144-146, 147-150, 151-179
        tone("yes", 10, 1e-3), silence(20),  # 180-189, 190-209
        tone("no", 10, a_quiet), silence(20),  # 210-219, 220-239
    ]  # fmt: skip
    return np.concatenate(parts)


def write_planted_store(out, chunk: int = 64, resume: bool = False):
    """The planted stream monitored with every built-in assertion and correction (majority, flicker
    suppression, a 1-s refractory hold), as a :class:`~proactiv.monitor.MonitorStore` in ``out`` (``resume``:
    continue the store there)."""
    from proactiv.monitor import (
        HoldRefractory,
        MajorityOfCopies,
        SuppressFlicker,
        WaveStream,
        default_assertions,
        monitor,
    )

    fixes = [MajorityOfCopies(), SuppressFlicker(3), HoldRefractory(1.0, KEYWORDS)]
    return monitor(ToneModel(), WaveStream(planted_wave(), SR, HOP, HOP, name="planted"),
                   default_assertions(KEYWORDS), fixes, out=out, events=KEYWORDS, chunk=chunk, progress=False,
                   resume=resume)  # fmt: skip

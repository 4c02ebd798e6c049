"""Keyword-spotting models on log-mel dB features, and their one-file save/load format.

Every model takes raw log-mel dB ``(B, n_mels, frames)`` and normalises each utterance *inside* the model
(zero mean, unit variance over the whole utterance), so a projection can act on the raw dB values the
frontend produces, and a gain change of the waveform (a constant dB offset) does not change the decision.

Architectures (``build_model(arch, n_classes)``):

- ``"cnn"``: a plain three-layer strided CNN with global average pooling.
- ``"dscnn"``: a depthwise-separable CNN in the style of "Hello Edge" (Zhang et al. 2017), sized for
  1 s clips at 10 ms hop: a strided 5×3 conv then four depthwise-separable blocks, 64 channels wide.
- ``"dscnn-wide"`` (:data:`DEFAULT_ARCH`, the demo's): the same network 96 channels wide (45 k parameters and
  12 M multiply-adds a clip against 22 k and 5.8 M): on the demo corpus it told keywords from other words and
  from noise better, at 1.34 times the training step on 2 threads (``docs/kws-model.md``).
- ``"bcresnet"``: a broadcasted-residual network after BC-ResNet (Kim et al. 2021): frequency-wise
  depthwise convs with sub-spectral norm, plus a temporal branch on the frequency average broadcast back.

``build_model(arch, n_classes, members=K)`` with K > 1 gives an :class:`Ensemble` of K such networks;
architectures joined by ``+`` (``"dscnn+bcresnet"``) give an ensemble of one network of each (K of each).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from proactiv.io import write_torch
from proactiv.tasks.kws.frontend import LogMel

ARCHS = ("cnn", "dscnn", "dscnn-wide", "bcresnet")
#: what ``proactiv kws train`` (and :func:`~proactiv.tasks.kws.train.train`) trains unless told: the demo's model.
#: The 96-channel DS-CNN met the demo's 10 dB targets in each of three trainings and its held-out-voice ones in
#: two (the 64-channel one: neither, in three), for 1.34x the training step on 2 threads; it fires more often on
#: clean running speech (``docs/kws-model.md``)
DEFAULT_ARCH = "dscnn-wide"
FORMAT = "proactiv.kws.model/1"
TOP_DB = 80.0


class UtteranceNorm(nn.Module):
    """Per-utterance standardisation over all features of a sample, after a dynamic-range clamp.

    Values more than ``top_db`` below the utterance's peak are raised to ``peak - top_db`` (as librosa's
    ``top_db``): digital silence sits at the frontend's -100 dB floor, 120 dB under speech, and without
    the clamp the silence/speech contrast, which depends on the word's duration, dominates the std.
    ``top_db=None`` disables the clamp.
    """

    def __init__(self, eps: float = 1e-3, top_db: float | None = TOP_DB):
        super().__init__()
        self.eps = eps
        self.top_db = top_db

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (-1, *([1] * (x.dim() - 1)))
        if self.top_db is not None:
            x = torch.maximum(x, x.flatten(1).amax(1).view(shape) - self.top_db)
        flat = x.flatten(1)
        mean = flat.mean(1).view(shape)
        std = flat.std(1, unbiased=False).view(shape)
        return (x - mean) / (std + self.eps)


def _conv_bn(c_in: int, c_out: int, kernel, stride=1, groups: int = 1) -> nn.Sequential:
    padding = tuple(k // 2 for k in kernel) if isinstance(kernel, tuple) else kernel // 2
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


def _channels_last(x: torch.Tensor) -> torch.Tensor:
    """(B, mels, frames) → (B, 1, mels, frames) in channels-last layout (~30 % faster convs on CPU)."""
    return x.unsqueeze(1).contiguous(memory_format=torch.channels_last)


class CNN(nn.Module):
    """Small strided CNN: 3 conv layers (stride 2 each) → global average pool → dropout → linear."""

    def __init__(
        self, n_classes: int = 12, channels: tuple[int, int, int] = (16, 32, 64), dropout: float = 0.1
    ):
        super().__init__()
        c1, c2, c3 = channels
        self.norm = UtteranceNorm()
        self.features = nn.Sequential(
            _conv_bn(1, c1, (5, 5), stride=2),
            _conv_bn(c1, c2, (3, 3), stride=2),
            _conv_bn(c2, c3, (3, 3), stride=2),
            _conv_bn(c3, c3, (3, 3), stride=1),
        )
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(c3, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(_channels_last(self.norm(x)))
        return self.head(h.mean((2, 3)))


class DSCNN(nn.Module):
    """Depthwise-separable CNN: strided 5×3 conv, then depthwise 3×3 + pointwise 1×1 blocks (first strided)."""

    def __init__(self, n_classes: int = 12, width: int = 64, blocks: int = 4, dropout: float = 0.1):
        super().__init__()
        self.norm = UtteranceNorm()
        layers = [_conv_bn(1, width, (5, 3), stride=2)]
        for i in range(blocks):
            stride = 2 if i == 0 else 1
            layers += [
                _conv_bn(width, width, (3, 3), stride=stride, groups=width),
                _conv_bn(width, width, (1, 1)),
            ]
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(width, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(_channels_last(self.norm(x)))
        return self.head(h.mean((2, 3)))


class SubSpectralNorm(nn.Module):
    """Batch norm with statistics per channel *and* frequency sub-band (``bands`` equal bands): low and high
    bands of a spectrogram differ in level and spread, which one statistic per channel averages away."""

    def __init__(self, channels: int, bands: int = 5):
        super().__init__()
        self.bands = bands
        self.norm = nn.BatchNorm2d(channels * bands)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, f, t = x.shape
        return self.norm(x.reshape(b, c * self.bands, f // self.bands, t)).reshape(b, c, f, t)


class BroadcastBlock(nn.Module):
    """One block of :class:`BCResNet`: a frequency-wise depthwise conv (3×1) with sub-spectral norm, and a
    temporal branch (depthwise 1×3, dilated, then pointwise) on its average over frequency, added back to
    every frequency bin. A block that changes the width starts with a pointwise conv and has no shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1, dilation: int = 1, dropout: float = 0.1):
        super().__init__()
        self.widen = _conv_bn(c_in, c_out, (1, 1)) if c_in != c_out else None
        self.frequency = nn.Sequential(
            nn.Conv2d(c_out, c_out, (3, 1), stride=(stride, 1), padding=(1, 0), groups=c_out, bias=False),
            SubSpectralNorm(c_out),
        )
        self.temporal = nn.Sequential(
            nn.Conv2d(c_out, c_out, (1, 3), padding=(0, dilation), dilation=(1, dilation), groups=c_out,
                      bias=False),
            nn.BatchNorm2d(c_out),
            nn.SiLU(),
            nn.Conv2d(c_out, c_out, 1, bias=False),
            nn.Dropout2d(dropout),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.widen is None else 0.0
        x = x if self.widen is None else self.widen(x)
        per_bin = self.frequency(x)
        return torch.relu(shortcut + per_bin + self.temporal(per_bin.mean(2, keepdim=True)))


class BCResNet(nn.Module):
    """Broadcasted-residual network (BC-ResNet-``scale``, Kim et al., Interspeech 2021) on (40 mels, frames).

    Stem 5×5 conv (stride 2 on frequency and on time), four stages of :class:`BroadcastBlock` (widths 8, 12,
    16, 20 × ``scale``; 2, 2, 4, 4 blocks; frequency stride 2 entering stages two and three; time dilation 1,
    2, 4, 8), a depthwise conv over the 5 remaining frequency bins, a pointwise conv (32 × ``scale``), global
    average pooling and a linear layer. The paper keeps every frame; the stem's time stride here halves the
    cost on a CPU, where BC-ResNet-2 then costs about 1.5 DS-CNN training steps. At scale 2: ~27 k parameters.
    """

    def __init__(self, n_classes: int = 12, scale: float = 2.0, n_mels: int = 40, dropout: float = 0.1):
        super().__init__()
        if n_mels <= 0 or n_mels % 40:  # halved three times into 5 sub-bands of whole bins
            raise ValueError(f"BCResNet: n_mels={n_mels!r}: expected a multiple of 40")
        self.n_mels = n_mels
        stem, *stages, last = (int(round(w * scale)) for w in (16, 8, 12, 16, 20, 32))
        self.norm = UtteranceNorm()
        layers, width = [_conv_bn(1, stem, (5, 5), stride=2)], stem
        for c_out, blocks, stride, dilation in zip(
            stages, (2, 2, 4, 4), (1, 2, 2, 1), (1, 2, 4, 8), strict=True
        ):
            for i in range(blocks):
                layers.append(BroadcastBlock(width, c_out, stride if i == 0 else 1, dilation, dropout))
                width = c_out
        bins = n_mels // 8
        layers += [
            nn.Conv2d(width, width, (bins, 5), padding=(0, 2), groups=width, bias=False),
            _conv_bn(width, last, (1, 1)),
        ]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(last, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[1] != self.n_mels:  # else an opaque reshape error deep inside
            raise ValueError(
                f"BCResNet: features of shape {tuple(x.shape)}: expected (batch, {self.n_mels} mels, frames)"
            )
        h = self.features(_channels_last(self.norm(x)))
        return self.head(h.mean((2, 3)))


#: the channels of ``"dscnn-wide"``
WIDE = 96
_NETWORKS = {
    "cnn": CNN,
    "dscnn": DSCNN,
    "dscnn-wide": lambda n_classes: DSCNN(n_classes, width=WIDE),
    "bcresnet": BCResNet,
}


def arch_parts(arch: str) -> tuple[str, ...]:
    """The architectures of ``arch`` ("dscnn", or several joined by ``+``); ``ValueError`` names a bad one."""
    parts = tuple(str(arch).split("+"))
    if not all(p in ARCHS for p in parts):
        raise ValueError(f"unknown arch {arch!r}; expected one of {ARCHS}, or several joined by '+'")
    return parts


class Ensemble(nn.Module):
    """``members`` networks (of one architecture, or of several) that decide together: the mean of their
    log-probabilities.

    Why: trainings of one recipe that differ only in seed or thread count land 1-1.5 points apart on held-out
    voices, and each misses different clips; averaging two of them gained about a point on the demo corpus
    (see :func:`proactiv.tasks.kws.train.fit`, which trains the members side by side on their own batches).
    The output is log-probabilities, which a logit offset and a cross-entropy loss treat as logits. Analyses see
    one module: TracIn, over the last layer, refuses it (no single last fully-connected layer), and
    Grad-CAM's default layer is the last member's last convolution.
    """

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([torch.log_softmax(m(x), 1) for m in self.members]).mean(0)


def build_model(arch: str = DEFAULT_ARCH, n_classes: int = 12, members: int = 1) -> nn.Module:
    """A fresh (untrained) model of architecture ``arch`` (one of :data:`ARCHS`) on log-mel dB features; with
    ``members`` > 1 an :class:`Ensemble` of that many, each initialised by its own draws. ``arch`` joined by
    ``+`` ("dscnn+bcresnet") gives an ensemble of ``members`` networks of each architecture."""
    parts = arch_parts(arch)
    if not isinstance(members, int) or members < 1:
        raise ValueError(f"members={members!r}: expected a whole number of networks, at least 1")
    nets = [_NETWORKS[part](n_classes) for _ in range(members) for part in parts]
    nets = [net.to(memory_format=torch.channels_last) for net in nets]
    return nets[0] if len(nets) == 1 else Ensemble(nets)


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_macs(model: nn.Module, input_shape: tuple[int, ...] = (1, 40, 101)) -> int:
    """Multiply-accumulates of one forward pass of conv and linear layers for one sample of ``input_shape``."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            per_out = (module.in_channels // module.groups) * kh * kw
            total += output[0].numel() * per_out
        elif isinstance(module, nn.Linear):
            total += module.in_features * module.out_features

    handles = [
        m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(input_shape))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return total


class WaveformModel(nn.Module):
    """Frontend + feature model: waveform ``(B, samples)`` → logits, for waveform-domain projection."""

    def __init__(self, frontend: LogMel, model: nn.Module):
        super().__init__()
        self.frontend = frontend
        self.model = model

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.model(self.frontend(wave))


class KeywordModel(nn.Module):
    """A loaded keyword model on log-mel dB features ``(B, n_mels, frames)`` → logits ``(B, n_classes)``.

    Attributes: ``arch``, ``class_names``, ``frontend`` (the :class:`LogMel` it was trained with), ``extra``
    (whatever was saved alongside, e.g. training metrics), ``logit_offset`` (the decision calibration chosen
    on validation, added to the logits, see :mod:`proactiv.tasks.kws.decision`; None for models saved
    without one, whose fingerprint it then leaves as it was).
    """

    def __init__(
        self,
        net: nn.Module,
        *,
        arch: str,
        frontend: LogMel,
        class_names: list[str],
        extra: dict,
        logit_offset: torch.Tensor | None = None,
    ):
        super().__init__()
        self.net = net
        self.arch = arch
        self.frontend = frontend
        self.class_names = list(class_names)
        self.extra = extra
        if logit_offset is not None and tuple(logit_offset.shape) != (len(self.class_names),):
            raise ValueError(
                f"logit_offset of shape {tuple(logit_offset.shape)}: expected one value per class "
                f"({len(self.class_names)})"
            )
        self.register_buffer("logit_offset", logit_offset)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        logits = self.net(features)
        return logits if self.logit_offset is None else logits + self.logit_offset

    def waveform_model(self) -> WaveformModel:
        """An ``nn.Module`` mapping waveforms to logits (this model's frontend, then this model), in eval mode."""
        return WaveformModel(self.frontend, self).eval()


def save_model(
    path: str | os.PathLike,
    model: nn.Module,
    *,
    arch: str,
    frontend_config: dict,
    class_names: list[str],
    extra: dict | None = None,
    logit_offset: list[float] | None = None,
) -> Path:
    """Save ``model`` (built by :func:`build_model`) with everything needed to rebuild it, as one file;
    ``logit_offset`` (one value per class) is its decision calibration (a :class:`KeywordModel`'s own when
    not given).

    The file is a ``torch.save`` of plain containers and tensors (loadable with ``weights_only=True``),
    written to a temporary name then renamed, so a crash never leaves a half-written model.
    """
    if isinstance(model, KeywordModel):
        if logit_offset is None and model.logit_offset is not None:
            logit_offset = model.logit_offset.tolist()
        model = model.net
    members = len(model.members) // len(arch_parts(arch)) if isinstance(model, Ensemble) else 1
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "arch": arch,
        "n_classes": len(class_names),
        "class_names": list(class_names),
        "frontend": dict(frontend_config),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "extra": dict(extra or {}),
    }
    if members > 1:  # absent for one network, so such files read as before
        payload["members"] = members
    if logit_offset is not None:
        payload["logit_offset"] = [float(v) for v in logit_offset]
    return write_torch(path, payload)


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> KeywordModel:
    """Load a model saved by :func:`save_model` as a :class:`KeywordModel` in eval mode.

    Raises ``ValueError`` naming the file when it is missing, unreadable or not a proactiv KWS model.
    """
    model = read_model_file(Path(path))
    if model is None:
        raise ValueError(
            f"model file {str(path)!r} is not a proactiv keyword model (expected format {FORMAT!r})"
        )
    return model.to(device)


def read_model_file(path: Path) -> KeywordModel | None:
    """The model in a file :func:`save_model` wrote, in eval mode, or None for a torch file of another kind (the
    reader the kws task registers with :func:`proactiv.models.register_file_reader`). ``ValueError`` names a
    file that is missing, unreadable, or a keyword model that does not load."""
    if not path.is_file():
        raise ValueError(f"model file {str(path)!r} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for corrupt files
        raise ValueError(
            f"model file {str(path)!r} is not a readable torch file ({type(err).__name__})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        return None
    try:
        net = build_model(payload["arch"], payload["n_classes"], payload.get("members", 1))
        net.load_state_dict(payload["state_dict"])
        frontend = LogMel.from_config(payload["frontend"])
        offset = payload.get("logit_offset")
        model = KeywordModel(
            net,
            arch=payload["arch"],
            frontend=frontend,
            class_names=payload["class_names"],
            extra=payload.get("extra", {}),
            logit_offset=None if offset is None else torch.tensor(offset, dtype=torch.float32),
        )
    except (KeyError, RuntimeError, TypeError, ValueError) as err:
        raise ValueError(f"model file {str(path)!r} has an invalid model ({err})") from None
    return model.eval()

"""Train a keyword-spotting model on a Speech Commands-layout corpus, with voice-changing augmentation.

Why these choices: a synthetic corpus has few voices per engine, so a model overfits to the voices it has
seen and sends unfamiliar voices of keywords to ``_unknown_``. Against that: class-balanced sampling (the
``_unknown_`` class is larger), augmentation that changes the voice (speed/pitch by resampling,
vocal-tract-length warping of the mel axis) and the channel (time shift, background noise, reverb,
SpecAugment masks), per-utterance feature normalisation inside the model, and model selection on the
*worst engine's* validation accuracy rather than the mean.

Waveform augmentation needs the features recomputed every batch (the frontend costs ~0.4 ms per clip, a
fraction of a training step); validation and test features are computed once.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from proactiv.progress import progress_bar
from proactiv.tasks.kws.frontend import LogMel, hz_to_mel
from proactiv.tasks.kws.models import build_model, count_macs, count_params, save_model
from proactiv.transforms import audio

SAMPLE_RATE = 16000
#: The "engine" of ``_silence_`` clips, which are cut from background noise files.
SILENCE_ENGINE = "_background_"
UNKNOWN = "_unknown_"


@dataclass
class Split:
    """One split in memory: waveforms (N, samples), integer labels (N,), and per-clip engine names."""

    waves: torch.Tensor
    labels: torch.Tensor
    engines: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def select(self, mask: np.ndarray) -> Split:
        idx = torch.from_numpy(np.flatnonzero(mask))
        return Split(self.waves[idx], self.labels[idx], self.engines[np.flatnonzero(mask)])


@dataclass
class Augment:
    """Training augmentation: probability and range of each step (a probability of 0 disables it).

    Waveform: time shift (uniform ±``shift_ms``), speed by resampling (tempo and pitch together), reverb
    (synthetic RIR), band limiting (random low-pass cutoff: 8-kHz voices, telephone-like channels), noise
    (segments of the corpus's ``_background_noise_`` files, else pink noise) at a random SNR. Features:
    vocal-tract-length warping (mel axis), speaking rate without pitch (frame axis), a smooth random
    equaliser curve (±``eq_db``/2 per term), SpecAugment time and frequency masks (sample-mean fill).
    """

    shift_ms: float = 100.0
    speed_p: float = 0.8
    speed_range: tuple[float, float] = (0.85, 1.15)
    reverb_p: float = 0.1
    rt60_range: tuple[float, float] = (0.1, 0.6)
    noise_p: float = 0.3
    snr_range: tuple[float, float] = (5.0, 30.0)
    vtlp_p: float = 0.8
    vtlp_range: tuple[float, float] = (0.85, 1.15)
    lowpass_p: float = 0.3
    lowpass_range: tuple[float, float] = (3500.0, 7500.0)
    eq_p: float = 0.7
    eq_db: float = 6.0
    tempo_p: float = 0.7
    tempo_range: tuple[float, float] = (0.75, 1.33)
    time_masks: int = 2
    time_mask_frames: int = 10
    freq_masks: int = 2
    freq_mask_bins: int = 4
    noise_bank: list[torch.Tensor] = field(default_factory=list)

    def waveforms(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Shift, speed (resampling: tempo and pitch together), reverb and noise, per sample."""
        b, n = x.shape

        def draw(*shape):
            return torch.rand(*shape, generator=gen).to(x.device)

        shift = ((draw(b) * 2 - 1) * self.shift_ms * SAMPLE_RATE / 1000).round()
        lo, hi = self.speed_range
        factor = torch.where(draw(b) < self.speed_p, lo + (hi - lo) * draw(b), torch.ones(b, device=x.device))
        x = audio.speed_linear_(x, factor, shift)
        if self.reverb_p > 0:
            x = self._reverb(x, draw(b) < self.reverb_p, gen)
        if self.lowpass_p > 0:
            lo, hi = self.lowpass_range
            cutoff = torch.where(draw(b) < self.lowpass_p, lo + (hi - lo) * draw(b), float(SAMPLE_RATE))
            x = lowpass(x, cutoff)
        if self.noise_p > 0:
            noise = self._noise(b, n, gen).to(x)
            lo, hi = self.snr_range
            noisy = audio.mix_at_snr_(x, noise, lo + (hi - lo) * draw(b))
            x = torch.where((draw(b) < self.noise_p)[:, None], noisy, x)
        return x

    def _reverb(self, x: torch.Tensor, on: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Exponential-decay noise reverb (level kept) on the samples where ``on``."""
        idx = on.nonzero()[:, 0]
        lo, hi = self.rt60_range
        rt60 = lo + (hi - lo) * torch.rand(len(idx), 1, generator=gen)
        length = math.ceil(hi * SAMPLE_RATE)
        noise = torch.randn(len(idx), length, generator=gen)
        if len(idx) == 0:
            return x
        rir = audio.exponential_rir_(noise, rt60)
        dry, size = x[idx], x.shape[-1] + length
        wet = torch.fft.irfft(torch.fft.rfft(dry, n=size) * torch.fft.rfft(rir.to(x), n=size), n=size)
        wet = (
            wet[:, : x.shape[-1]]
            * torch.sqrt(audio.power(dry) / audio.power(wet[:, : x.shape[-1]]).clamp_min(1e-20))[:, None]
        )
        x = x.clone()
        x[idx] = wet
        return x

    def _noise(self, b: int, n: int, gen: torch.Generator) -> torch.Tensor:
        """Background-file segments when a bank is loaded, else pink noise."""
        if not self.noise_bank:
            return audio.shape_spectrum_(torch.randn(b, n, generator=gen), 1.0)
        pick = torch.rand(b, 2, generator=gen)
        rows = []
        for u, v in pick.tolist():
            wave = self.noise_bank[int(u * len(self.noise_bank))]
            rows.append(audio.segment(wave, v, n))
        return torch.stack(rows)

    def features(self, feats: torch.Tensor, frontend: LogMel, gen: torch.Generator) -> torch.Tensor:
        """Vocal-tract-length warping, speaking rate, random EQ, then SpecAugment time and frequency masks."""
        b, m, t = feats.shape
        lo, hi = self.vtlp_range
        alpha = torch.where(
            torch.rand(b, generator=gen) < self.vtlp_p, lo + (hi - lo) * torch.rand(b, generator=gen), 1.0
        )
        feats = vtlp(feats, alpha.to(feats.device), frontend)
        if self.tempo_p > 0:
            lo, hi = self.tempo_range
            rate = torch.exp(math.log(lo) + (math.log(hi) - math.log(lo)) * torch.rand(b, generator=gen))
            feats = tempo(
                feats, torch.where(torch.rand(b, generator=gen) < self.tempo_p, rate, 1.0).to(feats)
            )
        if self.eq_p > 0:
            feats = feats + random_eq(b, m, self.eq_db, gen).to(feats) * (
                torch.rand(b, 1, 1, generator=gen) < self.eq_p
            ).to(feats)
        for _ in range(self.time_masks):
            width = int(torch.randint(0, self.time_mask_frames + 1, (1,), generator=gen))
            if width:
                start = (torch.rand(b, generator=gen) * (t - width + 1)).floor()
                feats = audio.mask_(feats, start, width, axis=2)
        for _ in range(self.freq_masks):
            width = int(torch.randint(0, self.freq_mask_bins + 1, (1,), generator=gen))
            if width:
                start = (torch.rand(b, generator=gen) * (m - width + 1)).floor()
                feats = audio.mask_(feats, start, width, axis=1)
        return feats


def lowpass(x: torch.Tensor, cutoff_hz: torch.Tensor, transition_hz: float = 300.0) -> torch.Tensor:
    """Per-sample zero-phase low-pass (B, N) at ``cutoff_hz[b]`` (a cutoff at Nyquist leaves the sample as is)."""
    n = x.shape[-1]
    freqs = torch.fft.rfftfreq(2 * n, d=1.0 / SAMPLE_RATE).to(x.device)
    t = ((cutoff_hz.to(x)[:, None] - freqs[None, :]) / transition_hz).clamp(0.0, 1.0)
    resp = torch.where(
        cutoff_hz.to(x)[:, None] >= SAMPLE_RATE / 2, torch.ones_like(t), 0.5 - 0.5 * torch.cos(math.pi * t)
    )
    return torch.fft.irfft(torch.fft.rfft(x, n=2 * n) * resp, n=2 * n)[:, :n]


def random_eq(batch: int, n_mels: int, db: float, gen: torch.Generator) -> torch.Tensor:
    """Smooth random equaliser curves (B, n_mels, 1) in dB: a tilt plus two cosine bumps, each within ±db/2.

    Different voices, vocoders and microphones differ by such broad spectral shapes; the per-utterance
    normalisation removes a constant offset but not a tilt.
    """
    k = torch.linspace(0.0, 1.0, n_mels)
    basis = torch.stack([2 * k - 1, torch.cos(math.pi * k), torch.cos(2 * math.pi * k)])  # (3, M)
    coef = (torch.rand(batch, 3, generator=gen) * 2 - 1) * (db / 2)
    return (coef @ basis)[:, :, None]


def tempo(feats: torch.Tensor, rate: torch.Tensor) -> torch.Tensor:
    """Change speaking rate without pitch on log-mel (B, M, T): frames resampled around the centre.

    ``rate > 1`` is faster (shorter word); frames beyond the edges repeat the edge frame (the clip's
    leading or trailing silence).
    """
    t = feats.shape[-1]
    centre = (t - 1) / 2
    pos = centre + (torch.arange(t, device=feats.device, dtype=feats.dtype)[None, :] - centre) * rate[:, None]
    pos = pos.clamp(0, t - 1)
    lo = pos.floor().long().clamp(max=t - 2)
    frac = (pos - lo.to(pos.dtype))[:, None, :]
    a = feats.gather(2, lo[:, None, :].expand(-1, feats.shape[1], -1))
    b = feats.gather(2, (lo + 1)[:, None, :].expand(-1, feats.shape[1], -1))
    return a + frac * (b - a)


def vtlp(feats: torch.Tensor, alpha: torch.Tensor, frontend: LogMel) -> torch.Tensor:
    """Vocal-tract-length perturbation on log-mel (B, M, T): bin k takes the value at frequency f_k / alpha.

    ``alpha > 1`` moves formants up (a shorter vocal tract); the source position is found on the mel
    scale and interpolated linearly between bins, clamped at the band edges.
    """
    m = feats.shape[1]
    scale = frontend.mel_scale
    mel_lo, mel_hi = float(hz_to_mel(frontend.f_min, scale)), float(hz_to_mel(frontend.f_max, scale))
    step = (mel_hi - mel_lo) / (m + 1)
    centres = frontend.centre_frequencies().to(feats.device).double()
    src = hz_to_mel(centres[None, :] / alpha.double()[:, None], scale)
    pos = ((src - mel_lo) / step - 1).clamp(0, m - 1).to(feats.dtype)
    lo = pos.floor().long().clamp(max=m - 2)
    frac = (pos - lo.to(pos.dtype))[:, :, None]
    a = feats.gather(1, lo[:, :, None].expand(-1, -1, feats.shape[2]))
    b = feats.gather(1, (lo + 1)[:, :, None].expand(-1, -1, feats.shape[2]))
    return a + frac * (b - a)


def load_corpus(data_root: str | os.PathLike) -> tuple[dict[str, Split], list[str]]:
    """The train/validation/test splits of a Speech Commands-layout corpus, and its class names."""
    from proactiv.tasks.kws.speech_commands import SpeechCommands

    splits, class_names = {}, None
    for name in ("train", "validation", "test"):
        ds = SpeechCommands(data_root, split=name)
        class_names = list(ds.class_names)
        meta = ds.metadata
        if "engine" in meta:  # silence clips (cut from background files) have no engine
            engines = meta["engine"].where(meta["engine"].notna() & (meta["engine"] != ""), None)
            engines = engines.fillna(SILENCE_ENGINE).astype(str).to_numpy()
        else:
            engines = np.full(len(meta), "unknown")
        engines[meta["label_name"].to_numpy() == "_silence_"] = SILENCE_ENGINE
        splits[name] = Split(ds.waveforms().float(), torch.as_tensor(np.asarray(ds.labels)).long(), engines)
    return splits, class_names


def load_noise_bank(data_root: str | os.PathLike) -> list[torch.Tensor]:
    """Waveforms of ``<data_root>/_background_noise_/*.wav`` (empty list when there are none)."""
    directory = Path(data_root) / "_background_noise_"
    if not directory.is_dir() or not any(directory.glob("*.wav")):
        return []
    return [audio.read_wav_16k(str(p)) for p in sorted(directory.glob("*.wav"))]


@torch.no_grad()
def compute_features(
    frontend: LogMel, waves: torch.Tensor, device: str = "cpu", batch: int = 256
) -> torch.Tensor:
    """Log-mel features of many clips, batch by batch."""
    return torch.cat([frontend(waves[i : i + batch].to(device)).cpu() for i in range(0, len(waves), batch)])


@torch.no_grad()
def predict(model: nn.Module, feats: torch.Tensor, device: str = "cpu", batch: int = 512) -> torch.Tensor:
    """Predicted class indices of feature batches (model put in eval mode)."""
    model.eval()
    return torch.cat(
        [model(feats[i : i + batch].to(device)).argmax(1).cpu() for i in range(0, len(feats), batch)]
    )


def accuracy_report(
    pred: torch.Tensor, labels: torch.Tensor, engines: np.ndarray, class_names: Sequence[str]
) -> dict:
    """Overall, per-engine and per-class accuracy and the confusion matrix (rows: true, cols: predicted)."""
    k = len(class_names)
    correct = (pred == labels).numpy()
    conf = torch.zeros(k, k, dtype=torch.long)
    conf.index_put_((labels, pred), torch.ones_like(labels), accumulate=True)
    per_class = {
        name: float(correct[labels.numpy() == i].mean())
        for i, name in enumerate(class_names)
        if (labels == i).any()
    }
    per_engine = {str(e): float(correct[engines == e].mean()) for e in sorted(set(engines.tolist()))}
    return {
        "n": int(len(labels)),
        "accuracy": float(correct.mean()) if len(correct) else float("nan"),
        "per_engine": per_engine,
        "min_engine_accuracy": min(per_engine.values()) if per_engine else float("nan"),
        "per_class": per_class,
        "confusion": conf.tolist(),
    }


def balanced_weights(
    labels: torch.Tensor, n_classes: int, boost: dict[int, float] | None = None
) -> torch.Tensor:
    """Sampling weight per clip so every class is drawn equally often (times ``boost[class]`` if given).

    The ``_unknown_`` class gathers many different words, so it deserves more draws than one keyword
    (but not as many as its share of the real Speech Commands, ~18 keywords' worth, which would bias the
    model towards ``_unknown_``).
    """
    counts = torch.bincount(labels, minlength=n_classes).clamp_min(1).double()
    share = torch.ones(n_classes, dtype=torch.float64)
    for k, v in (boost or {}).items():
        share[k] = v
    return (share / counts)[labels]


def fit(
    train: Split,
    validation: Split,
    class_names: Sequence[str],
    *,
    arch: str = "dscnn",
    epochs: int | None = 30,
    time_budget_s: float | None = None,
    batch_size: int = 64,
    lr: float = 3e-3,
    weight_decay: float = 1e-3,
    label_smoothing: float = 0.05,
    unknown_weight: float = 2.0,
    augment: Augment | None = None,
    frontend: LogMel | None = None,
    seed: int = 0,
    progress: bool = True,
    device: str = "cpu",
) -> tuple[nn.Module, dict]:
    """Train a fresh model on in-memory splits; return the best model by validation and a history.

    ``epochs`` fixes the length of training (reproducible); with ``epochs=None`` it is fitted to
    ``time_budget_s`` after timing the first epoch (at most 60 epochs). Model selection: the epoch with
    the best worst-engine validation accuracy (ties: best mean accuracy). Batches are drawn class-balanced,
    with ``_unknown_`` drawn ``unknown_weight`` times as often as each other class. Optimiser: AdamW with
    linear warm-up (5 %) and cosine decay, label smoothing ``label_smoothing``.
    """
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    augment = Augment() if augment is None else augment
    frontend = (frontend or LogMel()).to(device)
    model = build_model(arch, len(class_names)).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    val_feats = compute_features(frontend, validation.waves, device) if len(validation) else None
    boost = {list(class_names).index(UNKNOWN): unknown_weight} if UNKNOWN in class_names else {}
    weights = balanced_weights(train.labels, len(class_names), boost)
    steps_per_epoch = max(1, len(train) // batch_size)
    planned = epochs if epochs is not None else 60
    total = planned * steps_per_epoch
    warmup = max(1, int(0.05 * total))
    history, best, best_state = [], (-1.0, -1.0), None
    start = time.perf_counter()
    step = 0
    with progress_bar("steps", progress) as bar:
        task = bar.add_task(f"training {arch}", total=total)
        epoch = 0
        while epoch < planned:
            model.train()
            order = torch.multinomial(weights, steps_per_epoch * batch_size, replacement=True, generator=gen)
            losses = []
            for i in range(steps_per_epoch):
                idx = order[i * batch_size : (i + 1) * batch_size]
                x = augment.waveforms(train.waves[idx].to(device), gen)
                with torch.no_grad():
                    feats = augment.features(frontend(x), frontend, gen)
                y = train.labels[idx].to(device)
                loss = F.cross_entropy(model(feats), y, label_smoothing=label_smoothing)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                frac = step / max(1, total)
                scale = min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, frac)))
                for group in opt.param_groups:
                    group["lr"] = lr * max(scale, 0.01)
                opt.step()
                losses.append(float(loss.detach()))
                step += 1
                bar.advance(task)
            epoch += 1
            if epochs is None and epoch == 1 and time_budget_s is not None:
                per_epoch = time.perf_counter() - start
                planned = int(max(2, min(60, time_budget_s // per_epoch)))
                total = planned * steps_per_epoch
                bar.update(task, total=total)
            record = {"epoch": epoch, "loss": float(np.mean(losses)), "seconds": time.perf_counter() - start}
            if val_feats is not None:
                rep = accuracy_report(
                    predict(model, val_feats, device), validation.labels, validation.engines, class_names
                )
                record.update(val_accuracy=rep["accuracy"], val_min_engine=rep["min_engine_accuracy"])
                score = (rep["min_engine_accuracy"], rep["accuracy"])
            else:
                score = (epoch, epoch)
            history.append(record)
            if score >= best:
                best = score
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                record["best"] = True
            bar.update(
                task,
                description=f"{arch} ep {epoch}/{planned} loss {record['loss']:.3f} "
                f"val {record.get('val_accuracy', float('nan')):.3f}",
            )
    model.load_state_dict(best_state)
    model.eval()
    return model, {
        "history": history,
        "epochs": planned,
        "steps": step,
        "seconds": time.perf_counter() - start,
    }


def train(
    data_root: str | os.PathLike,
    *,
    arch: str = "dscnn",
    out: str | os.PathLike,
    epochs: int | None = 30,
    time_budget_s: float | None = None,
    exclude_engines: Sequence[str] = (),
    seed: int = 0,
    progress: bool = True,
    device: str = "cpu",
    threads: int | None = 2,
    augment: Augment | None = None,
    unknown_weight: float = 2.0,
) -> dict:
    """Train a KWS model on ``data_root`` and write ``<out>/model.pt`` and ``<out>/metrics.json``.

    ``exclude_engines`` drops those text-to-speech engines from training and validation; their clips
    (from every split) then form the ``held_out`` evaluation. Returns the metrics: test accuracy overall,
    per engine and per class, the confusion matrix, the validation report of the chosen epoch, timing,
    parameter and multiply-add counts.
    """
    if threads:
        torch.set_num_threads(threads)
    out = Path(out)
    splits, class_names = load_corpus(data_root)
    excluded = {str(e) for e in exclude_engines}
    held_out = None
    if excluded:
        parts = [s.select(np.isin(s.engines, list(excluded))) for s in splits.values()]
        held_out = Split(
            torch.cat([p.waves for p in parts]),
            torch.cat([p.labels for p in parts]),
            np.concatenate([p.engines for p in parts]),
        )
        if len(held_out) == 0:
            raise ValueError(
                f"exclude_engines={sorted(excluded)}: no clip of {data_root} comes from these engines"
            )
        splits = {k: s.select(~np.isin(s.engines, list(excluded))) for k, s in splits.items()}
    if len(splits["train"]) == 0:
        raise ValueError(f"{data_root}: the training split is empty")
    augment = augment or Augment()
    if not augment.noise_bank:
        augment = dataclasses.replace(augment, noise_bank=load_noise_bank(data_root))
    frontend = LogMel()
    model, info = fit(
        splits["train"],
        splits["validation"],
        class_names,
        arch=arch,
        epochs=epochs,
        time_budget_s=time_budget_s,
        augment=augment,
        frontend=frontend,
        seed=seed,
        progress=progress,
        device=device,
        unknown_weight=unknown_weight,
    )
    metrics = {
        "arch": arch,
        "params": count_params(model),
        "macs": count_macs(model.cpu(), (1, frontend.n_mels, frontend.n_frames(SAMPLE_RATE))),
        "seed": seed,
        "exclude_engines": sorted(excluded),
        "train_clips": len(splits["train"]),
        "train_seconds": info["seconds"],
        "epochs": info["epochs"],
        "history": info["history"],
        "class_names": class_names,
    }
    model.to(device)
    for name in ("validation", "test"):
        split = splits[name]
        if len(split):
            feats = compute_features(frontend, split.waves, device)
            metrics[name] = accuracy_report(
                predict(model, feats, device), split.labels, split.engines, class_names
            )
    if held_out is not None:
        feats = compute_features(frontend, held_out.waves, device)
        metrics["held_out"] = accuracy_report(
            predict(model, feats, device), held_out.labels, held_out.engines, class_names
        )
    out.mkdir(parents=True, exist_ok=True)
    save_model(
        out / "model.pt",
        model.cpu(),
        arch=arch,
        frontend_config=frontend.config(),
        class_names=class_names,
        extra={"metrics": _summary(metrics)},
    )
    tmp = out / "metrics.json.tmp"
    tmp.write_text(json.dumps(metrics, indent=2))
    os.replace(tmp, out / "metrics.json")
    return metrics


def _summary(metrics: dict) -> dict:
    """The scalar part of the metrics (stored inside the model file)."""
    keep = {k: metrics[k] for k in ("arch", "params", "macs", "seed", "train_seconds", "epochs")}
    for name in ("test", "validation", "held_out"):
        if name in metrics:
            keep[name] = {"accuracy": metrics[name]["accuracy"], "per_engine": metrics[name]["per_engine"]}
    return keep

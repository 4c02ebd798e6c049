"""The labelling experiment on the keyword demo (issue 28, parts 3 and 4): labels spent by each strategy of
:mod:`proactiv.monitor.labelling` on a pool of running-speech windows and noisy clips, the demo model
fine-tuned on each selection, and what it then does on held-out noisy clips and running speech.

The pool (its labels hidden from the strategies; a person's, or the oracle's, answers):

- running speech: the 1-s windows every 100 ms (the stream rule's) of half the corpus's running-speech speakers
  (every other speaker of each engine), monitored as one recording with every built-in assertion; a window's
  label comes from its sentence's keyword position: the keyword when the window holds all of it, else
  ``_silence_`` below the energy floor and ``_unknown_`` above. Windows holding part of a keyword are left out
  of the pool: no label would be right for them (the stream rule only needs a keyword decided while it is
  whole).
- noisy clips: the validation split, each clip mixed with white, pink or babble noise at 5, 10 or 20 dB (one
  kind and SNR drawn per clip, seeded; the sweep's ``audio_noise`` transform), monitored as independent inputs
  with the assertions that read one step (consistency, energy floor; flicker and its kin need a stream).

Held out (never in the pool): the test split under the same kinds of noise (other draws) for accuracy; the
other half of the speakers' running speech, as one recording, clean and under white noise at 10 dB, for false
accepts per hour and the keyword hit rate under the task's :class:`~proactiv.tasks.kws.decision.StreamRule`
(sentences run into one another here, as in ``proactiv monitor``, so the figures are not the open-set
evaluation's sentence-by-sentence ones).

Consistency copies: 10 ms later, 10 ms earlier and white noise at 20 dB (the monitor's default +3 dB copy is
left out: the demo model normalises every utterance, so a louder copy next to never disagrees). With the
window itself that makes four versions, and a weak label needs three of them to agree.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from proactiv.monitor import Copy, InputStream, WaveStream, monitor
from proactiv.monitor.labelling import STRATEGIES, PoolScores
from proactiv.monitor.labelling_experiment import check_plan, experiment, summarise
from proactiv.tasks.kws.decision import StreamRule
from proactiv.tasks.kws.finetune import augmented_replay, finetune
from proactiv.tasks.kws.inference import compute_features, predict
from proactiv.tasks.kws.models import KeywordModel
from proactiv.tasks.kws.monitor import assertions_for, keywords_of, load_folder, running_speech_stream
from proactiv.tasks.kws.openset import match_firings
from proactiv.tasks.kws.synth import SAMPLE_RATE, SPEECH_DIR
from proactiv.transforms.audio import AudioNoise, Shift
from proactiv.transforms.base import BatchGenerator, derive_seed

NOISE_COLORS = ("white", "pink", "babble")
NOISE_SNR_DB = (5.0, 10.0, 20.0)
COPIES = (Copy(Shift(), 10.0), Copy(Shift(), -10.0), Copy(AudioNoise([20.0], color="white"), 20.0))
#: the noise of the held-out running speech
SPEECH_NOISE = ("white", 10.0)
#: the columns of the experiment's table that measure the fine-tuned model
METRICS = ("accuracy", "window_accuracy", "fa_per_hour", "hit_rate", "window_accuracy_noisy", "fa_per_hour_noisy",
           "hit_rate_noisy")  # fmt: skip
#: what the summary averages over seeds: the selection's, then the fine-tuned model's
SUMMARY = ("label_accuracy", "model_wrong", "share.speech", *METRICS)
#: seeds of the noise draws: the pool's clips and the held-out ones never share a draw
POOL_NOISE_SEED, TEST_NOISE_SEED = 101, 202


# ------------------------------------------------------------------------------------------ material
def split_speakers(sentences: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the sentences of the pool and of the held-out half: every other speaker of each engine (sorted
    by name), so no voice is in both."""
    pool = np.zeros(len(sentences), dtype=bool)
    for _, part in sentences.groupby("engine"):
        for k, speaker in enumerate(sorted(part.speaker.unique())):
            pool |= (sentences.speaker == speaker).to_numpy() & (k % 2 == 0)
    return pool, ~pool


def window_labels(
    start_s: np.ndarray,
    end_s: np.ndarray,
    energy_db: np.ndarray,
    truth: Sequence[tuple[str, float, float]],
    class_names: Sequence[str],
    floor_db: float = -50.0,
    tolerance_s: float = 0.05,
) -> np.ndarray:
    """The label of each window (start, end in seconds) of a recording whose keywords ``truth`` (keyword,
    start, end) says: the keyword when the window holds all of it (``tolerance_s`` of it may be cut), -1 when
    it holds part of one (no honest label), else ``_silence_`` below ``floor_db`` and ``_unknown_`` above."""
    names = list(class_names)
    out = np.where(np.asarray(energy_db) < floor_db, names.index("_silence_"), names.index("_unknown_"))
    for word, lo, hi in truth:
        overlaps = (start_s < hi) & (end_s > lo)
        whole = (start_s <= lo + tolerance_s) & (end_s >= hi - tolerance_s)
        out = np.where(overlaps & whole & (out != -1), names.index(word), out)
        out = np.where(overlaps & ~whole, -1, out)
    return out


def labelled_windows(
    wave: np.ndarray, truth: Sequence[tuple[str, float, float]], rule: StreamRule, class_names: Sequence[str]
) -> tuple[torch.Tensor, np.ndarray]:
    """A recording's windows under the stream rule and their labels (:func:`window_labels`)."""
    windows = rule.windows(torch.from_numpy(wave), SAMPLE_RATE)
    start = np.arange(len(windows)) * rule.hop_s
    energy = 10 * torch.log10(windows.pow(2).mean(1) + 1e-12).numpy()
    return windows, window_labels(start, start + rule.window_s, energy, truth, class_names)


def mix_noise(
    waves: torch.Tensor,
    seed: int,
    colors: Sequence[str] = NOISE_COLORS,
    snrs_db: Sequence[float] = NOISE_SNR_DB,
) -> torch.Tensor:
    """Each clip mixed with one noise kind at one SNR, both drawn per clip, by the ``audio_noise`` transform
    with a generator seeded by (``seed``, clip): the same clips and seed give the same noisy clips."""
    out = waves.clone()
    draws = [np.random.default_rng(derive_seed(seed, i)).integers(0, [len(colors), len(snrs_db)])
             for i in range(len(waves))]  # fmt: skip
    conditions = np.array(draws).reshape(-1, 2)
    for c, color in enumerate(colors):
        noise = AudioNoise([max(snrs_db)], color=color)
        for s, snr in enumerate(snrs_db):
            rows = np.flatnonzero((conditions[:, 0] == c) & (conditions[:, 1] == s))
            if len(rows):
                generator = BatchGenerator([derive_seed(seed, int(i)) for i in rows])
                out[rows] = noise.apply(waves[rows], float(snr), generator)
    return out


# ------------------------------------------------------------------------------------------ the pool
@dataclass
class Pool:
    """The unlabelled pool: ``speech`` (one recording) cut in windows, of which ``keep`` are in the pool, then
    the noisy ``clips``; ``labels``: the hidden truth, in that order; ``feats``: every pool input's features."""

    speech: np.ndarray
    keep: np.ndarray
    clips: torch.Tensor
    labels: np.ndarray
    feats: torch.Tensor
    rule: StreamRule

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def source(self) -> np.ndarray:
        return np.array(["speech"] * len(self.keep) + ["clip"] * len(self.clips))

    def score(self, model: KeywordModel, out: str | os.PathLike) -> PoolScores:
        """What ``model`` and its assertions make of the pool (monitor stores written under ``out``)."""
        out = Path(out)
        net, names, words = model.waveform_model(), model.class_names, keywords_of(model)
        checks = assertions_for(model, self.rule, copies=COPIES)
        speech = monitor(net, WaveStream(self.speech, SAMPLE_RATE, self.rule.window_s, self.rule.hop_s, name="pool"),
                         checks, out=out / "speech", class_names=names, events=words, progress=False, device="cpu")  # fmt: skip
        single = [a for a in assertions_for(model, self.rule, copies=COPIES) if a.steps_back(1.0) == 1]
        clips = monitor(net, InputStream(self.clips, name="pool clips"), single, out=out / "clips",
                        class_names=names, events=words, progress=False, device="cpu")  # fmt: skip
        windows = PoolScores.from_steps(speech.steps, names, lags={"flicker": 1}).take(self.keep)
        return PoolScores.concat([windows, PoolScores.from_steps(clips.steps, names)])


def build_pool(
    model: KeywordModel,
    root: str | os.PathLike,
    sentences: pd.DataFrame,
    clips: torch.Tensor,
    clip_labels: torch.Tensor,
    rule: StreamRule | None = None,
) -> Pool:
    """The pool of ``sentences``' running speech and the ``clips`` mixed with noise (see the module
    docstring), with its features under ``model``'s frontend."""
    rule = rule or StreamRule()
    speech, truth = running_speech_stream(root, sentences=sentences)
    windows, labels = labelled_windows(speech, truth, rule, model.class_names)
    keep = np.flatnonzero(labels >= 0)
    noisy = mix_noise(clips, POOL_NOISE_SEED)
    feats = torch.cat(
        [compute_features(model.frontend, windows[keep]), compute_features(model.frontend, noisy)]
    )
    return Pool(speech, keep, noisy, np.concatenate([labels[keep], clip_labels.numpy()]), feats, rule)


# ------------------------------------------------------------------------------------------ held out
class HeldOut:
    """The held-out measures, their features computed once: accuracy on noisy test clips; false accepts per
    hour, hit rate and the accuracy of its windows (labelled as the pool's, those holding part of a keyword
    left out) on running speech, clean and noisy (``_noisy``)."""

    def __init__(
        self,
        model: KeywordModel,
        root: str | os.PathLike,
        sentences: pd.DataFrame,
        test: torch.Tensor,
        test_labels: torch.Tensor,
        rule: StreamRule | None = None,
    ):
        self.model, self.rule = model, rule or StreamRule()
        self.test_feats = compute_features(model.frontend, mix_noise(test, TEST_NOISE_SEED))
        self.test_labels = test_labels
        color, snr = SPEECH_NOISE
        self.speech = {}
        wave, truth = running_speech_stream(root, sentences=sentences)
        windows, labels = labelled_windows(wave, truth, self.rule, model.class_names)
        hours = len(wave) / SAMPLE_RATE / 3600
        self.speech[""] = (compute_features(model.frontend, windows), truth, hours, torch.from_numpy(labels))
        noisy, _ = running_speech_stream(root, snr_db=snr, color=color, sentences=sentences)
        windows = self.rule.windows(torch.from_numpy(noisy), SAMPLE_RATE)  # labelled as the clean ones
        self.speech["_noisy"] = (
            compute_features(model.frontend, windows),
            truth,
            hours,
            torch.from_numpy(labels),
        )

    @property
    def minutes(self) -> float:
        return self.speech[""][2] * 60

    def __call__(self, model: KeywordModel | None) -> dict[str, float]:
        model = model or self.model
        names = model.class_names
        words = [names.index(w) for w in keywords_of(model)]
        out = {"accuracy": float((predict(model, self.test_feats) == self.test_labels).float().mean())}
        for suffix, (feats, truth, hours, labels) in self.speech.items():
            decisions = predict(model, feats)
            fired = [(w * self.rule.hop_s, w * self.rule.hop_s + self.rule.window_s, names[c])
                     for w, c in self.rule.fire(decisions.tolist(), words)]  # fmt: skip
            kept = labels >= 0
            out[f"window_accuracy{suffix}"] = float((decisions[kept] == labels[kept]).float().mean())
            hits, false = match_firings(fired, truth)
            out[f"fa_per_hour{suffix}"] = len(false) / hours
            out[f"hit_rate{suffix}"] = float(np.mean(hits)) if hits else float("nan")
        return out


# ------------------------------------------------------------------------------------------ the experiment
def replay_augment() -> dict:
    """The training augmentation the replay is drawn under (its settings change with the trainer, and the
    fine-tuned models with them, so every result records them)."""
    from proactiv.tasks.kws.augment import Augment

    return {k: v for k, v in dataclasses.asdict(Augment()).items() if not k.endswith("_bank")}


def copy_model(path: str | os.PathLike, out: Path) -> KeywordModel:
    """The keyword model at ``path`` (folder or file), copied into ``out`` first and loaded from the copy: a
    model retrained into ``path`` meanwhile cannot change the experiment half way, and nothing is written to
    ``path``."""
    path = Path(path)
    source = path / "model.pt" if path.is_dir() else path
    load_folder(path)  # refuses a missing folder or file by name
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, out / "model.pt")
    return load_folder(out)


def run(
    data: str | os.PathLike,
    model_path: str | os.PathLike,
    out: str | os.PathLike,
    *,
    strategies: Sequence[str] = STRATEGIES,
    budgets: Sequence[int] = (50, 100, 200),
    seeds: Sequence[int] = (0, 1),
    epochs: int = 5,
    lr: float = 3e-4,
    batch: int = 32,
    round_size: int = 50,
    epsilon: float = 0.1,
    pool_clips: int | None = None,
    replay_clips: int = 2048,
    progress: bool = True,
    say: Callable[[str], None] = print,
) -> pd.DataFrame:
    """The whole experiment (see the module docstring): writes ``table.csv`` (a row per strategy × budget ×
    seed, and the model as it was), ``summary.csv`` (the mean over seeds) and ``settings.json`` to ``out`` and
    returns the table. ``pool_clips``: how many noisy validation clips join the pool (None: all)."""
    from proactiv.tasks.kws.train import load_corpus

    check_plan(strategies, budgets, seeds)
    out = Path(out)
    model = copy_model(model_path, out / "model")
    say(f"model: a copy of {model_path} in {out / 'model'}")
    splits, _ = load_corpus(data)
    sentences = pd.read_csv(Path(data) / SPEECH_DIR / "sentences.csv")
    in_pool, held_out = split_speakers(sentences)
    clips = splits["validation"]
    if pool_clips is not None:
        chosen = np.random.default_rng(POOL_NOISE_SEED).permutation(len(clips))[:pool_clips]
        clips = clips.select(np.isin(np.arange(len(clips)), chosen))
    pool = build_pool(model, data, sentences[in_pool], clips.waves, clips.labels)
    held = HeldOut(model, data, sentences[held_out], splits["test"].waves, splits["test"].labels)
    replay = augmented_replay(splits["train"].waves, splits["train"].labels, model, data, count=replay_clips)
    del splits
    say(f"pool: {len(pool.keep)} windows of {len(pool.speech) / SAMPLE_RATE / 60:.1f} min of running speech "
        f"({int(in_pool.sum())} sentences) + {len(pool.clips)} noisy validation clips; held out: "
        f"{len(held.test_labels)} noisy test clips, {held.minutes:.1f} min of running speech "
        f"({int(held_out.sum())} sentences); replay: {len(replay[1])} training clips")  # fmt: skip
    say(f"scoring the pool: the monitor over {len(pool.speech) / SAMPLE_RATE / 60:.1f} min of running speech and "
        f"{len(pool.clips)} clips, {len(COPIES)} copies each")  # fmt: skip
    shutil.rmtree(out / "stores", ignore_errors=True)  # the stores of an earlier run
    scores = pool.score(model, out / "stores" / "model")
    with tempfile.TemporaryDirectory(dir=out) as scratch:
        count = itertools.count()
        table = experiment(
            scores,
            oracle=lambda idx: pool.labels[idx],
            finetune=lambda idx, labels, seed: finetune(model, pool.feats[idx], torch.as_tensor(labels), *replay,
                                                        epochs=epochs, batch=batch, lr=lr, seed=seed),  # fmt: skip
            rescore=lambda m: pool.score(m, Path(scratch) / str(next(count))),
            evaluate=held,
            strategies=strategies, budgets=budgets, seeds=seeds,
            round_size=round_size, epsilon=epsilon, groups=pool.source, progress=progress,
        )  # fmt: skip
    table.to_csv(out / "table.csv", index=False)
    summarise(table, SUMMARY).to_csv(out / "summary.csv", index=False)
    digest = hashlib.sha256((out / "model" / "model.pt").read_bytes()).hexdigest()[:16]
    settings = {"data": str(data), "model": str(model_path), "model_sha256": digest, "strategies": list(strategies), "budgets": list(budgets),
                "seeds": list(seeds), "epochs": epochs, "lr": lr, "batch": batch, "replay": f"{len(replay[1])} training clips under the training's augmentation, drawn once; {batch} of them beside the {batch} new inputs of each batch",
                "round_size": round_size, "epsilon": epsilon, "pool_windows": int(len(pool.keep)),
                "pool_clips": int(len(pool.clips)), "pool_sentences": int(in_pool.sum()),
                "held_out_sentences": int(held_out.sum()), "held_out_minutes": held.minutes,
                "noise": {"colors": NOISE_COLORS, "snr_db": NOISE_SNR_DB, "speech": SPEECH_NOISE},
                "copies": [c.name for c in COPIES], "replay_augment": replay_augment()}  # fmt: skip
    (out / "settings.json").write_text(json.dumps(settings, indent=1))
    return table


def markdown(summary: pd.DataFrame) -> str:
    """The mean-over-seeds table (:func:`~proactiv.monitor.labelling_experiment.summarise` of the experiment's)
    as Markdown: what was selected (the share the model got wrong, the share from running speech, how right the
    labels were), then accuracy on the noisy test clips (± its spread over seeds) and, on the held-out running
    speech clean and noisy, window accuracy, false accepts per hour and hit rate."""
    lines = ["| strategy | labels | model wrong | from speech | labels right | accuracy, noisy test clips "
             "| speech: windows right | FA/h | hits | noisy speech: windows right | FA/h | hits |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip

    def share(value: float) -> str:
        return "-" if np.isnan(value) else f"{value:.0%}"

    for r in summary.to_dict("records"):
        lines.append(f"| {r['strategy']} | {r['budget']} | {share(r['model_wrong'])} | {share(r['share.speech'])} | "
                     f"{share(r['label_accuracy'])} | {r['accuracy']:.1%} ± {r['accuracy_sd']:.1%} | "
                     f"{r['window_accuracy']:.1%} | {r['fa_per_hour']:.0f} | {r['hit_rate']:.0%} | "
                     f"{r['window_accuracy_noisy']:.1%} | {r['fa_per_hour_noisy']:.0f} | {r['hit_rate_noisy']:.0%} |")  # fmt: skip
    return "\n".join(lines)

"""The labelling experiment's keyword pieces on known answers: window labels from keyword positions, seeded
noise at the planned SNRs, speaker halves with no voice in both, a fine-tuning that leaves the model it copies
alone, and `proactiv kws label-experiment` end to end on a tiny corpus of tones with an untrained model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from proactiv.cli import app
from proactiv.monitor.labelling import STRATEGIES
from proactiv.tasks.kws.finetune import augmented_replay, finetune
from proactiv.tasks.kws.frontend import LogMel
from proactiv.tasks.kws.labelling import NOISE_SNR_DB, mix_noise, split_speakers, window_labels
from proactiv.tasks.kws.models import KeywordModel, build_model, save_model
from proactiv.tasks.kws.synth import BACKGROUND_DIR, CLASS_NAMES, SENTENCE_COLUMNS, SPEECH_DIR
from proactiv.tasks.kws.wavio import write_wav

SR = 16000
NAMES = list(CLASS_NAMES)


@pytest.fixture(autouse=True)
def _one_thread(_isolated_cache):
    """One thread (the suite's default is two): on a shared machine two threads of small convolutions wait on
    each other more than they help."""
    torch.set_num_threads(1)


def test_a_window_is_labelled_by_the_keyword_it_holds_whole():
    start = np.array([1.0, 1.2, 1.5, 1.6, 2.4, 3.0])
    energy = np.array([-20, -20, -20, -20, -20, -70.0])
    labels = window_labels(start, start + 1.0, energy, [("yes", 2.0, 2.5)], NAMES)
    unknown, silence, yes = NAMES.index("_unknown_"), NAMES.index("_silence_"), NAMES.index("yes")
    # [1.0, 2.0] ends where "yes" begins; [1.2, 2.2] and [2.4, 3.4] hold part of it; [1.5, 2.5] and
    # [1.6, 2.6] hold all of it (within 50 ms); [3.0, 4.0] is quiet
    assert labels.tolist() == [unknown, -1, yes, yes, -1, silence]


def test_noise_is_mixed_at_the_planned_snrs_reproducibly():
    t = torch.arange(SR) / SR
    clean = torch.stack([0.3 * torch.sin(2 * torch.pi * (200 + 50 * i) * t) for i in range(12)])
    noisy = mix_noise(clean, seed=5)
    assert torch.equal(noisy, mix_noise(clean, seed=5))
    assert not torch.equal(noisy, mix_noise(clean, seed=6))
    snr = 10 * torch.log10(clean.pow(2).mean(1) / (noisy - clean).pow(2).mean(1))
    for value in snr.tolist():
        assert min(abs(value - s) for s in NOISE_SNR_DB) < 0.01


def test_speaker_halves_share_no_voice_and_keep_every_engine():
    frame = pd.DataFrame({"speaker": ["a1", "a1", "a2", "a3", "b1", "b2", "b2"],
                          "engine": ["a", "a", "a", "a", "b", "b", "b"]})  # fmt: skip
    pool, held = split_speakers(frame)
    assert not set(frame.speaker[pool]) & set(frame.speaker[held])
    assert set(frame.speaker[pool]) == {"a1", "a3", "b1"}
    assert set(frame.engine[pool]) == set(frame.engine[held]) == {"a", "b"}


@pytest.fixture
def tiny_model():
    torch.manual_seed(0)
    return KeywordModel(build_model("dscnn", len(NAMES)).eval(), arch="dscnn", frontend=LogMel(),
                        class_names=NAMES, extra={})  # fmt: skip


def test_finetuning_lowers_the_loss_on_its_selection_and_leaves_the_model_it_copies_alone(tiny_model):
    feats = torch.randn(8, 40, 101) * 10
    labels = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    before = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    tuned = finetune(tiny_model, feats, labels, epochs=20, batch=8, lr=3e-3, seed=1)
    assert all(torch.equal(v, tiny_model.state_dict()[k]) for k, v in before.items())
    with torch.no_grad():
        loss = [torch.nn.functional.cross_entropy(m(feats), labels).item() for m in (tiny_model, tuned)]
    assert loss[1] < loss[0] - 0.5
    again = finetune(tiny_model, feats, labels, epochs=20, batch=8, lr=3e-3, seed=1)
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in tuned.state_dict().items())
    with pytest.raises(ValueError, match="8 inputs and 3 labels"):
        finetune(tiny_model, feats, labels[:3])


def test_replay_is_drawn_once_under_the_training_augmentation(tiny_model, tmp_path):
    waves = torch.randn(20, SR) * 0.1
    labels = torch.tensor([0, 1, 10, 11] * 5)
    feats, drawn = augmented_replay(waves, labels, tiny_model, tmp_path, count=16, seed=3)
    assert feats.shape == (16, 40, 101) and set(drawn.tolist()) <= {0, 1, 10, 11}
    again, _ = augmented_replay(waves, labels, tiny_model, tmp_path, count=16, seed=3)
    assert torch.equal(feats, again)


# ------------------------------------------------------------------------------------------ end to end
def tone(hz: float, seconds: float, level: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (level * np.sin(2 * np.pi * hz * t) * np.hanning(len(t))).astype(np.float32)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SR), np.float32)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Clips of "yes", "no" and "cat" in every split, background noise, and running speech of two engines with
    two speakers each (one half in the pool, the other held out), one "yes" said in each half."""
    root = tmp_path_factory.mktemp("labelling")
    lists = {"validation": [], "test": []}
    for word, hz in {"yes": 500, "no": 900, "cat": 2200}.items():
        (root / word).mkdir()
        for k in range(9):
            path = f"{word}/s{k}_nohash_0.wav"
            write_wav(
                root / path, np.concatenate([silence(0.3), tone(hz * (1 + k / 50), 0.4), silence(0.3)]), SR
            )
            split = ("train", "validation", "test")[k % 3]
            if split != "train":
                lists[split].append(path)
    (root / "validation_list.txt").write_text("\n".join(lists["validation"]) + "\n")
    (root / "testing_list.txt").write_text("\n".join(lists["test"]) + "\n")
    (root / BACKGROUND_DIR).mkdir()
    write_wav(root / BACKGROUND_DIR / "hum.wav", tone(60, 3.0, 0.05), SR)
    (root / SPEECH_DIR).mkdir()
    rows = []
    for engine in ("e", "f"):
        for speaker, keyword in ((f"{engine}-1", "yes" if engine == "e" else ""), (f"{engine}-2", "yes")):
            start = 1.0
            wave = np.concatenate([silence(0.5), tone(2200, 0.5, 0.1), tone(500, 0.4) if keyword else silence(0.4),
                                   tone(2000, 0.5, 0.1), silence(0.5)])  # fmt: skip
            path = f"{SPEECH_DIR}/{speaker}_0.wav"
            write_wav(root / path, wave, SR)
            row = dict.fromkeys(SENTENCE_COLUMNS, "")
            row.update(path=path, text="words", keyword=keyword, seconds=len(wave) / SR, speaker=speaker,
                       engine=engine, split="test", keyword_start_ms=start * 1000 if keyword else np.nan,
                       keyword_end_ms=(start + 0.4) * 1000 if keyword else np.nan)  # fmt: skip
            rows.append(row)
    pd.DataFrame(rows).to_csv(root / SPEECH_DIR / "sentences.csv", index=False)
    return root


def test_the_cli_runs_the_experiment_end_to_end_without_touching_the_model(corpus, tmp_path):
    folder = tmp_path / "model"
    torch.manual_seed(0)
    save_model(folder / "model.pt", build_model("dscnn", len(NAMES)), arch="dscnn",
               frontend_config=LogMel().config(), class_names=NAMES)  # fmt: skip
    before = (folder / "model.pt").read_bytes()
    out = tmp_path / "exp"
    args = ["kws", "label-experiment", "--data", str(corpus), "--model", str(folder), "--out", str(out),
            "--budget", "2", "--budget", "4", "--seed", "0", "--seed", "1", "--round-size", "2",
            "--replay-clips", "16", "--no-progress"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "table.csv")
    assert len(table) == 2 + len(STRATEGIES) * 2 * 2
    assert not table.duplicated(["strategy", "budget", "seed"]).any()
    for column in ("accuracy", "fa_per_hour", "hit_rate", "fa_per_hour_noisy", "window_accuracy"):
        assert table[column].notna().all()
    assert "| assertions | 4 |" in result.output
    assert (folder / "model.pt").read_bytes() == before
    bad = CliRunner().invoke(app, [*args[:-1], "--strategy", "active"])
    assert bad.exit_code == 2 and "strategies" in bad.output

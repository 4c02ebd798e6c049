"""KWS training: the loss falls on a toy corpus, sampling weights and reports add up, the model is saved."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from proactiv.tasks.kws.augment import Augment
from proactiv.tasks.kws.train import Split, accuracy_report, balanced_weights, fit

SR = 16000
T = torch.arange(SR, dtype=torch.float32) / SR


def toy_split(n: int, seed: int, n_classes: int = 4) -> Split:
    """Class k is a tone burst at 400·(k+1) Hz with jittered pitch and timing."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % n_classes
    freq = 400.0 * (labels + 1) * (1 + 0.03 * torch.randn(n, generator=g))
    centre = 0.5 + 0.1 * torch.randn(n, 1, generator=g)
    env = torch.exp(-(((T - centre) / 0.12) ** 2))
    waves = 0.3 * env * torch.sin(2 * math.pi * freq[:, None] * T) + 0.003 * torch.randn(n, SR, generator=g)
    return Split(waves, labels, np.array(["a", "b"])[np.arange(n) % 2])


def test_training_lowers_the_loss_and_learns_a_toy_task():
    names = ["c0", "c1", "c2", "c3"]
    still = Augment(shift_ms=0, speed_p=0, reverb_p=0, noise_p=0, vtlp_p=0, time_masks=0, freq_masks=0)
    model, info = fit(
        toy_split(128, 0), toy_split(32, 1), names, arch="cnn", epochs=4, batch_size=32, progress=False,
        lr=1e-2, augment=still,
    )  # fmt: skip
    losses = [h["loss"] for h in info["history"]]
    assert losses[-1] < 0.75 * losses[0]
    assert max(h["val_accuracy"] for h in info["history"]) > 0.6
    assert not model.training


def test_the_model_returned_averages_the_weights_of_the_last_epochs(tmp_path):
    from proactiv.checkpoints import CheckpointWriter

    names = ["c0", "c1", "c2", "c3"]
    kept = {}
    for tail in (0.25, 0.5):
        writer = CheckpointWriter(tmp_path / f"tail{tail}", keep=4)  # a checkpoint after every epoch
        model, info = fit(
            toy_split(64, 0), toy_split(16, 1), names, arch="cnn", epochs=4, batch_size=32, progress=False,
            lr=1e-2, checkpoints=writer, tail=tail,
        )  # fmt: skip
        epochs = [torch.load(tmp_path / f"tail{tail}" / f"epoch-{e}.pt", weights_only=True) for e in (3, 4)]
        kept[tail] = model.state_dict()
        n = round(4 * tail)
        assert [h.get("averaged", False) for h in info["history"]] == [False] * (4 - n) + [True] * n
    # the same seed trains the same epochs: a quarter of 4 is the last epoch, half the mean of the last two
    for key, last in epochs[1].items():
        if last.is_floating_point():
            torch.testing.assert_close(kept[0.25][key], last)
            torch.testing.assert_close(kept[0.5][key], (epochs[0][key] + last) / 2)
    assert not torch.allclose(kept[0.25]["features.0.0.weight"], kept[0.5]["features.0.0.weight"])
    for bad in (0.0, 1.5, float("nan")):
        with pytest.raises(ValueError, match="tail="):
            fit(toy_split(8, 0), toy_split(4, 1), names, arch="cnn", epochs=1, progress=False, tail=bad)


def test_balanced_weights_draw_classes_equally():
    labels = torch.tensor([0] * 90 + [1] * 10 + [2] * 30)
    w = balanced_weights(labels, 3)
    assert torch.isclose(w[labels == 0].sum(), w[labels == 1].sum())
    w = balanced_weights(labels, 3, {2: 2.0})
    assert torch.isclose(w[labels == 2].sum(), 2 * w[labels == 1].sum())


def test_accuracy_report_counts():
    pred, labels = torch.tensor([0, 1, 1, 2]), torch.tensor([0, 1, 2, 2])
    rep = accuracy_report(pred, labels, np.array(["x", "x", "y", "y"]), ["a", "b", "c"])
    assert rep["accuracy"] == 0.75 and rep["per_engine"] == {"x": 1.0, "y": 0.5}
    assert rep["per_class"]["c"] == 0.5 and rep["confusion"][2] == [0, 1, 1]
    assert rep["min_engine_accuracy"] == 0.5


def write_toy_corpus(root, per_word: int = 8) -> None:
    """A Speech Commands-layout corpus of tone bursts: 4 words x 4 speakers, engines "a" and "b"."""
    import pandas as pd

    from proactiv.tasks.kws.wavio import write_wav

    words = {"yes": 500.0, "no": 900.0, "up": 1400.0, "cat": 2200.0}
    rows, g = [], np.random.default_rng(0)
    for word, freq in words.items():
        (root / word).mkdir(parents=True, exist_ok=True)
        for i in range(per_word):
            speaker, engine = f"s{i % 4}", "ab"[i // 4 % 2]
            path = f"{word}/{speaker}_nohash_{i}.wav"
            f = freq * (1 + 0.02 * g.standard_normal())
            write_wav(
                root / path,
                0.3 * np.exp(-(((T.numpy() - 0.5) / 0.1) ** 2)) * np.sin(2 * np.pi * f * T.numpy()),
                SR,
            )
            rows.append({"path": path, "speaker": speaker, "engine": engine})
    (root / "_background_noise_").mkdir()
    write_wav(root / "_background_noise_" / "white.wav", 0.05 * g.standard_normal(3 * SR), SR)
    meta = pd.DataFrame(rows)
    (root / "validation_list.txt").write_text("\n".join(meta.path[meta.speaker == "s2"]) + "\n")
    (root / "testing_list.txt").write_text("\n".join(meta.path[meta.speaker == "s3"]) + "\n")
    meta.to_csv(root / "metadata.csv", index=False)


def test_train_end_to_end_writes_a_loadable_model_and_metrics(tmp_path):
    import json

    from proactiv.tasks.kws.decision import false_accepts
    from proactiv.tasks.kws.inference import compute_features
    from proactiv.tasks.kws.models import load_model
    from proactiv.tasks.kws.noise_robustness import held_out_clips
    from proactiv.tasks.kws.train import train

    write_toy_corpus(tmp_path / "data")
    metrics = train(tmp_path / "data", arch="cnn", out=tmp_path / "run", epochs=1, progress=False,
                    exclude_engines=("b",))  # fmt: skip
    assert set(metrics["test"]["per_engine"]) == {"a", "_background_"}
    assert set(metrics["held_out"]["per_engine"]) == {"b"}
    assert len(metrics["test"]["confusion"]) == 12
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["held_out"]["n"] == metrics["held_out"]["n"] > 0
    model = load_model(tmp_path / "run" / "model.pt")
    assert model.class_names[-1] == "_silence_" and model.extra["metrics"]["arch"] == "cnn"
    # the _unknown_ offset chosen on validation is stored with the model and decides its predictions
    offset = saved["calibration"]["unknown_offset"]
    assert model.logit_offset.tolist() == saved["calibration"]["logit_offset"]
    assert model.logit_offset[10] == offset and model.extra["metrics"]["unknown_offset"] == offset
    feats = torch.randn(2, 40, 101)
    torch.testing.assert_close(model(feats), model.net(feats) + model.logit_offset)
    words = saved["open_set"]["unknown_words"]  # the test split's "cat" clips (no running speech here)
    assert words["n"] == 2 and set(saved["open_set"]) == {"unknown_words"}
    # _silence_ has its own offset, chosen on noisy copies of the validation clips
    assert saved["calibration"]["silence"]["silence_offset"] == model.logit_offset[11]
    assert saved["calibration"]["silence"]["rule"].startswith("the _silence_ offset")
    # the recall / false-accept curve over the _unknown_ offset holds the model's own point
    curve = {p["unknown_offset"]: p for p in saved["test"]["operating_curve"]}
    waves, labels = held_out_clips(tmp_path / "data")
    decided = model(compute_features(model.frontend, waves)).argmax(1)
    assert (curve[offset]["keyword_recall"], curve[offset]["false_accept_rate"]) == pytest.approx(
        false_accepts(decided, labels, range(10))
    )
    # noise measures per kind and SNR (no running speech in this corpus)
    assert (
        set(saved["noise"]["kinds"]) == {"white", "hum", "babble"}
        and "running_speech_white" not in saved["noise"]
    )
    assert list(saved["noise"]["kinds"]["white"]) == ["20", "10", "5", "0"]


def test_excluding_an_unknown_engine_is_an_error(tmp_path):
    import pytest

    from proactiv.tasks.kws.train import train

    write_toy_corpus(tmp_path / "data")
    with pytest.raises(ValueError, match="flite"):
        train(tmp_path / "data", out=tmp_path / "run", epochs=1, progress=False, exclude_engines=("flite",))


def test_ensemble_members_learn_from_their_own_batches_and_decide_by_their_mean(tmp_path):
    from proactiv.tasks.kws.models import Ensemble, build_model, load_model
    from proactiv.tasks.kws.train import train

    names = ["c0", "c1", "c2", "c3"]
    batches = []

    class Recorded(Augment):
        def waveforms(self, x, gen):
            batches.append(x.clone())
            return super().waveforms(x, gen)

    still = Recorded(shift_ms=0, speed_p=0, reverb_p=0, noise_p=0, vtlp_p=0, time_masks=0, freq_masks=0)
    torch.manual_seed(0)  # fit's own seeding: the initial weights of the ensemble it trains
    start = [m.state_dict()["head.1.weight"].clone() for m in build_model("cnn", 4, 2).members]
    model, info = fit(
        toy_split(128, 0), toy_split(32, 1), names, arch="cnn", epochs=4, batch_size=32, progress=False,
        lr=1e-2, augment=still, members=2,
    )  # fmt: skip
    assert isinstance(model, Ensemble) and len(model.members) == 2
    assert len(batches) == 2 * info["steps"]  # a batch per member and step, each drawn on its own
    assert all(not torch.equal(batches[i], batches[i + 1]) for i in range(0, len(batches), 2))
    a, b = (m.state_dict()["head.1.weight"] for m in model.members)
    assert not torch.allclose(a, b)  # two networks, not one counted twice
    for begun, trained in zip(start, (a, b), strict=True):  # both trained
        assert not torch.allclose(begun, trained)
    assert info["history"][-1]["val_accuracy"] > 0.6
    x = torch.randn(3, 40, 101)
    mean = torch.stack([torch.log_softmax(m(x), 1) for m in model.members]).mean(0)
    torch.testing.assert_close(model(x), mean)
    # saved with its member count, read back as the same ensemble; a one-network file has no such key
    write_toy_corpus(tmp_path / "data")
    metrics = train(tmp_path / "data", arch="cnn", out=tmp_path / "run", epochs=1, progress=False, members=2)
    loaded = load_model(tmp_path / "run" / "model.pt")
    assert metrics["members"] == 2 and isinstance(loaded.net, Ensemble) and len(loaded.net.members) == 2
    assert torch.load(tmp_path / "run" / "model.pt", weights_only=True)["members"] == 2
    torch.testing.assert_close(loaded(x), loaded.net(x) + loaded.logit_offset)


def test_an_ensemble_of_one_is_the_network_itself():
    from proactiv.tasks.kws.models import DSCNN, build_model

    assert type(build_model("dscnn", 12, 1)) is DSCNN
    for bad in (0, -1, 1.5):
        with pytest.raises(ValueError, match="members="):
            build_model("dscnn", 12, bad)


def test_kws_train_members_option_trains_an_ensemble_and_keys_the_cache(tmp_path):
    from typer.testing import CliRunner

    from proactiv.cli import app
    from proactiv.tasks.kws.models import Ensemble, load_model

    write_toy_corpus(tmp_path / "data")
    args = ["kws", "train", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "m"), "--arch", "cnn",
            "--epochs", "1", "--no-progress"]  # fmt: skip
    first = CliRunner().invoke(app, [*args, "--members", "2"])
    assert first.exit_code == 0 and "(2 networks, " in first.output, first.output
    assert isinstance(load_model(tmp_path / "m" / "model.pt").net, Ensemble)
    again = CliRunner().invoke(app, [*args, "--members", "2"])
    assert "up to date" in again.output
    one = CliRunner().invoke(app, args)  # one network is another model: trained again
    assert one.exit_code == 0 and "up to date" not in one.output
    assert not isinstance(load_model(tmp_path / "m" / "model.pt").net, Ensemble)
    bad = CliRunner().invoke(app, [*args, "--members", "0"])
    assert bad.exit_code == 2 and "--members" in bad.output


def test_kws_train_joined_archs_train_one_network_of_each(tmp_path):
    from typer.testing import CliRunner

    from proactiv.cli import app
    from proactiv.tasks.kws.models import DSCNN, BCResNet, load_model

    write_toy_corpus(tmp_path / "data")
    args = ["kws", "train", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "m"), "--epochs", "1",
            "--no-progress", "--arch"]  # fmt: skip
    done = CliRunner().invoke(app, [*args, "dscnn+bcresnet"])
    assert done.exit_code == 0 and "(2 networks, " in done.output, done.output
    loaded = load_model(tmp_path / "m" / "model.pt")
    assert loaded.arch == "dscnn+bcresnet" and [type(m) for m in loaded.net.members] == [DSCNN, BCResNet]
    bad = CliRunner().invoke(app, [*args, "dscnn+resnet"])
    assert bad.exit_code == 2 and "unknown arch 'dscnn+resnet'" in bad.output
    assert "model written" not in bad.output


@pytest.mark.parametrize("name", ["adversarial", "consistency"])
def test_fit_under_a_robust_strategy_still_learns_the_toy_task(name):
    from proactiv.robust_training import TrainingStrategy

    names = ["c0", "c1", "c2", "c3"]
    still = Augment(shift_ms=0, speed_p=0, reverb_p=0, noise_p=0, vtlp_p=0, time_masks=0, freq_masks=0)
    train = toy_split(128, 0)
    pairs = (train.waves, 0.25 * train.waves)  # the run's "transform": 12 dB quieter
    model, info = fit(
        train, toy_split(32, 1), names, arch="cnn", epochs=4, batch_size=32, progress=False, lr=1e-2,
        augment=still, strategy=TrainingStrategy(name, epsilon=2.0, steps=2), pairs=pairs,
    )  # fmt: skip
    assert max(h["val_accuracy"] for h in info["history"]) > 0.6
    with pytest.raises(ValueError, match="consistency training needs transformed copies"):
        fit(train, toy_split(8, 1), names, arch="cnn", epochs=1, progress=False,
            strategy=TrainingStrategy("consistency"))  # fmt: skip


def test_train_stores_its_strategy_and_the_accuracy_under_pgd(tmp_path):
    import json

    from proactiv.robust_training import TrainingStrategy
    from proactiv.tasks.kws.train import PGD_EPSILONS, train

    write_toy_corpus(tmp_path / "data")
    adversarial = TrainingStrategy("adversarial", epsilon=2.0, steps=1)
    train(tmp_path / "data", arch="cnn", out=tmp_path / "run", epochs=1, progress=False, strategy=adversarial)
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["strategy"] == adversarial.settings() and TrainingStrategy.load(tmp_path / "run") == adversarial
    assert list(saved["pgd"]["accuracy"]) == [f"{e:g}" for e in PGD_EPSILONS]
    assert saved["pgd"]["n"] == saved["test"]["n"]
    assert saved["pgd"]["accuracy"]["8"] <= saved["pgd"]["accuracy"]["4"] <= saved["test"]["accuracy"] + 1e-9
    with pytest.raises(ValueError, match="needs an augmentation plan"):
        train(tmp_path / "data", arch="cnn", out=tmp_path / "x", epochs=1, progress=False,
              strategy=TrainingStrategy("consistency"))  # fmt: skip


def test_kws_train_refuses_a_strategy_it_cannot_follow_before_loading_anything(tmp_path):
    from typer.testing import CliRunner

    from proactiv.cli import app

    write_toy_corpus(tmp_path / "data")
    base = ["kws", "train", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "m")]
    for bad, message in ((["--strategy", "consistency"], "--strategy consistency needs --augment-from RUN"),
                         (["--strategy", "adversarial", "--norm", "l1"], "norm='l1': expected one of l2, linf"),
                         (["--strategy", "consistency", "--beta", "0"], "beta=0.0: expected a finite number > 0")):  # fmt: skip
        refused = CliRunner().invoke(app, [*base, *bad])
        assert refused.exit_code == 2 and message in refused.output, refused.output
    assert not (tmp_path / "m").exists()

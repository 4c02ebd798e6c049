"""Training checkpoints: the format round-trips, a killed or repeated training leaves nothing misleading, bad
folders are named, and the KWS and digits trainings write checkpoints that lead back to their training sets."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from proactiv.checkpoints import (
    MANIFEST,
    Checkpoint,
    CheckpointError,
    CheckpointWriter,
    checkpoint_epochs,
    find_checkpoints,
    read_checkpoints,
)

torch.set_num_threads(1)


def _fit(folder, epochs=10, training=None, seed=0):
    torch.manual_seed(seed)
    net = nn.Linear(3, 2)
    writer = CheckpointWriter(folder, training=training)
    for epoch in range(1, epochs + 1):
        with torch.no_grad():
            net.weight += 0.1
        writer.epoch_done(epoch, epochs, net, lr=0.01 * epoch)
    return net, writer


class Wrapped(nn.Module):
    """A frontend and a trained network inside one model, as a waveform-domain KWS model has."""

    def __init__(self, net):
        super().__init__()
        self.frontend = nn.Identity()
        self.inner = nn.Sequential(net)

    def forward(self, x):
        return self.inner(self.frontend(x))


def test_evenly_spaced_epochs():
    assert checkpoint_epochs(30) == [6, 12, 18, 24, 30]
    assert checkpoint_epochs(3) == [1, 2, 3] and checkpoint_epochs(7, keep=3) == [2, 5, 7]


def test_format_round_trip(tmp_path):
    x, y = torch.randn(6, 3), torch.tensor([0, 1, 0, 1, 1, 0])
    meta = pd.DataFrame({"speaker": list("abcabc"), "path": [f"c{i}.wav" for i in range(6)]})
    net, writer = _fit(tmp_path / "ck", training=(x, y, meta))
    written = writer.finish(net)
    back = read_checkpoints(tmp_path / "ck" / MANIFEST)
    assert back == written and [c.epoch for c in back.entries] == [2, 4, 6, 8, 10]
    assert back.entries[1].lr == pytest.approx(0.035) and back.entries[1].weight == pytest.approx(0.07)
    state = back.entries[-1].state_dict()
    assert torch.equal(state["weight"], net.weight.detach())
    files = [c.file for c in back.entries] + [tmp_path / "ck" / "training.pt"]
    assert back.bytes == sum(f.stat().st_size for f in files) and back.bytes < 20_000
    wrapped = Wrapped(net)
    assert back.network_in(wrapped) is net and back.network_in(Wrapped(nn.Linear(3, 2))) is None
    training = back.training_set()
    assert torch.equal(training.raw(), x) and torch.equal(training.raw([4, 1]), x[[4, 1]])
    assert torch.equal(training.labels, y) and list(training.metadata.speaker) == list("abcabc")


def test_a_killed_or_repeated_training_leaves_nothing_misleading(tmp_path):
    net, writer = _fit(tmp_path / "ck", epochs=20)
    writer.finish(net)
    _fit(tmp_path / "ck", epochs=3)  # killed before finish: the old manifest is gone with it
    with pytest.raises(CheckpointError, match="no checkpoints.json"):
        read_checkpoints(tmp_path / "ck")
    net, writer = _fit(tmp_path / "ck", epochs=3)
    writer.finish(net)
    assert sorted(p.name for p in (tmp_path / "ck").glob("epoch-*.pt")) == [
        "epoch-1.pt",
        "epoch-2.pt",
        "epoch-3.pt",
    ]


def test_bad_folders_are_named(tmp_path):
    net, writer = _fit(tmp_path / "ck")
    writer.finish(net)
    manifest = json.loads((tmp_path / "ck" / MANIFEST).read_text())
    with pytest.raises(CheckpointError, match="says nothing about the training set"):
        read_checkpoints(tmp_path / "ck").training_set()
    (tmp_path / "ck" / MANIFEST).write_text(json.dumps({**manifest, "format": "other/9"}))
    with pytest.raises(CheckpointError, match=r"format 'other/9', expected 'proactiv.checkpoints/1'"):
        read_checkpoints(tmp_path / "ck")
    (tmp_path / "ck" / MANIFEST).write_text(json.dumps({**manifest, "training": {"kind": "csv"}}))
    with pytest.raises(CheckpointError, match=r"training.kind='csv'"):
        read_checkpoints(tmp_path / "ck").training_set()
    del manifest["network"]
    (tmp_path / "ck" / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="bad or missing field.*network"):
        read_checkpoints(tmp_path / "ck")
    (tmp_path / "ck" / "epoch-4.pt").write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="epoch-4.pt: cannot read it"):
        Checkpoint(4, tmp_path / "ck" / "epoch-4.pt", 0.1, 2).state_dict()
    other, writer = _fit(tmp_path / "other", seed=3)
    writer.finish(other)
    with pytest.raises(CheckpointError, match="saved while training another network"):
        find_checkpoints(nn.Linear(3, 2), given=tmp_path / "other")


def _tiny_corpus(root):
    """A Speech Commands-layout corpus: "yes"/"no" tone bursts by 3 speakers, one held out for each list."""
    from proactiv.tasks.kws.wavio import write_wav

    t = np.arange(16000) / 16000
    for word, freq in (("yes", 500.0), ("no", 900.0)):
        (root / word).mkdir(parents=True)
        for i in range(6):
            write_wav(
                root / word / f"s{i % 3}_nohash_{i}.wav",
                0.3 * np.sin(2 * np.pi * freq * (1 + i / 50) * t),
                16000,
            )
    (root / "_background_noise_").mkdir()
    write_wav(
        root / "_background_noise_" / "white.wav",
        0.05 * np.random.default_rng(0).standard_normal(32000),
        16000,
    )
    (root / "validation_list.txt").write_text("yes/s1_nohash_1.wav\nno/s1_nohash_1.wav\n")
    (root / "testing_list.txt").write_text("yes/s2_nohash_2.wav\nno/s2_nohash_2.wav\n")


def test_kws_training_writes_checkpoints_that_rebuild_its_training_set(tmp_path):
    from proactiv.tasks.kws.models import load_model
    from proactiv.tasks.kws.speech_commands import SpeechCommands
    from proactiv.tasks.kws.train import train

    _tiny_corpus(tmp_path / "data")
    metrics = train(
        tmp_path / "data", arch="cnn", out=tmp_path / "model", epochs=2, progress=False, threads=1
    )
    model = load_model(tmp_path / "model" / "model.pt")
    spec = {"source": "config", "config": {"task": "kws", "model": {"path": str(tmp_path / "model")}}}
    found = find_checkpoints(model.waveform_model(), spec)  # found inside the frontend + model wrapper
    assert found.folder == tmp_path / "model" / "checkpoints" and [c.epoch for c in found.entries] == [1, 2]
    assert found.training["kind"] == "speech_commands" and found.frontend == model.frontend.config()
    training = found.training_set()
    assert len(training) == metrics["train_clips"] == found.training["n"]
    corpus = SpeechCommands(tmp_path / "data", split="train")
    assert torch.equal(training.raw(), corpus.waveforms()) and torch.equal(training.labels, corpus.labels)
    assert torch.equal(training.raw([3]), corpus.waveforms()[[3]])
    assert {"speaker", "path", "word"} <= set(training.metadata.columns)


def test_the_cached_digits_cnn_keeps_checkpoints_next_to_its_weights(tmp_path):
    from proactiv.tasks.base import cache_dir
    from proactiv.tasks.digits import digits_split
    from proactiv.tasks.digits.model import cached_digits_cnn

    x, y = digits_split(0, 8)["train"]
    spec = {"kind": "digits", "split_seed": 0, "image_size": 8}
    model = cached_digits_cnn(x, y, epochs=2, training=spec)
    found = find_checkpoints(model)  # no model file named: found among the cached models by its weights
    assert (
        found.folder.parent == cache_dir() and found.folder.with_suffix(".pt").exists()
    )  # beside the weights
    assert torch.equal(found.training_set().labels, y) and torch.equal(
        found.training_set().raw([0, 5]), x[[0, 5]]
    )
    stamp = (found.folder / MANIFEST).stat().st_mtime_ns
    again = cached_digits_cnn(x, y, epochs=2, training=spec)  # from the cache: not trained, checkpoints kept
    assert (found.folder / MANIFEST).stat().st_mtime_ns == stamp and find_checkpoints(again) == found
    for f in found.folder.iterdir():  # a model cached before checkpoints existed still loads
        f.unlink()
    found.folder.rmdir()
    old = cached_digits_cnn(x, y, epochs=2, training=spec)
    assert torch.equal(old.head.weight, model.head.weight)
    with pytest.raises(CheckpointError, match="has no training checkpoints.*fresh \\$PROACTIV_CACHE"):
        find_checkpoints(old)

"""KWS models: shapes, size budget, per-utterance normalisation, save/load round trip and errors."""

from __future__ import annotations

import pytest
import torch

from proactiv.tasks.kws.frontend import LogMel
from proactiv.tasks.kws.models import (
    ARCHS,
    DSCNN,
    UtteranceNorm,
    build_model,
    count_macs,
    count_params,
    load_model,
    save_model,
)

CLASSES = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "_unknown_", "_silence_"]


@pytest.mark.parametrize("arch", ARCHS)
def test_shape_and_budget(arch):
    model = build_model(arch, 12).eval()
    assert model(torch.randn(3, 40, 101)).shape == (3, 12)
    macs = count_macs(model)
    assert 1e6 <= macs <= (13e6 if arch == "dscnn-wide" else 6e6)
    if arch == "dscnn":
        assert 15_000 <= count_params(model) <= 30_000


def test_the_wide_dscnn_is_the_dscnn_with_96_channels():
    narrow, wide = build_model("dscnn", 12), build_model("dscnn-wide", 12)
    assert type(wide) is DSCNN and wide.head[1].in_features == 96 and narrow.head[1].in_features == 64
    assert 40_000 <= count_params(wide) <= 50_000 and count_macs(wide) > 2 * count_macs(narrow)


@pytest.mark.parametrize("arch", ARCHS)
def test_normalisation_makes_a_db_offset_and_scale_irrelevant(arch):
    model = build_model(arch, 12).eval()
    x = torch.randn(2, 40, 101) * 3 - 40
    torch.testing.assert_close(model(x), model(x + 17.0), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(model(x), model(2 * x + 5), atol=1e-4, rtol=1e-4)


def test_values_far_below_the_peak_are_clamped():
    model = build_model("dscnn", 12).eval()
    x = torch.randn(2, 40, 101) * 3 - 20
    x[:, :, :30] = -100.0  # digital silence
    deeper = x.clone()
    deeper[:, :, :30] = -300.0
    torch.testing.assert_close(model(x), model(deeper))
    assert not torch.allclose(UtteranceNorm(top_db=None)(x), UtteranceNorm(top_db=None)(deeper))


def test_count_macs_of_a_known_layer():
    layer = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.Flatten(), torch.nn.Linear(4 * 40 * 101, 2)
    )
    assert count_macs(layer, (1, 1, 40, 101)) == 4 * 9 * 40 * 101 + 4 * 40 * 101 * 2


@pytest.mark.parametrize("arch", ARCHS)
def test_save_load_round_trip(tmp_path, arch):
    torch.manual_seed(0)
    model = build_model(arch, 12)
    model.train()
    model(torch.randn(8, 40, 101))  # move BatchNorm running stats away from their init
    model.eval()
    fe = LogMel()
    path = save_model(
        tmp_path / "m.pt",
        model,
        arch=arch,
        frontend_config=fe.config(),
        class_names=CLASSES,
        extra={"acc": 0.9},
    )
    loaded = load_model(path)
    assert not loaded.training
    assert loaded.arch == arch and loaded.class_names == CLASSES and loaded.extra == {"acc": 0.9}
    assert loaded.frontend.config() == fe.config()
    x = torch.randn(4, 40, 101)
    assert torch.equal(loaded(x), model(x))
    wave = torch.randn(2, 16000) * 0.1
    wm = loaded.waveform_model()
    assert torch.equal(wm(wave), model(fe(wave)))
    wave.requires_grad_(True)
    wm(wave).sum().backward()
    assert wave.grad.abs().sum() > 0
    torch.load(path, weights_only=True)  # plain containers only


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(ValueError, match="missing.pt"):
        load_model(tmp_path / "missing.pt")
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="corrupt.pt"):
        load_model(bad)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(ValueError, match="other.pt.*not a proactiv keyword model"):
        load_model(other)
    wrong = tmp_path / "wrong.pt"
    save_model(
        wrong, build_model("cnn"), arch="dscnn", frontend_config=LogMel().config(), class_names=CLASSES
    )
    with pytest.raises(ValueError, match="wrong.pt"):
        load_model(wrong)
    with pytest.raises(ValueError, match="arch"):
        build_model("transformer")


def test_the_decision_offset_is_stored_applied_and_fingerprinted(tmp_path):
    from proactiv.fingerprint import model_hash
    from proactiv.tasks.kws.models import KeywordModel

    torch.manual_seed(0)
    net = build_model("cnn", 12).eval()
    fe = LogMel()
    plain = load_model(save_model(tmp_path / "a.pt", net, arch="cnn", frontend_config=fe.config(),
                                  class_names=CLASSES))  # fmt: skip
    assert plain.logit_offset is None and "logit_offset" not in plain.state_dict()
    offset = [0.0] * 10 + [2.5, 0.0]
    path = save_model(tmp_path / "b.pt", net, arch="cnn", frontend_config=fe.config(), class_names=CLASSES,
                      logit_offset=offset)  # fmt: skip
    calibrated = load_model(path)
    x = torch.randn(3, 40, 101)
    torch.testing.assert_close(calibrated(x), net(x) + torch.tensor(offset))
    assert (
        calibrated.waveform_model()(torch.zeros(1, 16000))[0, 10]
        > plain.waveform_model()(torch.zeros(1, 16000))[0, 10]
    )
    # an uncalibrated model fingerprints as before the offset existed; a calibrated one differs
    wrapped = KeywordModel(net, arch="cnn", frontend=fe, class_names=CLASSES, extra={})
    assert model_hash(plain) == model_hash(wrapped) != model_hash(calibrated)
    again = load_model(save_model(tmp_path / "c.pt", calibrated, arch="cnn", frontend_config=fe.config(),
                                  class_names=CLASSES))  # fmt: skip
    assert again.logit_offset.tolist() == offset  # a KeywordModel saves its own offset
    with pytest.raises(ValueError, match="one value per class"):
        KeywordModel(net, arch="cnn", frontend=fe, class_names=CLASSES, extra={}, logit_offset=torch.zeros(3))


def test_sub_spectral_norm_normalises_each_frequency_band_apart():
    from proactiv.tasks.kws.models import SubSpectralNorm

    x = torch.randn(16, 3, 20, 30)
    x[:, :, :4] += 10.0  # the lowest of 5 bands (4 bins each) far louder
    y = SubSpectralNorm(3, bands=5).train()(x)
    band_means = y.reshape(16, 3, 5, 4, 30).mean((0, 3, 4))
    torch.testing.assert_close(band_means, torch.zeros(3, 5), atol=1e-4, rtol=0)
    plain = torch.nn.BatchNorm2d(3).train()(x)  # one statistic per channel keeps the bands apart
    assert plain[:, :, :4].mean() > 1.0 > plain[:, :, 4:].mean()


def test_bcresnet_broadcasts_its_temporal_branch_over_frequency():
    from proactiv.tasks.kws.models import BCResNet, BroadcastBlock

    assert 20_000 <= count_params(BCResNet(12)) <= 35_000
    block = BroadcastBlock(4, 4).eval()
    x = torch.randn(2, 4, 10, 12)
    per_bin = block.frequency(x)
    assert (block(x) == torch.relu(x + per_bin + block.temporal(per_bin.mean(2, keepdim=True)))).all()
    # a frame changed in one frequency bin reaches every bin of the frames the temporal conv sees
    moved = x.clone()
    moved[:, :, 0, 5] += 3.0
    changed = (block(moved) != block(x)).any(1).any(0)  # (bins, frames)
    assert changed[9, 4:7].all() and not changed[9, :3].any()
    with pytest.raises(ValueError, match=r"\(2, 64, 101\): expected \(batch, 40 mels, frames\)"):
        BCResNet(12)(torch.randn(2, 64, 101))
    with pytest.raises(ValueError, match="n_mels=64"):
        BCResNet(12, n_mels=64)


def test_architectures_joined_by_plus_make_an_ensemble_of_one_of_each(tmp_path):
    from proactiv.tasks.kws.models import DSCNN, BCResNet, Ensemble

    model = build_model("dscnn+bcresnet", 12)
    assert isinstance(model, Ensemble) and [type(m) for m in model.members] == [DSCNN, BCResNet]
    assert [type(m) for m in build_model("dscnn+bcresnet", 12, 2).members] == [DSCNN, BCResNet] * 2
    model.eval()
    path = save_model(tmp_path / "m.pt", model, arch="dscnn+bcresnet", frontend_config=LogMel().config(),
                      class_names=CLASSES)  # fmt: skip
    assert "members" not in torch.load(path, weights_only=True)  # one of each: no member count to record
    loaded = load_model(path)
    assert [type(m) for m in loaded.net.members] == [DSCNN, BCResNet]
    x = torch.randn(3, 40, 101)
    torch.testing.assert_close(loaded(x), model(x))
    with pytest.raises(ValueError, match="'dscnn\\+resnet'"):
        build_model("dscnn+resnet", 12)


def test_the_demo_trains_the_default_architecture_which_is_the_wide_dscnn():
    """The Makefile's demo training, `proactiv kws train`'s default and the benchmarks that retrain "as make demo
    trains" (they use DEFAULT_ARCH) name one architecture."""
    from pathlib import Path

    from proactiv.tasks.kws.models import DEFAULT_ARCH

    makefile = (Path(__file__).parents[3] / "Makefile").read_text()
    (line,) = [x for x in makefile.splitlines() if "proactiv kws train" in x and "models/kws-dscnn" in x]
    assert f"--arch {DEFAULT_ARCH} " in line
    assert build_model().features[0][0].out_channels == 96  # the default builds the 96-channel network

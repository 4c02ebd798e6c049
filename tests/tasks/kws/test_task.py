"""The KWS task in a sweep: a tiny corpus and an (untrained) saved model give records with meta.* columns."""

import shutil

import pytest
import torch

import proactiv as pv
from proactiv.config import ConfigError, parse_config
from proactiv.sweep import sweep_config
from proactiv.tasks.kws import LogMel, build_model, save_model, synthesize

if not shutil.which("espeak-ng"):
    pytest.skip("espeak-ng is not installed (apt-get install -y espeak-ng)", allow_module_level=True)


@pytest.fixture(scope="module")
def kws_setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("kws")
    synthesize(root / "data", size="tiny", progress=False)
    torch.manual_seed(0)
    names = pv.tasks.kws.CLASS_NAMES
    save_model(
        root / "model" / "model.pt",
        build_model("dscnn", len(names)),
        arch="dscnn",
        frontend_config=LogMel().config(),
        class_names=list(names),
    )
    return root


def config(root, **over):
    cfg = {
        "task": "kws",
        "model": {"path": str(root / "model")},
        "data": {"root": str(root / "data"), "split": "test", "instances_per_class": 1},
        "grid": [
            {"type": "audio_noise", "snr_db": [float("inf"), 0]},
            {"type": "time_mask", "width_frames": [0, 10]},
        ],
        "projection": {"max_steps": 5},
    }
    cfg.update(over)
    return parse_config(cfg)


def test_feature_domain_sweep_writes_meta_columns(kws_setup, tmp_path):
    run = sweep_config(config(kws_setup), tmp_path / "run", progress=False)
    rec = run.records
    n_inst = rec.instance.nunique()
    assert len(rec) == 4 * n_inst and n_inst >= 3
    for col in (
        "meta.engine",
        "meta.voice",
        "meta.speaker",
        "meta.gender",
        "audio_noise.snr_db",
        "time_mask.width_frames",
    ):
        assert col in rec.columns
    assert set(rec["meta.engine"].dropna()) <= {"espeak", "flite", "festival"}
    arr = run.arrays(int(rec.instance.iloc[0]), 3)
    assert arr["x_t"].shape == (40, 101)  # projection acted on log-mel features
    # the time mask flattened 10 frames of the features to the per-sample mean
    assert (rec[rec["time_mask.width_frames"] == 10].d_t > 0).all()


def test_waveform_domain_and_its_guard(kws_setup, tmp_path):
    cfg = config(kws_setup, domain="waveform", grid=[{"type": "audio_noise", "snr_db": [10]}])
    run = sweep_config(cfg, tmp_path / "wave", progress=False)
    inst = int(run.records.instance.iloc[0])
    assert run.arrays(inst, 0)["x_t"].shape == (16000,)
    with pytest.raises(ConfigError, match="feature-domain transforms .* need domain: feature"):
        sweep_config(config(kws_setup, domain="waveform"), tmp_path / "bad", progress=False)


def test_missing_model_is_named(kws_setup, tmp_path):
    cfg = config(kws_setup, model={"path": str(tmp_path / "nothing.pt")})
    with pytest.raises(ConfigError, match="model.path: .*nothing.pt"):
        sweep_config(cfg, tmp_path / "r", progress=False)

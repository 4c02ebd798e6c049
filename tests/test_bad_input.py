"""Bad input gets a clear error and nothing already computed is lost (issue 18).

Each case gives proactiv something a user might: a broken config, a wrong model, bad data, a damaged or busy
run directory, an interrupted or failing sweep, a request the dashboard never makes. Each asserts that the
message names the problem (file, field or value and what was expected), that nothing is written on refusal,
and that records written before are intact. The dashboard's safety (loopback bind, no file outside the served
runs, 200 concurrent callbacks on a 100 k-record run, a run shown while written) closes the module.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from dashboard import loadtest  # tests/dashboard/loadtest.py (tests/ is on the path under pytest)
from torch import nn
from typer.testing import CliRunner

import proactiv as pv
from proactiv import io as pv_io
from proactiv.analysis import analyze, get, load_analysis
from proactiv.cli import app as cli_app
from proactiv.config import ConfigError, load_config
from proactiv.dashboard import panels
from proactiv.dashboard.app import build_app
from proactiv.dashboard.data import RunData
from proactiv.store import RunError
from proactiv.sweep import sweep_config
from proactiv.tasks.kws import LogMel, build_model, save_model
from proactiv.tasks.kws.speech_commands import load_clip
from proactiv.tasks.kws.wavio import write_wav
from proactiv.testing import BENCH_CLASSES, bench_grid, write_synthetic_run

RATE = 16000
#: a model for subprocess sweeps: importable by name (``factory``), slowed by an environment variable so a
#: test can act while the sweep runs; the same seeded weights in every process
MODEL_MODULE = """
import os, time, torch
from torch import nn

class Tab(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))

    def forward(self, x):
        time.sleep(float(os.environ.get("PROACTIV_TEST_DELAY", "0")))
        return self.net(x)

def build():
    return Tab()
"""
#: the custom-task config the sweep cases start from: 12 tabular instances x 4 points in 8 units
CONFIG = {
    "task": "custom",
    "model": {"factory": "tabmodel:build"},
    "data": {"inputs": "x.pt", "labels": "y.pt", "instances_per_class": None},
    "grid": [{"type": "noise", "snr_db": [20, 0]}, {"type": "gain", "gain_db": [0, -6]}],
    "projection": {"max_steps": 20},
    "units": {"instances": 3, "projections": 6},
    "arrays": {"keep": "all"},
}
N_UNITS = 8


# ------------------------------------------------------------------------------------------------ helpers
@pytest.fixture(scope="module", autouse=True)
def _one_thread_for_the_module():
    """One torch thread for the module's shared runs (the machine's cores are shared)."""
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread in each test too (after the suite's conftest has chosen its own)."""
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """A folder with the tabular model module, its inputs and labels."""
    root = tmp_path_factory.mktemp("bad-input")
    (root / "tabmodel.py").write_text(MODEL_MODULE)
    sys.path.insert(0, str(root))
    model = __import__("tabmodel").build()
    x = torch.randn(12, 6, generator=torch.Generator().manual_seed(1))
    torch.save(x, root / "x.pt")
    with torch.no_grad():
        torch.save(model(x).argmax(1), root / "y.pt")
    yield root
    sys.path.remove(str(root))


def config(home: Path, name: str = "c.yaml", **over) -> Path:
    """A YAML config in ``home`` from CONFIG with top-level fields replaced (``None`` drops a field)."""
    data = {k: v for k, v in {**CONFIG, **over}.items() if v is not None}
    path = home / name
    path.write_text(json.dumps(data))  # JSON is YAML
    return path


@pytest.fixture(scope="module")
def reference(home, tmp_path_factory) -> pd.DataFrame:
    """The records of an uninterrupted sweep of CONFIG."""
    out = tmp_path_factory.mktemp("ref") / "run"
    return sweep_config(load_config(config(home, "ref.yaml")), out, progress=False).records


@pytest.fixture
def base(home, reference, tmp_path) -> Path:
    """A complete run of CONFIG, written in this test's folder."""
    out = tmp_path / "run"
    sweep_config(load_config(config(home)), out, progress=False)
    return out


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with a digest of its bytes: equal snapshots mean nothing was written."""
    return {
        str(p.relative_to(folder)): hashlib.blake2b(p.read_bytes(), digest_size=8).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def refused(home: Path, out: Path, match: str, name: str = "c.yaml", exc=ValueError, **over) -> str:
    """Sweep a config with ``over`` into ``out``: it must fail with ``match`` and write nothing."""
    before = snapshot(out) if out.exists() else None
    with pytest.raises(exc, match=match) as err:
        sweep_config(load_config(config(home, name, **over)), out, progress=False)
    assert (snapshot(out) if out.exists() else None) == before, "a refused sweep wrote files"
    return str(err.value)


def cli(*args: str, env: dict | None = None) -> subprocess.Popen:
    """``proactiv ARGS`` in a subprocess, its stderr a pipe (not a terminal). Ctrl-C is restored to its
    default: a test suite started in the background of a shell without job control inherits SIGINT ignored,
    and Python then never raises KeyboardInterrupt."""
    return subprocess.Popen(
        [sys.executable, "-m", "proactiv.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip


def no_temporary_files(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if ".tmp" in p.name]


# ------------------------------------------------------------------------------------------------ configs
@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"grid": [{"type": "wobble", "amount": [1]}]},
         "grid: unknown transform 'wobble'; known transforms: audio_noise, blur, brightness"),
        ({"projecton": {"max_steps": 3}}, r"projecton: .*unknown field \(did you mean 'projection'\?\)"),
        ({"projection": {"max_step": 3}}, r"projection.max_step: .*did you mean 'max_steps'\?.* \(got 3\)"),
        ({"grid": [{"type": "noise", "snrdb": [10]}]}, "unexpected keyword argument 'snrdb'.*its parameter is 'snr_db'"),
        ({"grid": [{"type": "noise", "snr_db": [999]}]},
         r"noise.snr_db = 999 dB: outside the valid range \[-40.0, 120.0\] dB"),
        ({"grid": [{"type": "noise", "snr_db": ["loud"]}]}, "noise.snr_db = 'loud': expected a finite number"),
        ({"grid": []}, r"grid: List should have at least 1 item"),
        ({"grid": [{"type": "noise", "snr_db": []}]}, "noise.snr_db: the value list is empty"),
        ({"grid": [{"type": "noise", "snr_db": [10]}, {"type": "noise", "snr_db": [0]}]},
         "column 'noise.snr_db' appears twice"),
        ({"units": {"instances": 0}}, r"units.instances: Input should be greater than or equal to 1 \(got 0\)"),
    ],
)  # fmt: skip
def test_a_bad_config_is_named_with_its_file_and_field(home, tmp_path, over, message):
    err = refused(home, tmp_path / "run", message, **over)
    assert str(home / "c.yaml") in err.splitlines()[0]  # the file, then the field


def test_an_unknown_task_is_named_with_the_known_ones(home, tmp_path):
    refused(
        home, tmp_path / "run", "task: unknown task 'kws2'; known tasks: custom, denoise, digits", task="kws2"
    )


def test_a_config_file_that_is_missing_or_not_yaml(home, tmp_path):
    with pytest.raises(ConfigError, match=re.escape(f"{tmp_path / 'nope.yaml'}: config file not found")):
        load_config(tmp_path / "nope.yaml")
    (tmp_path / "broken.yaml").write_text("grid: [{type: noise\n")
    with pytest.raises(ConfigError, match="broken.yaml: not valid YAML"):
        load_config(tmp_path / "broken.yaml")


# ------------------------------------------------------------------------------------------------- models
class Argmax(nn.Module):
    """Not differentiable: its output is a one-hot of an argmax."""

    def forward(self, x):
        return nn.functional.one_hot(x.sum(1, keepdim=True).gt(0).long().squeeze(1), 3).float()


def test_a_missing_or_unreadable_model_file_is_named(home, tmp_path):
    out = tmp_path / "run"
    refused(
        home,
        out,
        re.escape(f"model.torchscript: file not found: {home / 'gone.ts'}"),
        model={"torchscript": "gone.ts"},
    )
    (home / "junk.ts").write_bytes(b"not a model")
    refused(home, out, re.escape(f"model.torchscript: {home / 'junk.ts'} is not a TorchScript file"),
            model={"torchscript": "junk.ts"})  # fmt: skip


def test_a_model_file_of_another_architecture_is_named(home, tmp_path):
    from proactiv.tasks.digits.model import DigitsCNN

    torch.save(DigitsCNN(10, image_size=8).state_dict(), home / "w10.pt")
    model = {"factory": "proactiv.tasks.digits.model:DigitsCNN", "kwargs": {"n_classes": 4, "image_size": 8},
             "weights": "w10.pt"}  # fmt: skip
    refused(home, tmp_path / "run", rf"(?s)model.weights: cannot load {re.escape(str(home / 'w10.pt'))} into .*DigitsCNN.*size mismatch",
            model=model)  # fmt: skip


def test_a_model_whose_output_does_not_fit_the_labels(home, tmp_path):
    torch.save(torch.arange(12) % 5, home / "y5.pt")  # labels 0-4 for a 3-class model
    data = {**CONFIG["data"], "labels": "y5.pt"}
    refused(home, tmp_path / "run", r"targets: label 3 out of range; model Tab has 3 outputs, so labels must lie in \[0, 2\]",
            data=data)  # fmt: skip


def test_a_model_that_cannot_take_the_inputs(home, tmp_path):
    torch.save(torch.randn(12, 7), home / "x7.pt")
    data = {**CONFIG["data"], "inputs": "x7.pt"}
    refused(home, tmp_path / "run", r"model Tab cannot take inputs of shape \(7,\)", data=data)


def test_a_non_differentiable_model_is_refused_before_anything_is_written(tmp_path):
    x = torch.randn(6, 6)
    with pytest.raises(
        ValueError, match="model Argmax: its output does not depend differentiably on its input"
    ):
        pv.sweep(Argmax(), x, torch.zeros(6, dtype=torch.long), pv.Grid([pv.transforms.get("gain", gain_db=[0])]),
                 tmp_path / "run", progress=False)  # fmt: skip
    assert not (tmp_path / "run").exists()


# --------------------------------------------------------------------------------------------------- data
def test_inputs_with_nan_or_inf_are_refused(home, tmp_path):
    for bad in (float("nan"), float("inf")):
        x = torch.load(home / "x.pt")
        x[4, 2] = bad
        torch.save(x, home / "xbad.pt")
        refused(home, tmp_path / "run", "inputs: the clean inputs contain NaN or Inf",
                data={**CONFIG["data"], "inputs": "xbad.pt"})  # fmt: skip


def test_data_files_that_are_missing_miscounted_or_not_tensors(home, tmp_path):
    out = tmp_path / "run"
    refused(
        home,
        out,
        re.escape(f"data.inputs: file not found: {home / 'none.pt'}"),
        data={**CONFIG["data"], "inputs": "none.pt"},
    )
    torch.save({"x": 1}, home / "dict.pt")
    refused(home, out, re.escape(f"data.labels: {home / 'dict.pt'} holds a dict, expected a tensor"),
            data={**CONFIG["data"], "labels": "dict.pt"})  # fmt: skip
    torch.save(torch.zeros(5, dtype=torch.long), home / "y_short.pt")
    refused(home, out, re.escape(f"data.labels: {home / 'y_short.pt'} holds 5 labels for the 12 inputs of {home / 'x.pt'}; expected one per input"),
            data={**CONFIG["data"], "labels": "y_short.pt"})  # fmt: skip


@pytest.fixture
def corpus(tmp_path) -> Path:
    """A hand-made keyword corpus (2 words x 2 speakers, background noise) and an untrained DS-CNN file."""
    rng = np.random.default_rng(0)
    data, listed = tmp_path / "data", []
    for word in ("yes", "no"):
        (data / word).mkdir(parents=True)
        for s in range(2):
            write_wav(data / word / f"s{s}_nohash_0.wav", rng.normal(0, 0.1, RATE), RATE)
            listed.append(f"{word}/s{s}_nohash_0.wav")
    (data / "testing_list.txt").write_text("\n".join(listed))
    (data / "validation_list.txt").write_text("")
    (data / "_background_noise_").mkdir()
    write_wav(data / "_background_noise_" / "noise.wav", rng.normal(0, 0.1, 2 * RATE), RATE)
    torch.manual_seed(0)
    names = list(pv.tasks.kws.CLASS_NAMES)
    save_model(tmp_path / "model" / "model.pt", build_model("dscnn", len(names)), arch="dscnn",
               frontend_config=LogMel().config(), class_names=names)  # fmt: skip
    return tmp_path


def kws_config(corpus: Path, **over) -> Path:
    cfg = {"task": "kws", "model": {"path": str(corpus / "model")},
           "data": {"root": str(corpus / "data"), "instances_per_class": None},
           "grid": [{"type": "audio_noise", "snr_db": [20]}], "projection": {"max_steps": 3}, **over}  # fmt: skip
    path = corpus / "kws.yaml"
    path.write_text(json.dumps(cfg))
    return path


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"RIFF\x10\x00\x00\x00garbage!", "not a readable PCM WAV file"),
        (b"", r"empty file \(0 bytes\), not a WAV file"),
        ("truncated", "truncated WAV data: header announces 16000 frames"),
    ],
)
def test_a_corrupt_empty_or_truncated_wav_is_named(corpus, tmp_path, content, message):
    clip = corpus / "data" / "no" / "s1_nohash_0.wav"
    clip.write_bytes(clip.read_bytes()[:5000] if content == "truncated" else content)
    with pytest.raises(ValueError, match=f"{re.escape(str(clip))}: {message}"):
        sweep_config(load_config(kws_config(corpus)), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_stereo_8khz_and_10_second_wavs_are_conformed_to_1_s_of_16_khz_mono(tmp_path):
    t = np.arange(RATE) / RATE
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    write_wav(tmp_path / "stereo.wav", np.stack([tone, np.full(RATE, 0.25)], 1), RATE)  # channels averaged
    assert np.allclose(load_clip(tmp_path / "stereo.wav"), (tone + 0.25) / 2, atol=1e-4)
    slow = np.arange(8000) / 8000
    write_wav(tmp_path / "8k.wav", 0.5 * np.sin(2 * np.pi * 440 * slow), 8000)  # resampled: same pitch
    clip = load_clip(tmp_path / "8k.wav")
    assert clip.shape == (RATE,) and abs(np.argmax(np.abs(np.fft.rfft(clip))) - 440) <= 1
    ten = np.zeros(10 * RATE)
    ten[int(4.5 * RATE) : int(5.5 * RATE)] = tone  # the word in the middle of 10 s
    write_wav(tmp_path / "10s.wav", ten, RATE)
    assert np.allclose(load_clip(tmp_path / "10s.wav"), tone, atol=1e-4)  # centre-cropped to it


def test_a_data_folder_with_no_classes_or_none_at_all(corpus, tmp_path):
    (corpus / "empty").mkdir()
    data = {"root": str(corpus / "empty")}
    with pytest.raises(
        ConfigError, match=re.escape(f"data.root: {corpus / 'empty'}: no <word>/*.wav clips found")
    ):
        sweep_config(load_config(kws_config(corpus, data=data)), tmp_path / "run", progress=False)
    with pytest.raises(ConfigError, match=re.escape(f"data.root: {corpus / 'gone'}: no such folder")):
        sweep_config(load_config(kws_config(corpus, data={"root": str(corpus / "gone")})), tmp_path / "run",
                     progress=False)  # fmt: skip
    assert not (tmp_path / "run").exists()


def test_a_keyword_model_file_of_another_architecture_is_named(corpus, tmp_path):
    payload = torch.load(corpus / "model" / "model.pt", weights_only=True)
    payload["state_dict"] = build_model("cnn", 12).state_dict()  # a CNN's weights in a DS-CNN's file
    torch.save(payload, corpus / "other.pt")
    cfg = kws_config(corpus, model={"path": str(corpus / "other.pt")})
    with pytest.raises(
        ConfigError, match=re.escape(f"model.path: model file '{corpus / 'other.pt'}' has an invalid model")
    ):
        sweep_config(load_config(cfg), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------------------------------ run directories
def test_resume_with_another_config_is_refused_naming_what_differs(home, base, reference):
    before = snapshot(base)
    refused(home, base, r"already exists \(status: complete\); pass --resume", exc=RunError)
    with pytest.raises(
        RunError,
        match=r'cannot resume run .*\n  config.projection: stored .*"max_steps": 20.*now .*"max_steps": 5',
    ):
        sweep_config(
            load_config(config(home, projection={"max_steps": 5})), base, resume=True, progress=False
        )
    assert snapshot(base) == before
    pd.testing.assert_frame_equal(pv.open_run(base).records, reference)


def test_a_truncated_or_corrupt_shard_is_detected_and_recomputed_on_resume(home, base, reference):
    run = pv.open_run(base)
    first, second, third = run.shard_files()[:3]
    first.write_bytes(first.read_bytes()[: first.stat().st_size // 2])  # truncated
    second.write_bytes(b"\0" * second.stat().st_size)  # corrupt, same size
    third.unlink()  # lost
    damaged = pv.open_run(base).damaged_units()
    assert sorted(damaged) == sorted(p.stem.removeprefix("part-") for p in (first, second, third))
    assert "bytes" in damaged[first.stem[5:]] and "missing" in damaged[third.stem[5:]]
    with pytest.raises(RunError, match=r"3 damaged unit\(s\) .*resume its sweep \(--resume"):
        pv.open_run(base).records  # noqa: B018
    result = CliRunner().invoke(
        cli_app, ["sweep", str(config(home)), "--out", str(base), "--resume", "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.count("recomputed damaged unit") == 3 and first.stem[5:] in result.output
    pd.testing.assert_frame_equal(pv.open_run(base).records, reference)
    assert pv.open_run(base).damaged_units() == {}


def test_a_corrupt_run_header_or_a_header_less_folder(home, base, tmp_path):
    (base / "run.json").write_text("{not json")
    with pytest.raises(RunError, match=re.escape(f"{base / 'run.json'}: corrupt run header")):
        pv.open_run(base)
    refused(home, base, "corrupt run header", exc=RunError)
    orphan = tmp_path / "orphan"
    (orphan / "done").mkdir(parents=True)
    (orphan / "done" / "g00000-i00000.json").write_text("{}")
    refused(home, orphan, "holds shards but no run.json; choose an empty output directory", exc=RunError)


@pytest.fixture
def read_only():
    """Makes folders nobody may write to (as root, whom permissions do not stop, also immutable); undone after."""
    locked = []

    def lock(path: Path) -> Path:
        path.chmod(0o555)
        locked.append(path)
        if os.geteuid() == 0:
            subprocess.run(["chattr", "+i", str(path)], capture_output=True)
        try:
            (path / ".probe").touch()
        except OSError:
            return path
        (path / ".probe").unlink()
        pytest.skip("cannot make a read-only folder here")

    yield lock
    for path in locked:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True)
        path.chmod(0o755)


def test_a_read_only_output_directory(home, base, reference, read_only, tmp_path):
    (tmp_path / "ro").mkdir()
    out = read_only(tmp_path / "ro") / "run"
    refused(home, out, rf"run {re.escape(str(out))}: cannot write the run directory \((Permission denied|Operation not permitted)",
            exc=RunError)  # fmt: skip
    assert not out.exists()
    read_only(base)  # an existing run that may not be written: resuming it is refused, its records kept
    refused(home, base, "cannot write the run directory", exc=RunError)
    pd.testing.assert_frame_equal(pv.open_run(base).records, reference)


def test_a_full_disk_stops_the_sweep_and_the_run_stays_resumable(home, reference, tmp_path, monkeypatch):
    out, writes = tmp_path / "run", []
    real = pv_io.atomic_write  # every writer of the run goes through it

    def disk_full_after_15_writes(path, write):  # the header, then 3 or 4 files a unit
        writes.append(path)
        if len(writes) <= 15:
            return real(path, write)

        def half(tmp):
            tmp.write_bytes(b"\0" * 100)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp))

        return real(path, half)

    monkeypatch.setattr(pv_io, "atomic_write", disk_full_after_15_writes)
    with pytest.raises(RunError, match=rf"run {re.escape(str(out))}: cannot write (unit g\d+-i\d+|the clean inputs of instance block \d+) \(No space left on device: .*\); the (\d+) units written before it are kept: .*resume the sweep") as err:  # fmt: skip
        sweep_config(load_config(config(home)), out, progress=False)
    kept = len(pv.open_run(out).records)
    assert 0 < kept < len(reference) and f"the {kept // 6} units written before it are kept" in str(err.value)
    assert not (out / ".lock").exists() and no_temporary_files(out)
    monkeypatch.undo()
    pd.testing.assert_frame_equal(
        sweep_config(load_config(config(home)), out, resume=True, progress=False).records, reference
    )


def slow_sweep(home: Path, out: Path, delay: float = 0.05) -> subprocess.Popen:
    """``proactiv sweep`` of CONFIG in a subprocess whose model sleeps ``delay`` s a call; returns when it has
    written its first unit."""
    proc = cli("sweep", str(config(home, "slow.yaml")), "--out", str(out), "--no-progress",
               env={"PYTHONPATH": str(home), "PROACTIV_TEST_DELAY": str(delay)})  # fmt: skip
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not list((out / "done").glob("*.json")):
        time.sleep(0.02)
    assert proc.poll() is None, f"the sweep ended early: {proc.communicate()}"
    return proc


@pytest.mark.slow
def test_ctrl_c_stops_the_sweep_cleanly_and_it_resumes(home, reference, tmp_path):
    out = tmp_path / "run"
    proc = slow_sweep(home, out)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err, err
    done = len(list((out / "done").glob("*.json")))
    assert f"stopped by Ctrl-C: run {out} interrupted: {done} of {N_UNITS} units; continue it with " \
           f"`proactiv sweep {home / 'slow.yaml'} --out {out} --resume`" in err  # fmt: skip
    assert json.loads((out / "run.json").read_text())["status"] == "interrupted"
    assert not (out / ".lock").exists() and no_temporary_files(out)
    assert 0 < len(pv.open_run(out).records) < len(reference)
    resumed = sweep_config(load_config(config(home, "slow.yaml")), out, resume=True, progress=False)
    pd.testing.assert_frame_equal(resumed.records, reference)


def test_a_second_sweep_on_a_run_being_written_is_refused_and_the_dashboard_shows_it_in_progress(
    home, reference, tmp_path
):
    out = tmp_path / "run"
    proc = slow_sweep(home, out)
    try:
        lock = (out / ".lock").read_text()
        assert lock.startswith(f"{proc.pid}@")
        with pytest.raises(
            RunError,
            match=rf"run {re.escape(str(out))} is being written by another sweep \(process {proc.pid}@",
        ):
            sweep_config(load_config(config(home, "slow.yaml")), out, resume=True, progress=False)
        assert (out / ".lock").read_text() == lock  # the refused sweep left the lock alone
        data = RunData(out, compute=False)  # what a dashboard opened now shows
        summary = data.summary()
        assert summary["in_progress"] and summary["status"].startswith("in progress: ")
        shown = int(summary["status"].split(": ")[1].split(" of ")[0])
        assert summary["status"].endswith(f" of {N_UNITS} units") and 1 <= shown < N_UNITS
        assert 0 < data.n_records <= shown * 6 and not data.sql("SELECT * FROM records").duplicated().any()
        texts = json.dumps(panels.summary_children(data), default=str)
        assert "in progress:" in texts and "a sweep is still writing this run" in texts
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    state = pv.open_run(out).state()
    assert state.startswith("interrupted: ") and state.endswith(
        f" of {N_UNITS} units"
    )  # killed: not in progress
    resumed = sweep_config(load_config(config(home, "slow.yaml")), out, resume=True, progress=False)
    pd.testing.assert_frame_equal(resumed.records, reference)


# ---------------------------------------------------------------------------------------------- analyses
@pytest.fixture(scope="module")
def analysed(tmp_path_factory) -> Path:
    """A small synthetic run with its analyses (PCA embeddings: fast)."""
    run = write_synthetic_run(tmp_path_factory.mktemp("dash") / "run", n_instances=24)
    analyze(run, method="pca")
    return run.path


def test_a_corrupt_analysis_file_is_recomputed(analysed, tmp_path):
    path = shutil.copytree(analysed, tmp_path / "run")
    run = pv.open_run(path)
    before = load_analysis(run)["curves"]
    for name in get("curves").files:
        (run.analysis_dir / name).write_bytes(b"garbage")
    assert load_analysis(run)["curves"] is None  # read as missing, not a crash
    result = analyze(run, steps=["curves"])
    assert result.computed == ["curves"]
    pd.testing.assert_frame_equal(result["curves"], before)


# ------------------------------------------------------------------------------------------- CLI printing
@pytest.fixture
def deep(tmp_path) -> Path:
    """A folder whose path alone is longer than 80 columns."""
    path = tmp_path / ("a-folder-name-long-enough-to-pass-eighty-columns-on-its-own-" * 2)
    path.mkdir()
    return path


def test_errors_print_whole_when_stderr_is_not_a_terminal(deep):
    """The issue's case, end to end: `proactiv info` on a long path that is no run, stderr a pipe."""
    proc = cli("info", str(deep / "nothing"))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "Traceback" not in err
    assert f"error: {deep / 'nothing'}: not a proactiv run (no run.json)" in err


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["sweep", "{deep}/bad.yaml", "--out", "{deep}/run"],
         "{deep}/bad.yaml: invalid config\n  grid: unknown transform 'wobble'; known transforms: audio_noise, blur, "
         "brightness, "),
        (["kws", "train", "--data", "{deep}/nodata", "--out", "{deep}/m"],
         "--data {deep}/nodata: no such folder; make one with `proactiv kws synth --out {deep}/nodata`"),
        (["info", "{deep}", "{deep}/extra"], "Error: Got unexpected extra argument(s) ({deep}/extra)"),
        (["kws", "train", "--bogus-{deep}"], "Error: No such option: --bogus-{deep}"),
    ],
)  # fmt: skip
def test_every_kind_of_cli_error_prints_whole(deep, args, expected, monkeypatch, capsys):
    """proactiv's own errors, its kws sub-commands' and typer's usage errors, as ``main`` prints them when stderr
    is not a terminal (here: captured)."""
    from proactiv.cli import main

    (deep / "bad.yaml").write_text("grid: [{type: wobble, amount: [1]}]")
    monkeypatch.setattr(cli_app, "rich_markup_mode", cli_app.rich_markup_mode)  # main may change it: restored
    monkeypatch.setattr(sys, "argv", ["proactiv", *(a.format(deep=deep) for a in args)])
    with pytest.raises(SystemExit) as stop:
        main()
    err = capsys.readouterr().err
    assert stop.value.code == 2 and expected.format(deep=deep) in err and "Traceback" not in err, err
    assert not (deep / "run").exists()


# ------------------------------------------------------------------------------------------------ dashboard
@pytest.fixture(scope="module")
def dashboard(analysed):
    """The dashboard over the small run, as ``proactiv serve`` builds it; a secret file next to the run."""
    secret = analysed.parent / "secret.txt"
    secret.write_text("SENTINEL-not-to-be-served")
    app = build_app([analysed], compute=False)
    return app, app.server.test_client(), secret


def post(client, deps, output: str, values: dict):
    return client.post(
        loadtest.CALLBACK_ROUTE, json=loadtest.callback_body(loadtest.find(deps, output), values)
    )


def test_a_record_that_does_not_exist_gets_a_message(dashboard):
    _, client, _ = dashboard
    deps = client.get("/_dash-dependencies").get_json()
    for record in (
        {"instance": 99999, "point": 3},
        {"instance": 0, "point": 4000},
        {"instance": -1, "point": -1},
    ):
        answer = post(client, deps, "interim.figure", {"run.value": 0, "record.data": record})
        assert answer.status_code == 200
        assert f"this run has no record ({record['instance']}, {record['point']})" in answer.get_data(
            as_text=True
        )
    answer = post(
        client, deps, "interim.figure", {"run.value": 0, "record.data": {"instance": "../x", "point": 1}}
    )
    assert answer.status_code == 200 and "invalid record" in answer.get_data(as_text=True)
    answer = post(client, deps, "summary.children", {"run.value": 7})  # a run the dashboard does not serve
    assert answer.status_code == 400 and "no usable run at that index" in answer.get_data(as_text=True)


def test_serve_refuses_a_missing_run_directory(tmp_path):
    from proactiv.cli import app

    result = CliRunner().invoke(app, ["serve", str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and f"{tmp_path / 'nowhere'}: no such run directory" in result.output


def test_the_dashboard_binds_loopback_unless_told_otherwise(analysed, monkeypatch):
    from proactiv.cli import app
    from proactiv.dashboard.serve import Server

    bound = {}
    monkeypatch.setattr(Server, "run", lambda self: bound.update(host=self.host, port=self.port))
    result = CliRunner().invoke(app, ["serve", str(analysed), "--no-progress", "--port", "0"])
    assert result.exit_code == 0, result.output
    assert bound["host"] == "127.0.0.1" and f"http://127.0.0.1:{bound['port']}/" in result.output
    assert "warning" not in result.output and "development server" not in result.output
    # another address only when asked for twice: --host and --public, which says who can reach it
    result = CliRunner().invoke(app, ["serve", str(analysed), "--no-progress", "--host", "0.0.0.0"])
    assert result.exit_code == 2 and "add --public" in result.output and bound["host"] == "127.0.0.1"
    result = CliRunner().invoke(app, ["serve", str(analysed), "--no-progress", "--host", "0.0.0.0", "--public",
                                      "--port", "0"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert bound["host"] == "0.0.0.0" and "no authentication" in result.output


#: what an attacker might put where a route takes a name or a path
TRAVERSALS = ["../{secret}", "..%2f..%2f{secret}", "%2e%2e/%2e%2e/{secret}", "%2e%2e%2f{secret}",
              "{abs}", "%2f{abs}", "..\\..\\{secret}", "....//....//{secret}"]  # fmt: skip


def test_no_url_reaches_a_file_outside_the_served_runs(dashboard, analysed):
    app, client, secret = dashboard
    routes = {r.rule for r in app.server.url_map.iter_rules()}
    assert routes == {"/", "/<path:path>", "/_dash-layout", "/_dash-dependencies", "/_dash-update-component",
                      "/_reload-hash", "/_favicon.ico", "/static/<path:filename>", "/assets/<path:filename>",
                      "/_dash-component-suites/<string:package_name>/<path:fingerprinted_path>"}  # fmt: skip
    up = "../" * 12
    fills = [t.format(secret=up + str(secret).lstrip("/"), abs=str(secret)) for t in TRAVERSALS]
    fills += [t.format(secret=up + "etc/passwd", abs="/etc/passwd") for t in TRAVERSALS]
    fills += [
        t.format(secret=f"../{analysed.name}/run.json", abs=str(analysed / "run.json")) for t in TRAVERSALS
    ]
    # a leading "//" would name a host, not a path: the catch-all route gets absolute paths encoded
    urls = [f"/{p}" if not p.startswith("/") else f"/%2f{p[1:]}" for p in fills]
    urls += [f"/static/{p}" for p in fills] + [f"/assets/{p}" for p in fills]
    urls += [f"/_dash-component-suites/{pkg}/{p}" for pkg in ("dash", "plotly", "proactiv", "..", "%2e%2e")
             for p in fills + ["dcc/../../../../setup.py", "deps/%2e%2e/%2e%2e/__init__.py"]]  # fmt: skip
    urls += [f"{r}?path={p}" for r in ("/_dash-layout", "/_dash-dependencies", "/_reload-hash", "/_favicon.ico")
             for p in fills[:2]]  # fmt: skip
    for url in urls:
        answer = client.get(url)
        body = answer.get_data()
        assert b"SENTINEL" not in body and b"root:x:0" not in body and b'"fingerprints"' not in body, url
        assert answer.status_code in (200, 400, 404), (url, answer.status_code)
        if answer.status_code == 200 and not url.startswith(
            ("/_dash-layout", "/_dash-dep", "/_reload", "/_fav")
        ):
            assert body.startswith(b"<!DOCTYPE html>") and b"<title>proactiv dashboard</title>" in body, url


def test_callbacks_given_names_or_numbers_the_page_never_sends(dashboard):
    """Every callback input or state, one at a time, set to a path or a number that is not the run's: answered
    (200 with a message, or 400 naming the value), never a server error or a file's bytes."""
    _, client, secret = dashboard
    deps = client.get("/_dash-dependencies").get_json()
    bad = [f"../../{secret}", "%2e%2e/run.json", -1, 10**30, 1.5, [1, "a"], {"instance": f"../{secret}", "point": 10**30},
           {"points": [str(secret)], "instances": [-5], "slice": "x"}]  # fmt: skip
    answered = 0
    for dep in deps:
        props = [f"{i['id']}.{i['property']}" for i in dep["inputs"] + dep["state"]]
        for prop in props:
            for value in bad:
                values = {"run.value": 0, prop: value}
                if prop.startswith("{"):  # a pattern-matched slider: the page sends its id with its value
                    values[prop] = [{"id": {"type": "whatif-slider", "column": str(value)}, "property": "value",
                                     "value": value}]  # fmt: skip
                answer = client.post(loadtest.CALLBACK_ROUTE, json=loadtest.callback_body(dep, values))
                body = answer.get_data()
                assert answer.status_code in (200, 204, 400), (dep["output"], prop, value, body[:300])
                assert b"SENTINEL" not in body
                answered += 1
    assert answered > 300


@pytest.mark.slow
def test_200_concurrent_callbacks_on_a_100k_record_run_are_all_answered(tmp_path):
    run = write_synthetic_run(tmp_path / "big", n_instances=2000, classes=BENCH_CLASSES, grid=bench_grid(),
                              instances_per_unit=500)  # fmt: skip
    analyze(run, method="pca")
    data = RunData(run.path, compute=False)
    assert data.n_records == 100_000
    with loadtest.served(build_app([data])) as url:
        assert url.startswith("http://127.0.0.1:")
        bodies = loadtest.main_callbacks(loadtest.dependencies(url), data)
        start = time.perf_counter()
        answers = loadtest.send_all(url, [bodies[i % len(bodies)] for i in range(200)], concurrency=200)
        wall = time.perf_counter() - start
    failed = [(a.status, a.body[:200]) for a in answers if a.status != 200]
    assert not failed, failed
    assert all("response" in json.loads(a.body) for a in answers)
    print(
        f"200 concurrent callbacks on 100 k records: {wall:.1f} s, slowest {max(a.seconds for a in answers):.2f} s"
    )


class _OneValue(torch.nn.Module):
    """A regression model that returns one value per sample as (N,)."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 1)

    def forward(self, x):
        return self.linear(x)[:, 0]


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (_OneValue(), r"outputs one value per sample as shape \(N,\); return \(N, 1\)"),
        (torch.nn.Linear(4, 1), r"targets: shape \(\) per sample, but model Linear outputs \(1,\); give the targets as \(N, 1\)"),
    ],
)
def test_one_regression_value_per_sample_says_which_shapes_fit(tmp_path, model, message):
    x, y = torch.randn(6, 4), torch.randn(6)
    grid = pv.Grid([pv.transforms.get("gain", gain_db=[0, -6])])
    with pytest.raises(ValueError, match=message):
        pv.sweep(model, (x, y), grid, tmp_path / "run", execution=pv.ExecutionSpec(progress=False))
    assert not (tmp_path / "run").exists()

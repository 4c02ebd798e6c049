"""The keyword spotter under the monitor: false accepts per hour and hit rate of every decision column, scored
as the open-set evaluation scores running speech; `proactiv monitor` end to end on a tiny model; bad input
(a wrong sample rate, a missing file, an empty recording, bad labels) refused by name."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

import proactiv as pv
from proactiv.cli import app
from proactiv.monitor import HoldRefractory, MajorityOfCopies, SuppressFlicker, WaveStream, default_assertions
from proactiv.tasks.kws.decision import StreamRule
from proactiv.tasks.kws.frontend import LogMel
from proactiv.tasks.kws.models import build_model, save_model
from proactiv.tasks.kws.monitor import read_labels, read_stream, score
from proactiv.tasks.kws.openset import match_firings
from proactiv.tasks.kws.synth import CLASS_NAMES
from proactiv.tasks.kws.wavio import write_wav
from proactiv.testing.streams import HOP, KEYWORDS, SR, ToneModel, planted_wave


def test_match_firings_hits_each_keyword_once():
    truth = [("yes", 1.0, 2.0), ("no", 5.0, 6.0)]
    fired = [(0.5, 1.5, "yes"), (0.6, 1.6, "yes"), (3.0, 4.0, "no"), (5.5, 6.5, "no"), (5.9, 7.0, "yes")]
    assert match_firings(fired, truth) == ([True, True], [1, 2, 4])


def test_false_accepts_per_hour_and_hit_rate_raw_and_corrected(tmp_path):
    fixes = [MajorityOfCopies(), SuppressFlicker(3), HoldRefractory(1.0, KEYWORDS)]
    store = pv.monitor(ToneModel(), WaveStream(planted_wave(), SR, HOP, HOP), default_assertions(KEYWORDS), fixes,
                       out=tmp_path / "m", events=KEYWORDS, progress=False)  # fmt: skip
    found = score(store, [("yes", 2.0, 4.0), ("up", 14.0, 15.1)])
    hours = 24 / 3600
    # raw: "yes" at 2.0 s and "up" at 14.0 s hit; "no" 7.0, "yes" 10.0, "up" 10.5 and 14.7, "yes" 18.0 do not
    assert found["decision"] == {"false_accepts": 5, "per_hour": pytest.approx(5 / hours), "hit_rate": 1.0,
                                 "keywords": 2}  # fmt: skip
    # all corrections: the hits two windows late, two false accepts left ("yes" at 10.2 s and 18.2 s)
    assert found["corrected"]["false_accepts"] == 2 and found["corrected"]["hit_rate"] == 1.0
    assert found["c.hold_refractory"]["false_accepts"] == 3


@pytest.fixture
def model_dir(tmp_path):
    folder = tmp_path / "kws-tiny"
    net = build_model("dscnn", len(CLASS_NAMES))
    save_model(
        folder / "model.pt", net, arch="dscnn", frontend_config=LogMel().config(), class_names=CLASS_NAMES
    )
    return folder


def test_cli_monitors_a_recording_end_to_end(model_dir, tmp_path):
    rng = np.random.default_rng(0)
    write_wav(tmp_path / "day.wav", 0.05 * rng.standard_normal(SR * 4), SR)
    (tmp_path / "said.csv").write_text("keyword,start_s,end_s\nyes,1.0,1.6\n")
    out = tmp_path / "store"
    args = ["monitor", str(tmp_path / "day.wav"), "--model", str(model_dir), "--out", str(out),
            "--labels", str(tmp_path / "said.csv"), "--no-progress", "--device", "cpu"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    for name in ("flicker", "alternation", "refractory", "consistency", "energy_floor"):
        assert name in result.output
    assert "false accepts per hour" in result.output and "corrected" in result.output
    store = pv.open_monitor(out)
    assert len(store.steps) == 31 and store.status == "complete"  # 4 s, 1-s windows every 100 ms
    assert {"p.yes", "copy.gain+3", "copy.shift+10", "a.flicker", "c.majority", "corrected"} <= set(
        store.steps
    )
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 2 and "already exists" in again.output
    assert CliRunner().invoke(app, [*args, "--resume"]).exit_code == 0


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda p: write_wav(p, np.zeros(8000), 8000),
            "sample rate 8000 Hz, the keyword model expects 16000 Hz",
        ),
        (lambda p: write_wav(p, np.zeros((100, 2)), SR), "2 channels"),
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: None, "no such WAV file"),
    ],
)
def test_bad_recordings_are_named(tmp_path, make, message):
    path = tmp_path / "in.wav"
    make(path)
    with pytest.raises(ValueError, match=message):
        read_stream(path, StreamRule())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("word,start_s,end_s\nyes,1,2\n", "no column keyword"),
        ("keyword,start_s,end_s\nmaybe,1,2\n", "row 2: keyword 'maybe'"),
        ("keyword,start_s,end_s\nyes,2,1\n", "row 2: start_s 2"),
    ],
)
def test_bad_labels_are_named(tmp_path, text, message):
    (tmp_path / "l.csv").write_text(text)
    with pytest.raises(ValueError, match=message):
        read_labels(tmp_path / "l.csv", CLASS_NAMES)


def test_cli_names_a_missing_model_folder(tmp_path):
    write_wav(tmp_path / "a.wav", np.zeros(SR), SR)
    result = CliRunner().invoke(app, ["monitor", str(tmp_path / "a.wav"), "--model", str(tmp_path / "none")])
    assert result.exit_code == 2 and "no such folder" in result.output

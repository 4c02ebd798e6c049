"""Engine drivers without the engines: the commands and script they run, and rendering their output."""

import shutil

import numpy as np
import pytest

from proactiv.tasks.kws import engines
from proactiv.tasks.kws.engines import SAMPLE_RATE, _engine_pitch, _render, _trim
from proactiv.tasks.kws.voices import FESTIVAL_VOICES, FLITE_VOICES, Clip, Speaker, Voice, espeak_timbre
from proactiv.tasks.kws.wavio import write_wav

KAL = next(v for v in FESTIVAL_VOICES if v.name == "kal")
SLT_HTS = next(v for v in FESTIVAL_VOICES if v.f0 is None)


def clip(**kw):
    return Clip(**{"word": "yes", "n": 0, "rate": 1.0, "pitch": 0.0, "amplitude": 0.5, "shift": 0.0,
                   "place": 0.5, **kw})  # fmt: skip


def burst(path, rate, seconds=0.3, hz=400.0, lead=0.2):
    """A tone burst after ``lead`` s of silence, followed by as much silence."""
    t = np.arange(int(seconds * rate)) / rate
    x = np.concatenate(
        [np.zeros(int(lead * rate)), 0.4 * np.sin(2 * np.pi * hz * t), np.zeros(int(lead * rate))]
    )
    write_wav(path, x, rate)
    return path


def test_trim_cuts_frames_40_db_below_the_loudest():
    frame = SAMPLE_RATE // 100
    x = np.concatenate([np.full(3 * frame, 1e-3), np.full(5 * frame, 0.5), np.full(2 * frame, 0.01)])
    kept = _trim(x.astype(np.float32))
    assert len(kept) == 7 * frame and kept[0] == np.float32(0.5)  # -54 dB cut, -34 dB kept


def test_render_places_the_trimmed_word_at_its_offset_with_its_peak(tmp_path):
    raw = burst(tmp_path / "raw.wav", 8000)  # an 8-kHz engine (flite kal)
    out, offset = _render(raw, clip(place=0.25, amplitude=0.7), "test")
    length = round(0.3 * SAMPLE_RATE)
    assert out.shape == (SAMPLE_RATE,) and out.dtype == np.float32
    assert offset == int(0.25 * (SAMPLE_RATE - length + 1))
    assert not out[:offset].any() and not out[offset + length + 160 :].any()
    assert np.abs(out).max() == pytest.approx(0.7)


def test_a_positive_shift_raises_pitch_and_shortens_the_word(tmp_path):
    raw = burst(tmp_path / "raw.wav", SAMPLE_RATE, hz=400.0)
    plain, _ = _render(raw, clip(), "test")
    octave, _ = _render(raw, clip(shift=12.0), "test")

    def peak_hz(x):
        return np.fft.rfftfreq(len(x), 1 / SAMPLE_RATE)[np.abs(np.fft.rfft(x)).argmax()]

    assert peak_hz(plain) == pytest.approx(400, abs=2) and peak_hz(octave) == pytest.approx(800, abs=4)
    assert np.count_nonzero(octave) == pytest.approx(np.count_nonzero(plain) / 2, abs=320)  # 2 frames


def test_silent_engine_output_is_an_error_naming_the_clip(tmp_path):
    write_wav(tmp_path / "raw.wav", np.zeros(8000), SAMPLE_RATE)
    with pytest.raises(RuntimeError, match="no audio for flite-kal-s\\+0p\\+0 saying 'yes'"):
        _render(tmp_path / "raw.wav", clip(), "flite-kal-s+0p+0 saying 'yes'")


def test_engine_pitch_compensates_the_resample_shift():
    voice = Voice("flite", "v", "v", "male", 100.0)
    assert _engine_pitch(voice, clip(pitch=0.0, shift=12.0)) == pytest.approx(50.0)
    assert _engine_pitch(voice, clip(pitch=12.0, shift=0.0)) == pytest.approx(200.0)
    assert _engine_pitch(voice, clip(pitch=-3.0, shift=-3.0)) == pytest.approx(100.0)


@pytest.fixture
def commands(monkeypatch):
    """Record the engine commands instead of running them; festival 'writes' the files its script names."""
    ran = []

    def fake_run(cmd):
        ran.append(cmd)
        if cmd[0] == "festival":
            for line in open(cmd[-1]).read().splitlines():
                if line.startswith("(utt.save.wave"):
                    open(line.split('"')[3], "wb").close()

    monkeypatch.setattr(engines, "_run", fake_run)
    return ran


def test_espeak_and_flite_commands_carry_rate_and_pitch(commands, tmp_path):
    espeak = Speaker(Voice("espeak", "en-us", "en-us", "male"), "f2", "female")
    outs = engines._ENGINES["espeak"]([(espeak, [clip(rate=1.2, pitch=20.0)])], tmp_path)
    assert commands[-1] == [
        "espeak-ng",
        "-v",
        "en-us+f2",
        "-s",
        "210",
        "-p",
        "99",
        "-w",
        str(outs[0][0]),
        "yes",
    ]
    flite = Speaker(FLITE_VOICES[0], "s+1p+0", "male", 1, 0)
    engines._ENGINES["flite"]([(flite, [clip(rate=0.8, pitch=0.0, shift=1.0)])], tmp_path)
    cmd = commands[-1]
    assert cmd[cmd.index("duration_stretch=1.2500") - 1] == "--setf"
    assert f"int_f0_target_mean={FLITE_VOICES[0].f0 * 2 ** (-1 / 12):.2f}" in cmd


def test_festival_runs_one_script_for_many_speakers(commands, tmp_path):
    plan = [
        (Speaker(KAL, "s+0p+2", "male", 0, 2), [clip(rate=1.1, pitch=2.0), clip(word="no", n=0)]),
        (Speaker(SLT_HTS, "s+1", "female", 1, 1), [clip(rate=0.9, pitch=1.0, shift=1.0)]),
    ]
    outs = engines._ENGINES["festival"](plan, tmp_path)
    assert len(commands) == 1 and [len(o) for o in outs] == [2, 1]
    script = (tmp_path / "script.scm").read_text()
    assert script.count("(voice_kal_diphone)") == 1 and script.count("(voice_cmu_us_slt_arctic_hts)") == 1
    assert "(Parameter.set 'Duration_Stretch 1.0000)" in script  # the voice default 1.1 at rate 1.1
    assert f"(target_f0_mean {KAL.f0 * 2 ** (2 / 12):.2f})" in script
    assert '(("-r" 0.9000))' in script  # HTS: speed through hts_engine
    assert script.count("SynthText") == 3


def test_festival_output_that_is_missing_is_an_error(monkeypatch, tmp_path):
    monkeypatch.setattr(engines, "_run", lambda cmd: None)
    with pytest.raises(RuntimeError, match="festival did not write"):
        engines._ENGINES["festival"]([(Speaker(KAL, "s+0p+0", "male"), [clip()])], tmp_path)


@pytest.mark.parametrize("rate", [8000, 22050, 32000])
def test_engine_output_at_any_rate_keeps_the_word_duration(tmp_path, rate):
    out, _ = _render(burst(tmp_path / "raw.wav", rate), clip(), "test")
    assert np.count_nonzero(out) == pytest.approx(0.3 * SAMPLE_RATE, abs=160)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_a_random_timbre_is_read_from_a_private_data_folder_and_changes_the_voice(tmp_path):
    voice = Voice("espeak", "en-us", "en-us", "male")
    timbre = espeak_timbre(1)
    stock, drawn = tmp_path / "stock", tmp_path / "drawn"
    stock.mkdir(), drawn.mkdir()
    (plain,) = engines._ENGINES["espeak"]([(Speaker(voice, "default", "male"), [clip()])], stock)
    (own,) = engines._ENGINES["espeak"](
        [(Speaker(voice, timbre.name, timbre.gender, timbre=timbre), [clip()])], drawn
    )
    assert (
        drawn / "espeak" / "espeak-ng-data" / "voices" / "!v" / timbre.name
    ).read_text() == timbre.variant_file()
    assert not (stock / "espeak").exists()  # stock voices use the system's data as they are
    assert own[0].read_bytes() != plain[0].read_bytes() and len(own[0].read_bytes()) > 10_000

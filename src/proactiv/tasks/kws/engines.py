"""The text-to-speech engine drivers (espeak-ng, flite, festival) and the rendering of their output.

How each engine realises a delivery (:class:`~proactiv.tasks.kws.voices.Clip`): ``rate`` is espeak
``-s 175*rate``, flite ``duration_stretch=1/rate``, festival ``Duration_Stretch`` for diphone voices and
hts_engine ``-r`` for HTS. ``pitch`` is espeak ``-p`` ~ 50 + 5.5 per semitone, flite ``int_f0_target_mean``
and festival ``int_lr_params`` target mean scaled from the voice's default F0, each compensating the
resample shift. ``amplitude`` is applied after synthesis (:func:`_render`), so it means the same for every
engine. The word is trimmed of leading and trailing silence (frame energy 40 dB below the loudest 10-ms
frame), then placed at its offset in the 1-s clip. A word still longer than 1 s is not time-compressed: the
clip keeps the first second from the start of speech. A sentence of running speech is its pieces, each
trimmed, joined by its pauses, with half a second of silence before and after. The engines are deterministic.
"""

from __future__ import annotations

import functools
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from proactiv.tasks.kws.voices import Clip, Sentence, Speaker, Voice
from proactiv.tasks.kws.wavio import read_wav, resample

SAMPLE_RATE = 16000
SENTENCE_MARGIN_S = 0.5  # silence before and after a sentence of running speech
_TRIM_DB = 40.0


def _run(cmd: list[str]) -> None:
    """Run an engine command; a failure raises with the engine's stderr."""
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()}")


def _engine_pitch(voice: Voice, clip: Clip) -> float:
    """The F0 to ask the engine for, so that after the resample shift the net change is ``clip.pitch``."""
    assert voice.f0 is not None
    return voice.f0 * 2.0 ** ((clip.pitch - clip.shift) / 12.0)


Plan = Sequence[tuple[Speaker, Sequence[Clip]]]  # speakers with their clips, synthesised together


def _synth_espeak(plan: Plan, tmp: Path) -> list[list[Path]]:
    """One espeak-ng process per clip; speakers with a random timbre read it from a private data folder."""
    outs = []
    timbres = {s.timbre.name: s.timbre for s, _ in plan if s.timbre is not None}
    data = ["--path", str(_espeak_data(tmp, timbres.values()))] if timbres else []
    for k, (speaker, clips) in enumerate(plan):
        name = speaker.voice.engine_name + ("" if speaker.variant == "default" else f"+{speaker.variant}")
        outs.append([tmp / f"{k}-{i}.wav" for i in range(len(clips))])
        for clip, out in zip(clips, outs[-1], strict=True):
            speed = str(round(175 * clip.rate))
            pitch = str(min(99, max(0, round(50 + 5.5 * clip.pitch))))
            _run(["espeak-ng", *data, "-v", name, "-s", speed, "-p", pitch, "-w", str(out), clip.word])
    return outs


@functools.cache
def _espeak_system_data() -> Path:
    """espeak-ng's own data folder (as ``espeak-ng --version`` reports it)."""
    done = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True)
    found = re.search(r"Data at: (.+)$", done.stdout.strip())
    if done.returncode != 0 or found is None or not Path(found[1]).is_dir():
        raise RuntimeError(f"espeak-ng --version does not name its data folder: {done.stdout.strip()!r}")
    return Path(found[1])


def _espeak_data(tmp: Path, timbres) -> Path:
    """A folder holding an ``espeak-ng-data`` of links to the system's, plus the ``timbres``' variant files,
    for ``espeak-ng --path`` (the system folder is not ours to write to)."""
    system = _espeak_system_data()
    root = tmp / "espeak"
    data = root / "espeak-ng-data"
    variants = data / "voices" / "!v"
    variants.mkdir(parents=True)
    for entry in system.iterdir():
        if entry.name != "voices":
            (data / entry.name).symlink_to(entry)
    for entry in (system / "voices").iterdir():
        if entry.name != "!v":
            (data / "voices" / entry.name).symlink_to(entry)
    for entry in (system / "voices" / "!v").iterdir():
        (variants / entry.name).symlink_to(entry)
    for timbre in timbres:
        (variants / timbre.name).write_text(timbre.variant_file())
    return root


def _synth_flite(plan: Plan, tmp: Path) -> list[list[Path]]:
    """One flite process per clip."""
    outs = []
    for k, (speaker, clips) in enumerate(plan):
        outs.append([tmp / f"{k}-{i}.wav" for i in range(len(clips))])
        for clip, out in zip(clips, outs[-1], strict=True):
            cmd = [
                "flite",
                "-voice",
                speaker.voice.engine_name,
                "--setf",
                f"duration_stretch={1 / clip.rate:.4f}",
            ]
            if speaker.voice.f0 is not None:
                cmd += ["--setf", f"int_f0_target_mean={_engine_pitch(speaker.voice, clip):.2f}"]
            _run([*cmd, "-t", clip.word, "-o", str(out)])
    return outs


def _synth_festival(plan: Plan, tmp: Path) -> list[list[Path]]:
    """One ``festival --batch`` script for all clips of the plan (festival's start-up costs ~0.3 s)."""
    lines, outs = [], []
    for k, (speaker, clips) in enumerate(plan):
        voice = speaker.voice
        lines.append(f"(voice_{voice.engine_name})")
        outs.append([tmp / f"{k}-{i}.wav" for i in range(len(clips))])
        for clip, out in zip(clips, outs[-1], strict=True):
            if voice.f0 is None:  # HTS: speed through hts_engine's -r; F0 comes from the model
                lines.append(
                    f"(set! hts_engine_params (append {voice.engine_name}::hts_engine_params "
                    f'\'(("-r" {clip.rate:.4f}))))'
                )
            else:  # diphone: duration stretch (voice default 1.1) and the intonation model's target F0
                factor = _engine_pitch(voice, clip) / voice.f0
                lines.append(f"(Parameter.set 'Duration_Stretch {1.1 / clip.rate:.4f})")
                lines.append(
                    f"(set! int_lr_params '((target_f0_mean {voice.f0 * factor:.2f}) "
                    f"(target_f0_std {voice.f0_std * factor:.2f}) (model_f0_mean 170) (model_f0_std 34)))"
                )
            lines.append(f'(utt.save.wave (SynthText "{clip.word}") "{out}" \'riff)')
    script = tmp / "script.scm"
    script.write_text("\n".join(lines) + "\n")
    _run(["festival", "--batch", str(script)])
    absent = [str(p) for paths in outs for p in paths if not p.exists()]
    if absent:
        raise RuntimeError(f"festival did not write {absent}")
    return outs


_ENGINES = {"espeak": _synth_espeak, "flite": _synth_flite, "festival": _synth_festival}


def _trim(x: np.ndarray) -> np.ndarray:
    """Cut leading and trailing frames (10 ms) more than 40 dB below the loudest frame."""
    frame = SAMPLE_RATE // 100
    n = len(x) // frame
    rms = np.sqrt(np.mean(x[: n * frame].reshape(n, frame).astype(np.float64) ** 2, axis=1))
    loud = np.flatnonzero(rms > rms.max() * 10 ** (-_TRIM_DB / 20))
    return x[loud[0] * frame : (loud[-1] + 1) * frame]


def _speech(raw: Path, clip: Clip, where: str) -> np.ndarray:
    """Engine output -> the trimmed utterance at 16 kHz, shifted by ``clip.shift`` semitones."""
    x, rate = read_wav(raw)
    x = resample(x, rate * 2.0 ** (clip.shift / 12.0), SAMPLE_RATE)
    if len(x) < SAMPLE_RATE // 100 or not np.any(x):
        raise RuntimeError(f"the engine produced no audio for {where}")
    return _trim(x)


def _render(raw: Path, clip: Clip, where: str) -> tuple[np.ndarray, int]:
    """Engine output -> the 1-s 16-kHz clip and the word's offset in samples."""
    word = _speech(raw, clip, where)[:SAMPLE_RATE]  # longer than 1 s: keep the first second from the start
    offset = int(clip.place * (SAMPLE_RATE - len(word) + 1))
    out = np.zeros(SAMPLE_RATE, np.float32)
    out[offset : offset + len(word)] = word * (clip.amplitude / np.abs(word).max())
    return out, offset


def _render_sentence(
    raws: Sequence[Path], sentence: Sentence, where: str
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Engine outputs of a sentence's pieces -> the recording (``SENTENCE_MARGIN_S`` of silence before and
    after, the pieces joined by their pauses, peak ``amplitude``) and the samples where each piece starts
    and ends."""
    margin = round(SENTENCE_MARGIN_S * SAMPLE_RATE)
    parts, spans, at = [np.zeros(margin, np.float32)], [], margin
    for k, (raw, piece) in enumerate(zip(raws, sentence.pieces, strict=True)):
        if k:
            pause = np.zeros(round(sentence.pauses_ms[k - 1] * SAMPLE_RATE / 1000), np.float32)
            parts.append(pause)
            at += len(pause)
        audio = _speech(raw, piece, f"{where}, piece {piece.word!r}")
        parts.append(audio.astype(np.float32))
        spans.append((at, at + len(audio)))
        at += len(audio)
    parts.append(np.zeros(margin, np.float32))
    out = np.concatenate(parts)
    return out * np.float32(sentence.pieces[0].amplitude / np.abs(out).max()), spans

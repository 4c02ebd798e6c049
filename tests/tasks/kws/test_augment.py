"""Training augmentation: seeded, length-keeping, and each step (or its absence) does what it says."""

import math

import numpy as np
import torch

from proactiv.tasks.kws.augment import SAMPLE_RATE, Augment, load_noise_bank, lowpass, random_eq, tempo, vtlp
from proactiv.tasks.kws.frontend import LogMel
from proactiv.tasks.kws.wavio import write_wav

T = torch.arange(SAMPLE_RATE, dtype=torch.float32) / SAMPLE_RATE
#: every step off: time shift, speed, reverb, band limiting, noise, VTLP, tempo, EQ and masks
OFF = dict(shift_ms=0.0, speed_p=0.0, reverb_p=0.0, lowpass_p=0.0, noise_p=0.0, vtlp_p=0.0, tempo_p=0.0,
           eq_p=0.0, time_masks=0, freq_masks=0)  # fmt: skip


def bursts(n=3):
    """Tone bursts of different pitch in the middle of 1-s clips."""
    freq = torch.tensor([300.0, 700.0, 1500.0])[:n, None]
    return 0.3 * torch.exp(-(((T - 0.5) / 0.1) ** 2)) * torch.sin(2 * math.pi * freq * T)


def seeded(seed):
    return torch.Generator().manual_seed(seed)


def test_waveform_augmentation_is_seeded_keeps_length_and_changes_the_signal():
    aug, x = Augment(reverb_p=0.5, noise_p=0.5), bursts()
    given = x.clone()  # not bursts() again: vectorised sin/exp may differ in the last bit from call to call
    a, b = aug.waveforms(x, seeded(1)), aug.waveforms(x, seeded(1))
    assert torch.equal(a, b) and a.shape == x.shape and torch.isfinite(a).all()
    assert not torch.equal(a, aug.waveforms(x, seeded(2)))
    assert ((a - x).abs().amax(1) > 1e-3).all()  # default augmentation touches every clip
    assert torch.equal(x, given)  # the input batch itself is left alone


def test_feature_augmentation_is_seeded_keeps_shape_and_changes_the_features():
    fe, aug = LogMel(), Augment()
    feats = fe(bursts())
    a, b = aug.features(feats, fe, seeded(5)), aug.features(feats, fe, seeded(5))
    assert torch.equal(a, b) and a.shape == feats.shape
    assert not torch.equal(a, aug.features(feats, fe, seeded(6)))
    assert ((a - feats).abs().flatten(1).amax(1) > 0.1).all()


def test_augmented_batches_keep_shapes_and_are_seeded():
    aug, fe, x = Augment(reverb_p=1.0), LogMel(), bursts()

    def batch():
        return aug.features(fe(aug.waveforms(x, seeded(3))), fe, seeded(4))

    a, b = batch(), batch()
    assert a.shape == (3, 40, 101) and torch.equal(a, b) and torch.isfinite(a).all()


def test_with_every_probability_at_zero_nothing_changes():
    fe, aug, x = LogMel(), Augment(**OFF), bursts()
    torch.testing.assert_close(aug.waveforms(x, seeded(0)), x, atol=1e-6, rtol=0)
    feats = fe(x)
    torch.testing.assert_close(aug.features(feats, fe, seeded(0)), feats, atol=1e-3, rtol=0)


def test_noise_is_drawn_from_the_bank_at_the_requested_snr():
    hum = 0.5 * torch.sin(2 * math.pi * 3000 * torch.arange(3 * SAMPLE_RATE) / SAMPLE_RATE)
    aug = Augment(**{**OFF, "noise_p": 1.0, "snr_range": (10.0, 10.0)}, noise_bank=[hum])
    x = bursts()
    added = aug.waveforms(x, seeded(0)) - x
    snr = 10 * torch.log10(x.pow(2).mean(1) / added.pow(2).mean(1))
    torch.testing.assert_close(snr, torch.full((3,), 10.0), atol=1e-3, rtol=0)
    spectrum = torch.fft.rfft(added).abs()
    assert (spectrum.argmax(1) == 3000).all()  # 1-s clips: bin k is k Hz


def test_reverb_keeps_the_level_and_adds_a_tail():
    aug, x = Augment(**{**OFF, "reverb_p": 1.0, "rt60_range": (0.5, 0.6)}), bursts()
    wet = aug.waveforms(x, seeded(0))
    torch.testing.assert_close(wet.pow(2).mean(1), x.pow(2).mean(1), rtol=1e-4, atol=0)
    tail = slice(int(0.85 * SAMPLE_RATE), None)  # after the bursts have died away
    assert (wet[:, tail].pow(2).mean(1) > 1e4 * x[:, tail].pow(2).mean(1)).all()


def test_noise_bank_reads_the_background_folder(tmp_path):
    assert load_noise_bank(tmp_path) == []
    folder = tmp_path / "_background_noise_"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, seconds in (("b.wav", 2), ("a.wav", 1)):
        write_wav(folder / name, 0.1 * rng.standard_normal(seconds * SAMPLE_RATE), SAMPLE_RATE)
    bank = load_noise_bank(tmp_path)
    assert [len(w) for w in bank] == [SAMPLE_RATE, 2 * SAMPLE_RATE]  # sorted by name


def test_vtlp_moves_a_spectral_peak_by_alpha():
    fe = LogMel()
    feats = fe(0.3 * torch.sin(2 * math.pi * 1000 * T)[None].repeat(3, 1))
    out = vtlp(feats, torch.tensor([1.0, 1.2, 0.8]), fe)
    torch.testing.assert_close(out[0], feats[0], atol=1e-3, rtol=0)
    centres = fe.centre_frequencies()
    peaks = [float(centres[int(o.mean(1).argmax())]) for o in out]
    assert abs(peaks[1] - 1200) < 80 and abs(peaks[2] - 800) < 60


def test_tempo_stretches_a_burst_in_time_only():
    feats = torch.full((2, 40, 101), -100.0)
    feats[:, 10, 40:61] = 0.0  # 21 frames of a 1-bin "tone"
    out = tempo(feats, torch.tensor([1.0, 0.5]))
    assert torch.equal(out[0], feats[0])
    loud = (out[1] > -50).nonzero()
    assert set(loud[:, 0].tolist()) == {10} and 40 <= len(loud) <= 43  # twice as long, same bin


def test_lowpass_and_eq_augmentations():
    x = (torch.sin(2 * math.pi * 6000 * T) + torch.sin(2 * math.pi * 500 * T))[None].repeat(2, 1)
    y = lowpass(x, torch.tensor([4000.0, 8000.0]))
    spec = torch.fft.rfft(y).abs()
    assert spec[0, 6000] < 1e-3 * spec[0, 500] and torch.equal(y[1], x[1])  # at Nyquist: untouched
    assert torch.allclose(lowpass(x[:1], torch.tensor([4000.0])), y[:1], atol=1e-6)  # a row alone: same filter
    eq = random_eq(3, 40, 6.0, torch.Generator().manual_seed(0))
    assert eq.shape == (3, 40, 1) and eq.abs().max() <= 9.0 and eq.std() > 0.5


def test_context_adds_a_neighbour_word_just_before_or_after_the_word():
    """A word of the bank lands 50-300 ms before or after the clip's word, never over it, at most as loud."""
    x = torch.zeros(64, SAMPLE_RATE)
    x[:, 7000:9000] = 0.5  # the word: 0.44-0.56 s
    bank = torch.zeros(2, SAMPLE_RATE)
    bank[0, 1000:4200] = 0.2  # neighbour words of 0.2 s, early and late in their clips
    bank[1, 12000:15200] = 0.1
    out = Augment(**OFF, context_p=1.0, context_bank=bank).waveforms(x, seeded(0))
    added = (out - x).abs() > 0
    assert not added[:, 7000 - 800 : 9000 + 800].any()  # a pause of at least 50 ms around the word
    first = added.to(torch.uint8).argmax(1)
    last = SAMPLE_RATE - 1 - added.flip(1).to(torch.uint8).argmax(1)
    before = last < 7000
    assert 10 < before.sum() < 54 and (first[~before] > 9000).all()  # both sides, about equally often
    assert ((7000 - last[before]) <= 0.3 * SAMPLE_RATE + 1).all()  # just before: at most 300 ms of pause
    level = (out - x).abs().amax(1) / 0.5  # the neighbour's peak: 0.3-1.0 times the word's
    assert ((level >= 0.3 - 1e-4) & (level <= 1.0 + 1e-4)).all()
    assert torch.equal(Augment(**OFF, context_p=0.0, context_bank=bank).waveforms(x, seeded(0)), x)
    assert torch.equal(Augment(**OFF, context_p=1.0).waveforms(x, seeded(0)), x)  # no bank, no context


def test_noise_mixed_first_is_changed_with_the_word_and_last_is_not():
    # at speed 1.25 the clip is shortened and its ends zero-filled: noise mixed in first is zero-filled with
    # the word (a noisy recording sped up), noise mixed in last covers the whole clip
    white = torch.randn(3 * SAMPLE_RATE, generator=seeded(9))
    ends = torch.cat([torch.arange(0, 1000), torch.arange(SAMPLE_RATE - 1000, SAMPLE_RATE)])
    common = {**OFF, "noise_p": 1.0, "snr_range": (0.0, 0.0), "speed_p": 1.0, "speed_range": (1.25, 1.25)}
    first = Augment(**common, noise_first_p=1.0, noise_bank=[white]).waveforms(bursts(), seeded(0))
    last = Augment(**common, noise_first_p=0.0, noise_bank=[white]).waveforms(bursts(), seeded(0))
    assert (first[:, ends] == 0).all()
    assert (last[:, ends].abs().amax(1) > 1e-3).all()

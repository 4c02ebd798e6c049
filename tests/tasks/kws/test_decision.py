"""Decision rules: the _unknown_ offset chosen on validation, and firing in running speech."""

import pytest
import torch

from proactiv.tasks.kws.decision import StreamRule, calibrate, false_accepts

NAMES = ["yes", "no", "_unknown_", "_silence_"]


def logits_for(rows):
    """Logits (N, 4) from (yes, no, unknown) scores; silence always far behind."""
    return torch.tensor([[*r, -10.0] for r in rows])


def test_false_accepts_count_keyword_recall_and_other_clips_taken_for_keywords():
    labels = torch.tensor([0, 1, 2, 2, 3])
    pred = torch.tensor([0, 2, 1, 2, 0])
    recall, fa = false_accepts(pred, labels, [0, 1])
    assert recall == 0.5 and fa == pytest.approx(2 / 3)


def test_calibration_raises_unknown_until_false_accepts_stop_paying_off():
    # keywords win by 3 or more; unknown words are taken for "yes" by margins up to 2
    keywords = [(4.0, 0.0, 1.0)] * 10 + [(0.0, 5.0, 2.0)] * 10
    unknown = [(1.0 + m, 0.0, 1.0) for m in (0.5, 1.0, 1.5, 2.0)] * 5 + [(0.0, 0.0, 3.0)] * 20
    logits = logits_for(keywords + unknown)
    labels = torch.tensor([0] * 10 + [1] * 10 + [2] * 40)
    found = calibrate(logits, labels, NAMES)
    assert 2.0 < found["unknown_offset"] < 3.0  # beats every false accept, keeps every keyword
    assert found["logit_offset"] == [0.0, 0.0, found["unknown_offset"], found["unknown_offset"]]
    assert found["validation"]["without"]["false_accept_rate"] == 0.5
    assert found["validation"]["with"] == {"keyword_recall": 1.0, "false_accept_rate": 0.0}


def test_calibration_keeps_recall_once_false_accepts_are_within_the_budget():
    # 4 % of unknown words are beaten at offset 1.25 with every keyword kept; beating the last 4 % (offset
    # 1.75) costs 2 % of the keywords, which recall minus false accepts would pay but the budget does not
    keywords = [(2.0, 0.0, 0.5)] * 2 + [(4.0, 0.0, 0.0)] * 98
    unknown = [(1.0, 0.0, 0.0)] * 10 + [(2.2, 0.0, 0.5)] * 4 + [(0.0, 0.0, 2.0)] * 86
    logits = logits_for(keywords + unknown)
    labels = torch.tensor([0] * 100 + [2] * 100)
    found = calibrate(logits, labels, NAMES)
    assert found["unknown_offset"] == 1.25 and found["budget"] == 0.05
    assert found["validation"]["with"] == {"keyword_recall": 1.0, "false_accept_rate": 0.04}
    assert calibrate(logits, labels, NAMES, budget=0.0)["unknown_offset"] == 1.75
    # one unknown word no offset beats: no offset keeps 0 false accepts, so the fewest (at the best recall)
    stubborn = torch.cat([logits, logits_for([(20.0, 0.0, 0.0)])]), torch.cat([labels, torch.tensor([2])])
    unreachable = calibrate(*stubborn, NAMES, budget=0.0)
    assert unreachable["unknown_offset"] == 1.75 and "no offset" in unreachable["rule"]
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="false-accept budget"):
            calibrate(logits, labels, NAMES, budget=bad)


def test_the_offset_moves_the_line_between_keywords_and_the_rest_not_between_unknown_and_silence():
    # unknown words are taken for "yes" by 0.5, keywords lead by 3: the offset is 0.75, which on _unknown_
    # alone would turn every silence clip (leading _unknown_ by 0.5) into _unknown_
    keywords = [(3.0, 0.0, 0.0, -10.0)] * 10
    unknown = [(2.5, 0.0, 2.0, -10.0)] * 10
    silence = [(0.0, 0.0, 1.5, 2.0)] * 10
    logits = torch.tensor(keywords + unknown + silence)
    labels = torch.tensor([0] * 10 + [2] * 10 + [3] * 10)
    found = calibrate(logits, labels, NAMES, budget=0.0)
    offset = torch.tensor(found["logit_offset"])
    assert offset[2] == offset[3] == 0.75 and offset[0] == offset[1] == 0
    assert ((logits + offset).argmax(1) == labels).all()


def test_the_budget_is_on_unknown_words_so_silence_clips_do_not_loosen_it():
    # 6 % of unknown words are taken for "yes" at offset 0; with the 100 silence clips counted that would be 3 %
    keywords = [(4.0, 0.0, 0.0)] * 100
    unknown = [(1.0, 0.0, 0.0)] * 6 + [(0.0, 0.0, 2.0)] * 94
    silence = torch.tensor([[0.0, 0.0, 0.0, 5.0]] * 100)
    logits = torch.cat([logits_for(keywords + unknown), silence])
    labels = torch.tensor([0] * 100 + [2] * 100 + [3] * 100)
    found = calibrate(logits, labels, NAMES)
    assert found["unknown_offset"] == 1.25 and found["validation"]["without"]["false_accept_rate"] == 0.06


def test_calibration_keeps_a_model_that_needs_none_and_needs_an_unknown_class():
    logits = logits_for([(3.0, 0.0, 0.0), (0.0, 3.0, 0.0), (0.0, 0.0, 3.0)])
    assert calibrate(logits, torch.tensor([0, 1, 2]), NAMES)["unknown_offset"] == 0.0
    keywords_only = calibrate(logits[:2], torch.tensor([0, 1]), NAMES)  # nothing to trade: no offset
    assert keywords_only["unknown_offset"] == 0.0 and "not calibrated" in keywords_only["rule"]
    with pytest.raises(ValueError, match="_unknown_"):
        calibrate(logits, torch.tensor([0, 1, 2]), ["yes", "no", "other", "_silence_"])


def test_windows_slide_by_the_hop_and_pad_the_last():
    rule = StreamRule(window_s=1.0, hop_s=0.25)
    wave = torch.arange(2.1 * 8, dtype=torch.float32)  # 2.1 s at 8 Hz
    windows = rule.windows(wave, 8)
    assert windows.shape == (6, 8)  # starts 0, .25, ..., 1.25 s: the last reaches past the end
    assert windows[1, 0] == 2 and windows[-1, -1] == 0 and windows[-1, 0] == 10
    assert rule.windows(torch.ones(3), 8).shape == (1, 8)  # shorter than a window: one, padded


def test_a_keyword_fires_after_n_consecutive_windows_then_waits():
    rule = StreamRule(hop_s=0.1, hops=3, refractory_s=0.5)
    u, y, n = 2, 0, 1
    decisions = [u, y, y, u, y, y, y, y, y, y, y, y, y, y, n, n, n]
    fired = rule.fire(decisions, keywords=[0, 1])
    # 2 windows of "yes" are not enough; the third of a run fires (window 6), once however long the run;
    # "no" fires on its third window (16), more than 5 hops after the last firing
    assert fired == [(6, 0), (16, 1)]
    assert rule.fire([y, y, y, n, n, n], keywords=[0, 1]) == [(2, 0)]  # within the refractory time
    assert rule.fire([u] * 10, keywords=[0, 1]) == []
    assert StreamRule(hops=1).fire([u, y, u], [0, 1]) == [(1, 0)]
    with pytest.raises(ValueError, match="hop_s"):
        StreamRule(hop_s=2.0)


def test_silence_gets_its_own_offset_so_noisy_keywords_stay_keywords():
    # clean keywords win clearly; a noisy "yes" or "no" has _silence_ 1.4 behind it, so the shared offset (2.25,
    # chosen against unknown words) sends every noisy keyword to _silence_; silence clips win by 3
    keywords = [(4.0, 0.0, 1.0, -10.0)] * 10 + [(0.0, 4.0, 1.0, -10.0)] * 10
    unknown = [(3.0, 0.0, 1.0, -10.0)] * 10 + [(0.0, 0.0, 3.0, -10.0)] * 30
    silence = [(0.0, 0.0, 0.0, 3.0)] * 10
    logits = torch.tensor(keywords + unknown + silence)
    labels = torch.tensor([0] * 10 + [1] * 10 + [2] * 40 + [3] * 10)
    noisy = torch.tensor([(2.0, 0.0, -2.0, 0.6)] * 10 + [(0.0, 2.0, -2.0, 0.6)] * 10)
    noisy_labels = torch.tensor([0] * 10 + [1] * 10)
    shared = calibrate(logits, labels, NAMES)
    assert shared["unknown_offset"] == 2.25 and "silence" not in shared
    assert ((noisy + torch.tensor(shared["logit_offset"])).argmax(1) == 3).all()  # the failure planted
    found = calibrate(logits, labels, NAMES, noisy=(noisy, noisy_labels))
    assert found["unknown_offset"] == shared["unknown_offset"]  # the unknown offset is untouched
    silence_offset = found["logit_offset"][3]
    assert -0.75 < silence_offset < 1.4  # every noisy keyword right, every silence clip still silence
    assert found["silence"]["validation"] == {
        "silence_accuracy": 1.0,
        "noisy_accuracy": 1.0,
        "without": {"silence_accuracy": 1.0, "noisy_accuracy": 0.0},
    }


def test_silence_offset_is_kept_without_silence_clips_or_noisy_copies():
    logits = logits_for([(4.0, 0.0, 1.0)] * 5 + [(0.0, 0.0, 3.0)] * 5)
    labels = torch.tensor([0] * 5 + [2] * 5)
    found = calibrate(logits, labels, NAMES, noisy=(logits[:2], labels[:2]))
    assert found["logit_offset"][3] == found["unknown_offset"]
    assert found["silence"]["rule"].startswith("kept")

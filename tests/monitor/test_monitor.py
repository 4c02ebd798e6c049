"""pv.monitor on a planted stream: each built-in assertion finds its planted violations at their steps and
nothing else, a custom one takes a few lines, corrections change the firings as designed, a killed monitor
resumes to the same store, and bad input is refused by name."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import proactiv as pv
from proactiv.monitor import (
    Alternation,
    Assertion,
    Consistency,
    EnergyFloor,
    Flicker,
    HoldRefractory,
    InputStream,
    MajorityOfCopies,
    MonitorError,
    Refractory,
    SuppressFlicker,
    WaveStream,
    assertion,
    default_assertions,
    open_monitor,
)
from proactiv.testing.streams import HOP, KEYWORDS, PLANTED, SR, ToneModel, silence, tone

BUILT_IN = {"flicker": Flicker, "alternation": Alternation, "refractory": Refractory,
            "consistency": Consistency, "energy_floor": EnergyFloor}  # fmt: skip


def run(wave, out, assertions=None, corrections=(), **options):
    stream = WaveStream(wave, SR, HOP, HOP)
    return pv.monitor(ToneModel(), stream, assertions if assertions is not None else default_assertions(KEYWORDS),
                      corrections, out=out, progress=False, events=KEYWORDS, **options)  # fmt: skip


def flagged(store, name: str) -> list[int]:
    steps = store.steps
    return steps.step[steps[f"a.{name}"] > 0].astype(int).tolist()


@pytest.mark.parametrize("name", list(BUILT_IN))
def test_each_built_in_assertion_finds_its_planted_violations_and_nothing_else(planted, tmp_path, name):
    store = run(planted, tmp_path / "m", [BUILT_IN[name](classes=KEYWORDS)])
    assert flagged(store, name) == PLANTED[name]


def test_a_clean_stream_violates_nothing(tmp_path):
    clean = np.concatenate([silence(20), tone("yes", 15), silence(30), tone("no", 12), silence(20)])
    store = run(clean, tmp_path / "m")
    assert all(flagged(store, a) == [] for a in BUILT_IN)
    assert store.summary()["firings"]["decision"]["count"] == 2


def test_severities_are_graded(planted, tmp_path):
    steps = run(planted, tmp_path / "m").steps.set_index("step")
    assert steps.loc[71, "a.flicker"] == pytest.approx(1 - 1 / 3)  # one step of the three a decision needs
    assert steps.loc[147, "a.refractory"] == pytest.approx(1 - 0.7 / 1.0)
    assert steps.loc[210, "a.consistency"] == pytest.approx(0.5)  # one copy of two (3 dB louder) disagrees
    assert steps.loc[180, "a.energy_floor"] > 0.99


def test_a_custom_assertion_in_a_few_lines(planted, tmp_path):
    @assertion(lookback_s=0.3)
    def keyword_after_silence(recent):
        return float(recent.changed() and recent.decision[-1] != 0 and (recent.decision[:-1] == 0).all())

    class Loud(Assertion):
        name = "loud"

        def check(self, recent):
            return float(recent.energy_db[-1] > -20)

    store = run(planted, tmp_path / "m", [keyword_after_silence, Loud()])
    assert flagged(store, "keyword_after_silence") == [20, 70, 100, 140, 180]  # 147: "up" 0.4 s before
    assert len(flagged(store, "loud")) == 20 + 1 + 15 + 8  # every loud tone step


def test_refractory_times_per_class(planted, tmp_path):
    store = run(planted, tmp_path / "m", [Refractory({"up": 0.5, "yes": 2.0})])
    assert flagged(store, "refractory") == []  # "up" again after 0.7 s is fine with 0.5 s


def firings(store, column):
    return store.firings(column).step.astype(int).tolist()


def test_corrections_are_recorded_beside_the_raw_decision(planted, tmp_path):
    fixes = [MajorityOfCopies(), SuppressFlicker(3), HoldRefractory(1.0, KEYWORDS)]
    store = run(planted, tmp_path / "m", corrections=fixes)
    assert firings(store, "decision") == [20, 70, 100, 105, 140, 147, 180]
    # the one-step "no" never shows; the others show two steps late
    assert firings(store, "c.suppress_flicker") == [22, 102, 107, 142, 149, 182]
    # "up" began within a second of "yes" (105) and of itself (147): both held off
    assert firings(store, "c.hold_refractory") == [20, 70, 100, 140, 180]
    # 3 dB louder the quiet "no" is heard, 10 ms later not: a tie keeps the raw decision
    assert firings(store, "c.majority") == firings(store, "decision")
    assert firings(store, "corrected") == [22, 102, 142, 182]
    summary = store.summary()["firings"]
    assert summary["decision"]["count"] == 7 and summary["corrected"]["count"] == 4
    assert summary["decision"]["per_hour"] == pytest.approx(7 / (24 / 3600))


def test_majority_overrules_a_decision_both_copies_reject(tmp_path):
    class Fragile(ToneModel):  # takes a window for "up" when its first sample is exactly 0.25
        def forward(self, x):
            out = super().forward(x)
            out[x[:, 0] == 0.25, 3] = 100.0
            return out

    wave = np.concatenate([silence(5), tone("no", 10), silence(5)])
    window = round(HOP * SR)
    wave[np.arange(7, 10) * window] = 0.25  # 3 dB louder it is not 0.25, 10 ms later it is silence
    store = pv.monitor(Fragile(), WaveStream(wave, SR, HOP, HOP), [Consistency()], [MajorityOfCopies()],
                       out=tmp_path / "m", progress=False)  # fmt: skip
    steps = store.steps.set_index("step")
    assert steps.decision[7:10].tolist() == [3, 3, 3] and steps["c.majority"][7:10].tolist() == [2, 2, 2]
    assert steps.loc[steps["a.consistency"] > 0].index.tolist() == [7, 8, 9]
    assert (steps["a.consistency"][7:10] == 1.0).all()
    assert (steps.decision.drop([7, 8, 9]) == steps["c.majority"].drop([7, 8, 9])).all()


def test_resumes_where_it_stopped_with_the_same_store(planted, tmp_path, monkeypatch):
    fixes = [MajorityOfCopies(), SuppressFlicker(3), HoldRefractory(1.0, KEYWORDS)]
    # chunks of 35 steps begin at 70, 105, 140, 175 and 210: on the planted steps, so history and the
    # corrections' memory must cross chunks (and a killed monitor's restart) for the store to be the same
    whole = run(planted, tmp_path / "whole", corrections=fixes, chunk=35).steps
    pd.testing.assert_frame_equal(run(planted, tmp_path / "one", corrections=fixes, chunk=1000).steps, whole)

    calls, forward = [0], ToneModel.forward

    def dies(self, x):  # three forward passes per chunk: killed in the fourth chunk
        calls[0] += 1
        if calls[0] > 9:
            raise KeyboardInterrupt
        return forward(self, x)

    out = tmp_path / "killed"
    with monkeypatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr(ToneModel, "forward", dies)
        run(planted, out, corrections=fixes, chunk=35)
    assert open_monitor(out).status == "interrupted" and len(open_monitor(out).steps) == 105
    with pytest.raises(MonitorError, match="already exists"):
        run(planted, out, corrections=fixes, chunk=35)
    with pytest.raises(MonitorError, match="chunk"):
        run(planted, out, corrections=fixes, chunk=64, resume=True)
    resumed = run(planted, out, corrections=fixes, chunk=35, resume=True)
    assert resumed.status == "complete"
    pd.testing.assert_frame_equal(resumed.steps, whole)


def test_a_damaged_chunk_is_computed_again(planted, tmp_path):
    whole = run(planted, tmp_path / "m", chunk=64).steps
    (tmp_path / "m" / "steps" / "part-000002.parquet").write_bytes(b"not parquet")
    again = run(planted, tmp_path / "m", chunk=64, resume=True)
    pd.testing.assert_frame_equal(again.steps, whole)


def test_queryable_with_duckdb(planted, tmp_path):
    store = run(planted, tmp_path / "m")
    found = store.query('SELECT step FROM steps WHERE "a.refractory" > 0')
    assert found.step.tolist() == [147]
    assert store.samples(180)[0].shape == (round(HOP * SR),) and store.samples(180)[1] == SR


def test_any_iterable_of_inputs(tmp_path):
    def inputs():
        for name in ["yes", "yes", "no", "yes", "yes", "yes"]:
            yield tone(name, 1)

    store = pv.monitor(ToneModel(), InputStream(inputs(), hop_s=0.5), [Flicker(hops=2)], out=tmp_path / "m",
                       progress=False)  # fmt: skip
    assert store.steps.start_s.tolist() == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    assert flagged(store, "flicker") == [3]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: WaveStream(np.zeros(0), SR), "empty"),
        (lambda: WaveStream(np.zeros((2, 100)), SR), "mono"),
        (lambda: WaveStream(np.array([0.0, np.nan]), SR), "sample 1 is not finite"),
        (lambda: WaveStream(np.zeros(100), 16000.5), "sample_rate"),
        (lambda: WaveStream(np.zeros(100), SR, window_s=0.1, hop_s=0.2), "hop_s = 0.2"),
        (lambda: WaveStream(np.zeros(100), SR, window_s=-1), "window_s = -1"),
        (lambda: Flicker(hops=1), "hops = 1"),
        (lambda: EnergyFloor(confidence=2), "confidence = 2"),
        (lambda: Refractory({"up": 0}), r"refractory_s\[up\] = 0"),
        (lambda: SuppressFlicker(hops=0), "hops = 0"),
        (lambda: Consistency(copies=()), "copies is empty"),
    ],
)
def test_bad_input_is_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_bad_settings_are_named(planted, tmp_path):
    with pytest.raises(ValueError, match="class 'left'"):
        run(planted, tmp_path / "a", [Flicker(classes=["left"])])
    with pytest.raises(ValueError, match="unique"):
        run(planted, tmp_path / "b", [Flicker(), Flicker()])
    with pytest.raises(ValueError, match="empty"):
        pv.monitor(ToneModel(), InputStream(iter([])), [Flicker()], out=tmp_path / "c", progress=False)
    with pytest.raises(ValueError, match="4 outputs per input, for 2 class names"):
        pv.monitor(ToneModel(), WaveStream(planted, SR, HOP, HOP), [Flicker()], out=tmp_path / "d",
                   class_names=["a", "b"], progress=False)  # fmt: skip


def test_folding_batch_norms_keeps_the_decisions():
    from proactiv.monitor.run import fold_batchnorm
    from proactiv.tasks.kws.frontend import LogMel
    from proactiv.tasks.kws.models import KeywordModel, build_model

    torch.manual_seed(0)
    net = build_model("dscnn", 12)
    for m in net.modules():  # running statistics a trained network would have
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    model = KeywordModel(
        net, arch="dscnn", frontend=LogMel(), class_names=[str(i) for i in range(12)], extra={}
    )
    wave = model.waveform_model().eval()
    folded = fold_batchnorm(wave)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in wave.modules())  # the model itself is left alone
    x = torch.randn(16, 16000) * 0.1
    with torch.no_grad():
        assert torch.allclose(folded(x), wave(x), atol=1e-4)


def test_a_non_finite_output_stops_the_monitor_naming_the_step(planted, tmp_path):
    class Broken(ToneModel):
        def forward(self, x):
            out = super().forward(x)
            return torch.where(x.abs().amax(1, keepdim=True) > 0, out, torch.nan)  # NaN on silence

    with pytest.raises(MonitorError, match=r"step 0: the model returned a non-finite output"):
        pv.monitor(
            Broken(), WaveStream(planted, SR, HOP, HOP), [Flicker()], out=tmp_path / "m", progress=False
        )

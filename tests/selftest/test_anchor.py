"""The ``anchor_threshold`` case: the anchors step names gain alone and brackets each planted threshold; an anchor
broken on purpose — naming noise, one grid step off, with a second condition, or not checked — fails the case."""

import dataclasses
from importlib import import_module

import pytest

from proactiv.analysis.anchor import Condition
from proactiv.testing.threshold import NOISE, THRESHOLDS_DB

CASE = "anchor_threshold"
module = import_module("proactiv.analysis.worst_anchors")


def test_the_case_passes(selftest):
    result = selftest()
    assert result.passed, [f.found for f in result.failed]
    (finding,) = result.findings
    assert finding.view == "anchors" and finding.run == CASE
    for threshold in THRESHOLDS_DB:
        assert f"planted {threshold:g} dB" in finding.found
    assert finding.found.count("fails whenever gain.gain_db ≤ ") == len(THRESHOLDS_DB)


def _breaker(change):
    def breaker(original):
        def broken(*args, **kwargs):
            return change(original(*args, **kwargs))

        return broken

    breaker.__name__ = change.__name__
    return breaker


def _on_noise(found):
    noise = Condition(NOISE, 20.0, 30.0, found.spans[NOISE], None, (28.0, 32.0))
    return dataclasses.replace(found, conditions=(noise,))


def _one_step_low(found):
    (rule,) = found.conditions
    low, high = rule.above
    shifted = dataclasses.replace(rule, high=rule.high - 3.0, above=(low - 3.0, high - 3.0))
    return dataclasses.replace(found, conditions=(shifted,))


def _with_noise_beside(found):
    noise = Condition(NOISE, 20.0, 30.0, found.spans[NOISE], None, (28.0, 32.0))
    return dataclasses.replace(found, conditions=(*found.conditions, noise))


def _not_checked(found):
    return dataclasses.replace(found, valid=False, samples=10_000)


@pytest.mark.parametrize("change", [_on_noise, _one_step_low, _with_noise_beside, _not_checked],
                         ids=lambda c: c.__name__.strip("_"))  # fmt: skip
def test_a_wrong_anchor_fails_the_case(selftest, monkeypatch, change):
    monkeypatch.setattr(module, "anchor", _breaker(change)(module.anchor))
    result = selftest()
    assert result.status("anchors") == "fail", [f.found for f in result.findings]
    assert not any(f.found.startswith("raised") for f in result.failed)

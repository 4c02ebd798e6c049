"""The ``confusion`` case: the unknown word ``bed`` is taken for ``yes`` below 0 dB gain (and ``dog`` for ``no`` at
-9 dB); the confusions table names it first, by word, at its planted share — and a confusions table broken on
purpose (rows by class, reversed, shares over the whole run, predictions misnamed) fails the case."""

from importlib import import_module

import pytest

from proactiv.selftest.confusions import CLASSES, GAINS_DB, WordModel, word_inputs

module = import_module("proactiv.analysis.confusions")
CASE = "confusion"


def test_the_word_model_confuses_as_planted():
    x, y, meta = word_inputs()
    model = WordModel()
    for db in GAINS_DB:
        pred = [CLASSES[int(p)] for p in model(x * 10 ** (db / 20)).argmax(1)]
        for word, label, p in zip(meta.word, y, pred, strict=True):
            wanted = {"bed": "yes" if db < 0 else None, "dog": "no" if db <= -9 else None}.get(word)
            assert p == (wanted or CLASSES[int(label)]), (db, word, p)
    # the speaker spans words, so it does not name inputs more finely than their class
    assert meta.groupby("speaker").word.nunique().min() > 1


def test_the_case_passes(selftest):
    result = selftest()
    assert result.passed, [f.found for f in result.failed]
    (finding,) = result.findings
    assert finding.found.startswith("rows by meta.word; top: bed (_unknown_) → yes 75%")


def _by_class(original):
    return lambda view, by=None: original(view, by="label_name")  # the finer column never found


def _reversed(original):
    return lambda *args, **kwargs: original(*args, **kwargs).iloc[::-1].reset_index(drop=True)


def _shares_of_the_run(original):
    def broken(*args, **kwargs):
        table = original(*args, **kwargs)
        return table.assign(share=table.records / table.records.sum())

    return broken


def _misnamed(original):
    def broken(*args, **kwargs):
        table = original(*args, **kwargs)
        return table.assign(predicted=[CLASSES[(CLASSES.index(p) + 1) % 3] for p in table.predicted])

    return broken


BROKEN = [_by_class, _reversed, _shares_of_the_run, _misnamed]


@pytest.mark.parametrize("breaker", BROKEN, ids=[b.__name__.strip("_") for b in BROKEN])
def test_confusions_broken_on_purpose_fail_the_case(selftest, monkeypatch, breaker):
    monkeypatch.setattr(module, "confusions", breaker(module.confusions))
    result = selftest()
    assert not result.passed and result.status("confusions") == "fail"

"""The confusion view on a table whose answer is known: rows are the values taken for another class, most
confused first (values never confused left out, at most ``top``), cells the share of a value's records per
predicted class; the sentence names the most confused value; the report section on a synthetic run, where each
class is taken for the next one (the planted wrong prediction)."""

import numpy as np
import pandas as pd

from proactiv.analysis import analyze
from proactiv.views.confusions import confusion_figure, confusion_sentence
from proactiv.views.sections import SectionContext, sections_of

#: value, class, predicted, share: "night" mostly taken for "yes", "light" a little, "cat" never
ROWS = [
    ("night", "_unknown_", "yes", 0.75), ("night", "_unknown_", "_unknown_", 0.25),
    ("light", "_unknown_", "right", 0.1), ("light", "_unknown_", "_unknown_", 0.9),
    ("cat", "_unknown_", "_unknown_", 1.0),
]  # fmt: skip


def _table() -> pd.DataFrame:
    frame = pd.DataFrame(ROWS, columns=["value", "class", "predicted", "share"])
    return frame.assign(by="meta.word", records=4, instances=2, clean_wrong=0.5)


def test_rows_are_the_confused_values_most_confused_first():
    (heat,) = confusion_figure(_table()).data
    assert list(heat.y) == ["night (_unknown_)", "light (_unknown_)"]  # "cat" is never confused: no row
    assert list(heat.x) == ["right", "yes", "_unknown_"]  # classes, the special ones last
    assert np.asarray(heat.z).tolist() == [[0.0, 0.75, 0.25], [0.1, 0.0, 0.9]]
    assert np.asarray(heat.text).tolist() == [["", "75", "25"], ["10", "", "90"]]
    assert list(confusion_figure(_table(), top=1).data[0].y) == ["night (_unknown_)"]


def test_the_sentence_names_the_most_confused_value_and_what_it_is_taken_for():
    assert confusion_sentence(_table()) == (
        "2 of 3 word values are taken for another class in some records; the most: word 'night' (_unknown_) is "
        "taken for 'yes' in 75% of its records (50% of its instances already on the clean input)."
    )
    right = _table()[lambda t: t.value == "cat"]
    assert confusion_sentence(right) == "Every record is predicted as its own class."
    assert (
        confusion_figure(right).layout.annotations[0].text.startswith("every record is predicted as its own")
    )
    assert confusion_sentence(None) == "No confusions were computed."


def test_the_section_shows_each_class_taken_for_the_next(run):
    table = analyze(run, steps=["confusions"])["confusions"]
    ctx = SectionContext(run)
    page = sections_of("confusions")[0].html(ctx)
    assert f"<p class='confusions'>{confusion_sentence(table)}</p><figure/>" in page
    assert "4 of 4 label_name values are taken for another class" in page
    (heat,) = ctx.figures[0].data
    names = ["yes", "no", "up", "down"]
    for row, label in enumerate(heat.y):  # the synthetic run's wrong prediction is the next class
        value = label.split(" ")[0]
        wrong = names[(names.index(value) + 1) % 4]
        assert heat.z[row][list(heat.x).index(wrong)] > 0.3
        assert np.isclose(sum(heat.z[row]), 1.0)  # every record of the value is predicted as something

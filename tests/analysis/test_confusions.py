"""Confusions: which inputs are taken for which class, per finer name of the input (the words of a keyword
spotter's _unknown_ class), chosen from the records when not given; the report and the view show them."""

import pandas as pd
import pytest
import torch
from torch import nn

import proactiv as pv
from proactiv.analysis import AnalysisError
from proactiv.analysis.confusions import confusions, finer_column
from proactiv.testing import write_synthetic_run
from proactiv.views.confusions import confusion_figure, confusion_sentence

torch.set_num_threads(1)
NAMES = ["yes", "no", "_unknown_"]
#: word -> (input, class); "night" looks like "yes" to the model, "cat" is a clean unknown word
WORDS = {
    "yes": ([3.0, 0, 0], 0),
    "no": ([0, 3.0, 0], 1),
    "night": ([3.0, 0, 1.0], 2),
    "cat": ([0, 0, 3.0], 2),
}


@pytest.fixture(scope="module")
def word_run(tmp_path_factory):
    model = nn.Linear(3, 3, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.eye(3))
    words = [w for w in WORDS for _ in range(3)]
    x = torch.tensor([WORDS[w][0] for w in words])
    labels = torch.tensor([WORDS[w][1] for w in words])
    meta = pd.DataFrame({
        "word": words,
        "speaker": [f"s{i % 3}" for i in range(len(words))],  # says every class: names no input
        "path": [f"{w}/{i}.wav" for i, w in enumerate(words)],  # one per instance: an identifier
    })  # fmt: skip
    grid = pv.Grid([pv.transforms.get("gain", gain_db=[0, -6])])
    return pv.sweep(model, x, labels, grid, tmp_path_factory.mktemp("c") / "run", class_names=NAMES,
                    metadata=meta, projector=pv.Projector(model, max_steps=3), progress=False)  # fmt: skip


def test_rows_are_the_words_and_say_what_each_is_taken_for(word_run):
    assert finer_column(pv.analysis.runview.open_view(word_run)) == "meta.word"
    table = confusions(word_run)
    assert set(table.by) == {"meta.word"} and table.value.iloc[0] == "night"  # most confused first
    night = table[table.value == "night"].set_index("predicted")
    assert night.loc["yes", "share"] == 1.0 and night.loc["yes", "class"] == "_unknown_"
    assert night.loc["yes", "instances"] == 3 and night.loc["yes", "clean_wrong"] == 1.0
    cat = table[table.value == "cat"]
    assert list(cat.predicted) == ["_unknown_"] and cat.share.iloc[0] == 1.0
    assert table.groupby("value").share.sum().round(6).eq(1.0).all()


def test_without_a_finer_column_rows_are_the_classes(tmp_path):
    run = write_synthetic_run(
        tmp_path / "syn", n_instances=40
    )  # voice, gender, rate, path: none names inputs
    table = confusions(run)
    assert set(table.by) == {"label_name"} and set(table.value) == {"yes", "no", "up", "down"}
    assert (table.value == table["class"]).all()


def test_a_chosen_column_must_exist_and_runs_need_classes(word_run, tmp_path):
    assert set(confusions(word_run, by="meta.speaker").value) == {"s0", "s1", "s2"}
    with pytest.raises(AnalysisError, match="meta.words"):
        confusions(word_run, by="meta.words")
    with pytest.raises(AnalysisError, match="not a classifier"):
        confusions(write_synthetic_run(tmp_path / "reg", n_instances=12, classifier=False))


def test_view_and_report_show_the_confused_words(word_run, tmp_path):
    table = confusions(word_run)
    fig = confusion_figure(table)
    assert (
        list(fig.data[0].y) == ["night (_unknown_)"]
        and fig.data[0].z[0][list(fig.data[0].x).index("yes")] == 1
    )
    assert "'night' (_unknown_) is taken for 'yes' in 100%" in confusion_sentence(table)
    pv.analysis.analyze(word_run, steps=["confusions"])
    from proactiv.report import write_report

    html = write_report(word_run).read_text()
    assert "What each word is taken for" in html and "night (_unknown_)" in html

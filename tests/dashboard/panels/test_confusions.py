"""The confusions tab: what inputs are taken for — the sentence and the figure of the stored table."""

from proactiv.dashboard.app import build_app
from proactiv.dashboard.data import RunData
from proactiv.views.confusions import confusion_sentence


def test_the_tab_says_what_each_class_is_taken_for(run_a):
    data = RunData(run_a)
    table = data.analysis["confusions"]
    tab = next(t for t in build_app([data]).layout["tabs"].children if t.value == "step-confusions")
    assert (
        tab.label == "Confusions"
        and tab.children[0].children[0].children == "Confusions: what inputs are taken for"
    )
    sentence = tab["confusions-sentence"].children
    worst = table[table["class"] != table.predicted].sort_values("share").iloc[-1]
    assert sentence == confusion_sentence(table) and f"is taken for '{worst.predicted}'" in sentence
    heat = tab["confusions-graph"].figure.data[0]
    assert heat.type == "heatmap" and len(heat.y) == table.value.nunique()

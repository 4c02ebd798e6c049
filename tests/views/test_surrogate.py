"""Surrogate views of an EBM fitted to a synthetic run whose failures follow the planted rules (SNR below
2.5 dB, voice v3): importance with pair terms apart, shape functions as step lines for numbers and signed bars
for categories, the pair interaction on a diverging scale, and the report section with its sentence."""

import dataclasses

import numpy as np
import pytest

from proactiv.analysis.pipeline import Analysis
from proactiv.analysis.surrogate import surrogate
from proactiv.views.sections import SectionContext, esc, sections_of
from proactiv.views.surrogate import FALL, PAIR, RISE, importance_figure, interaction_figure, shapes_figure


@pytest.fixture(scope="module")
def fitted(run):
    return surrogate(run, interactions=1)


def test_importance_puts_the_planted_drivers_on_top_and_pairs_apart(fitted):
    (bars,) = importance_figure(fitted).data
    assert set(bars.y[-2:]) == {"noise.snr_db", "meta.voice"}  # the two planted rules, largest last (on top)
    assert list(bars.x) == sorted(bars.x)
    pair = fitted.interactions.term.iloc[0]
    colours = dict(zip(bars.y, bars.marker.color, strict=True))
    assert colours[pair] == PAIR and colours["meta.voice"] == RISE


def test_shapes_are_steps_for_numbers_and_signed_bars_for_categories(fitted):
    fig = shapes_figure(fitted, ["noise.snr_db", "meta.voice"])
    band, step, bars = fig.data
    assert band.fill == "toself" and step.line.shape == "hvh"
    snr = fitted.shapes[fitted.shapes.feature == "noise.snr_db"].sort_values("level")
    assert list(step.x) == snr.label.tolist() and np.allclose(step.y, snr.score)
    below = [y for x, y in zip(step.x, step.y, strict=True) if x in ("-5", "0")]
    assert min(below) > max(y for x, y in zip(step.x, step.y, strict=True) if x not in ("-5", "0"))
    voice = dict(zip(bars.x, bars.y, strict=True))
    assert voice["v3"] == max(voice.values()) > 0  # the failing voice drives failure up
    assert list(bars.marker.color) == [RISE if v > 0 else FALL for v in bars.y]
    with pytest.raises(ValueError, match=r"features \['meta.word'\]: the surrogate's features are"):
        shapes_figure(fitted, ["meta.word"])


def test_the_interaction_is_a_centred_heatmap_or_says_why_there_is_none(fitted):
    term = fitted.interactions.term.iloc[0]
    (heat,) = interaction_figure(fitted).data
    assert heat.zmin == -heat.zmax and term in interaction_figure(fitted).layout.title.text
    with pytest.raises(ValueError, match="term 'a & b': the surrogate's pair terms are"):
        interaction_figure(fitted, "a & b")
    gbm = dataclasses.replace(fitted, method="gbm", interactions=fitted.interactions.iloc[:0])
    assert interaction_figure(gbm).layout.annotations[0].text.endswith("GBM surrogates have no pair terms")


def test_the_section_says_what_drives_failure_and_draws_four_figures(run, fitted):
    ctx = SectionContext(run, analysis=Analysis(run, results={"surrogate": fitted}))
    page = sections_of("surrogate")[0].html(ctx)
    assert f"<p class='surrogate'>{esc(fitted.sentence())}</p>" in page and "class='warning'" not in page
    assert (
        "noise.snr_db ≤ 0" in fitted.sentence() and "meta.voice = v3" in fitted.sentence()
    )  # both planted rules
    importance, shapes, pair, fidelity = ctx.figures
    assert "ROC AUC" in fidelity.layout.title.text and pair.data[0].type == "heatmap"
    warned = dataclasses.replace(fitted, fidelity={**fitted.fidelity, "warning": "low fidelity: <0.6>"})
    page = sections_of("surrogate")[0].html(
        SectionContext(run, analysis=Analysis(run, results={"surrogate": warned}))
    )
    assert "⚠ low fidelity: &lt;0.6&gt;</p>" in page

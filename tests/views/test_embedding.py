"""Difference embeddings: dots coloured by metadata, grid values or the outcome, the colourings one menu away
(each button shows exactly its own traces), missing metadata as a category, and the two report sections."""

import numpy as np
import pytest

from proactiv import views
from proactiv.analysis import analyze, load_analysis
from proactiv.analysis.runview import format_value
from proactiv.views.embedding import Colouring, embedding_figure
from proactiv.views.sections import SectionContext, sections
from proactiv.views.style import class_colour


def _section(key: str):
    return next(s for s in sections() if s.key == key)


def test_embedding_coloured_by_metadata(run):
    fig = views.embedding(run, by="instance", colour="meta.voice")
    shown = [t for t in fig.data if t.visible]
    assert [t.name for t in shown] == ["v0", "v1", "v2", "v3"]

    table = load_analysis(run).embedding_instances.set_index("instance")
    v3 = next(t for t in shown if t.name == "v3")
    assert np.allclose(v3.x, table.loc[list(v3.customdata), "x"]) and set(
        table.loc[list(v3.customdata), "meta.voice"]
    ) == {"v3"}
    assert len(fig.layout.updatemenus[0].buttons) > 1  # the other colourings, one menu away
    with pytest.raises(ValueError, match="colour="):
        views.embedding(run, colour="bogus")
    with pytest.raises(ValueError, match="by='record': expected 'point' or 'instance'"):
        views.embedding(run, by="record")


def test_embedding_names_missing_categories(run):
    """A metadata column with gaps (e.g. no word for silence clips) is a category of its own, not an error."""
    table = load_analysis(run).embedding_instances.copy()
    table["meta.voice"] = table["meta.voice"].where(table["instance"] % 2 == 0, None)
    fig = embedding_figure(table, "instance", [Colouring("meta.voice", "voice", True)])
    names = [t.name for t in fig.data]
    missing = next(t for t in fig.data if t.name == "(missing)")
    assert "(missing)" in names and all(int(i) % 2 == 1 for i in missing.customdata)


def test_the_point_section_colours_grid_points_by_snr_in_value_order(run):
    analyze(run, steps=["embedding_points"], method="pca")
    ctx = SectionContext(run)
    page = _section("embedding_points").html(ctx)
    assert page.startswith("<h2>Difference embedding per grid point</h2><p>Each dot is a grid point")
    (fig,) = ctx.figures
    assert all(type(t).__name__ == "Scatter" for t in fig.data)  # a small embedding: SVG, not WebGL
    shown = [t for t in fig.data if t.visible]
    assert [t.name for t in shown] == ["-5", "0", "5", "10", "20", "∞"]
    snr = run.records.drop_duplicates("point").set_index("point")["noise.snr_db"]
    for trace in shown:  # each category holds exactly the grid points of that SNR (3 gains each)
        assert len(trace.x) == 3 and {format_value(snr[p]) for p in trace.customdata} == {trace.name}
    buttons = fig.layout.updatemenus[0].buttons
    assert [b.label for b in buttons] == [
        "noise.snr_db (dB)",
        "gain.gain_db (dB)",
        "accuracy on xT",
        "mean d_x",
    ]
    accuracy = buttons[2].args[0]["visible"]
    (drawn,) = [t for t, on in zip(fig.data, accuracy, strict=True) if on]  # the button shows its trace only
    expected = run.records.groupby("point").correct_t.mean()
    assert np.allclose(drawn.marker.color, expected[list(drawn.customdata)])
    assert (drawn.marker.cmin, drawn.marker.cmax) == (0, 1)


def test_the_instance_section_gives_each_class_its_fixed_colour(run):
    analyze(run, steps=["embedding_instances"], method="pca")
    ctx = SectionContext(run)
    page = _section("embedding_instances").html(ctx)
    assert "<p>Each dot is an instance" in page and "<p class='note'>method pca</p>" in page
    (fig,) = ctx.figures
    classes = {t.name: t.marker.color for t in fig.data if t.visible}
    assert classes == {c: class_colour(i) for i, c in enumerate(["yes", "no", "up", "down"])}
    labels = [b.label for b in fig.layout.updatemenus[0].buttons]
    assert labels == [
        "class",
        "voice",
        "gender",
        "rate",
        "accuracy on xT",
        "mean d_x",
    ]  # no path: one per clip

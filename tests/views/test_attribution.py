"""Attribution views on a tiny image classifier: one record's maps overlaid on x, xT and x̂T as shares of their
|attribution|, 1-D inputs as lines with the attribution shaded under them, the shift per transform value drawn
from the stored table, and the report section with its sentence, the shift figure and one overlay per top error
slice (or a note saying why there are none)."""

import importlib

import numpy as np
import pandas as pd
import pytest

from proactiv import views
from proactiv.analysis import analyze
from proactiv.analysis.attribution import PREFIX, attribute, shift_by_value, shift_sentence, showcase
from proactiv.schema import input_spec
from proactiv.testing import sweep_image_run
from proactiv.views.attribution import attribution_overlay, attribution_shift_figure
from proactiv.views.sections import SectionContext, esc, sections_of


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    """Six random 8×8 images, a fixed random 3-class CNN labelled with its own predictions; the attributions
    (saliency) and the error slices stored."""
    run = sweep_image_run(
        tmp_path_factory.mktemp("attr") / "run", image_to_image=False, n_instances=6, size=8
    )
    analyze(run, steps=["slices", "attributions"])
    return run


def _captured(run):
    """A section context whose figures keep their captions."""
    kept = []
    ctx = SectionContext(
        run, figure=lambda fig, caption="", alt="": kept.append((fig, caption, alt)) or "<figure/>"
    )
    return ctx, kept


def test_one_record_shows_its_evidence_as_shares_on_each_input(image_run):
    fig = views.attribution(image_run, 4, 2)
    assert [t.type for t in fig.data] == ["heatmap"] * 6  # input and overlay for x, xT and x̂T
    assert fig.layout.title.text.startswith(
        "saliency toward the desired target · instance 4 · grid point 2: "
    )
    att = attribute(image_run, [(4, 2)])
    for k, name in enumerate(["x", "x_t", "x_proj"]):
        image, overlay = fig.data[2 * k], fig.data[2 * k + 1]
        np.testing.assert_allclose(np.asarray(image.z, dtype=float), att.inputs[name][0, 0], atol=1e-6)
        share = np.abs(att.maps[name][0, 0]) / np.abs(att.maps[name][0, 0]).sum()
        np.testing.assert_allclose(np.asarray(overlay.z, dtype=float), share, atol=1e-6)
    assert len({t.zmax for t in fig.data[1::2]}) == 1  # the overlays share one scale, so inputs compare


def test_one_dimensional_inputs_shade_the_attribution_under_the_line():
    x = np.linspace(-1, 1, 50)
    maps = {n: np.zeros(50) for n in ("x", "x_t")}
    maps["x"][10], maps["x_t"][40] = 2.0, -3.0  # the sign does not matter: where the evidence is
    fig = attribution_overlay({"x": x, "x_t": x * 0.5}, maps, input_spec("vector", (50,)))
    lines, shades = fig.data[0::2], fig.data[1::2]
    assert [t.name for t in lines] == ["x (clean)", "xT (transformed)"]
    assert all(t.fill == "tozeroy" for t in shades) and [int(np.argmax(t.y)) for t in shades] == [10, 40]
    assert all(np.isclose(np.sum(t.y), 1.0) for t in shades)
    assert attribution_overlay({}, {}, input_spec("vector", (50,))).layout.annotations[0].text == (
        "no attributions to draw"
    )


def test_the_shift_figure_draws_the_mean_of_each_figure_per_value(image_run):
    table = pd.read_parquet(image_run.path / "analysis" / "attributions.parquet")
    summary = shift_by_value(table, image_run)
    fig = attribution_shift_figure(summary)
    grid = pd.DataFrame([p.values for p in image_run.grid]).assign(point=range(len(image_run.grid)))
    expected = table.merge(grid, on="point").groupby("blur.sigma")[f"{PREFIX}outside_t"].mean()
    (line,) = [
        t for t in fig.data if t.name == "outside the support, xT" and t.xaxis == "x2"
    ]  # blur: column 2
    assert list(line.x) == ["0", "1"] and np.allclose(line.y, expected.to_numpy())
    assert {t.name for t in fig.data} == {
        "outside the support, x", "outside the support, xT", "outside the support, x̂T", "Spearman ρ(x, xT)",
        "Spearman ρ(xT, x̂T)", "shift x → xT", "shift xT → x̂T",
    }  # fmt: skip
    assert attribution_shift_figure(None).layout.annotations[0].text == "no attribution shift was computed"


def test_the_section_says_where_the_evidence_moved_and_shows_the_top_slices_records(image_run):
    table = pd.read_parquet(image_run.path / "analysis" / "attributions.parquet")
    ctx, kept = _captured(image_run)
    (section,) = sections_of("attributions")
    page = section.html(ctx)
    sentence = shift_sentence(shift_by_value(table, image_run))
    assert f"<p class='attributions'>{esc(sentence)}</p>" in page
    shown = showcase(ctx.view, ctx.results.get("slices"))
    (shift, caption, _), *overlays = kept
    assert caption == sentence and len(overlays) == len(shown) > 0
    rho = table.set_index(["instance", "point"])[f"{PREFIX}spearman_t_proj"]
    for (fig, caption, alt), s in zip(overlays, shown.itertuples(), strict=True):
        assert caption.startswith(f"slice {s.slice}: {s.conditions} · record ({s.instance}, {s.point}): ")
        assert caption.endswith(f"Spearman ρ(xT, x̂T) {rho[(s.instance, s.point)]:.2f}")
        assert alt == "saliency attributions on x, xT and x̂T of a record" and len(fig.data) == 6


def test_overlays_that_cannot_be_drawn_leave_a_note(image_run, monkeypatch):
    settings = {"attribution_method": "gradcam", "gradcam_layer": "nope"}
    module = importlib.import_module("proactiv.views.attribution")  # the package names its view function so
    monkeypatch.setattr(module, "stored_settings", lambda run: settings)
    ctx, kept = _captured(image_run)
    page = sections_of("attributions")[0].html(ctx)
    assert len(kept) == 1  # the shift figure only
    assert "<p class='note'>No attribution overlays: " in page and "has no layer &#x27;nope&#x27;" in page

"""The dashboard on an image-to-image run: images upright in grey with the outputs f(xT), f(x̂T), finite PSNR
curves, "within cutoff" instead of accuracy, per-digit bias maps, and no audio — as callbacks and in a browser."""

import json
import os

import numpy as np
import pytest

from proactiv.dashboard import panels
from proactiv.dashboard.data import RunData

from .browser import CHROMEDRIVER, chromium, served


@pytest.fixture(scope="module")
def data(denoise_run) -> RunData:
    return RunData(denoise_run)


def _text(children) -> str:
    return json.dumps([c.to_plotly_json() for c in children], default=str, ensure_ascii=False)


def test_overview_says_within_cutoff_and_draws_finite_psnr_curves(data):
    assert (
        data.outcome == "within_cutoff" and "accuracy" not in data.metrics and "flip_rate" not in data.metrics
    )
    summary = _text(panels.summary_children(data))
    assert "within cutoff on xT (loss < 0.001)" in summary and "clean accuracy" not in summary
    assert "grouped by meta.digit (3 groups)" in summary and "image inputs" in summary
    rows = dict(panels.curve_panels(data))
    assert rows["PSNR (dB)"] == ["psnr_t", "psnr_proj", "psnr_out_t", "psnr_out_proj"]
    curves, heat = panels.overview(data, None, None, None, "psnr_out_t")
    ys = np.concatenate([np.asarray(t.y, dtype=float) for t in curves.data])
    assert np.isfinite(ys).all()
    assert {t.name for t in curves.data} >= {"breakpoint", "f(xT) vs target", "f(x̂T) vs target"}
    z = np.asarray(heat.data[0].z, dtype=float)
    assert np.isfinite(z).all() and z.max() == 60.0  # PSNR ∞ at the identity point, shown at the cap


def test_record_detail_shows_images_and_outputs_without_audio(data):
    rows = panels.kept_rows(data, None)
    assert "pred_t" not in rows[0] and rows[0]["meta.digit"] in (0, 1, 2) and rows[0]["correct_t"] == "no"
    chosen = panels.choose_record(data, "kept", {"row": 0}, rows, None, None)
    fig, facts = panels.record_detail(data, chosen)
    titles = [a.text for a in fig.layout.annotations]
    assert titles == ["x (clean)", "xT (transformed)", "x̂T (projected)", "x̂T − xT",
                      "y (target)", "f(xT) (output)", "f(x̂T) (output)", "f(x̂T) − f(xT)"]  # fmt: skip
    grey = [t for t in fig.data if t.colorscale[0][1] != fig.data[3].colorscale[0][1]]
    assert len(fig.data) == 8 and len(grey) == 6  # inputs and outputs grey, the two changes diverging
    diverging = fig.data[3]
    assert diverging.zmin == -diverging.zmax
    assert fig.layout.yaxis.autorange == "reversed" and fig.layout.yaxis.scaleanchor == "x"  # upright, square
    assert fig.layout.yaxis6.autorange == "reversed" and fig.layout.yaxis6.scaleanchor == "x6"
    text = _text(facts)
    assert (
        "outside the loss cutoff → on x̂T within the loss cutoff" in text and "PSNR against the target" in text
    )
    sound = panels.record_sound(data, chosen)  # no "Listen" heading, no players, no Griffin-Lim: a note why
    assert [type(c).__name__ for c in sound] == ["Div"] and "image inputs" in sound[0].children
    identity = panels.record_detail(data, {"instance": 0, "point": 0})[1]
    assert "∞ dB (identical)" in _text(identity)


def test_bias_maps_per_digit(data):
    classes, _ = panels.bias_options(data)
    assert classes == ["0", "1", "2"] and panels.bias_group(data) == "digit"
    fig = panels.bias_view(data, "1", "rotate.degrees=30.0")
    assert fig.layout.title.text.startswith("digit 1 · rotate.degrees = 30")
    assert fig.layout.yaxis.autorange == "reversed" and fig.data[0].zmin == -fig.data[0].zmax


@pytest.mark.slow
@pytest.mark.skipif(
    not os.path.exists(CHROMEDRIVER), reason="chromedriver not installed (scripts/bootstrap.sh)"
)
def test_image_record_detail_in_a_browser(denoise_run):
    from selenium.webdriver.support.ui import WebDriverWait

    def wait(driver, condition, timeout=30):
        return WebDriverWait(driver, timeout, poll_frequency=0.2).until(condition)

    with served([denoise_run]) as url, chromium() as page:
        page.get(url)
        wait(page, lambda d: d.find_elements("css selector", "#curves .trace"))
        assert "within cutoff" in page.find_element("id", "summary").text
        page.find_element("id", "tab-record").click()
        cell = wait(page, lambda d: (d.find_elements("css selector", "#kept tbody tr td") or [None])[0])
        assert "output within cutoff" in page.find_element("id", "kept").text
        cell.click()
        wait(page, lambda d: len(d.find_elements("css selector", "#interim .hm, #interim image")) >= 8)
        wait(page, lambda d: "PSNR against the target" in d.find_element("id", "facts").text)
        assert "f(xT) (output)" in page.find_element("id", "interim").text
        assert not page.find_elements("css selector", "#audio audio, #audio h4")
        page.find_element("id", "tab-bias").click()
        wait(page, lambda d: d.find_elements("css selector", "#bias .hm, #bias image"))
        # a callback that raised would show as a failed request (HTTP 500) in the browser's log
        severe = [e["message"] for e in page.get_log("browser") if e["level"] == "SEVERE"]
        assert not severe, severe

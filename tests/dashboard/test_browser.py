"""The dashboard in a real browser: headless Chromium driven by Selenium against a served small run."""

import pytest

from .browser import chromium, css, marks, served, wait

pytestmark = marks()


def _plotted(driver, graph_id: str, what: str = ".trace") -> bool:
    return bool(css(driver, f"#{graph_id} {what}"))


def _lasso(driver, graph_id: str) -> None:
    """Draw a lasso around the left half of a scatter plot, as a person would with the mouse."""
    from selenium.webdriver.common.action_chains import ActionChains

    area = css(driver, f"#{graph_id} .nsewdrag")[0]
    w, h = area.size["width"], area.size["height"]
    chain = ActionChains(driver).move_to_element_with_offset(area, -w // 2 + 3, -h // 2 + 3).click_and_hold()
    for dx, dy in ((w // 2, 0), (0, h - 6), (-(w // 2), 0), (0, -(h - 8))):
        for _ in range(4):
            chain = chain.move_by_offset(dx // 4, dy // 4)
    chain.release().perform()


@pytest.fixture(scope="module")
def page(run_a, run_b):
    with served([run_a, run_b]) as url, chromium() as driver:
        driver.get(url)
        yield driver


def test_every_view_renders(page):
    wait(page, lambda d: _plotted(d, "curves") and _plotted(d, "heatmap", ".hm, image"))
    wait(page, lambda d: _plotted(d, "emb-points", "canvas") and _plotted(d, "emb-instances", "canvas"))
    wait(page, lambda d: len(css(d, "#slices tbody tr")) > 1)
    assert "clean accuracy" in page.find_element("id", "summary").text
    assert page.find_elements("css selector", "#curves .xtick")  # axes drawn
    # works offline: every script, style, image and data request the page made went to the local server
    loaded = page.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert loaded and all(u.startswith(("http://127.0.0.1", "data:", "blob:")) for u in loaded), loaded


def test_lasso_in_embedding_filters_slices(page):
    wait(page, lambda d: len(css(d, "#slices tbody tr")) > 1)
    before = page.find_element("id", "slices").text
    _lasso(page, "emb-points")
    wait(page, lambda d: "Filtered to" in d.find_element("id", "filter-text").text)
    wait(page, lambda d: d.find_element("id", "slices").text != before)
    page.find_element("id", "clear").click()
    wait(page, lambda d: "Showing all records" in d.find_element("id", "filter-text").text)


def test_clicking_a_record_shows_waveforms_and_audio(page):
    wait(page, lambda d: len(css(d, "#slices tbody tr")) > 1)
    page.find_element("id", "tab-record").click()
    cell = wait(page, lambda d: (css(d, "#kept tbody tr td") or [None])[0])
    cell.click()
    wait(page, lambda d: len(css(d, "#interim .scatterlayer .trace")) == 4)  # lines, not maps
    assert not css(page, "#interim .hm, #interim image")
    wait(page, lambda d: len(css(d, "#audio audio")) == 3, timeout=60)
    assert "instance" in page.find_element("id", "facts").text


def test_bias_and_compare_views_open(page):
    page.find_element("id", "tab-bias").click()
    wait(page, lambda d: _plotted(d, "bias", ".scatterlayer .trace"))  # a waveform's bias map is a line
    page.find_element("id", "tab-compare").click()
    wait(page, lambda d: _plotted(d, "cmp-curves") and _plotted(d, "cmp-heat", ".hm, image"))
    wait(page, lambda d: _plotted(d, "cmp-grid", ".hm, image"))
    wait(page, lambda d: _plotted(d, "cmp-emb-a", "canvas") and _plotted(d, "cmp-emb-b", "canvas"))
    wait(
        page,
        lambda d: len(css(d, "#cmp-slices-a tbody tr")) > 1 and len(css(d, "#cmp-slices-b tbody tr")) > 1,
    )
    assert "All 18 grid points" in page.find_element("id", "cmp-grid-note").text
    assert "model-a" in page.find_element("id", "view-compare").text


def test_what_if_studio_moves_a_slider_and_projects(tmp_path):
    from selenium.webdriver.common.keys import Keys

    from proactiv.dashboard.data import RunData
    from proactiv.testing import sweep_image_run

    run = sweep_image_run(tmp_path / "img", image_to_image=False)  # a run with a model to rebuild
    with served([RunData(run.path, compute=False)]) as url, chromium() as page:
        page.get(url)
        wait(page, lambda d: css(d, "#tab-whatif"))[0].click()
        wait(page, lambda d: "(grid point 0)" in d.find_element("id", "whatif-facts").text)
        thumb = css(page, ".whatif-slider [role=slider]")[0]
        thumb.send_keys(Keys.END)  # rotate to the slider's end, past the grid's values
        wait(page, lambda d: "between grid points" in d.find_element("id", "whatif-facts").text)
        box = css(page, ".whatif-slider input")[1]  # type a blur between the grid's 0 and 1 px
        box.click()
        box.send_keys(Keys.BACKSPACE * 5, "0.55", Keys.TAB)
        wait(page, lambda d: "blur.sigma = 0.55 px" in d.find_element("id", "whatif-facts").text)
        assert _plotted(page, "whatif-inputs", ".hm, image") and _plotted(page, "whatif-output", ".trace")
        button = page.find_element("id", "whatif-project")
        page.execute_script("arguments[0].scrollIntoView();", button)
        button.click()
        wait(page, lambda d: "projection converged" in d.find_element("id", "whatif-projection").text)
        assert _plotted(page, "whatif-attributions", ".hm, image")
        assert _plotted(page, "whatif-moved", ".hm, image")


def test_surrogate_tab_says_what_drives_failure(page):
    tab = wait(page, lambda d: d.find_elements("xpath", "//*[normalize-space(text())='Surrogate']"))[0]
    tab.click()
    wait(page, lambda d: _plotted(d, "surrogate-importance") and _plotted(d, "surrogate-record"))
    assert "meta.voice" in page.find_element("id", "surrogate-sentence").text  # the planted failing voice
    assert _plotted(page, "surrogate-shape") and _plotted(page, "surrogate-fidelity")


def test_model_card_says_why_a_run_has_none(page):
    wait(page, lambda d: css(d, "#tab-model"))[0].click()
    wait(page, lambda d: "names no model path" in d.find_element("id", "view-model_card").text)


def test_model_card_draws_the_models_measures(tmp_path, run_a):
    import json

    from proactiv.dashboard.data import RunData

    from .panels.test_model_card import METRICS

    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "metrics.json").write_text(json.dumps(METRICS))
    data = RunData(run_a, compute=False)
    data.run.header["config"]["model"] = {"path": str(tmp_path / "model")}
    with served([data]) as url, chromium() as page:
        page.get(url)
        wait(page, lambda d: css(d, "#tab-model"))[0].click()
        wait(page, lambda d: len(css(d, "#model-card-graph .scatterlayer .trace")) == 4)
        figures = page.find_element("id", "model-card-figures").text
        assert "false accepts per hour of running speech 12.8" in figures
        assert "_silence_ offset -0.50" in figures
        assert "64 (49%)" in page.find_element("id", "model-card-speech").text

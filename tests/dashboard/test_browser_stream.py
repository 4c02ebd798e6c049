"""The monitor's stream page in a real browser: headless Chromium against a served planted monitor store; the
timeline draws, a flagged window plays when clicked, and "What if?" shows the what-if studio for it."""

from proactiv.dashboard.monitor_app import build_monitor_app
from proactiv.testing.streams import write_planted_store

from .browser import chromium, css, marks, wait
from .loadtest import served

pytestmark = marks()


def test_the_stream_view_opens_and_a_flagged_window_plays(tmp_path):
    store = write_planted_store(tmp_path / "planted")
    with served(build_monitor_app(store)) as url, chromium() as driver:
        driver.get(url + "/")
        wait(driver, lambda d: len(css(d, "#stream-timeline .scatterlayer .trace")) >= 5)
        assert "violations per minute" in driver.find_element("id", "view-stream").text
        flags = css(driver, "#stream-flags button")
        assert flags and "s —" in flags[0].text
        flags[0].click()
        wait(driver, lambda d: css(d, "#stream-audio audio"))
        src = css(driver, "#stream-audio audio")[0].get_attribute("src")
        assert src.startswith("data:audio/wav;base64,")
        assert "violations —" in driver.find_element("id", "stream-window").text
        loaded = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        assert all(u.startswith(("http://127.0.0.1", "data:", "blob:")) for u in loaded), loaded


def _text(driver, element: str) -> str:
    return driver.find_element("id", element).text


def test_what_if_shows_the_studio_for_the_window_playing(tmp_path):
    store = write_planted_store(tmp_path / "planted")
    with served(build_monitor_app(store)) as url, chromium() as driver:
        driver.get(url + "/")
        wait(driver, lambda d: css(d, "#stream-flags button"))
        css(driver, "#stream-flags button")[0].click()
        wait(driver, lambda d: css(d, "#stream-audio audio"))
        driver.find_element("id", "stream-whatif").click()
        wait(driver, lambda d: len(css(d, "#whatif-sliders .whatif-slider")) == 3, timeout=120)
        wait(driver, lambda d: "prediction on xT: up" in _text(d, "whatif-facts"), timeout=60)
        assert "the model's own decision" in driver.find_element("id", "stream-whatif-note").text
        assert driver.find_element("id", "stream-studio").is_displayed()
        driver.find_element("id", "whatif-project").click()
        wait(driver, lambda d: "prediction on x̂T: up" in _text(d, "whatif-projection"), timeout=120)

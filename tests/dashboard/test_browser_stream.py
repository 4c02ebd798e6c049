"""The monitor's stream page in a real browser: headless Chromium against a served planted monitor store; the
timeline draws, a flagged window plays when clicked."""

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

"""The monitor's stream page in a real browser: headless Chromium against a served planted monitor store; the
timeline draws, a flagged window plays when clicked."""

import os

import pytest

from proactiv.dashboard.monitor_app import build_monitor_app
from proactiv.testing.streams import write_planted_store

from .browser import CHROMEDRIVER, chromium
from .loadtest import served

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.path.exists(CHROMEDRIVER), reason="chromedriver not installed (scripts/bootstrap.sh)"
    ),
]


def _wait(driver, condition, timeout: float = 30):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(condition)


def _css(driver, selector: str):
    return driver.find_elements("css selector", selector)


def test_the_stream_view_opens_and_a_flagged_window_plays(tmp_path):
    store = write_planted_store(tmp_path / "planted")
    with served(build_monitor_app(store)) as url, chromium() as driver:
        driver.get(url + "/")
        _wait(driver, lambda d: len(_css(d, "#stream-timeline .scatterlayer .trace")) >= 5)
        assert "violations per minute" in driver.find_element("id", "view-stream").text
        flags = _css(driver, "#stream-flags button")
        assert flags and "s —" in flags[0].text
        flags[0].click()
        _wait(driver, lambda d: _css(d, "#stream-audio audio"))
        src = _css(driver, "#stream-audio audio")[0].get_attribute("src")
        assert src.startswith("data:audio/wav;base64,")
        assert "violations —" in driver.find_element("id", "stream-window").text
        loaded = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        assert all(u.startswith(("http://127.0.0.1", "data:", "blob:")) for u in loaded), loaded

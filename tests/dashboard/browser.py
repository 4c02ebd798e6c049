"""Serve a dashboard in a background thread and drive it with headless Chromium (used by the browser tests
and to make ``docs/dashboard.png``)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@contextlib.contextmanager
def served(runs: list[Path]) -> Iterator[str]:
    """The dashboard over ``runs`` on a free local port, as its URL (ending in ``/``)."""
    from proactiv.dashboard.app import build_app

    from .loadtest import served as serving

    with serving(build_app(list(runs))) as url:
        yield url + "/"


@contextlib.contextmanager
def chromium(width: int = 1400, height: int = 1000) -> Iterator:
    """A headless Chromium WebDriver with a fresh profile."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="proactiv-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
        f"--user-data-dir={profile}", f"--window-size={width},{height}",
    ):  # fmt: skip
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def marks() -> list:
    """A browser test module's marks: slow, and skipped (saying why) where chromedriver is not installed."""
    import pytest

    return [
        pytest.mark.slow,
        pytest.mark.skipif(
            not os.path.exists(CHROMEDRIVER), reason="chromedriver not installed (scripts/bootstrap.sh)"
        ),
    ]


def wait(driver, condition, timeout: float = 30):
    """Wait until ``condition(driver)`` is truthy (polling every 0.2 s); returns its value."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(condition)


def css(driver, selector: str) -> list:
    """The elements matching a CSS selector."""
    return driver.find_elements("css selector", selector)

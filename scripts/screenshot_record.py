"""Make docs/dashboard-record.png: the record detail of a run's worst kept record, with its attributions and
influential training examples, in headless Chromium.

    .venv/bin/python scripts/screenshot_record.py runs/kws-demo docs/dashboard-record.png
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "dashboard"))

from browser import chromium, served  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


def main(run: str, out: str) -> None:
    with served([Path(run)]) as url, chromium(1400, 2200) as driver:
        driver.get(url)
        wait = WebDriverWait(driver, 180)
        wait.until(ec.element_to_be_clickable((By.ID, "tab-record"))).click()
        cell = wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "#kept td.dash-cell")))
        cell.click()
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#attr-graph .main-svg")))
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#influence table, #influence-missing")))
        time.sleep(3)  # let plotly finish drawing
        driver.execute_script("document.getElementById('interim').scrollIntoView()")
        time.sleep(1)
        driver.save_screenshot(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(*sys.argv[1:3])

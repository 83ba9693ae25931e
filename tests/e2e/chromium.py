"""
Debian's headless Chromium for the e2e suite, driven by selenium through Debian's chromium-driver (nothing
downloaded): the binaries, the flags a closed network needs, a logged-in browser and the screenshots folder.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

import deployment as deploy
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# Headless as root in a closed network: no sandbox, and no background calls to Google's hosts.
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1300",
]


@contextlib.contextmanager
def logged_in_browser(
    live: deploy.Deployment, *, next_path: str, ready: Callable[[webdriver.Chrome], object]
) -> Iterator[webdriver.Chrome]:
    """
    Sign in to the live UI as its admin, as a person does, and yield the browser once ``ready`` holds.

    :param live: The running deployment.
    :param next_path: Where the login page sends the browser afterwards (e.g. ``/connections``).
    :param ready: A selenium wait condition that holds once that page is shown.
    """
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    assert not missing, f"{missing} missing: `make e2e` installs Debian's chromium and chromium-driver"
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        driver.get(f"{live.api_url}/auth/login?next={next_path}")
        wait = WebDriverWait(driver, 60)
        wait.until(EC.presence_of_element_located((By.NAME, "username"))).send_keys(deploy.USERNAME)
        driver.find_element(By.NAME, "password").send_keys(live.password)
        driver.find_element(By.XPATH, "//button[normalize-space()='Sign in']").click()
        wait.until(ready)
        yield driver
    finally:
        driver.quit()


def screenshots_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``$BROWSERSESSIONS_SCREENSHOTS`` (``make screenshots`` points it at the docs), else a temporary folder."""
    folder = Path(os.environ.get("BROWSERSESSIONS_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder

"""Debian's Chromium, headless, driven by Selenium through Debian's chromium-driver."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

SETUP_HINT = "run ./setup.sh test (it installs Debian's chromium and chromium-driver)"
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-dev-shm-usage", "--window-size=1280,1400")


def find(binary: str, *candidates: str) -> str:
    for c in (binary, *candidates):
        path = shutil.which(c)
        if path:
            return path
    pytest.fail(f"{binary} is not installed: {SETUP_HINT}")


class Browser:
    """One headless Chromium with a fresh profile directory."""

    def __init__(self) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.profile = Path(tempfile.mkdtemp(prefix="sgb-chromium-"))
        opts = webdriver.ChromeOptions()
        opts.binary_location = find("chromium", "chromium-browser")
        for flag in FLAGS:
            opts.add_argument(flag)
        opts.add_argument(f"--user-data-dir={self.profile}")
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(find("chromedriver")), options=opts)

    def wait(self, cond: Callable[[Any], Any], timeout: float = 30, what: str = "") -> Any:
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(cond, what)

    def login(self, base: str, user: str, password: str) -> None:
        from selenium.webdriver.common.by import By

        d = self.driver
        d.get(base + "/login")
        d.find_element(By.ID, "user").send_keys(user)
        d.find_element(By.ID, "password").send_keys(password)
        d.find_element(By.ID, "login").click()
        self.wait(lambda drv: drv.current_url == base + "/", what="the dashboard after login")

    def console(self) -> list[str]:
        return [entry["message"] for entry in self.driver.get_log("browser")]

    def close(self) -> None:
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

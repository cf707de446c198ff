"""Chromium from the system (Debian's `chromium`), driven by Playwright for Python with
`executable_path`: no `playwright install` download (it cannot reach the internet). Tests that
need it skip, saying why, when either is missing."""

from __future__ import annotations

import shutil

import pytest

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


def chromium_path() -> str | None:
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def browser_or_skip():
    """A launched headless Chromium (close it when done), or a skip naming what is missing."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (`pip install -e '.[test]'` installs it)")
    path = chromium_path()
    if path is None:
        pytest.skip("no Chromium on PATH: `make test` installs it (apt-get install -y chromium); "
                    "this machine could not")
    pw = sync_playwright().start()
    try:
        browser = pw.chromium.launch(executable_path=path, headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
    except Exception as exc:  # a Chromium that cannot start here (e.g. missing libraries)
        pw.stop()
        pytest.skip(f"Chromium at {path} does not start: {exc}")
    return pw, browser


class Page:
    """A page opened from a file: console errors, page errors and failed requests are recorded."""

    def __init__(self, browser, url: str):
        self.errors: list[str] = []
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.page.on("console", lambda m: self.errors.append(f"console {m.type}: {m.text}")
                     if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.page.on("requestfailed", lambda r: self.errors.append(f"request failed: {r.url}"))
        self.page.goto(url, wait_until="load")

    def image_sizes(self) -> list[tuple[int, int, float, float]]:
        """(naturalWidth, naturalHeight, rendered width, rendered height) of every <img>."""
        return self.page.eval_on_selector_all(
            "img", "imgs => imgs.map(i => [i.naturalWidth, i.naturalHeight, i.getBoundingClientRect().width, "
                   "i.getBoundingClientRect().height])")

"""Open a report page in headless Chromium, as the tests, the benchmark and the docs'
screenshot do: console messages, every network request the page made, JavaScript, screenshots.

Needs Debian's `chromium` and `chromium-driver` (`apt-get install chromium chromium-driver`)
and Selenium (the `dev` extra). Selenium is pointed at the installed driver and browser, so it
never downloads one. Console and network come from ChromeDriver's logs (`goog:loggingPrefs`:
the browser log, and the performance log's DevTools `Network.requestWillBeSent` events).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
DRIVERS = ("chromedriver",)
FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--hide-scrollbars", "--force-device-scale-factor=1", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--lang=en-US",
)  # fmt: skip
"""--no-sandbox: Chromium's own sandbox refuses to start as root (CI runs as root)."""


def unavailable() -> str | None:
    """Why a headless Chromium cannot be driven here (None: it can)."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed: pip install -e '.[dev]'"
    if _which(BROWSERS) is None:
        return "chromium is not installed: apt-get install chromium chromium-driver"
    if _which(DRIVERS) is None:
        return "chromedriver is not installed: apt-get install chromium-driver"
    return None


def _which(names: tuple[str, ...]) -> str | None:
    return next((path for name in names if (path := shutil.which(name))), None)


class HeadlessPage:
    """One headless Chromium window; `open(path)` loads a page and waits for it to be ready."""

    def __init__(self, width: int = 1400, height: int = 1000) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        reason = unavailable()
        if reason:
            raise RuntimeError(reason)
        options = webdriver.ChromeOptions()
        options.binary_location = str(_which(BROWSERS))
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--window-size={width},{height}")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        self.driver = webdriver.Chrome(options=options, service=Service(str(_which(DRIVERS))))
        self._console: list[dict[str, Any]] = []
        self._requests: list[str] = []

    def __enter__(self) -> HeadlessPage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.driver.quit()

    def open(self, path: str | Path, *, timeout_s: float = 30.0) -> None:
        """Load the page and wait until its script says it is drawn (`body[data-ready]`)."""
        self.driver.get(Path(path).resolve().as_uri())
        deadline = time.monotonic() + timeout_s
        while not self.run("return document.body && document.body.dataset.ready === '1'"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{path}: the page was not ready after {timeout_s} s")
            time.sleep(0.05)
        self._drain()

    def run(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def _drain(self) -> None:
        self._console += self.driver.get_log("browser")
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message.get("method") == "Network.requestWillBeSent":
                self._requests.append(message["params"]["request"]["url"])

    def console(self, level: str = "SEVERE") -> list[str]:
        """Console messages at `level` (SEVERE: errors, uncaught exceptions, CSP refusals)."""
        self._drain()
        return [e["message"] for e in self._console if e["level"] == level]

    def requests(self) -> list[str]:
        """Every URL the page asked for since the window opened, its own file included."""
        self._drain()
        return list(self._requests)

    def screenshot(self, out: str | Path, *, height: int | None = None) -> Path:
        """A PNG of the top of the page: the window's height, or `height` pixels."""
        if height:
            width = self.run("return window.innerWidth")
            self.driver.set_window_size(width, height + self._chrome_height())
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        self.driver.save_screenshot(str(out))
        return out

    def _chrome_height(self) -> int:
        return int(self.run("return window.outerHeight - window.innerHeight") or 0)


def screenshot(page: str | Path, out: str | Path, *, width: int = 1400, height: int = 1100,
               colours: int = 128) -> Path:  # fmt: skip
    """A PNG of the top of a page, its palette reduced to `colours` (small enough to commit).

    `python -m rlaif_sql.report.chromium runs/revenue/export/report.html docs/report.png`
    """
    from PIL import Image

    with HeadlessPage(width=width, height=height) as browser:
        browser.open(page)
        shot = browser.screenshot(out, height=height)
    with Image.open(shot) as image:
        image.convert("RGB").quantize(colours).save(shot, optimize=True)
    return Path(shot)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Screenshot the top of a report page.")
    parser.add_argument("page", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=1100)
    args = parser.parse_args()
    print(screenshot(args.page, args.out, width=args.width, height=args.height))

"""A real Chromium for the console's browser tests: Debian's ``chromium`` driven through
Debian's ``chromium-driver`` by Selenium (never a browser downloaded at test time).

One browser per test session (starting one costs seconds on the loaded CI machine); each test
logs in as the officer it needs (:meth:`Browser.login` drops the previous session's cookies).
What the page did wrong is collected, not guessed: the browser's console log (``SEVERE`` entries
are errors) and the Content-Security-Policy violation reports the console received
(``node.console.events.CSP_REPORTS``, read by the test from the app in this process).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM: Final[Path] = Path("/usr/bin/chromium")
CHROMEDRIVER: Final[Path] = Path("/usr/bin/chromedriver")
ROOT: Final[Path] = Path(__file__).resolve().parents[2]
SCREENSHOTS: Final[Path] = ROOT / "build" / "screenshots"
AXE: Final[Path] = Path(__file__).with_name("vendor") / "axe.min.js"
WAIT_S: Final[float] = 45.0
"""How long a page condition may take on the loaded 2-core machine before the test fails."""
FLAGS: Final[tuple[str, ...]] = (
    "--headless",
    "--no-sandbox",  # root in a container: Chromium's sandbox needs user namespaces
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Nothing but the console: no update checks, sync, safe-browsing lists or field trials
    # that would reach the network (and make a run depend on it).
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
    "--force-device-scale-factor=1",
)


def check_installed() -> None:
    """Fail with what to install, rather than skip: ``make test`` installs them (``make
    browser``), and a machine without them must say so."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        raise RuntimeError(
            f"the console's browser tests need {', '.join(missing)}: install Debian's packages "
            "with 'apt-get install chromium chromium-driver' (as root 'make browser' does it)"
        )


class Browser:
    """One headless Chromium with a fresh profile, and the checks the console tests make."""

    def __init__(self) -> None:
        check_installed()
        self.profile = Path(tempfile.mkdtemp(prefix="palermo-chromium-"))
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={self.profile}")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
        self.driver.set_page_load_timeout(WAIT_S)
        self.base = ""
        self.log: list[dict[str, Any]] = []

    def close(self) -> None:
        self.driver.quit()
        shutil.rmtree(self.profile, ignore_errors=True)

    # --- navigation -------------------------------------------------------------------------

    def go(self, base: str, path: str = "/") -> None:
        """Open ``path`` on the console at ``base`` (``http://127.0.0.1:PORT``)."""
        self.base = base
        self.driver.get(base + path)
        self.collect()

    def login(self, base: str, username: str, password: str) -> None:
        """A fresh session as ``username`` on the console at ``base``."""
        # Cookies are deleted for the current page's host, from a page without an event
        # stream (an open inbox would reconnect with no session and log the refusal).
        self.driver.get(base + "/static/favicon.svg")
        self.driver.delete_all_cookies()
        self.go(base, "/login")
        self.find("input[name=name]").send_keys(username)
        self.find("input[name=password]").send_keys(password)
        self.find("form button[type=submit]").click()
        self.wait(lambda d: "/login" not in d.current_url, "login to leave the login page")
        self.base = base

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str) -> list[WebElement]:
        return list(self.driver.find_elements(By.CSS_SELECTOR, css))

    def wait(self, condition: Any, what: str, within: float = WAIT_S) -> Any:
        try:
            return WebDriverWait(self.driver, within, poll_frequency=0.05).until(condition)
        except TimeoutException as exc:
            raise AssertionError(f"not within {within:g}s: {what}") from exc

    def wait_for(self, css: str, what: str, within: float = WAIT_S) -> WebElement:
        found: WebElement = self.wait(
            lambda d: (d.find_elements(By.CSS_SELECTOR, css) or [None])[0], what, within
        )
        return found

    # --- what went wrong --------------------------------------------------------------------

    def collect(self) -> list[dict[str, Any]]:
        """Move the browser's new console entries into :attr:`log` (the driver hands each
        entry out once)."""
        entries: list[dict[str, Any]] = self.driver.get_log("browser")
        self.log += entries
        return entries

    def forget(self) -> None:
        """Start a new record of console entries (what an earlier test caused is not this
        test's error)."""
        self.collect()
        self.log = []

    def errors(self) -> list[str]:
        """Every console error so far: script errors, failed loads, CSP refusals."""
        self.collect()
        return [e["message"] for e in self.log if e["level"] == "SEVERE"]

    def dialog(self) -> str | None:
        """The text of an open alert/confirm/prompt (a script that ran), if any."""
        try:
            return str(self.driver.switch_to.alert.text)
        except NoAlertPresentException:
            return None

    # --- artefacts and accessibility --------------------------------------------------------

    def screenshot(self, name: str) -> Path:
        """The whole page as ``build/screenshots/<name>.png`` (``make screenshots`` copies it
        to docs/img/console/)."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        self.driver.set_window_size(1280, max(900, min(int(height) + 40, 4000)))
        path = SCREENSHOTS / f"{name}.png"
        self.driver.save_screenshot(str(path))
        self.driver.set_window_size(1280, 900)
        return path

    def axe(self) -> list[dict[str, Any]]:
        """axe-core's violations on the current page (WCAG 2.x A and AA rules).

        Injected through WebDriver, which the page's CSP does not govern; the console never
        serves axe-core itself.
        """
        self.driver.execute_script(AXE.read_text(encoding="utf-8"))
        self.driver.set_script_timeout(WAIT_S)
        result = self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "axe.run(document, {runOnly: {type: 'tag', values: "
            "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})"
            ".then(r => done(JSON.stringify(r.violations)), e => done(JSON.stringify("
            "[{id: 'axe-error', help: String(e), nodes: []}])));"
        )
        violations: list[dict[str, Any]] = json.loads(result)
        return violations

    def tab_order(self, limit: int = 400) -> list[WebElement]:
        """The elements focus visits pressing Tab from the top of the page, once round."""
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.keys import Keys

        self.driver.execute_script(
            "document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0);"
        )
        body = self.find("body")
        self.driver.execute_script("arguments[0].focus()", body)
        seen: list[WebElement] = []
        for _ in range(limit):
            ActionChains(self.driver).send_keys(Keys.TAB).perform()
            active: WebElement = self.driver.switch_to.active_element
            if active.tag_name == "body" or (seen and active == seen[0]):
                break
            seen.append(active)
        return seen

    def focusable(self) -> list[WebElement]:
        """Every control a keyboard user must reach: links, buttons, inputs, selects,
        text areas and summaries, when rendered and enabled."""
        found: list[WebElement] = self.driver.execute_script(
            "return Array.from(document.querySelectorAll("
            "'a[href], button, input:not([type=hidden]), select, textarea, summary, "
            '[tabindex]:not([tabindex="-1"])\')).filter(e => !e.disabled && '
            "e.getClientRects().length > 0)"
        )
        return found


@contextmanager
def browser() -> Iterator[Browser]:
    b = Browser()
    try:
        yield b
    finally:
        b.close()

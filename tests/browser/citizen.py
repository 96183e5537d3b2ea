"""A citizen in headless Chromium (Debian's package, driven by Playwright): every page it visits
can be audited with axe-core at WCAG 2.1 A and AA and photographed for review."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import axe_playwright_python
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Request, Response

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("PORTVAKT_SCREENSHOTS", ROOT / "test-artifacts" / "screenshots"))
AXE_SOURCE = (Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text()
WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
MOBILE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
NARROWEST = 320  # WCAG 2.1 SC 1.4.10 Reflow: no horizontal scrolling at 320 CSS px
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_executable() -> str:
    """Debian's chromium; a missing browser fails the run loudly, never skips it."""
    path = os.environ.get("PORTVAKT_CHROMIUM") or shutil.which("chromium")
    if path is None:
        raise RuntimeError(
            "chromium is not installed; run `make test` (it installs it) or "
            "`apt-get install chromium`, or set PORTVAKT_CHROMIUM to a Chromium binary"
        )
    return path


class Citizen:
    """One browser profile (its own cookies) with the audit trail of what it loaded."""

    def __init__(
        self, browser: Browser, gateway_url: str, locale: str, javascript: bool = True
    ) -> None:
        self.gateway_url = gateway_url
        self.locale = locale
        self.context: BrowserContext = browser.new_context(
            locale={"sv": "sv-SE", "en": "en-GB"}[locale],
            viewport=MOBILE,
            java_script_enabled=javascript,
        )
        self.context.set_default_timeout(10_000)
        self.page: Page = self.context.new_page()
        self.requests: list[str] = []
        self.failed_resources: list[str] = []
        self.console_errors: list[str] = []
        self.page.on("request", self._record_request)
        self.page.on("response", self._record_response)
        self.page.on("console", self._record_console)

    def _record_request(self, request: Request) -> None:
        self.requests.append(request.url)

    def _record_response(self, response: Response) -> None:
        """A page may answer 400 on purpose; a stylesheet, image or icon may not fail."""
        if response.request.resource_type != "document" and response.status >= 400:
            self.failed_resources.append(f"{response.status} {response.url}")

    def _record_console(self, message: ConsoleMessage) -> None:
        # Chromium reports every HTTP error status here too; those are judged by their response.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.console_errors.append(message.text)

    def close(self) -> None:
        self.context.close()

    def goto(self, path: str) -> Page:
        self.page.goto(f"{self.gateway_url}{path}")
        return self.page

    def audit(self, name: str) -> None:
        """axe-core at WCAG 2.1 A/AA, reflow at 320 px, and screenshots (mobile and desktop).

        axe runs through the DevTools protocol, which the page's strict CSP does not govern, so
        the page under test is exactly what a citizen gets.
        """
        page = self.page
        page.evaluate(AXE_SOURCE)
        options = {"runOnly": {"type": "tag", "values": WCAG_21_AA}, "resultTypes": ["violations"]}
        result: dict[str, Any] = page.evaluate("options => axe.run(document, options)", options)
        violations = [
            {
                "rule": violation["id"],
                "impact": violation["impact"],
                "help": violation["help"],
                "nodes": [node["html"][:160] for node in violation["nodes"]][:5],
            }
            for violation in result["violations"]
        ]
        assert violations == [], f"{name} ({self.locale}): {json.dumps(violations, indent=2)}"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SCREENSHOTS / f"{name}-{self.locale}.png", full_page=True)
        page.set_viewport_size(DESKTOP)
        page.screenshot(path=SCREENSHOTS / f"{name}-{self.locale}-desktop.png", full_page=True)
        page.set_viewport_size({"width": NARROWEST, "height": 640})
        overflow = page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= NARROWEST, f"{name} ({self.locale}) scrolls sideways at 320 px"
        page.set_viewport_size(MOBILE)

    def third_party_requests(self) -> list[str]:
        return [url for url in self.requests if not url.startswith(self.gateway_url)]

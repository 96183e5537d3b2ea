from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from gateway.demo.defaults import simulated_bankid
from tests.browser.citizen import CHROMIUM_FLAGS, Citizen, chromium_executable
from tests.harness import LiveGateway, base_settings, free_port

ROOT = Path(__file__).resolve().parents[2]
DEMO_RP_SECRET = "demo-rp-secret-for-browser-tests"


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """Per module: Playwright's sync API keeps an event loop running in the main thread while
    it is open, which the async tests of other modules (pytest-asyncio) must not meet."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_executable(), args=CHROMIUM_FLAGS
        )
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def site() -> Iterator[LiveGateway]:
    """The demo e-service, branded, with three e-IDs so that the chooser shows; BankID runs
    against the simulator that `demo: true` mounts."""
    issuer = f"http://127.0.0.1:{free_port()}"
    settings = base_settings(
        issuer,
        demo=True,
        providers={
            "sandbox": {"type": "sandbox"},
            "testid": {
                "type": "sandbox",
                "display": {"sv": "Test-ID på nivå 2", "en": "Test ID at level 2"},
                "hint": {
                    "sv": "Testpersoner med lägre tillitsnivå",
                    "en": "Test persons at a lower level of assurance",
                },
                "loa": "http://id.elegnamnden.se/loa/1.0/loa2",
            },
            "bankid": simulated_bankid(issuer),
        },
        clients=[
            {
                "client_id": "demo-rp",
                "client_secret": DEMO_RP_SECRET,
                "redirect_uris": [f"{issuer}/demo/callback"],
                "post_logout_redirect_uris": [f"{issuer}/demo/"],
                "backchannel_logout_uri": f"{issuer}/demo/backchannel-logout",
                "display": {"sv": "Bygglov i Exempelby", "en": "Building permits, Exempelby"},
                "branding": {
                    "logo": str(ROOT / "config" / "logos" / "kommun.svg"),
                    "colour": "#4a1d6e",
                },
            }
        ],
    )
    with LiveGateway(settings) as live:
        yield live


CitizenFactory = Callable[..., Citizen]


@pytest.fixture
def citizen(chromium: Browser, site: LiveGateway) -> Iterator[CitizenFactory]:
    opened: list[Citizen] = []

    def open_browser(locale: str = "sv", javascript: bool = True) -> Citizen:
        person = Citizen(chromium, site.url, locale, javascript)
        opened.append(person)
        return person

    yield open_browser
    for person in opened:
        person.close()

"""The e-service's own logo (`logo_uri`, served from its own origin) on the chooser, in real
Chromium: it loads under the page's Content-Security-Policy, carries the e-service's name as its
alternative text in the citizen's language, and axe-core finds no violation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Browser, expect
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.browser.citizen import Citizen
from tests.harness import REDIRECT_URI, LiveGateway, ServedApp, base_settings, free_port

ROOT = Path(__file__).resolve().parents[2]
NAMES = {"sv": "Bygglov i Exempelby", "en": "Building permits, Exempelby"}


@pytest.fixture(scope="module")
def logo_site() -> Iterator[str]:
    logo = (ROOT / "config" / "logos" / "kommun.svg").read_bytes()

    async def serve(_request: Request) -> Response:
        return Response(logo, media_type="image/svg+xml")

    served = ServedApp(Starlette(routes=[Route("/logo.svg", serve)]), free_port())
    with served:
        yield f"http://127.0.0.1:{served.port}/logo.svg"


@pytest.fixture(scope="module")
def site(logo_site: str) -> Iterator[LiveGateway]:
    issuer = f"http://127.0.0.1:{free_port()}"
    settings = base_settings(
        issuer,
        providers={"sandbox": {"type": "sandbox"}, "other": {"type": "sandbox"}},
        clients=[
            {
                "client_id": "bygglov",
                "client_secret": "s",
                "redirect_uris": [REDIRECT_URI],
                "display": NAMES,
                "logo_uri": logo_site,
            }
        ],
    )
    with LiveGateway(settings) as live:
        yield live


@pytest.mark.parametrize("locale", ["sv", "en"])
def test_the_chooser_shows_the_e_services_logo_and_name(
    chromium: Browser, site: LiveGateway, logo_site: str, locale: str
) -> None:
    citizen = Citizen(chromium, site.url, locale)
    try:
        query = {"client_id": "bygglov", "redirect_uri": REDIRECT_URI, "response_type": "code",
                 "scope": "openid", "state": "s1"}  # fmt: skip
        page = citizen.goto(f"/authorize?{urlencode(query)}")
        logo = page.get_by_role("img", name=NAMES[locale])
        expect(logo).to_be_visible()
        expect(logo).to_have_attribute("src", logo_site)
        assert logo.evaluate("image => image.complete && image.naturalWidth > 0")
        expect(page.locator(".client-band")).to_contain_text(NAMES[locale])
        citizen.audit("chooser-eservice-logo")
        assert citizen.third_party_requests() == [logo_site]
        assert citizen.failed_resources == []
        assert citizen.console_errors == []  # a CSP violation would be reported here
    finally:
        citizen.close()

"""The SAML provider's own pages in a real browser: the IdP page and the HTTP-POST binding's
hand-off page, audited like every citizen page (axe-core WCAG 2.1 AA, reflow, screenshots), and
a whole login through the test IdP from the demo e-service."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx2
import pytest
from playwright.sync_api import Browser, expect

from tests.browser.citizen import Citizen
from tests.browser.conftest import DEMO_RP_SECRET
from tests.doubles.saml_idp import LOA3, FakeIdP, SpView, aggregate, make_key_pair
from tests.harness import LiveGateway, ServedApp, base_settings, free_port


@dataclass
class SamlSite:
    gateway: LiveGateway
    idps: list[FakeIdP]


@pytest.fixture(scope="module")
def saml_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SamlSite]:
    keys = tmp_path_factory.mktemp("browser-saml")
    idps = [
        FakeIdP(
            f"https://idp-{name.lower()}.test.example/idp",
            f"http://127.0.0.1:{free_port()}",
            make_key_pair(keys, f"idp-{name.lower()}"),
            display={"sv": f"Test-IdP {name}", "en": f"Test IdP {name}"},
        )
        for name in ("Alfa", "Beta")
    ]
    federation = make_key_pair(keys, "federation")
    (keys / "aggregate.xml").write_bytes(
        aggregate([idp.entity_descriptor() for idp in idps], federation)
    )
    sign, enc = make_key_pair(keys, "sp-sign"), make_key_pair(keys, "sp-enc")
    issuer = f"http://127.0.0.1:{free_port()}"
    settings = base_settings(
        issuer,
        demo=True,
        providers={
            "sc": {
                "type": "saml",
                "entity_id": "https://portvakt.test.example/sp",
                "signing": {"key": str(sign.key), "cert": str(sign.cert)},
                "encryption": {"key": str(enc.key), "cert": str(enc.cert)},
                "metadata": {"file": str(keys / "aggregate.xml"), "cert": str(federation.cert)},
                "binding": "post",
                "loa": [LOA3],
            }
        },
        clients=[
            {
                "client_id": "demo-rp",
                "client_secret": DEMO_RP_SECRET,
                "redirect_uris": [f"{issuer}/demo/callback"],
                "display": {"sv": "Bygglov i Exempelby", "en": "Building permits, Exempelby"},
            }
        ],
    )
    servers = [ServedApp(idp.app, int(idp.base_url.rsplit(":", 1)[1])) for idp in idps]
    with LiveGateway(settings) as live:
        metadata = httpx2.get(f"{live.url}/providers/sc/metadata").content
        for idp, server in zip(idps, servers, strict=True):
            idp.sp = SpView.from_metadata(metadata)
            server.__enter__()
        yield SamlSite(live, idps)
        for server in servers:
            server.__exit__(None, None, None)


@pytest.mark.parametrize(("locale", "choose"), [("sv", "Välj var"), ("en", "Choose where")])
def test_the_idp_page_and_a_whole_saml_login(
    chromium: Browser, saml_site: SamlSite, locale: str, choose: str
) -> None:
    person = Citizen(chromium, saml_site.gateway.url, locale, javascript=True)
    try:
        page = person.goto("/demo/")
        page.get_by_role("button", name=re.compile("Logga in|Log in")).click()
        expect(page.get_by_role("heading", level=1)).to_contain_text(choose)
        person.audit("saml-idp")
        page.get_by_role("button", name=re.compile("Beta")).click()
        page.get_by_role("button", name="Skicka till tjänsten").click()  # at the test IdP
        expect(page.get_by_text(re.compile("Du är inloggad|You are logged in"))).to_be_visible()
        expect(page.locator("pre.claims").first).to_contain_text("196408233234")
        assert saml_site.idps[1].requests[-1].binding.endswith("HTTP-POST")
        assert person.console_errors == []
    finally:
        person.close()


@pytest.mark.parametrize("javascript", [True, False])
def test_the_post_binding_hand_off_page(
    chromium: Browser, saml_site: SamlSite, javascript: bool
) -> None:
    """With JavaScript the page sends itself on; here its script is held back so that axe sees
    the page a citizen without JavaScript gets, and the Continue button does the sending."""
    walker = Citizen(chromium, saml_site.gateway.url, "sv", javascript=javascript)
    try:
        page = walker.goto("/demo/")
        page.route(
            "**/static/autosubmit.js",
            lambda route: route.fulfill(body="", content_type="text/javascript"),
        )
        page.get_by_role("button", name="Logga in").click()
        page.get_by_role("button", name=re.compile("Alfa")).click()
        expect(page.get_by_role("heading", level=1)).to_have_text(
            "Du skickas vidare till din e-legitimation"
        )
        if javascript:
            walker.audit("saml-post")
        page.get_by_role("button", name="Fortsätt").click()
        page.get_by_role("button", name="Skicka till tjänsten").click()
        expect(page.get_by_text("Du är inloggad")).to_be_visible()
    finally:
        walker.close()

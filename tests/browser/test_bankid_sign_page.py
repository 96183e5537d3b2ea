"""BankID's order page of a sign flow in a real browser: it says the citizen is signing (sv, en),
passes axe-core, and the simulated app shows the sign message with a Sign button.

The BankID provider of this module's site is handed a SignRequest with every login, so that the
demo e-service needs no signing keys here (tests/providers/bankid/test_sign_end_to_end.py signs
through /authorize)."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from dataclasses import replace
from urllib.parse import urlencode

import pytest
from playwright.sync_api import expect
from starlette.requests import Request
from starlette.responses import Response

from gateway.demo.defaults import simulated_bankid
from providers.bankid.config import BankIDConfig
from providers.bankid.provider import BankIDProvider
from providers.base import LoginContext, SignRequest, UserMessage
from providers.registry import PROVIDER_TYPES, ProviderType
from tests.browser.conftest import CitizenFactory
from tests.harness import LiveGateway, base_settings, free_port

MESSAGE = {"sv": "Jag ansöker om bygglov för Storgatan 1", "en": "I apply for a building permit"}
SIGN = SignRequest(UserMessage(MESSAGE), base64.b64encode(b"application 4711").decode())
HEADING = {"sv": "Skriv under med BankID", "en": "Sign with BankID"}
SIGNING = {"sv": "Du skriver under", "en": "You are signing"}


class SigningBankID(BankIDProvider):
    async def start(self, request: Request, login: LoginContext) -> Response:
        return await super().start(request, replace(login, sign=SIGN, force_authn=True))


@pytest.fixture(scope="module")
def site() -> Iterator[LiveGateway]:
    """Only the BankID simulator, whose every order is a sign order."""
    issuer = f"http://127.0.0.1:{free_port()}"
    settings = base_settings(
        issuer,
        demo=True,
        providers={"bankid": simulated_bankid(issuer)},
        clients=[
            {
                "client_id": "demo-rp",
                "client_secret": "demo-rp-secret",
                "redirect_uris": [f"{issuer}/demo/callback"],
                "display": {"sv": "Bygglov i Exempelby", "en": "Building permits, Exempelby"},
            }
        ],
    )
    signing = ProviderType("bankid", BankIDConfig, SigningBankID)
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(PROVIDER_TYPES, "bankid", signing)
        with LiveGateway(settings) as live:
            yield live


def authorize_path(site_url: str, locale: str) -> str:
    query = {
        "client_id": "demo-rp",
        "redirect_uri": f"{site_url}/demo/callback",
        "response_type": "code",
        "scope": "openid",
        "state": "s",
        "nonce": "n",
        "ui_locales": locale,
    }
    return f"/authorize?{urlencode(query)}"


@pytest.mark.parametrize("locale", ["sv", "en"])
def test_the_bankid_page_says_the_citizen_is_signing(citizen: CitizenFactory, locale: str) -> None:
    person = citizen(locale)
    page = person.goto(authorize_path(person.gateway_url, locale))
    expect(page.get_by_role("heading", level=1)).to_contain_text(HEADING[locale])
    expect(page).to_have_title(re.compile(HEADING[locale]))
    expect(page.locator("#bankid-signing")).to_contain_text(SIGNING[locale])
    expect(page.get_by_role("img", name=re.compile("QR"))).to_be_visible()
    expect(page.locator("#bankid-signing")).not_to_contain_text(MESSAGE[locale])
    person.audit("bankid-sign")
    with person.context.expect_page() as opened:
        page.locator("#bankid-phone").click()
    phone = opened.value
    expect(phone.locator("main")).to_contain_text(MESSAGE[locale])
    phone.get_by_role("button", name="Sign", exact=True).click()
    expect(phone.get_by_role("heading", level=1)).to_contain_text("Signed")
    expect(page).not_to_have_url(re.compile("/providers/bankid/"))  # the page's script moved on
    assert any("/demo/callback?code=" in url for url in person.requests)
    assert person.third_party_requests() == []
    assert person.console_errors == []

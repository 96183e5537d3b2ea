"""The sandbox's sign page (issue 21) in a real browser: marked TEST, says that the citizen is
signing, shows the sign message as inert text, accessible (axe-core) in Swedish and English, and
its Sign button leads back to the e-service with a code."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Dialog, expect

from tests.browser.conftest import CitizenFactory
from tests.harness import REDIRECT_URI, LiveGateway, base_settings, free_port
from tests.oidc.test_request_object import client as registered_client
from tests.oidc.test_request_object import signed

SIGN_REQUEST = "https://id.oidc.se/param/signRequest"
SIGN_SCOPES = ["openid", "https://id.oidc.se/scope/sign", "https://id.oidc.se/scope/signApproval"]
ATTACK = '<img src=x onerror="alert(1)"><script>alert(2)</script>'


@pytest.fixture(scope="module")
def site() -> Iterator[LiveGateway]:
    """The sandbox alone and one e-service allowed to sign, with registered keys."""
    issuer = f"http://127.0.0.1:{free_port()}"
    settings = base_settings(
        issuer,
        providers={"sandbox": {"type": "sandbox"}},
        clients=[registered_client("signer", scopes=SIGN_SCOPES)],
    )
    with LiveGateway(settings) as live:
        yield live


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def sign_path(issuer: str, locale: str, scope: str, tbs_data: str | None) -> str:
    request = {
        "iss": "signer",
        "aud": issuer,
        "sign_message": {
            "message#sv": b64(f"Jag ansöker om bygglov\n**Storgatan 1** {ATTACK}"),
            "message#en": b64(f"I apply for a building permit\n**Storgatan 1** {ATTACK}"),
            "mime_type": "text/markdown",
        },
        **({"tbs_data": tbs_data} if tbs_data else {}),
    }
    query = {
        "client_id": "signer",
        "redirect_uri": REDIRECT_URI,
        "response_type": "code",
        "scope": f"openid {scope}",
        "state": "s",
        "nonce": "n",
        "prompt": "login consent",
        "ui_locales": locale,
        SIGN_REQUEST: signed(request),
    }
    return f"/authorize?{urlencode(query)}"


@pytest.mark.parametrize(
    ("locale", "heading", "button"),
    [("sv", "Du skriver under", "Skriv under"), ("en", "You are signing", "Sign")],
)
def test_the_sign_page_says_it_signs_and_shows_the_message_as_text(
    citizen: CitizenFactory, locale: str, heading: str, button: str
) -> None:
    person = citizen(locale)
    dialogs: list[str] = []

    def dismiss(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    person.page.on("dialog", dismiss)
    tbs_data = b64("the application, as the e-service signs it")
    page = person.goto(
        sign_path(person.gateway_url, locale, "https://id.oidc.se/scope/sign", tbs_data)
    )
    page.get_by_role("button", name="Ingrid Testsson" if locale == "sv" else "Ingrid").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(heading)
    expect(page.get_by_role("heading", level=1)).to_contain_text("TEST")
    region = page.get_by_role("region")
    expect(region).to_contain_text(f"**Storgatan 1** {ATTACK}")
    assert region.locator("img, script, strong").count() == 0
    assert dialogs == []
    person.audit("sandbox-sign")
    with page.expect_request(lambda request: request.url.startswith(REDIRECT_URI)) as left:
        page.get_by_role("button", name=button, exact=True).click()
    assert "code=" in left.value.url


def test_the_approval_page_says_it_approves(citizen: CitizenFactory) -> None:
    person = citizen("en")
    page = person.goto(
        sign_path(person.gateway_url, "en", "https://id.oidc.se/scope/signApproval", None)
    )
    page.get_by_role("button", name="Ingrid").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("You are approving a signature")
    expect(page.get_by_role("button", name="Approve")).to_be_visible()
    person.audit("sandbox-sign-approval")

"""The login flow in a sign flow (issue 21): which providers are offered, the chooser saying a
signature is coming, and a signature that never came (`SignatureNotMade`). Two provider types
exist only here: one usable only for signing (`Signs.logs_in` False), one that claims to sign
but returns no signature."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from html import unescape
from typing import Any, Literal

import pytest
from starlette.requests import Request

from providers.base import Identity
from providers.registry import ProviderType, register, unregister
from providers.sandbox import SandboxConfig, SandboxProvider
from tests.harness import TEST_PERSON, Browser, LiveGateway, hidden_field, query_of, running_gateway
from tests.oidc.test_sign_request import CLIENTS, sign_params

AUTHN_PROVIDER = "https://id.oidc.se/param/authnProvider"


class SignOnlyConfig(SandboxConfig):
    type: Literal["sign-only"]  # type: ignore[assignment]


class SignOnlyProvider(SandboxProvider):
    """A provider for sign flows only, like a SAML signature-service SP."""

    @property
    def logs_in(self) -> bool:
        return False


class ForgetfulConfig(SandboxConfig):
    type: Literal["forgetful"]  # type: ignore[assignment]


class ForgetfulProvider(SandboxProvider):
    """Says it signs, shows the page, and loses the signature on the way back."""

    async def finish(self, request: Request) -> tuple[str, Identity]:
        login_id, identity = await super().finish(request)
        return login_id, replace(identity, user_signature=None)


ROWS = (
    ProviderType("sign-only", SignOnlyConfig, SignOnlyProvider),
    ProviderType("forgetful", ForgetfulConfig, ForgetfulProvider),
)
PROVIDERS: dict[str, Any] = {
    "sandbox": {"type": "sandbox"},
    "signing": {"type": "sign-only", "display": {"sv": "Underskrift", "en": "Signing only"}},
    "forgetful": {"type": "forgetful", "display": {"sv": "Glömsk", "en": "Forgetful"}},
}


@pytest.fixture(scope="module")
def live(store_url: str | None) -> Iterator[LiveGateway]:
    for row in ROWS:
        register(row)
    try:
        clients = [client for client in CLIENTS if "providers" not in client]
        with running_gateway(store_url, clients=clients, providers=PROVIDERS) as gateway:
            yield gateway
    finally:
        for row in ROWS:
            unregister(row.name)


@pytest.fixture
def citizen(live: LiveGateway) -> Iterator[Browser]:
    browser = Browser(live)
    yield browser
    browser.close()


def test_a_sign_only_provider_is_not_offered_for_a_login(citizen: Browser) -> None:
    chooser = citizen.authorize(**citizen.authorize_params("signer", ui_locales="en"))
    assert chooser.status_code == 200, chooser.text
    assert 'value="sandbox"' in chooser.text
    assert 'value="signing"' not in chooser.text
    assert "You are going to sign" not in chooser.text


def test_a_sign_flow_offers_the_sign_only_provider_and_says_it_signs(
    live: LiveGateway, citizen: Browser
) -> None:
    chooser = citizen.authorize(**sign_params(live, ui_locales="en"))
    assert chooser.status_code == 200, chooser.text
    assert 'value="signing"' in chooser.text and 'value="sandbox"' in chooser.text
    assert "You are going to sign." in chooser.text


def test_a_sign_only_provider_named_for_a_login_is_not_used(citizen: Browser) -> None:
    """authnProvider naming it for a plain login does not start it: the chooser shows."""
    params = citizen.authorize_params("signer", **{AUTHN_PROVIDER: "signing"})
    chooser = citizen.authorize(**params)
    assert chooser.status_code == 200, chooser.text
    assert 'value="signing"' not in chooser.text
    assert "/providers/signing/" not in chooser.text


def test_a_signature_that_never_came_is_not_signed(live: LiveGateway, citizen: Browser) -> None:
    """Signature Extension §5.2: no signature, an error; never an ID token without it."""
    page = citizen.authorize(**sign_params(live, ui_locales="en", **{AUTHN_PROVIDER: "forgetful"}))
    assert page.status_code == 200, page.text
    person = {**_form(page.text, pnr=TEST_PERSON)}
    picked = citizen.http.post("/providers/forgetful/login", data=person).headers["location"]
    assert picked.startswith(f"{live.url}/providers/forgetful/sign?")
    shown = citizen.http.get(picked)
    pressed = citizen.http.post("/providers/forgetful/sign", data=_form(shown.text, sign="1"))
    failed = citizen.http.get(pressed.headers["location"])
    assert failed.status_code == 400, failed.text
    assert "Underskriften gjordes inte" in failed.text  # the page speaks Swedish first
    back = _back_link(failed.text)
    assert back["error"] == "access_denied"
    assert "signature" in back["error_description"]


def _form(html: str, **fields: str) -> dict[str, str]:
    return {"login": hidden_field(html, "login"), "csrf": hidden_field(html, "csrf"), **fields}


def _back_link(html: str) -> dict[str, str]:
    match = re.search(r'href="(http://127\.0\.0\.1:9000/callback\?[^"]+)"', html)
    assert match is not None, "no way back to the e-service"
    return query_of(unescape(match.group(1)))

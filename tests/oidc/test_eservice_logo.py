"""The chooser shows the e-service's `logo_uri` with its name as the alternative text (SC.OIDC
§3.2 metadata, for any client that registers a logo), and only that page's Content-Security-
Policy lets images come from exactly that logo's origin."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx2
import pytest

from gateway.ops.security import CONTENT_SECURITY_POLICY
from tests.harness import REDIRECT_URI, Browser, LiveGateway, running_gateway
from tests.oidc.sweden_connect_clients import sweden_connect_client

AUTHN_PROVIDER = "https://id.oidc.se/param/authnProvider"


@pytest.fixture(scope="module")
def live() -> Iterator[LiveGateway]:
    clients = [
        sweden_connect_client("sc", logo_uri="https://logo.tjanst.example:8443/a/logo.svg"),
        {"client_id": "plain-logo", "client_secret": "s", "redirect_uris": [REDIRECT_URI],
         "logo_uri": "https://bilder.example/kommun.png"},
        {"client_id": "basic", "client_secret": "s", "redirect_uris": [REDIRECT_URI],
         "display": {"sv": "Bygglov", "en": "Building permits"}},
    ]  # fmt: skip
    providers = {"sandbox": {"type": "sandbox"}, "other": {"type": "sandbox"}}
    with running_gateway(None, clients=clients, providers=providers) as gateway:
        yield gateway


def chooser(live: LiveGateway, client: str, **extra: str) -> httpx2.Response:
    citizen = Browser(live)
    try:
        page = citizen.authorize(**citizen.authorize_params(client, **extra))
    finally:
        citizen.close()
    assert page.status_code == 200, page.text
    return page


def img_src(response: httpx2.Response) -> list[str]:
    policy = response.headers["content-security-policy"]
    [directive] = [d.strip() for d in policy.split(";") if d.strip().startswith("img-src ")]
    return directive.split()[1:]


def logos(response: httpx2.Response) -> list[tuple[str, str]]:
    return re.findall(r'<img class="eservice-logo" src="([^"]*)" alt="([^"]*)"', response.text)


@pytest.mark.parametrize(
    ("locale", "name"), [("sv", "Exempeltjänsten"), ("en", "The Example Service")]
)
def test_the_chooser_shows_the_logo_named_in_the_citizens_language(
    live: LiveGateway, locale: str, name: str
) -> None:
    page = chooser(live, "sc", ui_locales=locale)
    assert "Choose e-ID" in page.text or "Välj e-legitimation" in page.text
    assert logos(page) == [("https://logo.tjanst.example:8443/a/logo.svg", name)]
    assert img_src(page) == ["'self'", "data:", "https://logo.tjanst.example:8443"]
    rest = [d for d in page.headers["content-security-policy"].split("; ") if "img-src" not in d]
    assert rest == [d for d in CONTENT_SECURITY_POLICY.split("; ") if "img-src" not in d]


def test_a_client_without_the_profile_may_show_its_logo_too(live: LiveGateway) -> None:
    page = chooser(live, "plain-logo")
    assert logos(page) == [("https://bilder.example/kommun.png", "plain-logo")]
    assert img_src(page) == ["'self'", "data:", "https://bilder.example"]


def test_without_a_logo_the_policy_is_the_strict_one(live: LiveGateway) -> None:
    page = chooser(live, "basic")
    assert logos(page) == []
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY


def test_the_e_ids_own_page_keeps_the_strict_policy(live: LiveGateway) -> None:
    """Only the chooser shows the logo; the sandbox's page for the same login does not."""
    page = chooser(live, "sc", **{AUTHN_PROVIDER: "sandbox"})
    assert 'name="pnr"' in page.text
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY

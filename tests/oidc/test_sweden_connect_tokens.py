"""Token endpoint and userinfo for a client with `profile: sweden-connect`: only private_key_jwt
authenticates it (SC.OIDC 1.0 §2.3), and its userinfo is always a signed JWT (Swedish OIDC
Profile §4.1: "UserInfo responses MUST be signed"). Checked with PyJWT against our JWKS."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx2
import jwt as pyjwt
import pytest

from tests.harness import REDIRECT_URI, Browser, LiveGateway, code_form, running_gateway
from tests.oidc.sweden_connect_clients import client_assertion, sweden_connect_client


@pytest.fixture(scope="module")
def live(store_url: str | None) -> Iterator[LiveGateway]:
    clients = [
        sweden_connect_client("sc"),
        {"client_id": "basic", "client_secret": "basic-secret", "redirect_uris": [REDIRECT_URI]},
    ]
    with running_gateway(store_url, clients=clients) as gateway:
        yield gateway


def code_of(live: LiveGateway, client: str) -> dict[str, str]:
    citizen = Browser(live)
    try:
        return code_form(citizen.login(client))
    finally:
        citizen.close()


def post_token(
    live: LiveGateway, form: dict[str, str], headers: dict[str, str] | None = None
) -> httpx2.Response:
    return httpx2.post(f"{live.url}/token", data=form, headers=headers or {})


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


@pytest.mark.parametrize(
    ("extra", "headers"),
    [
        ({"client_id": "sc"}, None),
        ({"client_id": "sc", "client_secret": "anything"}, None),
        ({}, basic("sc", "anything")),
        ({}, basic("sc", "")),
    ],
    ids=["none", "client_secret_post", "client_secret_basic", "basic-empty-secret"],
)
def test_a_sweden_connect_client_authenticates_only_with_private_key_jwt(
    live: LiveGateway, extra: dict[str, str], headers: dict[str, str] | None
) -> None:
    response = post_token(live, {**code_of(live, "sc"), **extra}, headers)
    assert response.status_code in (400, 401), response.text
    assert response.json()["error"] == "invalid_client"
    assert "access_token" not in response.json()


def tokens(live: LiveGateway) -> dict[str, Any]:
    response = post_token(live, {**code_of(live, "sc"), **client_assertion(live, "sc")})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def verified(live: LiveGateway, token: str, audience: str) -> dict[str, Any]:
    key = pyjwt.PyJWKClient(f"{live.url}/jwks").get_signing_key_from_jwt(token)
    claims: dict[str, Any] = pyjwt.decode(
        token, key, algorithms=["RS256"], audience=audience, issuer=live.url
    )
    return claims


@pytest.mark.parametrize("accept", [None, "application/json", "application/jwt"])
def test_a_sweden_connect_client_always_gets_a_signed_userinfo(
    live: LiveGateway, accept: str | None
) -> None:
    issued = tokens(live)
    headers = {"Authorization": f"Bearer {issued['access_token']}"}
    if accept is not None:
        headers["Accept"] = accept
    response = httpx2.get(f"{live.url}/userinfo", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/jwt")
    claims = verified(live, response.text, "sc")
    assert claims["sub"] == verified(live, issued["id_token"], "sc")["sub"]
    assert claims["https://id.oidc.se/claim/personalIdentityNumber"] == "199908072391"


def test_without_the_profile_userinfo_stays_json(live: LiveGateway) -> None:
    form = code_of(live, "basic")
    issued = post_token(live, form, basic("basic", "basic-secret")).json()
    headers = {"Authorization": f"Bearer {issued['access_token']}"}
    response = httpx2.get(f"{live.url}/userinfo", headers=headers)
    assert response.headers["content-type"].startswith("application/json")

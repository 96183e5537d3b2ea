"""The proxy's LoA rewrite for a client with `profile: sweden-connect` (Registry §3.1.1.2,
Regler §1.2.3): the ID token never carries the eIDAS connector's `eidas-*`/`eidas-nf-*` URIs but
`uncertified-eidas-*`, and a request for those reaches the upstream as the eIDAS forms. A table
of real logins through a sandbox e-ID that delivers eIDAS LoAs; ID tokens checked with PyJWT."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx2
import jwt as pyjwt
import pytest

from tests.harness import (
    REDIRECT_URI,
    Browser,
    LiveGateway,
    hidden_field,
    query_of,
    running_gateway,
)
from tests.oidc.sweden_connect_clients import client_assertion, sweden_connect_client

ELN = "http://id.elegnamnden.se/loa/1.0/"
SC = "http://id.swedenconnect.se/loa/1.0/"
LOA3 = f"{ELN}loa3"
AUTHN_PROVIDER = "https://id.oidc.se/param/authnProvider"
CONNECTOR_LOA = [f"{ELN}eidas-nf-sub", f"{ELN}eidas-sub", f"{ELN}eidas-nf-high"]


@pytest.fixture(scope="module")
def live() -> Iterator[LiveGateway]:
    clients = [
        sweden_connect_client("sc"),
        {"client_id": "basic", "client_secret": "basic-secret", "redirect_uris": [REDIRECT_URI]},
    ]
    providers = {
        "connector": {"type": "sandbox", "loa": CONNECTOR_LOA},
        "sandbox": {"type": "sandbox", "loa": LOA3},
    }
    with running_gateway(None, clients=clients, providers=providers) as gateway:
        yield gateway


@pytest.fixture
def citizen(live: LiveGateway) -> Iterator[Browser]:
    person = Browser(live)
    yield person
    person.close()


def authorize(citizen: Browser, client: str, **extra: str) -> httpx2.Response:
    return citizen.authorize(**citizen.authorize_params(client, **extra))


def log_in(citizen: Browser, client: str, **extra: str) -> dict[str, str]:
    """The callback's query: a code after the sandbox login, or the error the request got."""
    page = authorize(citizen, client, **extra)
    if page.status_code != 200:
        return query_of(page.headers["location"])
    action = page.text.split('<form method="post" action="')[1].split('"')[0]
    form = {"login": hidden_field(page.text, "login"), "csrf": hidden_field(page.text, "csrf")}
    submitted = citizen.http.post(action, data={**form, "pnr": "199908072391"})
    return citizen.follow_to_client(submitted)


def id_token(live: LiveGateway, client: str, code: str) -> dict[str, Any]:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
    if client == "sc":
        response = httpx2.post(f"{live.url}/token", data={**form, **client_assertion(live, "sc")})
    else:
        response = httpx2.post(f"{live.url}/token", data=form, auth=("basic", "basic-secret"))
    assert response.status_code == 200, response.text
    keys = pyjwt.PyJWKClient(f"{live.url}/jwks")
    token = response.json()["id_token"]
    key = keys.get_signing_key_from_jwt(token)
    claims: dict[str, Any] = pyjwt.decode(token, key, algorithms=["RS256"], audience=client)
    return claims


@dataclass(frozen=True)
class Case:
    name: str
    client: str
    expected: str  # the ID token's acr, or the error the e-service gets
    asked: dict[str, str] = field(default_factory=dict)


def acr_claim(*values: str) -> str:
    return json.dumps({"id_token": {"acr": {"essential": True, "values": list(values)}}})


CASES = [
    Case("connector-default-becomes-uncertified", "sc", f"{SC}uncertified-eidas-sub",
         {AUTHN_PROVIDER: "connector"}),
    Case("uncertified-sub-asks-for-eidas-sub", "sc", f"{SC}uncertified-eidas-sub",
         {"acr_values": f"{SC}uncertified-eidas-sub"}),
    Case("uncertified-high-asks-for-eidas-high", "sc", f"{SC}uncertified-eidas-high",
         {"acr_values": f"{SC}uncertified-eidas-high"}),
    Case("uncertified-in-the-claims-request", "sc", f"{SC}uncertified-eidas-high",
         {"claims": acr_claim(f"{SC}uncertified-eidas-high")}),
    Case("uncertified-low-nobody-delivers", "sc", "unmet_authentication_requirements",
         {"acr_values": f"{SC}uncertified-eidas-low"}),
    Case("eidas-asked-directly-is-still-rewritten", "sc", f"{SC}uncertified-eidas-sub",
         {"acr_values": f"{ELN}eidas-sub"}),
    Case("loa3-is-left-alone", "sc", LOA3, {AUTHN_PROVIDER: "sandbox"}),
    Case("without-the-profile-eidas-passes-through", "basic", f"{ELN}eidas-nf-sub",
         {AUTHN_PROVIDER: "connector"}),
    Case("without-the-profile-uncertified-is-not-mapped", "basic",
         "unmet_authentication_requirements", {"acr_values": f"{SC}uncertified-eidas-sub"}),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_sweden_connect_acr(citizen: Browser, live: LiveGateway, case: Case) -> None:
    answer = log_in(citizen, case.client, **case.asked)
    if "code" not in answer:
        assert answer["error"] == case.expected
        return
    assert id_token(live, case.client, answer["code"])["acr"] == case.expected


def test_silent_login_for_uncertified_eidas_after_an_eidas_login(
    citizen: Browser, live: LiveGateway
) -> None:
    uncertified = f"{SC}uncertified-eidas-sub"
    assert "code" in log_in(citizen, "sc", acr_values=uncertified)
    again = log_in(citizen, "sc", acr_values=uncertified, prompt="none")
    assert id_token(live, "sc", again["code"])["acr"] == uncertified


def discovered_acr_values(**overrides: Any) -> list[str]:
    with running_gateway(None, **overrides) as gateway:
        metadata = httpx2.get(f"{gateway.url}/.well-known/openid-configuration").json()
    return list(metadata["acr_values_supported"])


def test_discovery_lists_the_uncertified_forms_when_a_client_has_the_profile() -> None:
    providers = {"connector": {"type": "sandbox", "loa": CONNECTOR_LOA}}
    assert discovered_acr_values(
        providers=providers, clients=[sweden_connect_client("sc")]
    ) == sorted([*CONNECTOR_LOA, f"{SC}uncertified-eidas-sub", f"{SC}uncertified-eidas-high"])


def test_discovery_without_a_sweden_connect_client_lists_what_providers_deliver() -> None:
    providers = {"connector": {"type": "sandbox", "loa": CONNECTOR_LOA}}
    assert discovered_acr_values(providers=providers) == sorted(CONNECTOR_LOA)


def test_no_uncertified_eidas_forms_without_an_eidas_provider() -> None:
    providers = {"sandbox": {"type": "sandbox", "loa": LOA3}}
    clients = [sweden_connect_client("sc")]
    assert discovered_acr_values(providers=providers, clients=clients) == [LOA3]

"""The proxy's duties to the e-service (RPar 1.1 §2.2, §2.3; Claims §2.3.5) and the person it
names (login_hint or a `claims` value), through the sandbox, over real HTTP, against MemoryStore
and a real Redis. The upstream kinds have their own tests under tests/providers/."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from html import unescape
from typing import Any

import httpx2
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.harness import (
    REDIRECT_URI,
    Browser,
    LiveGateway,
    query_of,
    running_gateway,
)
from tests.oidc.test_sso import code_form_for, id_token_of, silent, submit

AUTHN_PROVIDER_PARAMETER = "https://id.oidc.se/param/authnProvider"
AUTHN_PROVIDER_CLAIM = "https://id.oidc.se/claim/authnProvider"
ORIGINAL_CLIENT_ID = "https://id.oidc.se/param/originalClientId"
ORIGINAL_CLIENT_TOKEN = "https://id.oidc.se/param/originalClientToken"
PNR_CLAIM = "https://id.oidc.se/claim/personalIdentityNumber"
SANDBOX_URI = "urn:portvakt:sandbox"
LOA3 = "http://id.elegnamnden.se/loa/1.0/loa3"
LOA2 = "http://id.elegnamnden.se/loa/1.0/loa2"
ERIK = "199908072391"
INGRID = "196408233234"


@pytest.fixture(scope="module")
def gateway(store_url: str | None) -> Iterator[LiveGateway]:
    clients = [
        {"client_id": "basic", "client_secret": "basic-secret", "redirect_uris": [REDIRECT_URI]},
        {"client_id": "post", "client_secret": "post-secret", "redirect_uris": [REDIRECT_URI]},
    ]
    providers = {
        "sandbox": {"type": "sandbox", "loa": LOA3},
        "low": {"type": "sandbox", "loa": LOA2},
    }
    with running_gateway(store_url, clients=clients, providers=providers) as live:
        yield live


@pytest.fixture
def citizen(gateway: LiveGateway) -> Iterator[Browser]:
    person = Browser(gateway)
    yield person
    person.close()


def claims_request(number: str, target: str = "id_token") -> str:
    return json.dumps({target: {PNR_CLAIM: {"essential": True, "value": number}}})


def sandbox_page(citizen: Browser, client: str = "basic", **extra: str) -> httpx2.Response:
    page = silent(citizen, client, **{AUTHN_PROVIDER_PARAMETER: "sandbox", **extra})
    assert page.status_code == 200, page.text
    assert 'name="pnr"' in page.text
    return page


def refused_to_client(answer: httpx2.Response) -> dict[str, str]:
    """The citizen's error page, and the way back to the e-service it carries."""
    assert answer.status_code == 400, answer.text
    assert "code=" not in answer.text
    back = re.search(r'href="(http://127\.0\.0\.1:9000/callback[^"]*)"', answer.text)
    assert back is not None, answer.text
    return query_of(unescape(back.group(1)))


def redirected_error(response: httpx2.Response) -> dict[str, str]:
    assert response.status_code in (302, 303), response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI)
    return query_of(location)


def userinfo(gateway: LiveGateway, callback: dict[str, str], **extra: Any) -> dict[str, Any]:
    with httpx2.Client(base_url=gateway.url) as http:
        form = code_form_for(callback)
        tokens = http.post("/token", data=form, auth=("basic", "basic-secret")).json()
        claims = jwt.decode(
            tokens["id_token"], KeySet.import_key_set(http.get("/jwks").json())
        ).claims
        info = http.get(
            "/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        ).json()
    return {"id_token": claims, "userinfo": info, **extra}


# -- the authnProvider claim and parameter --------------------------------------------------------


def test_the_id_token_names_the_provider_that_authenticated(
    gateway: LiveGateway, citizen: Browser
) -> None:
    """Claims §2.3.5: released in the ID token always; at userinfo only when asked."""
    callback = citizen.follow_to_client(submit(citizen, sandbox_page(citizen)))
    both = userinfo(gateway, callback)
    assert both["id_token"][AUTHN_PROVIDER_CLAIM] == SANDBOX_URI
    assert AUTHN_PROVIDER_CLAIM not in both["userinfo"]


def test_userinfo_names_the_provider_when_the_claims_request_asks(
    gateway: LiveGateway, citizen: Browser
) -> None:
    asked = json.dumps({"userinfo": {AUTHN_PROVIDER_CLAIM: None}})
    page = sandbox_page(citizen, claims=asked)
    callback = citizen.follow_to_client(submit(citizen, page))
    assert userinfo(gateway, callback)["userinfo"][AUTHN_PROVIDER_CLAIM] == SANDBOX_URI


def test_discovery_declares_the_claim_and_the_original_client_parameters(
    gateway: LiveGateway,
) -> None:
    metadata = httpx2.get(f"{gateway.url}/.well-known/openid-configuration").json()
    assert AUTHN_PROVIDER_CLAIM in metadata["claims_supported"]
    assert metadata["https://id.oidc.se/disco/authnProviderSupported"] is True
    assert metadata["https://id.oidc.se/disco/originalClientIdSupported"] is True
    assert metadata["https://id.oidc.se/disco/originalClientTokenSupported"] is True


def test_the_claim_value_sent_back_selects_that_provider(citizen: Browser) -> None:
    """RPar §2.2: the authnProvider claim's value, sent back, skips the chooser."""
    page = silent(citizen, "basic", **{AUTHN_PROVIDER_PARAMETER: SANDBOX_URI})
    assert page.status_code == 200 and 'name="pnr"' in page.text  # both answer: the first


def test_an_unknown_authn_provider_value_shows_the_chooser(citizen: Browser) -> None:
    """RPar §2.2 leaves unknown values to the OP: the citizen chooses as without one."""
    page = silent(citizen, "basic", **{AUTHN_PROVIDER_PARAMETER: "https://unknown.example/idp"})
    assert page.status_code == 200
    assert 'value="sandbox"' in page.text and 'value="low"' in page.text
    assert 'name="pnr"' not in page.text


def test_a_session_answers_a_claim_value_it_came_from(
    gateway: LiveGateway, citizen: Browser
) -> None:
    first = citizen.follow_to_client(submit(citizen, sandbox_page(citizen)))
    assert "code" in first
    again = silent(citizen, "post", **{AUTHN_PROVIDER_PARAMETER: SANDBOX_URI, "prompt": "none"})
    assert "code" in redirected_error(again)


# -- originalClientId / originalClientToken --------------------------------------------------------


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({ORIGINAL_CLIENT_TOKEN: "not base64!"}, id="token-not-base64"),
        pytest.param({ORIGINAL_CLIENT_TOKEN: "a"}, id="token-one-character"),
        pytest.param({ORIGINAL_CLIENT_ID: "x" * 257}, id="client-id-too-long"),
        pytest.param({ORIGINAL_CLIENT_ID: ""}, id="client-id-empty"),
    ],
)
def test_malformed_original_client_parameters_are_invalid_requests(
    citizen: Browser, extra: dict[str, str]
) -> None:
    """RPar 1.1 §2.3.2: the token is a Base64 string."""
    answer = redirected_error(silent(citizen, "basic", **extra))
    assert answer["error"] == "invalid_request" and "code" not in answer


def test_well_formed_original_client_parameters_are_accepted(citizen: Browser) -> None:
    extra = {ORIGINAL_CLIENT_ID: "e-tjanst-1", ORIGINAL_CLIENT_TOKEN: "ZXlKaGJHY2lPaUo="}
    sandbox_page(citizen, **extra)


# -- the named person ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({"claims": claims_request("199908072392")}, id="claims-value-bad-digit"),
        pytest.param({"claims": claims_request("ingen")}, id="claims-value-no-number"),
        pytest.param(
            {"claims": claims_request(ERIK), "login_hint": INGRID}, id="hint-and-claims-differ"
        ),
        pytest.param(
            {
                "claims": json.dumps(
                    {
                        "id_token": {PNR_CLAIM: {"value": ERIK}},
                        "userinfo": {PNR_CLAIM: {"value": INGRID}},
                    }
                )
            },
            id="id-token-and-userinfo-differ",
        ),
    ],
)
def test_a_request_naming_no_valid_person_or_two_is_invalid(
    citizen: Browser, extra: dict[str, str]
) -> None:
    answer = redirected_error(silent(citizen, "basic", **extra))
    assert answer["error"] == "invalid_request" and "code" not in answer


def test_a_login_hint_that_is_no_number_names_nobody(citizen: Browser) -> None:
    page = sandbox_page(citizen, login_hint="erik@example.se")
    assert "code" in citizen.follow_to_client(submit(citizen, page, INGRID))


@pytest.mark.parametrize(
    "named",
    [
        pytest.param({"login_hint": ERIK}, id="login-hint"),
        pytest.param({"claims": claims_request(ERIK)}, id="claims-value-id-token"),
        pytest.param({"claims": claims_request(ERIK, "userinfo")}, id="claims-value-userinfo"),
    ],
)
def test_logging_in_as_another_person_than_named_is_refused(
    citizen: Browser, named: dict[str, str]
) -> None:
    page = sandbox_page(citizen, state="s-1", **named)
    submitted = submit(citizen, page, INGRID)
    answer = citizen.http.get(submitted.headers["location"])  # the sandbox's finish
    back = refused_to_client(answer)
    assert back["error"] == "access_denied" and back["state"] == "s-1"
    assert back["error_description"] == "another person than the one the e-service named logged in"
    assert "annan person än den e-tjänsten bad om" in answer.text


def test_the_named_person_logs_in(gateway: LiveGateway, citizen: Browser) -> None:
    page = sandbox_page(citizen, claims=claims_request(ERIK), login_hint=f"{ERIK[:8]}-{ERIK[8:]}")
    assert f'value="{ERIK}"' in page.text  # the sandbox pre-fills the named person
    callback = citizen.follow_to_client(submit(citizen, page, ERIK))
    assert id_token_of(gateway, callback, "basic")[PNR_CLAIM] == ERIK


def test_a_session_of_another_person_never_answers_silently(citizen: Browser) -> None:
    assert "code" in citizen.follow_to_client(submit(citizen, sandbox_page(citizen), ERIK))
    none = redirected_error(silent(citizen, "post", login_hint=INGRID, prompt="none"))
    assert none["error"] == "login_required"
    claimed = silent(
        citizen, "post", claims=claims_request(INGRID), **{AUTHN_PROVIDER_PARAMETER: "sandbox"}
    )
    assert claimed.status_code == 200 and 'name="pnr"' in claimed.text  # a fresh login
    same = redirected_error(silent(citizen, "post", claims=claims_request(ERIK), prompt="none"))
    assert "code" in same

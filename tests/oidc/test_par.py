"""Pushed authorization requests over HTTP (RFC 9126): the client authenticates at /par as at the
token endpoint, and the single-use request_uri it gets back is the only one /authorize accepts."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx2
import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tests.harness import (
    NO_RATE_LIMITS,
    NUMBER_SCOPE,
    REDIRECT_URI,
    Browser,
    LiveGateway,
    LoginResult,
    code_form,
    pkce_pair,
    query_of,
    running_gateway,
    token_request,
)

URN = "urn:ietf:params:oauth:request_uri:"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
JWKS = {"keys": [{**RSAAlgorithm.to_jwk(KEY.public_key(), as_dict=True), "kid": "k1"}]}


def secret_client(client_id: str, **extra: Any) -> dict[str, Any]:
    return {"client_id": client_id, "client_secret": f"{client_id}-secret",
            "redirect_uris": [REDIRECT_URI], **extra}  # fmt: skip


CLIENTS = [
    secret_client("basic"),
    secret_client("other"),
    secret_client("par-only", require_pushed_authorization_requests=True),
    {"client_id": "jar", "jwks": JWKS, "redirect_uris": [REDIRECT_URI]},
    {"client_id": "signed-only", "jwks": JWKS, "redirect_uris": [REDIRECT_URI],
     "require_signed_request_object": True},
    {"client_id": "spa", "redirect_uris": [REDIRECT_URI]},
]  # fmt: skip


@pytest.fixture(scope="module")
def live(store_url: str | None):
    with running_gateway(store_url, clients=CLIENTS) as gateway:
        yield gateway


@pytest.fixture
def citizen(live: LiveGateway):
    browser = Browser(live)
    yield browser
    browser.close()


def request_parameters(client_id: str = "basic", **extra: str) -> dict[str, str]:
    return {
        "client_id": client_id,
        "response_type": "code",
        "redirect_uri": REDIRECT_URI,
        "scope": f"openid {NUMBER_SCOPE}",
        "state": "pushed-state",
        "nonce": "pushed-nonce",
        **extra,
    }


def push(gateway: LiveGateway, form: dict[str, str], secret: str | None = None) -> httpx2.Response:
    auth = (form["client_id"], secret) if secret else None
    with httpx2.Client(base_url=gateway.url, timeout=10) as http:
        return http.post("/par", data=form, auth=auth)


def pushed_uri(gateway: LiveGateway, client_id: str = "basic", **extra: str) -> str:
    response = push(gateway, request_parameters(client_id, **extra), f"{client_id}-secret")
    assert response.status_code == 201, response.text
    return str(response.json()["request_uri"])


def jwt_now(issuer: str, aud: str, members: dict[str, Any]) -> str:
    now = int(time.time())
    claims = {"iss": issuer, "aud": aud, "iat": now, "exp": now + 60, "jti": str(uuid.uuid4())}
    return pyjwt.encode({**claims, **members}, KEY, algorithm="RS256", headers={"kid": "k1"})


def assertion_fields(gateway: LiveGateway, client_id: str) -> dict[str, str]:
    assertion = jwt_now(client_id, f"{gateway.url}/token", {"sub": client_id})
    return {"client_assertion_type": JWT_BEARER, "client_assertion": assertion}


def assert_oauth_error(response: httpx2.Response, error: str, status: int = 400) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"] == error, response.text


def assert_redirected(response: httpx2.Response, error: str) -> None:
    assert response.status_code == 302, response.text
    params = query_of(response.headers["location"])
    assert response.headers["location"].startswith(REDIRECT_URI + "?")
    assert params["error"] == error, params
    assert params["state"] == "query-state"


# --- what works ------------------------------------------------------------------------------


def test_a_pushed_request_is_answered_with_a_request_uri(live: LiveGateway) -> None:
    """RFC 9126 §2.2: 201, request_uri and expires_in, not to be cached."""
    response = push(live, request_parameters(), "basic-secret")
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["request_uri"].startswith(URN)
    assert len(body["request_uri"]) > len(URN) + 40  # the handle is a secret: long and random
    assert body["expires_in"] == 60


def test_a_pushed_request_logs_in(live: LiveGateway, citizen: Browser) -> None:
    """RFC 9126 §4: /authorize with client_id and request_uri only; the pushed state returns."""
    request_uri = pushed_uri(live)
    page = citizen.authorize(client_id="basic", request_uri=request_uri)
    assert page.status_code == 200, page.text
    callback = citizen.follow_to_client(citizen.submit_sandbox(page))
    assert callback["state"] == "pushed-state"
    form = code_form(LoginResult(callback, None))
    response = token_request(live, form, auth=("basic", "basic-secret"))
    assert response.status_code == 200, response.text


def test_a_pushed_request_object_with_private_key_jwt_reaches_the_login(
    live: LiveGateway, citizen: Browser
) -> None:
    """RFC 9126 §3: a signed `request` pushed, the client authenticated by private_key_jwt."""
    request = jwt_now("jar", live.url, request_parameters("jar"))
    form = {"client_id": "jar", "request": request, **assertion_fields(live, "jar")}
    response = push(live, form)
    assert response.status_code == 201, response.text
    page = citizen.authorize(client_id="jar", request_uri=response.json()["request_uri"])
    assert page.status_code == 200, page.text


def test_a_public_client_pushes_with_pkce_and_no_authentication(
    live: LiveGateway, citizen: Browser
) -> None:
    _, challenge = pkce_pair()
    form = request_parameters("spa", code_challenge=challenge, code_challenge_method="S256")
    response = push(live, form)
    assert response.status_code == 201, response.text
    page = citizen.authorize(client_id="spa", request_uri=response.json()["request_uri"])
    assert page.status_code == 200, page.text


# --- what is refused --------------------------------------------------------------------------


def test_a_request_uri_is_used_once(live: LiveGateway, citizen: Browser) -> None:
    request_uri = pushed_uri(live)
    outer = {"client_id": "basic", "request_uri": request_uri}
    assert citizen.authorize(**outer).status_code == 200
    again = {**outer, "redirect_uri": REDIRECT_URI, "state": "query-state"}
    assert_redirected(citizen.authorize(**again), "invalid_request_uri")


def test_another_clients_request_uri_is_refused(live: LiveGateway, citizen: Browser) -> None:
    request_uri = pushed_uri(live, "basic")
    outer = {"client_id": "other", "request_uri": request_uri, "redirect_uri": REDIRECT_URI,
             "state": "query-state"}  # fmt: skip
    assert_redirected(citizen.authorize(**outer), "invalid_request_uri")


def test_a_bad_request_uri_without_a_trusted_redirect_uri_gets_a_page(
    citizen: Browser,
) -> None:
    response = citizen.authorize(client_id="basic", request_uri=URN + "no-such-handle")
    assert response.status_code == 400
    assert "location" not in response.headers


@pytest.mark.parametrize(
    "request_uri",
    ["https://rp.example/request.jwt", "urn:ietf:params:oauth:request_uri:", URN + "x" * 500],
    ids=["foreign-https", "empty-handle", "huge-handle"],
)
def test_a_request_uri_not_from_our_par_endpoint_is_invalid_request_uri(
    citizen: Browser, request_uri: str
) -> None:
    """We never fetch a request_uri (RFC 9101 §5.2 leaves it optional): only our own URNs."""
    outer = {"client_id": "basic", "request_uri": request_uri, "redirect_uri": REDIRECT_URI,
             "state": "query-state"}  # fmt: skip
    assert_redirected(citizen.authorize(**outer), "invalid_request_uri")


@pytest.mark.parametrize(
    "form",
    [
        request_parameters(),
        {**request_parameters(), "client_secret": "wrong"},
        {**request_parameters("jar"), "client_assertion_type": JWT_BEARER,
         "client_assertion": "not.a.jwt"},
    ],
    ids=["no-authentication", "wrong-secret", "bad-assertion"],
)  # fmt: skip
def test_a_push_without_client_authentication_is_invalid_client(
    live: LiveGateway, form: dict[str, str]
) -> None:
    """RFC 9126 §2: the client authenticates as at the token endpoint."""
    assert_oauth_error(push(live, form), "invalid_client")


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"redirect_uri": "https://evil.example/cb"}, "invalid_request"),
        ({"scope": "profile"}, "invalid_scope"),
        ({"request_uri": URN + "x"}, "invalid_request"),
        ({"request": "not.a.jwt"}, "invalid_request_object"),
        ({"client_id": "other"}, "invalid_request"),
        ({"claims": "{not json"}, "invalid_request"),
    ],
    ids=["response-type", "redirect-uri", "no-openid", "request-uri", "bad-object",
         "another-client-id", "bad-claims"],
)  # fmt: skip
def test_a_pushed_request_is_validated_as_authorize_would(
    live: LiveGateway, extra: dict[str, str], error: str
) -> None:
    """RFC 9126 §2.1/§2.3: the same checks, answered as JSON errors."""
    form = {**request_parameters(), **extra}
    response = (
        push(live, form, "basic-secret") if "client_id" not in extra else push_as_basic(live, form)
    )
    assert_oauth_error(response, error)


def push_as_basic(gateway: LiveGateway, form: dict[str, str]) -> httpx2.Response:
    with httpx2.Client(base_url=gateway.url, timeout=10) as http:
        return http.post("/par", data=form, auth=("basic", "basic-secret"))


def test_require_pushed_authorization_requests_refuses_a_direct_request(
    live: LiveGateway, citizen: Browser
) -> None:
    """RFC 9126 §6 client metadata."""
    direct = citizen.authorize_params("par-only", state="query-state")
    assert_redirected(citizen.authorize(**direct), "invalid_request")
    request_uri = pushed_uri(live, "par-only")
    assert citizen.authorize(client_id="par-only", request_uri=request_uri).status_code == 200


def test_require_signed_request_object_holds_at_par_too(live: LiveGateway) -> None:
    """RFC 9101 §10.5: plain parameters pushed by such a client are refused."""
    form = {**request_parameters("signed-only"), **assertion_fields(live, "signed-only")}
    assert_oauth_error(push(live, form), "invalid_request")


def test_par_is_rate_limited_like_the_token_endpoint(store_url: str | None) -> None:
    limits = {**NO_RATE_LIMITS, "token_per_client_per_minute": 2}
    with running_gateway(store_url, clients=CLIENTS, rate_limits=limits) as gateway:
        statuses = [push(gateway, request_parameters(), "basic-secret").status_code
                    for _ in range(3)]  # fmt: skip
        assert statuses == [201, 201, 429]


def test_discovery_says_what_is_supported(live: LiveGateway) -> None:
    """OIDC Discovery §3, RFC 9101 §10.4, RFC 9126 §5: exactly what works, no encryption."""
    with httpx2.Client(base_url=live.url) as http:
        metadata = http.get("/.well-known/openid-configuration").json()
    assert metadata["pushed_authorization_request_endpoint"] == f"{live.url}/par"
    assert metadata["require_pushed_authorization_requests"] is False
    assert metadata["request_parameter_supported"] is True
    assert metadata["request_uri_parameter_supported"] is True
    assert metadata["require_request_uri_registration"] is False
    assert set(metadata["request_object_signing_alg_values_supported"]) == {
        "RS256", "PS256", "ES256", "none"
    }  # fmt: skip
    assert not any(key.startswith("request_object_encryption") for key in metadata)

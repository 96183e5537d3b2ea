"""Request objects by value (RFC 9101, OIDC Core §6.1, OIDC Sweden §2.1.7), signed with PyJWT
(not the gateway's JOSE library) by clients whose keys are registered in `jwks` or `jwks_uri`."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import httpx2
import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from tests.doubles.client_jwks import PublishedKeys
from tests.harness import (
    NUMBER_SCOPE,
    REDIRECT_URI,
    TEST_PERSON,
    Browser,
    LiveGateway,
    LoginResult,
    code_form,
    query_of,
    running_gateway,
)

OTHER_REDIRECT_URI = "http://127.0.0.1:9000/other"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
PNR_CLAIM = "https://id.oidc.se/claim/personalIdentityNumber"
LOA3 = "http://id.elegnamnden.se/loa/1.0/loa3"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
STRANGER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwks() -> dict[str, Any]:
    rsa_jwk = RSAAlgorithm.to_jwk(RSA_KEY.public_key(), as_dict=True)
    ec_jwk = ECAlgorithm.to_jwk(EC_KEY.public_key(), as_dict=True)
    return {"keys": [{**rsa_jwk, "kid": "rsa-1"}, {**ec_jwk, "kid": "ec-1"}]}


def client(client_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "client_id": client_id,
        "redirect_uris": [REDIRECT_URI, OTHER_REDIRECT_URI],
        **({"jwks": public_jwks()} if "jwks_uri" not in extra else {}),
        **extra,
    }


CLIENTS = [
    client("jar"),
    client("other"),
    client("rs256-only", request_object_signing_alg="RS256"),
    client("unsigned-ok", request_object_signing_alg="none"),
    client("signed-only", require_signed_request_object=True),
]


@pytest.fixture(scope="module")
def live(store_url: str | None):
    with running_gateway(store_url, clients=CLIENTS) as gateway:
        yield gateway


@pytest.fixture
def citizen(live: LiveGateway):
    browser = Browser(live)
    yield browser
    browser.close()


def claims(gateway: LiveGateway, client_id: str = "jar", **members: Any) -> dict[str, Any]:
    """What a JAR client puts in its object: the request's parameters and the JWT's claims."""
    now = int(time.time())
    made = {
        "iss": client_id,
        "aud": gateway.url,
        "iat": now,
        "exp": now + 300,
        "jti": str(uuid.uuid4()),
        "client_id": client_id,
        "response_type": "code",
        "redirect_uri": REDIRECT_URI,
        "scope": f"openid {NUMBER_SCOPE}",
        "state": "object-state",
        "nonce": "object-nonce",
    }
    made.update(members)
    return {name: value for name, value in made.items() if value is not None}


def signed(
    payload: dict[str, Any], alg: str = "RS256", key: Any = None, kid: str | None = None
) -> str:
    key = key or (EC_KEY if alg.startswith("ES") else RSA_KEY)
    kid = kid or ("ec-1" if alg.startswith("ES") else "rsa-1")
    return pyjwt.encode(payload, key, algorithm=alg, headers={"kid": kid})


def unsigned(payload: dict[str, Any]) -> str:
    return pyjwt.encode(payload, None, algorithm="none")


def b64(data: dict[str, Any] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def query(client_id: str = "jar", **extra: str) -> dict[str, str]:
    """The outer request: client_id, plus what the test adds (a trusted redirect_uri lets an
    error redirect)."""
    return {"client_id": client_id, **extra}


def assert_redirected(response: httpx2.Response, error: str, state: str = "query-state") -> None:
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI + "?"), location
    params = query_of(location)
    assert params["error"] == error, params
    assert params["state"] == state
    assert "code" not in params


def assert_error_page(response: httpx2.Response) -> None:
    assert response.status_code == 400, response.text
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")


def token_with_assertion(gateway: LiveGateway, form: dict[str, str], client_id: str) -> dict:
    now = int(time.time())
    assertion = signed(
        {
            "iss": client_id,
            "sub": client_id,
            "aud": f"{gateway.url}/token",
            "iat": now,
            "exp": now + 60,
            "jti": str(uuid.uuid4()),
        }
    )
    form = {**form, "client_assertion_type": JWT_BEARER, "client_assertion": assertion}
    with httpx2.Client(base_url=gateway.url, timeout=10) as http:
        response = http.post("/token", data=form)
    assert response.status_code == 200, response.text
    return pyjwt.decode(response.json()["id_token"], options={"verify_signature": False})


# --- what works ------------------------------------------------------------------------------


def test_a_signed_request_objects_values_win_over_the_query(
    live: LiveGateway, citizen: Browser
) -> None:
    """OIDC Core §6.3.3: scope, state, nonce and redirect_uri from the object, not the query;
    numbers (max_age) and objects (claims) arrive as the text a query would carry."""
    claims_request = {"id_token": {"acr": {"essential": True, "values": [LOA3]}}}
    made = claims(live, max_age=3600, claims=claims_request)
    outer = query(
        request=signed(made), redirect_uri=OTHER_REDIRECT_URI, scope="openid",
        state="query-state", nonce="query-nonce", response_type="code",
    )  # fmt: skip
    page = citizen.authorize(**outer)
    assert page.status_code == 200, page.text
    submitted = citizen.submit_sandbox(page)
    callback = citizen.follow_to_client(submitted)
    assert callback["state"] == "object-state"
    form = code_form(LoginResult(callback, None))
    id_token = token_with_assertion(live, form, "jar")
    assert id_token["nonce"] == "object-nonce"
    assert id_token[PNR_CLAIM] == TEST_PERSON
    assert id_token["acr"] == LOA3


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256"])
def test_each_accepted_algorithm_reaches_the_login(
    live: LiveGateway, citizen: Browser, alg: str
) -> None:
    page = citizen.authorize(**query(request=signed(claims(live), alg)))
    assert page.status_code == 200, page.text


def test_aud_may_be_the_authorization_endpoint(live: LiveGateway, citizen: Browser) -> None:
    """OIDC Sweden §2.1.7: the issuer or the authorization endpoint URL."""
    made = claims(live, aud=[f"{live.url}/authorize"])
    assert citizen.authorize(**query(request=signed(made))).status_code == 200


def test_a_request_object_may_be_posted(live: LiveGateway, citizen: Browser) -> None:
    response = citizen.http.post("/authorize", data=query(request=signed(claims(live))))
    assert response.status_code == 200, response.text


def test_an_unsigned_object_from_a_client_registered_for_none_is_accepted(
    live: LiveGateway, citizen: Browser
) -> None:
    made = claims(live, "unsigned-ok")
    assert citizen.authorize(**query("unsigned-ok", request=unsigned(made))).status_code == 200


def test_request_objects_verify_with_keys_from_a_jwks_uri(store_url: str | None) -> None:
    with PublishedKeys(*public_jwks()["keys"]) as published:
        clients = [client("by-uri", jwks_uri=published.url)]
        with running_gateway(store_url, clients=clients) as gateway:
            browser = Browser(gateway)
            try:
                made = claims(gateway, "by-uri")
                page = browser.authorize(**query("by-uri", request=signed(made, "ES256")))
                assert page.status_code == 200, page.text
            finally:
                browser.close()


# --- what is refused --------------------------------------------------------------------------


def refusals(gateway: LiveGateway) -> dict[str, str]:
    now = int(time.time())
    good = claims(gateway)
    return {
        "malformed": "not.a.jwt",
        "two-parts": "e30.e30",
        "deeply-nested": b64({"alg": "RS256"}) + "." + b64(b"[" * 3000 + b"]" * 3000) + ".c2ln",
        "oversized": signed(claims(gateway, padding="x" * 40_000)),
        "encrypted": ".".join([b64({"alg": "RSA-OAEP", "enc": "A256GCM"}), "a", "b", "c", "d"]),
        "unsigned-without-registration": unsigned(good),
        "hmac": pyjwt.encode(good, "a-shared-secret-of-32-bytes-long!", algorithm="HS256"),
        "rs384-not-accepted": signed(good, "RS384"),
        "wrong-key": signed(good, key=STRANGER_KEY),
        "unknown-kid": signed(good, kid="nobody"),
        "signature-cut": signed(good)[:-10],
        "expired": signed(claims(gateway, iat=now - 900, exp=now - 600)),
        "no-exp": signed(claims(gateway, exp=None)),
        "lives-too-long": signed(claims(gateway, exp=now + 2 * 3600, iat=None)),
        "not-yet-valid": signed(claims(gateway, nbf=now + 600)),
        "no-jti": signed(claims(gateway, jti=None)),
        "jti-not-a-string": signed(claims(gateway, jti=42)),
        "another-clients-iss": signed(claims(gateway, iss="other")),
        "another-clients-client-id": signed(claims(gateway, client_id="other")),
        "no-iss": signed(claims(gateway, iss=None)),
        "wrong-aud": signed(claims(gateway, aud="https://elsewhere.example")),
        "no-aud": signed(claims(gateway, aud=None)),
        "nested-request-uri": signed(claims(gateway, request_uri="https://rp.example/r.jwt")),
        "nested-request": signed(claims(gateway, request=signed(good))),
    }


REFUSALS = [
    "malformed",
    "two-parts",
    "deeply-nested",
    "oversized",
    "encrypted",
    "unsigned-without-registration",
    "hmac",
    "rs384-not-accepted",
    "wrong-key",
    "unknown-kid",
    "signature-cut",
    "expired",
    "no-exp",
    "lives-too-long",
    "not-yet-valid",
    "no-jti",
    "jti-not-a-string",
    "another-clients-iss",
    "another-clients-client-id",
    "no-iss",
    "wrong-aud",
    "no-aud",
    "nested-request-uri",
    "nested-request",
]


@pytest.mark.parametrize("case", REFUSALS)
def test_a_bad_request_object_is_invalid_request_object(
    live: LiveGateway, citizen: Browser, case: str
) -> None:
    """RFC 9101 §6.3: sent back to the e-service once the query's client and redirect_uri are
    trusted; never a 5xx."""
    outer = query(request=refusals(live)[case], redirect_uri=REDIRECT_URI, state="query-state")
    response = citizen.http.post("/authorize", data=outer)
    assert_redirected(response, "invalid_request_object")


def test_a_request_object_is_used_once(live: LiveGateway, citizen: Browser) -> None:
    """RFC 9101 §10.8 (replay): its jti is recorded until it expires."""
    outer = query(request=signed(claims(live)), redirect_uri=REDIRECT_URI, state="query-state")
    assert citizen.authorize(**outer).status_code == 200
    assert_redirected(citizen.authorize(**outer), "invalid_request_object")


def test_a_bad_object_without_a_trusted_redirect_uri_in_the_query_gets_a_page(
    live: LiveGateway, citizen: Browser
) -> None:
    """The redirect_uri inside an object that failed is not trusted (RFC 6749 §4.1.2.1)."""
    made = claims(live, exp=int(time.time()) - 600)
    assert_error_page(citizen.authorize(**query(request=signed(made))))


def test_an_unknown_client_with_a_request_object_gets_a_page(
    live: LiveGateway, citizen: Browser
) -> None:
    made = claims(live, "nobody")
    assert_error_page(citizen.authorize(**query("nobody", request=signed(made))))


def test_a_client_registered_for_one_alg_gets_only_that_alg(
    live: LiveGateway, citizen: Browser
) -> None:
    made = claims(live, "rs256-only")
    assert citizen.authorize(**query("rs256-only", request=signed(made))).status_code == 200
    made = claims(live, "rs256-only")
    outer = query(
        "rs256-only", request=signed(made, "PS256"), redirect_uri=REDIRECT_URI, state="query-state"
    )
    assert_redirected(citizen.authorize(**outer), "invalid_request_object")


def test_require_signed_request_object_refuses_a_plain_request(
    live: LiveGateway, citizen: Browser
) -> None:
    """RFC 9101 §10.5 client metadata."""
    plain = citizen.authorize_params("signed-only", state="query-state")
    assert_redirected(citizen.authorize(**plain), "invalid_request")
    made = claims(live, "signed-only")
    assert citizen.authorize(**query("signed-only", request=signed(made))).status_code == 200


def test_a_claims_object_inside_is_checked_by_the_claims_step(
    live: LiveGateway, citizen: Browser
) -> None:
    """The same step as the query's `claims` (OIDC Core §5.5), on the object's JSON as text."""
    made = claims(live, claims={"id_token": {"acr": {"essential": "yes"}}}, state="object-state")
    response = citizen.authorize(**query(request=signed(made), state="query-state"))
    assert_redirected(response, "invalid_request", "object-state")


def test_request_and_request_uri_together_are_refused(live: LiveGateway, citizen: Browser) -> None:
    outer = query(
        request=signed(claims(live)), request_uri="urn:ietf:params:oauth:request_uri:x",
        redirect_uri=REDIRECT_URI, state="query-state",
    )  # fmt: skip
    assert_redirected(citizen.authorize(**outer), "invalid_request")


def test_a_user_message_object_inside_reaches_the_e_id(live: LiveGateway, citizen: Browser) -> None:
    """RPar 1.1 §2.1 fn 1: in a request object the userMessage is a JSON object, not text; it
    goes through the userMessage step and is shown by the e-ID (here the sandbox)."""
    text = "Logga in för att söka bygglov"
    message = {"message#sv": base64.b64encode(text.encode()).decode(), "mime_type": "text/plain"}
    made = claims(live, ui_locales="sv", **{"https://id.oidc.se/param/userMessage": message})
    page = citizen.authorize(**query(request=signed(made)))
    assert page.status_code == 200, page.text
    assert text in page.text


def test_a_malformed_user_message_object_inside_is_invalid_request(
    live: LiveGateway, citizen: Browser
) -> None:
    made = claims(live, **{"https://id.oidc.se/param/userMessage": {"message": 42}})
    response = citizen.authorize(**query(request=signed(made), state="query-state"))
    assert_redirected(response, "invalid_request", "object-state")

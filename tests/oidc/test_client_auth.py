"""Client authentication at the token endpoint as real clients do it: HTTP Basic with
form-urlencoded credentials (RFC 6749 §2.3.1, errors §5.2) and private_key_jwt assertions
built the way authlib's and pyoidc's clients build them by default (RFC 7523 §3), signed with
PyJWT (not the gateway's JOSE library)."""

from __future__ import annotations

import base64
import concurrent.futures
import hashlib
import json
import secrets
import string
import time
import uuid
from urllib.parse import quote_plus

import httpx2
import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from gateway.oidc.client_keys import REFETCH_INTERVAL_SECONDS
from tests.clock import ManualClock
from tests.doubles.client_jwks import PublishedKeys
from tests.harness import REDIRECT_URI, Browser, LiveGateway, code_form, running_gateway

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ODD_CLIENT_ID = "tjänst 1+a:b%c"
# Space, '+', '%', ':' and non-ASCII: each one is changed by form-urlencoding.
ODD_SECRET = "hemlig nyckel+plus%25 procent:kolon åäö €"
BASE64_SECRET = "c2VjcmV0+c2VjcmV0/c2VjcmV0=="
CLIENT_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
KID = "client-key-1"


def public_jwk() -> dict:
    jwk = RSAAlgorithm.to_jwk(CLIENT_KEY.public_key(), as_dict=True)
    return {**jwk, "kid": KID, "use": "sig", "alg": "RS256"}


@pytest.fixture(scope="module")
def live(store_url):
    secrets_by_client = {"basic": "basic-secret", ODD_CLIENT_ID: ODD_SECRET, "b64": BASE64_SECRET}
    clients = [
        *({"client_id": client_id, "client_secret": secret, "redirect_uris": [REDIRECT_URI]}
          for client_id, secret in secrets_by_client.items()),
        {"client_id": "jwt-client", "jwks": {"keys": [public_jwk()]},
         "redirect_uris": [REDIRECT_URI]},
    ]  # fmt: skip
    with running_gateway(store_url, clients=clients) as gateway:
        yield gateway


def login_form(gateway: LiveGateway, client_id: str, **extra: str) -> dict[str, str]:
    citizen = Browser(gateway)
    try:
        return code_form(citizen.login(client_id), **extra)
    finally:
        citizen.close()


def post_token(
    gateway: LiveGateway, form: dict[str, str], headers: dict[str, str | bytes] | None = None
) -> httpx2.Response:
    with httpx2.Client(base_url=gateway.url, timeout=10) as http:
        return http.post("/token", data=form, headers=headers or {})


def basic_header(client_id: str, secret: str) -> str:
    """RFC 6749 §2.3.1: each part form-urlencoded, then HTTP Basic (RFC 7617)."""
    userpass = f"{quote_plus(client_id)}:{quote_plus(secret)}"
    return "Basic " + base64.b64encode(userpass.encode()).decode()


def assert_invalid_client(response: httpx2.Response, status: int = 400) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == "invalid_client"
    assert "access_token" not in response.json()
    assert response.headers["cache-control"] == "no-store"


# --- client_secret_basic ------------------------------------------------------------------------


def test_form_urlencoded_basic_credentials_authenticate(live: LiveGateway) -> None:
    """A '+' is a space, '%XX' a byte of UTF-8: the client that encodes as the RFC says logs in."""
    form = login_form(live, ODD_CLIENT_ID)
    response = post_token(live, form, {"Authorization": basic_header(ODD_CLIENT_ID, ODD_SECRET)})
    assert response.status_code == 200, response.text


def test_percent_escapes_are_decoded_and_a_plus_sign_is_a_space(live: LiveGateway) -> None:
    userpass = "basic:basic%2Dsecret"  # an escape that need not be there is decoded all the same
    header = "Basic " + base64.b64encode(userpass.encode()).decode()
    assert post_token(live, login_form(live, "basic"), {"Authorization": header}).status_code == 200
    wrong = basic_header(ODD_CLIENT_ID, ODD_SECRET.replace(" ", "+", 1))
    response = post_token(live, login_form(live, ODD_CLIENT_ID), {"Authorization": wrong})
    assert_invalid_client(response, 401)


def test_a_secret_sent_without_form_encoding_is_still_accepted(live: LiveGateway) -> None:
    """Many clients (requests, httpx, curl -u) skip §2.3.1's encoding; a base64-made secret's
    '+' then arrives as a '+'. Accepting the secret as sent as well costs no security."""
    form = login_form(live, "b64")
    assert (
        post_token(live, form, {"Authorization": basic_header("b64", BASE64_SECRET)}).status_code
        == 200
    )
    raw = "Basic " + base64.b64encode(f"b64:{BASE64_SECRET}".encode()).decode()
    assert post_token(live, login_form(live, "b64"), {"Authorization": raw}).status_code == 200


@pytest.mark.parametrize(
    "header",
    [
        "Basic",
        "Basic ====",
        "Basic %%%not-base64%%%",
        "Basic " + base64.b64encode(b"basic:wrong").decode().rstrip("="),  # unpadded
        "Basic " + base64.b64encode(b"basic").decode(),  # no colon
        "Basic " + base64.b64encode(b"basic:\xff\xfe").decode(),  # not UTF-8
        "Basic " + base64.b64encode(b"basic:%ff%fe").decode(),  # percent-encodes no UTF-8
        "Basic " + base64.b64encode(b":basic-secret").decode(),  # no client_id
        "basic " + base64.b64encode(b"basic:wrong").decode(),  # scheme is case-insensitive
        "Basic ö".encode("latin-1"),  # not even ASCII
    ],
    ids=["no-token", "only-padding", "not-base64", "unpadded", "no-colon", "not-utf8",
         "percent-not-utf8", "empty-id", "lowercase-scheme", "not-ascii"],
)  # fmt: skip
def test_malformed_basic_credentials_are_401_with_a_basic_challenge(
    live: LiveGateway, header: str | bytes
) -> None:
    """RFC 6749 §5.2: the client tried the Authorization header, so 401 + WWW-Authenticate."""
    form = {"grant_type": "authorization_code", "code": "x", "redirect_uri": REDIRECT_URI}
    response = post_token(live, form, {"Authorization": header})
    assert_invalid_client(response, 401)
    assert response.headers["www-authenticate"].startswith("Basic ")


def test_lowercase_basic_scheme_with_the_right_secret_authenticates(live: LiveGateway) -> None:
    header = basic_header("basic", "basic-secret").replace("Basic", "basic", 1)
    assert post_token(live, login_form(live, "basic"), {"Authorization": header}).status_code == 200


# --- private_key_jwt ----------------------------------------------------------------------------


def sign(claims: dict, kid: str | None = KID) -> str:
    return pyjwt.encode(
        claims, CLIENT_KEY, algorithm="RS256", headers={"kid": kid} if kid else None
    )


def authlib_assertion(gateway: LiveGateway, clock_offset: int = 0) -> str:
    """authlib.oauth2.rfc7523.private_key_jwt_sign's defaults: exp = iat + 3600, a 36-char jti,
    aud the token endpoint, and no kid in the header."""
    now = int(time.time()) + clock_offset
    alphabet = string.ascii_letters + string.digits
    claims = {"iss": "jwt-client", "aud": f"{gateway.url}/token", "sub": "jwt-client",
              "iat": now, "exp": now + 3600,
              "jti": "".join(secrets.choice(alphabet) for _ in range(36))}  # fmt: skip
    return sign(claims, kid=None)


def pyoidc_assertion(gateway: LiveGateway, clock_offset: int = 0) -> str:
    """oic.utils.authn.client.assertion_jwt's defaults: lifetime 600 s, a 32-char jti."""
    now = int(time.time()) + clock_offset
    claims = {"iss": "jwt-client", "sub": "jwt-client", "aud": f"{gateway.url}/token",
              "jti": secrets.token_hex(16), "exp": now + 600, "iat": now}  # fmt: skip
    return sign(claims)


def assertion_form(gateway: LiveGateway, assertion: str) -> dict[str, str]:
    return login_form(
        gateway, "jwt-client", client_assertion=assertion, client_assertion_type=JWT_BEARER
    )


@pytest.mark.parametrize(
    ("make", "clock_offset"),
    [(authlib_assertion, 0), (authlib_assertion, 55), (authlib_assertion, -55),
     (pyoidc_assertion, 0), (pyoidc_assertion, 1), (pyoidc_assertion, 55)],
    ids=["authlib", "authlib-clock-ahead", "authlib-clock-behind",
         "pyoidc", "pyoidc-clock-1s-ahead", "pyoidc-clock-ahead"],
)  # fmt: skip
def test_mainstream_client_assertions_are_accepted(live: LiveGateway, make, clock_offset) -> None:
    """What the libraries send by default, from a client whose clock is up to a minute off."""
    response = post_token(live, assertion_form(live, make(live, clock_offset)))
    assert response.status_code == 200, response.text


def claims_now(**overrides) -> dict:
    now = int(time.time())
    claims = {"iss": "jwt-client", "sub": "jwt-client", "aud": "", "iat": now,
              "exp": now + 600, "jti": str(uuid.uuid4())}  # fmt: skip
    return {**claims, **overrides}


# Functions of the time the test runs, not of collection time: a long suite reaches these
# minutes after collecting them, when "five minutes from now" has passed.
@pytest.mark.parametrize(
    "bend",
    [
        lambda now: {"exp": now + 2 * 3600},
        lambda now: {"iat": now - 60, "exp": now + 3600 + 120},
        lambda now: {"iat": now + 300, "exp": now + 600},
        lambda now: {"nbf": now + 300},
        lambda now: {"exp": now - 120},
        lambda _now: {"exp": "soon"},
        lambda _now: {"exp": 10**30},
        lambda _now: {"jti": 42},
        lambda _now: {"jti": ""},
    ],
    ids=["lives-2h", "lives-past-the-maximum", "issued-in-the-future", "not-yet-valid",
         "expired", "exp-not-a-number", "exp-absurd", "jti-not-a-string", "jti-empty"],
)  # fmt: skip
def test_unacceptable_client_assertions_are_invalid_client(live: LiveGateway, bend) -> None:
    claims = claims_now(aud=f"{live.url}/token", **bend(int(time.time())))
    assert_invalid_client(post_token(live, assertion_form(live, sign(claims))))


def test_a_client_assertion_is_used_once_even_by_racing_requests(live: LiveGateway) -> None:
    """The jti is recorded atomically: of several requests with one assertion one wins."""
    assertion = authlib_assertion(live)
    forms = [assertion_form(live, assertion) for _ in range(6)]
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        statuses = sorted(pool.map(lambda form: post_token(live, form).status_code, forms))
    assert statuses == [200] + [400] * 5


def test_a_used_jti_is_kept_until_the_assertion_expires(redis_server) -> None:
    """An authlib assertion lives an hour; its jti must be refused for at least that long."""
    clients = [{"client_id": "jwt-client", "jwks": {"keys": [public_jwk()]},
                "redirect_uris": [REDIRECT_URI]}]  # fmt: skip
    with running_gateway(redis_server.url, clients=clients) as gateway:
        assertion = authlib_assertion(gateway)
        assert post_token(gateway, assertion_form(gateway, assertion)).status_code == 200
        jti = pyjwt.decode(assertion, options={"verify_signature": False})["jti"]
        key = (
            "jti:assertion:" + hashlib.sha256(json.dumps(["jwt-client", jti]).encode()).hexdigest()
        )
        ttl = int(redis_server.command("TTL", key).lstrip(":"))
        assert ttl >= 3600 - 5
        assert_invalid_client(post_token(gateway, assertion_form(gateway, assertion)))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_a_deeply_nested_signed_assertion_is_invalid_client(live: LiveGateway) -> None:
    """Correctly signed, but its payload would exhaust a JSON parser's recursion."""
    claims = json.dumps(claims_now(aud=f"{live.url}/token"))
    payload = claims[:-1] + ', "x": ' + "[" * 3000 + "]" * 3000 + "}"
    assertion = pyjwt.api_jws.encode(payload.encode(), CLIENT_KEY, "RS256", headers={"kid": KID})
    assert_invalid_client(post_token(live, assertion_form(live, assertion)))


@pytest.mark.parametrize(
    "assertion",
    [
        b64url(b'{"alg":"RS256","x":' + b"[" * 3000 + b"]" * 3000 + b"}") + ".e30.c2ln",
        b64url(b'{"alg":"RS256"}') + "." + b64url(b"[" * 3000 + b"]" * 3000) + ".c2ln",
        "not.a.jwt",
        "e30.e30",
        b64url(b'{"alg":"RS256"}') + "." + b64url(b"\xff\xfe") + ".c2ln",
    ],
    ids=["deep-header", "deep-payload", "not-base64-json", "two-parts", "payload-not-utf8"],
)
def test_malformed_assertions_are_invalid_client(live: LiveGateway, assertion: str) -> None:
    assert_invalid_client(post_token(live, assertion_form(live, assertion)))


def bogus_code_form(client_id: str, assertion: str) -> dict[str, str]:
    """Client authentication runs before the code is looked at: invalid_grant means it passed."""
    return {"grant_type": "authorization_code", "code": "no-such-code",
            "redirect_uri": REDIRECT_URI, "client_id": client_id,
            "client_assertion_type": JWT_BEARER, "client_assertion": assertion}  # fmt: skip


def test_a_colon_in_client_ids_cannot_make_two_clients_share_a_jti(store_url) -> None:
    """Client "a" with jti "b:c" is not client "a:b" with jti "c" (RFC 7523 §3: jti is
    unique per issuer)."""
    clients = [{"client_id": cid, "jwks": {"keys": [public_jwk()]}, "redirect_uris": [REDIRECT_URI]}
               for cid in ("a", "a:b")]  # fmt: skip
    with running_gateway(store_url, clients=clients) as gateway:
        aud = f"{gateway.url}/token"
        first = sign(claims_now(iss="a:b", sub="a:b", aud=aud, jti="c"))
        second = sign(claims_now(iss="a", sub="a", aud=aud, jti="b:c"))
        for client_id, assertion in (("a:b", first), ("a", second)):
            response = post_token(gateway, bogus_code_form(client_id, assertion))
            assert response.json()["error"] == "invalid_grant", response.text


def rotated_key() -> tuple[rsa.RSAPrivateKey, dict]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key, {**RSAAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": "rotated"}


def test_private_key_jwt_verifies_with_keys_from_the_jwks_uri(store_url) -> None:
    """RFC 7591 §2 jwks_uri: fetched, kept, and fetched again when a new kid appears."""
    clock = ManualClock()
    with PublishedKeys(public_jwk()) as published:
        clients = [{"client_id": "jwt-client", "jwks_uri": published.url,
                    "redirect_uris": [REDIRECT_URI]}]  # fmt: skip
        with running_gateway(store_url, clock, clients=clients) as gateway:
            assert (
                post_token(gateway, assertion_form(gateway, pyoidc_assertion(gateway))).status_code
                == 200
            )
            assert (
                post_token(gateway, assertion_form(gateway, pyoidc_assertion(gateway))).status_code
                == 200
            )
            assert published.fetches == 1
            new_key, new_jwk = rotated_key()
            published.keys = [new_jwk]
            clock.advance(REFETCH_INTERVAL_SECONDS)  # a miss right after a fetch waits that long
            claims = claims_now(aud=f"{gateway.url}/token")
            assertion = pyjwt.encode(claims, new_key, algorithm="RS256", headers={"kid": "rotated"})
            response = post_token(gateway, assertion_form(gateway, assertion))
            assert response.status_code == 200, response.text
            assert published.fetches == 2


def test_unknown_kids_cannot_make_the_gateway_fetch_the_jwks_uri_each_time(store_url) -> None:
    with PublishedKeys(public_jwk()) as published:
        clients = [{"client_id": "jwt-client", "jwks_uri": published.url,
                    "redirect_uris": [REDIRECT_URI]}]  # fmt: skip
        with running_gateway(store_url, clients=clients) as gateway:
            for n in range(5):
                claims = claims_now(aud=f"{gateway.url}/token")
                assertion = sign(claims, kid=f"unknown-{n}")
                assert_invalid_client(post_token(gateway, bogus_code_form("jwt-client", assertion)))
            assert published.fetches <= 2


def test_an_unreachable_jwks_uri_is_invalid_client_not_an_error(store_url) -> None:
    with PublishedKeys(public_jwk()) as published:
        published.status = 500
        clients = [{"client_id": "jwt-client", "jwks_uri": published.url,
                    "redirect_uris": [REDIRECT_URI]}]  # fmt: skip
        with running_gateway(store_url, clients=clients) as gateway:
            assertion = pyoidc_assertion(gateway)
            assert_invalid_client(post_token(gateway, bogus_code_form("jwt-client", assertion)))

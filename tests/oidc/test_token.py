"""Token endpoint errors and code rules (RFC 6749 §4.1.3, §5.2; RFC 7636 §4.6; RFC 7523 §3)."""

from __future__ import annotations

import json
import time
import uuid

import httpx2
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.harness import (
    REDIRECT_URI,
    Browser,
    LiveGateway,
    code_form,
    running_gateway,
    token_request,
)

CLIENT_KEY = RSAKey.generate_key(2048, parameters={"kid": "client-key-1"})


def assert_token_error(response: httpx2.Response, error: str, status: int = 400) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert "id_token" not in response.json()
    assert response.headers["cache-control"] == "no-store"


def test_a_code_is_redeemed_once(gateway: LiveGateway, browser: Browser) -> None:
    """RFC 6749 §4.1.2: a second redemption fails."""
    form = code_form(browser.login("basic"))
    assert token_request(gateway, form, auth=("basic", "basic-secret")).status_code == 200
    assert_token_error(
        token_request(gateway, form, auth=("basic", "basic-secret")), "invalid_grant"
    )


def test_a_reused_code_revokes_the_access_token_it_bought(
    gateway: LiveGateway, browser: Browser
) -> None:
    """RFC 6749 §4.1.2: SHOULD revoke all tokens previously issued based on that code."""
    form = code_form(browser.login("basic"))
    access_token = token_request(gateway, form, auth=("basic", "basic-secret")).json()[
        "access_token"
    ]
    token_request(gateway, form, auth=("basic", "basic-secret"))
    with httpx2.Client(base_url=gateway.url) as http:
        response = http.get("/userinfo", headers={"Authorization": f"Bearer {access_token}"})
    assert response.status_code == 401


def test_concurrent_redemptions_yield_exactly_one_token(
    gateway: LiveGateway, browser: Browser
) -> None:
    """The store's atomic take: of many racing requests exactly one wins."""
    import concurrent.futures

    form = code_form(browser.login("basic"))
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = list(
            pool.map(
                lambda _: token_request(gateway, form, auth=("basic", "basic-secret")).status_code,
                range(8),
            )
        )
    assert sorted(statuses) == [200] + [400] * 7


def test_unknown_code_is_invalid_grant(gateway: LiveGateway) -> None:
    form = {"grant_type": "authorization_code", "code": "made-up", "redirect_uri": REDIRECT_URI}
    assert_token_error(
        token_request(gateway, form, auth=("basic", "basic-secret")), "invalid_grant"
    )


def test_code_of_another_client_is_invalid_grant(gateway: LiveGateway, browser: Browser) -> None:
    form = code_form(browser.login("basic"), client_id="post", client_secret="post-secret")
    assert_token_error(token_request(gateway, form), "invalid_grant")


def test_other_redirect_uri_is_invalid_grant(gateway: LiveGateway, browser: Browser) -> None:
    form = code_form(browser.login("basic"), redirect_uri="http://127.0.0.1:9000/other")
    assert_token_error(
        token_request(gateway, form, auth=("basic", "basic-secret")), "invalid_grant"
    )


def test_missing_redirect_uri_is_invalid_grant(gateway: LiveGateway, browser: Browser) -> None:
    form = code_form(browser.login("basic"))
    del form["redirect_uri"]
    assert_token_error(
        token_request(gateway, form, auth=("basic", "basic-secret")), "invalid_grant"
    )


def test_wrong_code_verifier_is_invalid_grant(gateway: LiveGateway, browser: Browser) -> None:
    form = code_form(browser.login("spa", pkce=True), client_id="spa", code_verifier="x" * 50)
    assert_token_error(token_request(gateway, form), "invalid_grant")


def test_missing_code_verifier_is_invalid_grant(gateway: LiveGateway, browser: Browser) -> None:
    """RFC 7636 §4.6: a challenge was sent, so the verifier is required."""
    form = code_form(browser.login("spa", pkce=True), client_id="spa")
    del form["code_verifier"]
    assert_token_error(token_request(gateway, form), "invalid_grant")


def test_code_verifier_without_challenge_is_invalid_grant(
    gateway: LiveGateway, browser: Browser
) -> None:
    """RFC 9700 §4.8.2: a verifier for a request that had no challenge is refused."""
    form = code_form(browser.login("basic"), code_verifier="v" * 50)
    assert_token_error(
        token_request(gateway, form, auth=("basic", "basic-secret")), "invalid_grant"
    )


def test_wrong_secret_is_invalid_client_401(gateway: LiveGateway, browser: Browser) -> None:
    form = code_form(browser.login("basic"))
    response = token_request(gateway, form, auth=("basic", "wrong"))
    assert_token_error(response, "invalid_client", 401)
    assert response.headers["www-authenticate"].startswith("Basic")


def test_unknown_client_is_invalid_client(gateway: LiveGateway, browser: Browser) -> None:
    form = code_form(browser.login("basic"))
    assert_token_error(token_request(gateway, form, auth=("nobody", "x")), "invalid_client", 401)


def test_registered_method_is_enforced(gateway: LiveGateway, browser: Browser) -> None:
    """Client 'post' registered client_secret_post; basic is refused."""
    form = code_form(browser.login("post"))
    assert_token_error(
        token_request(gateway, form, auth=("post", "post-secret")), "invalid_client", 401
    )


def test_confidential_client_without_credentials_is_invalid_client(
    gateway: LiveGateway, browser: Browser
) -> None:
    form = code_form(browser.login("basic"), client_id="basic")
    assert_token_error(token_request(gateway, form), "invalid_client")


def test_two_auth_methods_at_once_are_invalid_request(
    gateway: LiveGateway, browser: Browser
) -> None:
    form = code_form(browser.login("basic"), client_secret="basic-secret")
    assert_token_error(
        token_request(gateway, form, auth=("basic", "basic-secret")), "invalid_request"
    )


def test_unsupported_grant_type(gateway: LiveGateway) -> None:
    form = {"grant_type": "password", "username": "a", "password": "b"}
    assert_token_error(
        token_request(gateway, form, auth=("basic", "basic-secret")), "unsupported_grant_type"
    )


def test_missing_grant_type_is_invalid_request(gateway: LiveGateway) -> None:
    assert_token_error(
        token_request(gateway, {"code": "x"}, auth=("basic", "basic-secret")), "invalid_request"
    )


def test_duplicated_parameter_is_invalid_request(gateway: LiveGateway, browser: Browser) -> None:
    form = [*list(code_form(browser.login("basic")).items()), ("code", "again")]
    with httpx2.Client(base_url=gateway.url) as http:
        response = http.post(
            "/token",
            content=httpx2.QueryParams(form).__str__(),
            headers={"content-type": "application/x-www-form-urlencoded"},
            auth=("basic", "basic-secret"),
        )
    assert_token_error(response, "invalid_request")


# --- private_key_jwt (RFC 7523 §3, OIDC Core §9) ----------------------------------------------


@pytest.fixture(scope="module")
def jwt_gateway(store_url):
    clients = [
        {
            "client_id": "jwt-client",
            "jwks": {"keys": [CLIENT_KEY.as_dict(private=False)]},
            "redirect_uris": [REDIRECT_URI],
        }
    ]
    with running_gateway(store_url, clients=clients) as live:
        yield live


def client_assertion(
    gateway: LiveGateway, key: RSAKey = CLIENT_KEY, drop: tuple[str, ...] = (), **overrides
) -> str:
    """A fresh RFC 7523 client assertion; `overrides` replace claims and `drop` removes them."""
    now = int(time.time())
    claims = {"iss": "jwt-client", "sub": "jwt-client", "aud": f"{gateway.url}/token",
              "iat": now, "exp": now + 60, "jti": str(uuid.uuid4()), **overrides}  # fmt: skip
    for name in drop:
        del claims[name]
    return jwt.encode({"alg": "RS256", "kid": CLIENT_KEY.kid}, claims, key)


def jwt_form(gateway: LiveGateway, assertion: str) -> dict[str, str]:
    citizen = Browser(gateway)
    form = code_form(
        citizen.login("jwt-client"),
        client_assertion=assertion,
        client_assertion_type="urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    )
    citizen.close()
    return form


def test_private_key_jwt_logs_in(jwt_gateway: LiveGateway) -> None:
    response = token_request(jwt_gateway, jwt_form(jwt_gateway, client_assertion(jwt_gateway)))
    assert response.status_code == 200, response.text


def test_private_key_jwt_accepts_the_issuer_as_audience(jwt_gateway: LiveGateway) -> None:
    """Swedish profile §3.1.1: accept both the token endpoint and the issuer."""
    assertion = client_assertion(jwt_gateway, aud=jwt_gateway.url)
    assert token_request(jwt_gateway, jwt_form(jwt_gateway, assertion)).status_code == 200


def test_replayed_client_assertion_is_invalid_client(jwt_gateway: LiveGateway) -> None:
    assertion = client_assertion(jwt_gateway)
    assert token_request(jwt_gateway, jwt_form(jwt_gateway, assertion)).status_code == 200
    assert_token_error(
        token_request(jwt_gateway, jwt_form(jwt_gateway, assertion)), "invalid_client"
    )


@pytest.mark.parametrize(
    ("overrides", "drop"),
    [
        ({"aud": "https://someone-else.example/token"}, ()),
        ({"iss": "other-client"}, ()),
        ({"sub": "other-client"}, ()),
        ({"exp": int(time.time()) - 120}, ()),
        ({"exp": int(time.time()) + 2 * 3600}, ()),  # the maximum is 1 h + 60 s of skew
        ({}, ("jti",)),
        ({}, ("exp",)),
    ],
    ids=["wrong-aud", "wrong-iss", "wrong-sub", "expired", "too-long-lived", "no-jti", "no-exp"],
)
def test_bad_client_assertion_is_invalid_client(jwt_gateway: LiveGateway, overrides, drop) -> None:
    assertion = client_assertion(jwt_gateway, drop=drop, **overrides)
    response = token_request(jwt_gateway, jwt_form(jwt_gateway, assertion))
    assert_token_error(response, "invalid_client")


def test_assertion_signed_by_another_key_is_invalid_client(jwt_gateway: LiveGateway) -> None:
    stranger = RSAKey.generate_key(2048, parameters={"kid": CLIENT_KEY.kid})
    assertion = client_assertion(jwt_gateway, key=stranger)
    response = token_request(jwt_gateway, jwt_form(jwt_gateway, assertion))
    assert_token_error(response, "invalid_client")


def test_unsigned_assertion_is_invalid_client(jwt_gateway: LiveGateway) -> None:
    """Never alg none."""
    import base64
    import json

    def part(obj) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    now = int(time.time())
    claims = {"iss": "jwt-client", "sub": "jwt-client", "aud": jwt_gateway.url,
              "exp": now + 60, "jti": "n1"}  # fmt: skip
    unsigned = f"{part({'alg': 'none'})}.{part(claims)}."
    assert_token_error(
        token_request(jwt_gateway, jwt_form(jwt_gateway, unsigned)), "invalid_client"
    )


def test_a_code_lives_sixty_seconds_in_redis(redis_server) -> None:
    """The issue's contract: codes live 60 s (read from the real Redis record's TTL)."""
    with running_gateway(redis_server.url) as live:
        citizen = Browser(live)
        code = citizen.login("basic").callback["code"]
        citizen.close()
    assert 55 <= int(redis_server.command("TTL", f"code:{code}").lstrip(":")) <= 60


def stored_json(redis_server, key: str) -> dict:
    reply = redis_server.command("GET", key)
    assert reply.startswith("$") and not reply.startswith("$-1"), reply
    return json.loads(reply.split("\r\n", 1)[1])


def test_a_refused_redemption_withdraws_the_access_token_it_would_have_bought(
    redis_server,
) -> None:
    """The grant is written with the code (one round trip at /token): when the exchange is
    refused after the code is taken, that grant goes too, though its token was never sent."""
    with running_gateway(redis_server.url) as live:
        citizen = Browser(live)
        code = citizen.login("basic").callback["code"]
        citizen.close()
        access_token = stored_json(redis_server, f"code:{code}")["access_token"]
        assert redis_server.command("EXISTS", f"at:{access_token}") == ":1"
        form = {"grant_type": "authorization_code", "code": code,
                "redirect_uri": "http://127.0.0.1:9000/other"}  # fmt: skip
        assert_token_error(
            token_request(live, form, auth=("basic", "basic-secret")), "invalid_grant"
        )
        assert redis_server.command("EXISTS", f"at:{access_token}") == ":0"
        with httpx2.Client(base_url=live.url) as http:
            response = http.get("/userinfo", headers={"Authorization": f"Bearer {access_token}"})
        assert response.status_code == 401


def test_expires_in_is_what_is_left_of_the_grant(redis_server) -> None:
    """The grant's clock starts at the login; expires_in and the record's TTL agree."""
    with running_gateway(redis_server.url) as live:
        citizen = Browser(live)
        form = code_form(citizen.login("basic"))
        tokens = token_request(live, form, auth=("basic", "basic-secret"))
        citizen.close()
    body = tokens.json()
    ttl = int(redis_server.command("TTL", f"at:{body['access_token']}").lstrip(":"))
    access_ttl = live.settings.access_token_ttl_seconds
    code_ttl = live.settings.code_ttl_seconds
    assert access_ttl <= body["expires_in"] <= access_ttl + code_ttl
    assert abs(ttl - body["expires_in"]) <= 2


def test_only_the_scopes_granted_are_returned_and_stored(redis_server) -> None:
    """OIDC Core §5.4 / RFC 6749 §3.3: unknown scopes are ignored, and `scope` in the token
    response names what was granted; the code's and the access grant's records agree."""
    number_scope = "https://id.oidc.se/scope/naturalPersonNumber"
    with running_gateway(redis_server.url) as live:
        citizen = Browser(live)
        requested = f"openid made-up-scope {number_scope} admin openid"
        result = citizen.login("basic", scope=requested)
        citizen.close()
        code_record = stored_json(redis_server, f"code:{result.callback['code']}")
        body = token_request(live, code_form(result), auth=("basic", "basic-secret")).json()
        grant = stored_json(redis_server, f"at:{body['access_token']}")
        with httpx2.Client(base_url=live.url) as http:
            headers = {"Authorization": f"Bearer {body['access_token']}"}
            userinfo = http.get("/userinfo", headers=headers).json()
    assert body["scope"].split() == ["openid", number_scope]
    assert code_record["scopes"] == ["openid", number_scope]
    assert grant["scopes"] == ["openid", number_scope]
    assert userinfo["https://id.oidc.se/claim/personalIdentityNumber"]

"""Userinfo (OIDC Core §5.3, RFC 6750 §2-3)."""

from __future__ import annotations

import httpx2
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.harness import REDIRECT_URI, Browser, LiveGateway, code_form, token_request

PNR_CLAIM = "https://id.oidc.se/claim/personalIdentityNumber"


def access_token(
    gateway: LiveGateway, client_id: str = "basic", secret: str = "basic-secret"
) -> str:
    citizen = Browser(gateway)
    result = citizen.login(client_id)
    citizen.close()
    return token_request(gateway, code_form(result), auth=(client_id, secret)).json()[
        "access_token"
    ]


def test_missing_token_is_401_with_bearer_challenge(gateway: LiveGateway) -> None:
    with httpx2.Client(base_url=gateway.url) as http:
        response = http.get("/userinfo")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_unknown_token_is_invalid_token(gateway: LiveGateway) -> None:
    with httpx2.Client(base_url=gateway.url) as http:
        response = http.get("/userinfo", headers={"Authorization": "Bearer not-a-token"})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


def test_token_in_form_body_is_accepted(gateway: LiveGateway) -> None:
    """RFC 6750 §2.2."""
    with httpx2.Client(base_url=gateway.url) as http:
        response = http.post("/userinfo", data={"access_token": access_token(gateway)})
    assert response.status_code == 200
    assert response.json()[PNR_CLAIM] == "199908072391"


def test_token_in_header_and_body_is_invalid_request(gateway: LiveGateway) -> None:
    token = access_token(gateway)
    with httpx2.Client(base_url=gateway.url) as http:
        response = http.post(
            "/userinfo", data={"access_token": token}, headers={"Authorization": f"Bearer {token}"}
        )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_signed_userinfo_when_the_client_registered_it(make_gateway) -> None:
    """Swedish profile §4.1: userinfo as a signed JWT, verifiable with the JWKS."""
    clients = [
        {
            "client_id": "signed",
            "client_secret": "signed-secret",
            "redirect_uris": [REDIRECT_URI],
            "userinfo_signed_response_alg": "RS256",
        }
    ]
    with make_gateway(clients=clients) as gateway:
        token = access_token(gateway, "signed", "signed-secret")
        with httpx2.Client(base_url=gateway.url) as http:
            response = http.get("/userinfo", headers={"Authorization": f"Bearer {token}"})
            jwks = http.get("/jwks").json()
    assert response.headers["content-type"].startswith("application/jwt")
    claims = jwt.decode(response.text, KeySet.import_key_set(jwks), algorithms=["RS256"]).claims
    assert claims["iss"] == gateway.url
    assert claims["aud"] == "signed"
    assert claims[PNR_CLAIM] == "199908072391"

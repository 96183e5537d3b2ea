"""The whole code flow over real HTTP, against MemoryStore and a real Redis (OIDC Core §3.1)."""

from __future__ import annotations

import httpx2
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.harness import (
    INFO_SCOPE,
    NUMBER_SCOPE,
    REDIRECT_URI,
    TEST_PERSON,
    Browser,
    LiveGateway,
    code_form,
    token_request,
)

PNR_CLAIM = "https://id.oidc.se/claim/personalIdentityNumber"
LOA3 = "http://id.elegnamnden.se/loa/1.0/loa3"


def verified_id_token(gateway: LiveGateway, id_token: str) -> dict:
    with httpx2.Client(base_url=gateway.url) as http:
        metadata = http.get("/.well-known/openid-configuration").json()
        jwks = http.get(metadata["jwks_uri"]).json()
    token = jwt.decode(id_token, KeySet.import_key_set(jwks), algorithms=["RS256"])
    assert token.header["kid"] in {key["kid"] for key in jwks["keys"]}
    return token.claims


def test_discovery_then_login_with_client_secret_basic(
    gateway: LiveGateway, browser: Browser
) -> None:
    """Discovery -> authorize -> sandbox -> code -> token -> userinfo, ID token verified by JWKS."""
    result = browser.login("basic", nonce="n-123", state="st-1")
    assert result.callback["state"] == "st-1"
    assert result.callback["iss"] == gateway.url

    response = token_request(gateway, code_form(result), auth=("basic", "basic-secret"))
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    tokens = response.json()
    assert tokens["token_type"] == "Bearer"

    claims = verified_id_token(gateway, tokens["id_token"])
    assert claims["iss"] == gateway.url
    assert claims["aud"] == "basic"
    assert claims["nonce"] == "n-123"
    assert claims["acr"] == LOA3
    assert claims[PNR_CLAIM] == TEST_PERSON
    assert claims["exp"] - claims["iat"] <= 300
    assert isinstance(claims["auth_time"], int)
    assert TEST_PERSON not in claims["sub"]

    with httpx2.Client(base_url=gateway.url) as http:
        userinfo = http.get(
            "/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
    assert userinfo.status_code == 200
    assert userinfo.json()["sub"] == claims["sub"]
    assert userinfo.json()[PNR_CLAIM] == TEST_PERSON
    assert userinfo.json()["given_name"] == "Erik"
    assert userinfo.json()["birthdate"] == "1999-08-07"


def test_login_with_client_secret_post(gateway: LiveGateway, browser: Browser) -> None:
    result = browser.login("post")
    form = code_form(result, client_id="post", client_secret="post-secret")
    response = token_request(gateway, form)
    assert response.status_code == 200
    assert verified_id_token(gateway, response.json()["id_token"])["aud"] == "post"


def test_public_client_logs_in_with_pkce_and_no_secret(
    gateway: LiveGateway, browser: Browser
) -> None:
    """RFC 7636: the verifier stands in for a client secret."""
    result = browser.login("spa", pkce=True)
    response = token_request(gateway, code_form(result, client_id="spa"))
    assert response.status_code == 200
    assert verified_id_token(gateway, response.json()["id_token"])["aud"] == "spa"


def test_confidential_client_may_add_pkce(gateway: LiveGateway, browser: Browser) -> None:
    result = browser.login("basic", pkce=True)
    response = token_request(gateway, code_form(result), auth=("basic", "basic-secret"))
    assert response.status_code == 200


def test_sub_is_pairwise_per_sector_and_stable_per_person(make_gateway) -> None:
    """OIDC Core §8.1: same person, same sector -> same sub; other sector -> other sub."""
    other = {
        "client_id": "other-sector",
        "client_secret": "other-secret",
        "redirect_uris": ["http://localhost:9000/callback"],
        "sector_identifier": "other.example",
    }
    clients = [
        {"client_id": "basic", "client_secret": "basic-secret", "redirect_uris": [REDIRECT_URI]},
        other,
    ]
    with make_gateway(clients=clients) as gateway:
        citizen = Browser(gateway)
        subs = []
        for _ in range(2):
            result = citizen.login("basic", prompt="login")  # a fresh login each time
            tokens = token_request(
                gateway, code_form(result), auth=("basic", "basic-secret")
            ).json()
            subs.append(verified_id_token(gateway, tokens["id_token"])["sub"])
        page = citizen.authorize(
            **citizen.authorize_params(
                "other-sector", redirect_uri="http://localhost:9000/callback", prompt="login"
            )
        )
        submitted = citizen.submit_sandbox(page)
        location = citizen.http.get(submitted.headers["location"]).headers["location"]
        code = dict(p.split("=", 1) for p in location.split("?", 1)[1].split("&"))["code"]
        tokens = token_request(
            gateway,
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": "http://localhost:9000/callback",
            },
            auth=("other-sector", "other-secret"),
        ).json()
        other_sub = verified_id_token(gateway, tokens["id_token"])["sub"]
        citizen.close()
    assert subs[0] == subs[1]
    assert other_sub != subs[0]


def test_scopes_decide_which_claims_are_released(gateway: LiveGateway, browser: Browser) -> None:
    """Claims spec §3: without naturalPersonNumber, no identity number anywhere."""
    result = browser.login("basic", scope=f"openid {INFO_SCOPE}")
    tokens = token_request(gateway, code_form(result), auth=("basic", "basic-secret")).json()
    claims = verified_id_token(gateway, tokens["id_token"])
    assert PNR_CLAIM not in claims
    with httpx2.Client(base_url=gateway.url) as http:
        info = http.get(
            "/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        ).json()
    assert PNR_CLAIM not in info
    assert info["family_name"] == "Provsson"


def test_profile_scopes_release_names_at_userinfo_not_in_the_id_token(
    gateway: LiveGateway, browser: Browser
) -> None:
    """Claims spec §3.1: naturalPersonInfo's claims are for userinfo; the ID token gets them
    only through the claims parameter (next test)."""
    result = browser.login("basic", scope=f"openid {INFO_SCOPE}")
    tokens = token_request(gateway, code_form(result), auth=("basic", "basic-secret")).json()
    assert "given_name" not in verified_id_token(gateway, tokens["id_token"])
    with httpx2.Client(base_url=gateway.url) as http:
        info = http.get(
            "/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        ).json()
    assert info["given_name"] == "Erik"


def test_claims_parameter_puts_a_claim_in_the_id_token(
    gateway: LiveGateway, browser: Browser
) -> None:
    """OIDC Core §5.5: claims requested for the ID token appear there."""
    result = browser.login("basic", scope="openid", claims='{"id_token": {"given_name": null}}')
    tokens = token_request(gateway, code_form(result), auth=("basic", "basic-secret")).json()
    claims = verified_id_token(gateway, tokens["id_token"])
    assert claims["given_name"] == "Erik"
    assert PNR_CLAIM not in claims


def test_requested_acr_is_returned(gateway: LiveGateway, browser: Browser) -> None:
    result = browser.login("basic", acr_values=LOA3)
    tokens = token_request(gateway, code_form(result), auth=("basic", "basic-secret")).json()
    assert verified_id_token(gateway, tokens["id_token"])["acr"] == LOA3


def test_coordination_number_is_released_as_coordination_number(
    gateway: LiveGateway, browser: Browser
) -> None:
    """Claims spec §2.2: personalIdentityNumber and coordinationNumber are mutually exclusive."""
    result = browser.login("basic", number="191401682396")
    tokens = token_request(gateway, code_form(result), auth=("basic", "basic-secret")).json()
    claims = verified_id_token(gateway, tokens["id_token"])
    assert claims["https://id.oidc.se/claim/coordinationNumber"] == "191401682396"
    assert PNR_CLAIM not in claims


def test_a_standard_oidc_client_library_completes_a_login(
    gateway: LiveGateway, browser: Browser
) -> None:
    """authlib's own OAuth2 client (discovery + code flow + PKCE) works unchanged."""
    from authlib.integrations.httpx_client import OAuth2Client

    with httpx2.Client() as http:
        metadata = http.get(f"{gateway.url}/.well-known/openid-configuration").json()
    client = OAuth2Client(
        "basic",
        "basic-secret",
        scope=f"openid {NUMBER_SCOPE}",
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
    )
    verifier = "v" * 64
    url, state = client.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=verifier, nonce="lib-nonce"
    )
    page = browser.http.get(url)
    callback = browser.follow_to_client(browser.submit_sandbox(page))
    assert callback["state"] == state
    token = client.fetch_token(
        metadata["token_endpoint"], code=callback["code"], code_verifier=verifier
    )
    userinfo = client.get(metadata["userinfo_endpoint"]).json()
    client.close()
    assert verified_id_token(gateway, token["id_token"])["nonce"] == "lib-nonce"
    assert userinfo[PNR_CLAIM] == TEST_PERSON

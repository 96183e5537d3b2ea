"""An upstream OpenID Provider behind the gateway, end to end over real HTTP: the test OP of
tests/doubles/oidc_op.py on its own loopback port with its own keys, discovery and JWKS. Runs
against MemoryStore and a real Redis."""

from __future__ import annotations

import base64
import json
import logging
import math
import re
import time
from collections.abc import Iterator
from contextlib import closing
from html import unescape
from pathlib import Path
from typing import Any

import httpx2
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import ValidationError

from gateway.login.flow import AUTHN_PROVIDER_PARAMETER
from gateway.login.upstream_health import FAILURES_TO_OPEN
from providers.oidc.config import OidcConfig
from tests.doubles.oidc_op import LOA3, Twist, UpstreamOP
from tests.harness import (
    REDIRECT_URI,
    Browser,
    LiveGateway,
    ServedApp,
    free_port,
    query_of,
    running_gateway,
    token_request,
)
from tests.ops.test_audit import authenticated_event

PNR_CLAIM = "https://id.oidc.se/claim/personalIdentityNumber"
COORDINATION_CLAIM = "https://id.oidc.se/claim/coordinationNumber"
LOA2 = "http://id.elegnamnden.se/loa/1.0/loa2"


def oidc_provider(op: UpstreamOP, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "type": "oidc",
        "display": {"sv": "Freja (test)", "en": "Freja (test)"},
        "issuer": op.base_url,
        "client_id": op.client_id,
        "client_secret": op.client_secret,
        "loa": [LOA3, LOA2],
        "timeout_seconds": 1,
    }
    config.update(overrides)
    return config


@pytest.fixture(scope="module")
def gateway(store_url: str | None, upstream: UpstreamOP) -> Iterator[LiveGateway]:
    with running_gateway(store_url, providers={"freja": oidc_provider(upstream)}) as live:
        yield live


@pytest.fixture
def op(upstream: UpstreamOP) -> Iterator[UpstreamOP]:
    upstream.reset()
    yield upstream
    upstream.reset()


def to_callback(browser: Browser, **extra: str) -> httpx2.Response:
    """/authorize → the upstream (approves at once) → our callback's answer."""
    sent = browser.authorize(**browser.authorize_params("basic", **extra))
    assert sent.status_code == 303, sent.text
    at_upstream = browser.http.get(sent.headers["location"])
    assert at_upstream.status_code == 303, at_upstream.text
    return browser.http.get(at_upstream.headers["location"])


def assert_refused(answer: httpx2.Response, error: str = "access_denied") -> None:
    assert answer.status_code in (400, 403, 503), answer.text
    back = re.search(r'href="(http://127\.0\.0\.1:9000/callback[^"]*)"', answer.text)
    assert back is not None, answer.text
    callback = query_of(unescape(back.group(1)))
    assert callback["error"] == error and "code" not in callback


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def test_whole_login_through_the_upstream_op(
    gateway: LiveGateway, browser: Browser, op: UpstreamOP
) -> None:
    answer = to_callback(browser, acr_values=LOA3, prompt="login")
    callback = browser.follow_to_client(answer)
    sent = op.authorize_requests[-1]
    assert sent["code_challenge_method"] == "S256" and sent["nonce"] and sent["state"]
    assert sent["acr_values"] == LOA3 and sent["prompt"] == "login"
    form = {
        "grant_type": "authorization_code",
        "code": callback["code"],
        "redirect_uri": REDIRECT_URI,
    }
    tokens = token_request(gateway, form, auth=("basic", "basic-secret"))
    assert tokens.status_code == 200, tokens.text
    id_token = claims_of(tokens.json()["id_token"])
    assert id_token["acr"] == LOA3
    assert id_token[PNR_CLAIM] == "199908072391"
    info = httpx2.get(
        f"{gateway.url}/userinfo",
        headers={"Authorization": f"Bearer {tokens.json()['access_token']}"},
    ).json()
    assert info["given_name"] == "Erik" and info[PNR_CLAIM] == "199908072391"


def test_key_rotation_at_the_upstream_is_followed(browser: Browser, op: UpstreamOP) -> None:
    before = op.jwks_fetches
    op.rotate()
    assert "code" in browser.follow_to_client(to_callback(browser))
    assert op.jwks_fetches == before + 1  # refetched once for the new kid


@pytest.mark.parametrize(
    "twist",
    [
        pytest.param(Twist(foreign_key=True), id="bad-signature"),
        pytest.param(Twist(alg_none=True), id="alg-none"),
        pytest.param(Twist(iss="https://other-op.example"), id="wrong-iss"),
        pytest.param(Twist(aud="someone-else"), id="wrong-aud"),
        pytest.param(Twist(nonce="a-nonce-from-another-login"), id="replayed-nonce"),
        pytest.param(Twist(drop_nonce=True), id="missing-nonce"),
        pytest.param(Twist(expired=True), id="expired"),
        pytest.param(Twist(userinfo_sub="another-person"), id="userinfo-of-another-sub"),
        pytest.param(Twist(callback_iss="https://mix-up.example"), id="rfc9207-iss-mix-up"),
        pytest.param(
            Twist(id_token_claims={PNR_CLAIM: "196408233234"}), id="id-token-names-another-number"
        ),
        pytest.param(
            Twist(userinfo_claims={PNR_CLAIM: ["199908072391", "196408233234"]}),
            id="two-numbers-in-one-claim",
        ),
        pytest.param(
            Twist(userinfo_claims={COORDINATION_CLAIM: "199908672380"}),
            id="a-personal-and-a-coordination-number",
        ),
    ],
)
def test_bad_answers_are_refused_without_a_code(
    browser: Browser, op: UpstreamOP, twist: Twist
) -> None:
    op.twist = twist
    assert_refused(to_callback(browser))


def test_a_lower_acr_than_requested_is_refused(browser: Browser, op: UpstreamOP) -> None:
    op.twist = Twist(acr=LOA2)
    assert_refused(to_callback(browser, acr_values=LOA3), "unmet_authentication_requirements")


@pytest.mark.parametrize(
    ("error", "oauth_error", "text"),
    [
        ("access_denied", "access_denied", "Du avbröt"),
        ("login_required", "login_required", "lyckades inte"),
        ("temporarily_unavailable", "temporarily_unavailable", "inte tillgänglig"),
    ],
)
def test_upstream_errors_reach_citizen_and_e_service(
    browser: Browser, op: UpstreamOP, error: str, oauth_error: str, text: str
) -> None:
    op.twist = Twist(error=error)
    answer = to_callback(browser)
    assert_refused(answer, oauth_error)
    assert text in answer.text


@pytest.mark.parametrize(
    "twist", [Twist(token_status=500), Twist(token_delay=1.5)], ids=["upstream-500", "timeout"]
)
def test_an_upstream_failure_is_temporarily_unavailable_not_a_500(
    browser: Browser, op: UpstreamOP, twist: Twist
) -> None:
    op.twist = twist
    answer = to_callback(browser)
    assert answer.status_code == 503
    assert_refused(answer, "temporarily_unavailable")


@pytest.mark.usefixtures("op")
def test_a_wrong_state_is_refused(browser: Browser) -> None:
    sent = browser.authorize(**browser.authorize_params("basic"))
    at_upstream = browser.http.get(sent.headers["location"])
    forged = at_upstream.headers["location"].replace("state=", "state=x")
    answer = browser.http.get(forged)
    assert answer.status_code == 400 and "code=" not in answer.text


def test_an_upstream_that_is_down_is_unavailable_on_the_chooser(store_url: str | None) -> None:
    down = UpstreamOP(f"http://127.0.0.1:{free_port()}")  # never served
    providers = {"sandbox": {"type": "sandbox"}, "freja": oidc_provider(down)}
    with running_gateway(store_url, providers=providers) as live:
        browser = Browser(live)
        page = browser.authorize(**browser.authorize_params("basic"))
        assert page.status_code == 200
        freja = re.search(r'<button[^>]*value="freja"[^>]*>', page.text)
        assert freja is not None and "disabled" in freja.group(0)
        assert "Inte tillgänglig just nu" in page.text
        ready = httpx2.get(f"{live.url}/readyz")  # the sandbox still works: degraded, ready
        assert ready.status_code == 200 and ready.json()["status"] == "degraded"
        assert "provider freja" in ready.json()["problems"]
        browser.close()


def test_an_upstream_failing_again_and_again_is_shut_off_while_the_others_go_on(
    store_url: str | None, op: UpstreamOP
) -> None:
    providers = {"sandbox": {"type": "sandbox"}, "freja": oidc_provider(op)}
    via_freja = {AUTHN_PROVIDER_PARAMETER: "freja"}
    with running_gateway(store_url, providers=providers) as live:
        op.twist = Twist(token_delay=1.5)  # slower than timeout_seconds: 1
        for _ in range(FAILURES_TO_OPEN):
            browser = Browser(live)
            assert_refused(to_callback(browser, **via_freja), "temporarily_unavailable")
            browser.close()
        browser = Browser(live)
        sent_before = len(op.authorize_requests)
        shut = browser.authorize(**browser.authorize_params("basic", **via_freja))
        assert shut.status_code == 503 and len(op.authorize_requests) == sent_before
        browser.close()
        browser = Browser(live)
        chooser = browser.authorize(**browser.authorize_params("basic"))
        freja = re.search(r'<button[^>]*value="freja"[^>]*>', chooser.text)
        assert freja is not None and "disabled" in freja.group(0)
        browser.close()
        citizen = Browser(live)
        assert "code" in citizen.login("basic", **{AUTHN_PROVIDER_PARAMETER: "sandbox"}).callback
        citizen.close()
        ready = httpx2.get(f"{live.url}/readyz").json()
        assert ready["status"] == "degraded" and "provider freja" in ready["problems"]


@pytest.mark.parametrize("method", ["client_secret_post", "private_key_jwt"])
def test_other_client_authentication_methods(
    store_url: str | None, op: UpstreamOP, method: str, tmp_path: Path
) -> None:
    overrides: dict[str, Any] = {"client_auth": method}
    if method == "private_key_jwt":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = tmp_path / "client.key"
        pem.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        overrides.update(private_key=str(pem), client_secret=None)
    with running_gateway(store_url, providers={"freja": oidc_provider(op, **overrides)}) as live:
        op.client_auth = method
        op.client_jwks_url = f"{live.url}/providers/freja/jwks"
        browser = Browser(live)
        assert "code" in browser.follow_to_client(to_callback(browser))
        op.client_secret, saved = "changed-at-the-upstream", op.client_secret
        try:
            if method == "client_secret_post":  # the upstream no longer takes our secret
                assert_refused(to_callback(browser, prompt="login"))
        finally:
            op.client_secret = saved
        browser.close()


@pytest.mark.usefixtures("op")
def test_upstream_calls_are_timed_in_the_metrics(gateway: LiveGateway, browser: Browser) -> None:
    browser.follow_to_client(to_callback(browser))
    text = httpx2.get(f"{gateway.url}/metrics").text
    for operation in ("token", "userinfo", "metadata"):
        assert re.search(
            rf'portvakt_upstream_request_duration_seconds_count\{{operation="{operation}",'
            rf'outcome="ok",provider="freja"\}} [1-9]',
            text,
        ), operation


def test_an_id_token_for_several_audiences_is_taken_when_azp_names_us(
    browser: Browser, op: UpstreamOP
) -> None:
    op.twist = Twist(id_token_claims={"aud": [op.client_id, "another-rp"], "azp": op.client_id})
    assert "code" in browser.follow_to_client(to_callback(browser))


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"aud": ["portvakt", "another-rp"]}, id="several-audiences-without-azp"),
        pytest.param({"aud": ["portvakt", "another-rp"], "azp": "another-rp"}, id="azp-another"),
        pytest.param({"azp": "another-rp"}, id="one-audience-azp-another"),
        pytest.param({"azp": ["portvakt"]}, id="azp-a-list"),
        pytest.param({"nbf": int(time.time()) + 3600}, id="not-valid-before-an-hour"),
        pytest.param({"exp": math.nan}, id="exp-not-a-number"),
        pytest.param({"iat": "now"}, id="iat-not-a-number"),
        pytest.param({"sub": ""}, id="empty-sub"),
        pytest.param({"sub": ["upstream-subject-1"]}, id="sub-a-list"),
        pytest.param({"iss": []}, id="iss-a-list"),
    ],
)
def test_id_token_claims_out_of_rule_are_refused(
    browser: Browser, op: UpstreamOP, claims: dict[str, Any]
) -> None:
    op.twist = Twist(id_token_claims=claims)
    assert_refused(to_callback(browser))


def test_an_id_token_whose_nonce_is_a_list_holding_ours_is_refused(
    browser: Browser, op: UpstreamOP
) -> None:
    op.twist = Twist(nonce_in_a_list=True)
    assert_refused(to_callback(browser))


def test_prompt_login_refuses_an_auth_time_that_is_not_a_number(
    browser: Browser, op: UpstreamOP
) -> None:
    op.twist = Twist(id_token_claims={"auth_time": "just now"})
    assert_refused(to_callback(browser, prompt="login"))


def test_prompt_login_refuses_an_old_auth_time(browser: Browser, op: UpstreamOP) -> None:
    op.twist = Twist(id_token_claims={"auth_time": int(time.time()) - 3600})
    assert_refused(to_callback(browser, prompt="login"))


@pytest.mark.parametrize("algorithm", ["HS256", "none"])
def test_an_upstream_may_not_be_trusted_with_hmac_or_no_signature(algorithm: str) -> None:
    config = {**oidc_provider(UpstreamOP("https://op.example")), "algorithms": [algorithm]}
    with pytest.raises(ValidationError, match="never none or HMAC"):
        OidcConfig.model_validate(config)


def test_the_audit_writes_the_upstream_login_with_the_number_masked(
    browser: Browser, op: UpstreamOP, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="portvakt.audit")
    browser.follow_to_client(to_callback(browser, acr_values=LOA3))
    event = authenticated_event(caplog, "199908072391")
    assert (event["provider"], event["upstream"]) == ("freja", op.base_url)
    assert event["person"] == "19990807****" and event["loa"] == LOA3


# -- the proxy's duties: authnProvider, originalClientId/Token, the named person -------------------

AUTHN_PROVIDER_CLAIM = "https://id.oidc.se/claim/authnProvider"
ORIGINAL_CLIENT_ID = "https://id.oidc.se/param/originalClientId"
ORIGINAL_CLIENT_TOKEN = "https://id.oidc.se/param/originalClientToken"
ORIGINAL_CLIENT_ID_SUPPORTED = "https://id.oidc.se/disco/originalClientIdSupported"
ORIGINAL_CLIENT_TOKEN_SUPPORTED = "https://id.oidc.se/disco/originalClientTokenSupported"
CLIENT_TOKEN = "ZXlKaGJHY2lPaUpTVXpJMU5pSjku"


def id_token_after(gateway: LiveGateway, browser: Browser, **extra: str) -> dict[str, Any]:
    callback = browser.follow_to_client(to_callback(browser, **extra))
    form = {"grant_type": "authorization_code", "code": callback["code"]}
    tokens = token_request(
        gateway, {**form, "redirect_uri": REDIRECT_URI}, ("basic", "basic-secret")
    )
    assert tokens.status_code == 200, tokens.text
    return claims_of(tokens.json()["id_token"])


def test_the_id_token_names_the_upstream_issuer(
    gateway: LiveGateway, browser: Browser, op: UpstreamOP
) -> None:
    assert id_token_after(gateway, browser)[AUTHN_PROVIDER_CLAIM] == op.base_url


def test_an_upstream_proxy_names_the_provider_it_used(
    gateway: LiveGateway, browser: Browser, op: UpstreamOP
) -> None:
    """Claims §2.3.5: an upstream that is itself a proxy says who authenticated."""
    op.twist = Twist(id_token_claims={AUTHN_PROVIDER_CLAIM: "https://www.bankid.com"})
    assert id_token_after(gateway, browser)[AUTHN_PROVIDER_CLAIM] == "https://www.bankid.com"


def test_the_upstream_issuer_as_authn_provider_selects_that_upstream(
    store_url: str | None, op: UpstreamOP
) -> None:
    """RPar §2.2: the claim's value sent back skips the chooser."""
    providers = {"sandbox": {"type": "sandbox"}, "freja": oidc_provider(op)}
    with running_gateway(store_url, providers=providers) as live, closing(Browser(live)) as citizen:
        sent = citizen.authorize(
            **citizen.authorize_params("basic", **{AUTHN_PROVIDER_PARAMETER: op.base_url})
        )
        assert sent.status_code == 303 and sent.headers["location"].startswith(op.base_url)


def original_client_run(
    store_url: str | None, declared: dict[str, Any], **extra: str
) -> dict[str, str]:
    """One login through an upstream OP whose discovery declares `declared`: what it was sent."""
    port = free_port()
    upstream = UpstreamOP(f"http://127.0.0.1:{port}", discovery_extra=declared)
    with (
        ServedApp(upstream.app, port),
        running_gateway(store_url, providers={"freja": oidc_provider(upstream)}) as live,
        closing(Browser(live)) as citizen,
    ):
        assert "code" in citizen.follow_to_client(to_callback(citizen, **extra))
    return upstream.authorize_requests[-1]


def test_original_client_parameters_go_to_an_upstream_that_declares_them(
    store_url: str | None,
) -> None:
    """RPar 1.1 §2.3: the e-service's client_id, and a received token passed on."""
    declared = {ORIGINAL_CLIENT_ID_SUPPORTED: True, ORIGINAL_CLIENT_TOKEN_SUPPORTED: True}
    sent = original_client_run(store_url, declared)
    assert sent[ORIGINAL_CLIENT_ID] == "basic" and ORIGINAL_CLIENT_TOKEN not in sent
    proxied = {ORIGINAL_CLIENT_ID: "e-tjanst-bakom", ORIGINAL_CLIENT_TOKEN: CLIENT_TOKEN}
    sent = original_client_run(store_url, declared, **proxied)
    assert sent[ORIGINAL_CLIENT_ID] == "e-tjanst-bakom"
    assert sent[ORIGINAL_CLIENT_TOKEN] == CLIENT_TOKEN


def test_original_client_parameters_are_not_sent_to_an_upstream_that_does_not_declare_them(
    store_url: str | None,
) -> None:
    proxied = {ORIGINAL_CLIENT_ID: "e-tjanst-bakom", ORIGINAL_CLIENT_TOKEN: CLIENT_TOKEN}
    sent = original_client_run(store_url, {}, **proxied)
    assert ORIGINAL_CLIENT_ID not in sent and ORIGINAL_CLIENT_TOKEN not in sent
    only_id = original_client_run(store_url, {ORIGINAL_CLIENT_ID_SUPPORTED: True}, **proxied)
    assert only_id[ORIGINAL_CLIENT_ID] == "e-tjanst-bakom" and ORIGINAL_CLIENT_TOKEN not in only_id


def test_the_named_person_is_sent_as_login_hint_and_claims_value(store_url: str | None) -> None:
    wanted = json.dumps({"id_token": {PNR_CLAIM: {"essential": True, "value": "199908072391"}}})
    sent = original_client_run(store_url, {"claims_parameter_supported": True}, claims=wanted)
    assert sent["login_hint"] == "199908072391"
    assert json.loads(sent["claims"]) == {"id_token": {PNR_CLAIM: {"value": "199908072391"}}}
    without = original_client_run(store_url, {}, claims=wanted)
    assert without["login_hint"] == "199908072391" and "claims" not in without


@pytest.mark.parametrize(
    "named",
    [
        pytest.param({"login_hint": "196408233234"}, id="login-hint"),
        pytest.param(
            {"claims": json.dumps({"id_token": {PNR_CLAIM: {"value": "196408233234"}}})},
            id="claims-value",
        ),
    ],
)
def test_an_upstream_answering_with_another_person_is_refused(
    browser: Browser, op: UpstreamOP, named: dict[str, str]
) -> None:
    answer = to_callback(browser, **named)  # the double logs in its own person, 199908072391
    assert_refused(answer)
    assert "annan person än den e-tjänsten bad om" in answer.text

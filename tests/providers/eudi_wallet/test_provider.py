"""The EU wallet provider end to end over HTTP: a citizen's browser (tests/harness.Browser)
and a wallet (tests/doubles/wallet.py, PyJWT + jwcrypto) against the running gateway, both
flows, and every refusal reaching the citizen's page with its own text, never a 5xx."""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Iterator
from html import unescape
from typing import Any

import httpx2
import jwt
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.responses import Response

from gateway.login.upstream_health import FAILURES_TO_OPEN
from providers.eudi_wallet.config import EIDAS_HIGH
from tests.doubles.sd_jwt_vc import SE_PERSON, holder_key, issue_pid
from tests.doubles.status_lists import StatusServer, serve_list
from tests.doubles.wallet import TestWallet, link_parameters
from tests.doubles.wallet_pki import PidProvider
from tests.harness import (
    Browser,
    LoginResult,
    code_form,
    query_of,
    token_request,
)
from tests.providers.eudi_wallet.conftest import WalletSetup

PNR_CLAIM = "https://id.oidc.se/claim/personalIdentityNumber"
PRID_CLAIM = "https://id.swedenconnect.se/claim/prid"
EIDAS_SCOPE = "https://id.swedenconnect.se/scope/eidasNaturalPersonIdentity"
FINN = {**SE_PERSON, "issuing_country": "FI", "personal_administrative_number": "131052-308T"}


class WalletLogin:
    """One citizen's login: the browser on the wallet page, and the two links it shows."""

    def __init__(self, setup: WalletSetup, **authorize: str) -> None:
        self.setup = setup
        self.browser = Browser(setup.gateway)
        self.wallet = TestWallet()
        params = self.browser.authorize_params(**{"ui_locales": "en", **authorize})
        started = self.browser.authorize(**params)
        assert started.status_code == 303, started.text
        self.wait_url = started.headers["location"]
        self.login_id = query_of(self.wait_url)["login"]
        page = self.page()
        assert page.status_code == 200, page.text
        self.same_device = _attribute(page.text, "wallet-link", "href")
        self.cross_device = _attribute(page.text, "wallet-qr", "data-request")

    def page(self) -> httpx2.Response:
        return self.browser.http.get(self.wait_url)

    def status(self) -> dict[str, Any]:
        answer = self.browser.http.get(f"/providers/wallet/status?login={self.login_id}")
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    def finish_cross_device(self) -> LoginResult:
        state = self.status()
        assert state["status"] == "complete", state
        done = self.browser.http.get(state["next"])
        return LoginResult(self.browser.follow_to_client(done), None)

    def id_token(self, result: LoginResult) -> dict[str, Any]:
        tokens = token_request(self.setup.gateway, code_form(result), ("basic", "basic-secret"))
        assert tokens.status_code == 200, tokens.text
        claims: dict[str, Any] = jwt.decode(
            tokens.json()["id_token"], options={"verify_signature": False}
        )
        return claims

    def close(self) -> None:
        self.browser.close()
        self.wallet.http.close()


def _attribute(html: str, element_id: str, name: str) -> str:
    """An attribute of the element with this id on the page, unescaped."""
    tag = re.search(rf'<[a-z]+ [^>]*id="{element_id}"[^>]*>', html)
    assert tag is not None, f"no {element_id} on the page"
    value = re.search(rf'{name}="([^"]*)"', tag.group(0))
    assert value is not None, f"{element_id} has no {name}"
    return unescape(value.group(1))


@pytest.fixture
def login(wallet: WalletSetup) -> Iterator[WalletLogin]:
    started = WalletLogin(wallet)
    yield started
    started.close()


def test_the_page_carries_both_requests_as_openid4vp_links(login: WalletLogin) -> None:
    for link in (login.same_device, login.cross_device):
        assert link.startswith("openid4vp://?")
        parameters = link_parameters(link)
        assert parameters["client_id"].startswith("x509_hash:")
        assert parameters["request_uri_method"] == "post"
    assert login.same_device != login.cross_device


@pytest.mark.parametrize(
    ("user_agent", "first"),
    [
        ("Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0", "wallet-qr"),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) Mobile/15E148", "wallet-link"),
        ("Mozilla/5.0 (Linux; Android 15; Pixel 9) Chrome/140.0 Mobile", "wallet-link"),
    ],
)
def test_a_phone_gets_the_link_first_and_a_computer_the_qr(
    wallet: WalletSetup, user_agent: str, first: str
) -> None:
    started = WalletLogin(wallet)
    try:
        page = started.browser.http.get(started.wait_url, headers={"User-Agent": user_agent})
    finally:
        started.close()
    positions = {name: page.text.index(f'id="{name}"') for name in ("wallet-qr", "wallet-link")}
    assert min(positions, key=positions.__getitem__) == first


def test_the_request_object_follows_haip(login: WalletLogin, wallet: WalletSetup) -> None:
    request = login.wallet.fetch(login.cross_device)
    claims = request.claims

    assert claims["response_type"] == "vp_token"
    assert claims["response_mode"] == "direct_post.jwt"
    assert claims["response_uri"].startswith(f"{wallet.gateway.url}/providers/wallet/response/")
    assert "redirect_uri" not in claims
    assert len(claims["nonce"]) >= 22 and len(claims["state"]) >= 22
    metadata = claims["client_metadata"]
    assert metadata["encrypted_response_enc_values_supported"] == ["A128GCM", "A256GCM"]
    (key,) = metadata["jwks"]["keys"]
    assert key["alg"] == "ECDH-ES" and key["crv"] == "P-256" and key["use"] == "enc"
    assert "d" not in key and key["kid"]
    (query,) = claims["dcql_query"]["credentials"]
    assert query["format"] == "dc+sd-jwt" and query["meta"] == {"vct_values": ["urn:eudi:pid:1"]}
    # openid + naturalPersonNumber + naturalPersonInfo: the identifiers and the names only
    assert request.asked_claims == {
        "issuing_country", "personal_administrative_number",
        "given_name", "family_name", "birthdate",
    }  # fmt: skip
    header = jwt.get_unverified_header(
        login.wallet.http.get(link_parameters(login.cross_device)["request_uri"]).text
    )
    assert header["alg"] == "ES256" and header["typ"] == "oauth-authz-req+jwt"
    assert header["x5c"] == [wallet.access.der_b64]


def test_a_login_only_asks_for_the_claims_its_scopes_need(wallet: WalletSetup) -> None:
    started = WalletLogin(wallet, scope="openid")
    try:
        request = started.wallet.fetch(started.cross_device)
    finally:
        started.close()
    assert request.asked_claims == {"issuing_country", "personal_administrative_number"}


def test_a_cross_device_login_reaches_the_e_service(
    login: WalletLogin, wallet: WalletSetup
) -> None:
    request = login.wallet.fetch(login.cross_device)
    assert login.status()["status"] == "fetched"

    answered = login.wallet.present(request, issue_pid(wallet.sweden))

    assert answered.status_code == 200 and answered.json() == {}
    assert answered.headers["cache-control"] == "no-store"
    claims = login.id_token(login.finish_cross_device())
    assert claims[PNR_CLAIM] == "191212121212"
    assert claims["acr"] == EIDAS_HIGH
    assert "Test PID Provider SE" in claims["https://id.oidc.se/claim/authnProvider"]


def test_no_log_record_holds_the_number_the_pid_or_the_nonce(
    login: WalletLogin, wallet: WalletSetup, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    request = login.wallet.fetch(login.cross_device)
    pid = issue_pid(wallet.sweden)
    login.wallet.present(request, pid)
    login.id_token(login.finish_cross_device())
    other = WalletLogin(wallet)
    try:  # a refused presentation is logged too, with why and nothing of the person
        refused = other.wallet.fetch(other.cross_device)
        other.wallet.answer(refused, pid.present("another nonce", refused.client_id))
        assert other.status()["status"] == "failed"
    finally:
        other.close()

    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "wallet presentation refused" in logged
    for secret in ("191212121212", pid.issuer_jwt[:40], request.nonce, request.state):
        assert secret not in logged


def test_a_same_device_login_returns_with_a_response_code(
    login: WalletLogin, wallet: WalletSetup
) -> None:
    request = login.wallet.fetch(login.same_device)

    answered = login.wallet.present(request, issue_pid(wallet.sweden))

    redirect = answered.json()["redirect_uri"]
    assert query_of(redirect)["response_code"]
    done = login.browser.http.get(redirect)
    result = LoginResult(login.browser.follow_to_client(done), None)
    assert login.id_token(result)[PNR_CLAIM] == "191212121212"


def test_a_same_device_answer_is_never_finished_without_its_code(
    login: WalletLogin, wallet: WalletSetup
) -> None:
    request = login.wallet.fetch(login.same_device)
    redirect = login.wallet.present(request, issue_pid(wallet.sweden)).json()["redirect_uri"]

    assert login.status()["status"] == "answered_elsewhere"
    without = login.browser.http.get(f"/providers/wallet/done?login={login.login_id}")
    assert without.status_code == 303 and without.headers["location"] == login.wait_url
    wrong = login.browser.http.get(f"/providers/wallet/done?login={login.login_id}&response_code=x")
    assert wrong.status_code == 400
    done = login.browser.http.get(redirect)  # the right code still works once
    assert login.browser.follow_to_client(done)["code"]


def test_a_same_device_redirect_in_another_browser_is_refused(
    login: WalletLogin, wallet: WalletSetup
) -> None:
    request = login.wallet.fetch(login.same_device)
    redirect = login.wallet.present(request, issue_pid(wallet.sweden)).json()["redirect_uri"]

    with httpx2.Client(follow_redirects=False, timeout=10) as stranger:
        elsewhere = stranger.get(redirect)

    assert elsewhere.status_code in (400, 403)
    assert "code=" not in elsewhere.headers.get("location", "")


def test_a_replayed_response_is_refused(login: WalletLogin, wallet: WalletSetup) -> None:
    request = login.wallet.fetch(login.cross_device)
    pid = issue_pid(wallet.sweden)
    presentation = pid.present(request.nonce, request.client_id)
    assert login.wallet.answer(request, presentation).status_code == 200

    replayed = login.wallet.answer(request, presentation)

    assert replayed.status_code == 400 and replayed.json()["error"] == "invalid_request"
    assert login.finish_cross_device().callback["code"]


def test_the_other_request_dies_once_one_is_answered(
    login: WalletLogin, wallet: WalletSetup
) -> None:
    same = login.wallet.fetch(login.same_device)
    cross = login.wallet.fetch(login.cross_device)
    assert login.wallet.present(cross, issue_pid(wallet.sweden)).status_code == 200

    late = login.wallet.present(same, issue_pid(wallet.sweden))

    assert late.status_code == 400


@pytest.mark.parametrize(
    ("bend", "text"),
    [
        ({"nonce": "another-nonce"}, "could not be verified"),
        ({"audience": "x509_hash:someone-else"}, "could not be verified"),
    ],
)
def test_a_presentation_for_another_request_is_refused_on_the_page(
    login: WalletLogin, wallet: WalletSetup, bend: dict[str, str], text: str
) -> None:
    request = login.wallet.fetch(login.cross_device)
    pid = issue_pid(wallet.sweden)
    presentation = pid.present(
        bend.get("nonce", request.nonce), bend.get("audience", request.client_id)
    )

    assert login.wallet.answer(request, presentation).status_code == 200

    assert login.status()["status"] == "failed"
    assert text in login.page().text
    assert (
        "code="
        not in login.browser.http.get(f"/providers/wallet/done?login={login.login_id}").headers[
            "location"
        ]
    )


def test_a_key_binding_by_another_key_is_refused(login: WalletLogin, wallet: WalletSetup) -> None:
    request = login.wallet.fetch(login.cross_device)
    presentation = issue_pid(wallet.sweden).present(
        request.nonce, request.client_id, key=holder_key()
    )

    login.wallet.answer(request, presentation)

    assert login.status()["status"] == "failed"


def test_an_issuer_not_on_the_trust_list_is_named_on_the_page(login: WalletLogin) -> None:
    request = login.wallet.fetch(login.cross_device)

    login.wallet.present(request, issue_pid(PidProvider.make("SE")))

    assert "from a provider we do not trust" in login.page().text


def test_an_expired_pid_is_named_on_the_page(login: WalletLogin, wallet: WalletSetup) -> None:
    request = login.wallet.fetch(login.cross_device)
    stale = issue_pid(wallet.sweden, iat=wallet.clock() - 7200, lifetime=3600)

    login.wallet.present(request, stale)

    assert "has expired" in login.page().text


def test_a_pid_without_an_identity_number_is_refused(
    login: WalletLogin, wallet: WalletSetup
) -> None:
    request = login.wallet.fetch(login.cross_device)
    person = {k: v for k, v in SE_PERSON.items() if k != "personal_administrative_number"}

    login.wallet.present(request, issue_pid(wallet.sweden, person))

    assert "no identity number" in login.page().text


def test_a_foreign_pid_logs_in_with_a_prid(wallet: WalletSetup) -> None:
    started = WalletLogin(wallet, scope=f"openid {EIDAS_SCOPE}")
    try:
        request = started.wallet.fetch(started.cross_device)
        started.wallet.present(request, issue_pid(wallet.finland, FINN))
        claims = started.id_token(started.finish_cross_device())
    finally:
        started.close()
    assert claims[PRID_CLAIM].startswith("FI:")
    assert PNR_CLAIM not in claims


def test_a_pid_provider_cannot_name_people_of_another_state(
    login: WalletLogin, wallet: WalletSetup
) -> None:
    request = login.wallet.fetch(login.cross_device)

    login.wallet.present(request, issue_pid(wallet.finland, SE_PERSON))

    assert login.status()["status"] == "failed"
    assert "from a provider we do not trust" in login.page().text


@pytest.fixture(scope="module")
def status_server() -> Iterator[StatusServer]:
    server = StatusServer()
    with server.served:
        yield server


@pytest.mark.parametrize(("status", "outcome"), [(0, "complete"), (1, "failed"), (2, "failed")])
def test_the_status_list_decides_on_revoked_and_suspended_pids(
    login: WalletLogin, wallet: WalletSetup, status_server: StatusServer, status: int, outcome: str
) -> None:
    statuses = [0] * 16
    statuses[5] = status
    url = serve_list(status_server, wallet.sweden, statuses=statuses, bits=2)
    pid = issue_pid(wallet.sweden, status={"status_list": {"idx": 5, "uri": url}})
    request = login.wallet.fetch(login.cross_device)

    login.wallet.present(request, pid)

    assert login.status()["status"] == outcome
    if status:
        assert "revoked or suspended" in login.page().text


def test_an_unknown_status_refuses_the_pid(
    login: WalletLogin, wallet: WalletSetup, status_server: StatusServer
) -> None:
    missing = status_server.new_url()  # answers 404
    pid = issue_pid(wallet.sweden, status={"status_list": {"idx": 0, "uri": missing}})
    request = login.wallet.fetch(login.cross_device)

    login.wallet.present(request, pid)

    assert "could not check" in login.page().text


def test_a_failing_status_host_is_timed_and_closes_no_wallet_logins(
    wallet: WalletSetup, status_server: StatusServer
) -> None:
    """Its fetches show in the metrics as the wallet's `status_list` errors; the breaker does not
    count them, so after more of them than open it the wallet still takes logins."""
    failing = status_server.new_url()
    status_server.serve(failing, lambda: Response("down", status_code=503))
    for _ in range(FAILURES_TO_OPEN + 1):
        login = WalletLogin(wallet)  # the wallet page: the provider takes the login
        pid = issue_pid(wallet.sweden, status={"status_list": {"idx": 0, "uri": failing}})
        login.wallet.present(login.wallet.fetch(login.cross_device), pid)
        assert "could not check" in login.page().text
        login.close()

    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(
            httpx2.get(f"{wallet.gateway.url}/metrics").text
        )
        for sample in family.samples
    }
    timed = (
        "portvakt_upstream_request_duration_seconds_count",
        (("operation", "status_list"), ("outcome", "error"), ("provider", "wallet")),
    )
    assert samples[timed] >= FAILURES_TO_OPEN + 1
    assert samples[("portvakt_provider_up", (("provider", "wallet"),))] == 1
    WalletLogin(wallet).close()


def test_an_unencrypted_answer_is_refused_and_the_request_lives_on(
    login: WalletLogin, wallet: WalletSetup
) -> None:
    request = login.wallet.fetch(login.cross_device)
    presentation = issue_pid(wallet.sweden).present(request.nonce, request.client_id)
    plain = {"vp_token": json.dumps({"pid": [presentation]}), "state": request.state}

    refused = login.wallet.http.post(request.response_uri, data=plain)

    assert refused.status_code == 400 and "encrypted" in refused.json()["error_description"]
    assert login.wallet.answer(request, presentation).status_code == 200


def test_an_answer_encrypted_to_another_key_is_refused(
    login: WalletLogin, wallet: WalletSetup
) -> None:
    request = login.wallet.fetch(login.cross_device)
    another = WalletLogin(wallet)
    try:
        other = login.wallet.fetch(another.cross_device)
    finally:
        another.close()
    presentation = issue_pid(wallet.sweden).present(request.nonce, request.client_id)

    refused = login.wallet.answer(request, presentation, key=other.encryption_key())

    assert refused.status_code == 400


def test_a_deeply_nested_or_oversized_answer_is_refused(login: WalletLogin) -> None:
    request = login.wallet.fetch(login.cross_device)
    nested = b'{"vp_token": ' + b"[" * 3000 + b"]" * 3000 + b"}"

    deep = login.wallet.post_encrypted(request, nested)
    huge = login.wallet.post_encrypted(
        request, {"vp_token": {"pid": ["x" * 400_000]}, "state": request.state}
    )

    assert deep.status_code == 400 and deep.json()["error"] == "invalid_request"
    assert huge.status_code == 400


def test_an_a128gcm_answer_is_accepted(login: WalletLogin, wallet: WalletSetup) -> None:
    request = login.wallet.fetch(login.cross_device)
    presentation = issue_pid(wallet.sweden).present(request.nonce, request.client_id)

    assert login.wallet.answer(request, presentation, enc="A128GCM").status_code == 200
    assert login.finish_cross_device().callback["code"]


def test_an_answer_for_another_state_is_refused(login: WalletLogin, wallet: WalletSetup) -> None:
    request = login.wallet.fetch(login.cross_device)
    presentation = issue_pid(wallet.sweden).present(request.nonce, request.client_id)

    refused = login.wallet.answer(request, presentation, payload=lambda p: {**p, "state": "x"})

    assert refused.status_code == 400


def test_a_declined_request_can_be_tried_again(login: WalletLogin, wallet: WalletSetup) -> None:
    request = login.wallet.fetch(login.cross_device)
    assert login.wallet.decline(request).status_code == 200
    page = login.page()
    assert "You declined in your wallet" in page.text

    retried = login.browser.http.post(
        "/providers/wallet/retry",
        data={"login": login.login_id, "csrf": _hidden(page.text, "csrf")},
    )

    assert retried.status_code == 303
    fresh = _attribute(login.page().text, "wallet-qr", "data-request")
    assert fresh != login.cross_device
    gone = login.wallet.http.post(link_parameters(login.cross_device)["request_uri"])
    assert gone.status_code == 404
    again = login.wallet.fetch(fresh)
    login.wallet.present(again, issue_pid(wallet.sweden))
    assert login.finish_cross_device().callback["code"]


def test_an_unanswered_request_expires(login: WalletLogin, wallet: WalletSetup) -> None:
    wallet.clock.advance(301)
    try:
        assert login.status()["status"] == "expired"
        late = login.wallet.http.post(link_parameters(login.cross_device)["request_uri"])
        assert late.status_code == 404
        assert "has expired" in login.page().text
    finally:
        wallet.clock.advance(-301)


def test_the_request_uri_answers_get_too(login: WalletLogin) -> None:
    request = login.wallet.fetch(login.cross_device, method="GET")
    assert "wallet_nonce" not in request.claims


@pytest.mark.parametrize(
    "body",
    [
        {"wallet_nonce": "ä" * 10},
        {"wallet_nonce": "x" * 300},
        {"wallet_nonce": ["a", "b"]},
    ],
)
def test_a_bad_wallet_nonce_is_refused(login: WalletLogin, body: dict[str, Any]) -> None:
    uri = link_parameters(login.cross_device)["request_uri"]
    assert login.wallet.http.post(uri, data=body).status_code == 400


@pytest.mark.parametrize(
    "form",
    [
        {"response": "a.b.c.d.e"},
        {"response": "x" * 600_000},
        {"response": ""},
        {},
        {"error": "access_denied", "state": "not-this-one"},
        {"response": base64.urlsafe_b64encode(b'{"alg":"none"}').decode() + "...."},
    ],
)
def test_junk_at_the_response_uri_is_a_400(login: WalletLogin, form: dict[str, str]) -> None:
    request = login.wallet.fetch(login.cross_device)
    answer = login.wallet.http.post(request.response_uri, data=form)
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_request"


def test_an_unknown_request_is_a_404_never_a_redirect(login: WalletLogin) -> None:
    wallet_http = login.wallet.http
    unknown = wallet_http.post(f"{login.setup.gateway.url}/providers/wallet/request/unknown")
    assert unknown.status_code == 404
    response = wallet_http.post(
        f"{login.setup.gateway.url}/providers/wallet/response/unknown", data={"error": "x"}
    )
    assert response.status_code == 400


def _hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match is not None
    return match.group(1)

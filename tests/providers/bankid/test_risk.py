"""BankID's risk rating (bankid-2026-and-ciba.md §1.3): every web order asks for it
(`returnRisk`), the provider's `risk` policy decides what each rating does (by default `high` is
refused, the rest accepted, and no rating is `unknown`, never `low`), the rating reaches the
audit, a refusal is a security event of its own, and the e-service gets the rating only through
our claim `https://portvakt.se/claim/bankidRisk` when it asks for it. Real gateway, simulator
over mutual TLS."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import httpx2
import pytest
from pydantic import ValidationError

from providers.bankid.config import BankIDConfig
from providers.bankid.simulator import BankIDSimulator, UserBehaviour
from tests.doubles.tls import LocalPKI
from tests.harness import (
    Browser,
    LiveGateway,
    LoginResult,
    code_form,
    query_of,
    running_gateway,
    token_request,
)
from tests.ops.test_audit import audit_events, authenticated_event
from tests.providers.bankid import test_provider as bankid_tests
from tests.providers.bankid.test_provider import (
    PERSON,
    Clock,
    ScriptedBankID,
    bankid_provider,
    latest_order,
    poll_until_done,
    start,
    status,
)

# The BankID module's fixtures (test CA, clock, simulator over mutual TLS, gateway), by name.
pki, clock, simulator, gateway, scripted, scripted_gateway = (
    bankid_tests.pki,
    bankid_tests.clock,
    bankid_tests.simulator,
    bankid_tests.gateway,
    bankid_tests.scripted,
    bankid_tests.scripted_gateway,
)
bankid, bankid_on_the_test_clock = bankid_tests.bankid, bankid_tests.bankid_on_the_test_clock
RISK_CLAIM = "https://portvakt.se/claim/bankidRisk"
DEVICE_IP = "https://id.oidc.se/claim/deviceIp"
ASK_FOR_RISK = json.dumps({"id_token": {RISK_CLAIM: None}})


def finish(
    citizen: Browser, bankid: BankIDSimulator, clock: Clock, risk: str, **extra: str
) -> httpx2.Response:
    """A BankID login whose order BankID rates `risk`: the gateway's answer at its end."""
    bankid.behave(UserBehaviour(risk=risk, starts_on_collect=1, acts_on_collect=2))  # type: ignore[arg-type]
    state = poll_until_done(citizen, start(citizen, **extra), clock)
    assert state["status"] == "complete", state
    return citizen.http.get(state["next"])


def id_token_claims(live: LiveGateway, citizen: Browser, done: httpx2.Response) -> dict[str, Any]:
    callback = citizen.follow_to_client(done)
    form = code_form(LoginResult(callback, None))
    tokens = token_request(live, form, auth=("basic", "basic-secret")).json()
    payload = tokens["id_token"].split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


def assert_refused_without_reason(done: httpx2.Response) -> None:
    """The generic failure: the citizen's page and the e-service's error name no risk."""
    assert done.status_code == 400, done.text
    assert "Inloggningen lyckades inte" in done.text
    assert "risk" not in done.text.lower()
    back = done.text.split('class="button" href="')[1].split('"')[0].replace("&amp;", "&")
    answer = query_of(back)
    assert answer["error"] == "access_denied" and "risk" not in answer["error_description"]


def test_every_order_asks_bankid_for_its_risk_rating(
    browser: Browser, bankid: BankIDSimulator
) -> None:
    start(browser)
    assert [body for path, body in bankid.calls if path == "auth"][-1]["returnRisk"] is True


@pytest.mark.parametrize(
    "rating", [("low", "low"), ("moderate", "moderate"), ("absent", "unknown")], ids=str
)
def test_the_default_policy_accepts_all_but_high_and_audits_the_rating(
    gateway: LiveGateway,
    browser: Browser,
    bankid: BankIDSimulator,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
    rating: tuple[str, str],
) -> None:
    risk, rated = rating  # what BankID sends, and what the gateway makes of it
    caplog.set_level(logging.INFO, logger="portvakt.audit")
    done = finish(browser, bankid, clock, risk, claims=ASK_FOR_RISK)
    assert ("risk" in latest_order(bankid).completion) == (risk != "absent")
    claims = id_token_claims(gateway, browser, done)
    assert claims[RISK_CLAIM] == rated  # no rating is unknown, never low
    event = authenticated_event(caplog, PERSON)
    assert event["risk"] == rated and event["device_uhi"]


def test_a_high_risk_is_refused_by_default_as_a_security_event(
    browser: Browser,
    bankid: BankIDSimulator,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="portvakt.audit")
    done = finish(browser, bankid, clock, "high", state="s-rated")
    assert_refused_without_reason(done)
    events = audit_events(caplog)
    assert not [event for event in events if event["event"] in ("authenticated", "code_issued")]
    (signal,) = [event for event in events if event["event"] == "login_refused_for_risk"]
    assert signal["risk"] == "high" and signal["provider"] == "bankid"
    assert signal["person"] == PERSON[:8] + "****" and signal["client"] == "basic"
    assert signal["reference"] == latest_order(bankid).order_ref
    assert PERSON not in json.dumps(events)
    (failed,) = [event for event in events if event["event"] == "login_failed"]
    assert failed["reason"] == "failed"


@pytest.fixture(scope="module")
def strict_gateway(
    store_url: str | None, pki: LocalPKI, simulator: tuple[BankIDSimulator, str]
) -> Iterator[LiveGateway]:
    """A policy that refuses all but low, and accepts high (to show each key is read)."""
    policy = {"low": "accept", "moderate": "refuse", "high": "accept", "unknown": "refuse"}
    provider = bankid_provider(pki, simulator[1], risk=policy)
    with running_gateway(store_url, providers={"bankid": provider}) as live:
        yield live


@pytest.mark.parametrize(
    ("risk", "refused"), [("low", False), ("moderate", True), ("high", False), ("absent", True)]
)
def test_a_configured_policy_decides_each_rating(
    strict_gateway: LiveGateway, bankid: BankIDSimulator, clock: Clock, risk: str, refused: bool
) -> None:
    with closing(Browser(strict_gateway)) as citizen:
        done = finish(citizen, bankid, clock, risk, claims=ASK_FOR_RISK)
        if refused:
            assert_refused_without_reason(done)
        else:
            claims = id_token_claims(strict_gateway, citizen, done)
            assert claims[RISK_CLAIM] == risk


def test_the_rating_is_released_only_when_asked_for(
    gateway: LiveGateway, browser: Browser, bankid: BankIDSimulator, clock: Clock
) -> None:
    done = finish(browser, bankid, clock, "moderate")
    assert RISK_CLAIM not in id_token_claims(gateway, browser, done)


def test_bankid_blocking_the_order_is_rfa22_without_the_reason(
    browser: Browser, bankid: BankIDSimulator, clock: Clock
) -> None:
    bankid.behave(UserBehaviour(risk="blocked", starts_on_collect=1, acts_on_collect=2))
    state = poll_until_done(browser, start(browser), clock)
    assert state["status"] == "failed" and state["text"].startswith("Något gick fel. Försök igen.")
    assert latest_order(bankid).hint_code == "transactionRiskBlocked"
    assert "completion" not in state and "next" not in state


@pytest.mark.parametrize(
    "policy",
    [
        {"high": "allow"},  # not an action
        {"extreme": "refuse"},  # not a rating
        {"high": True},
        "refuse",
    ],
)
def test_a_policy_names_only_ratings_and_actions(policy: Any) -> None:
    with pytest.raises(ValidationError, match="risk"):
        BankIDConfig.model_validate(
            {"type": "bankid", "url": "http://127.0.0.1/rp/v6.0", "risk": policy}
        )


def test_the_discovery_document_lists_the_claims(gateway: LiveGateway, browser: Browser) -> None:
    metadata = browser.http.get("/.well-known/openid-configuration").json()
    assert RISK_CLAIM in metadata["claims_supported"]
    assert "https://id.oidc.se/claim/deviceIp" in metadata["claims_supported"]


def test_a_policy_of_ratings_and_actions_loads() -> None:
    config = {"type": "bankid", "url": "http://127.0.0.1/rp/v6.0", "risk": {"moderate": "refuse"}}
    policy = BankIDConfig.model_validate(config).risk
    assert (policy.low, policy.moderate, policy.high, policy.unknown) == (
        "accept",
        "refuse",
        "refuse",
        "accept",
    )


COMPLETION = {"user": {"personalNumber": PERSON, "givenName": "Erik", "surname": "Provsson"}}


@pytest.mark.parametrize(
    ("odd", "risk_claim", "device_ip"),
    [
        ({"risk": "HIGH"}, "unknown", None),  # not BankID's lower case: not a rating we know
        ({"risk": ""}, "unknown", None),
        ({"risk": "low", "device": {"ipAddress": "2001:db8::1", "uhi": 7}}, "low", "2001:db8::1"),
        ({"device": {"ipAddress": "not an address"}}, "unknown", None),
        ({"device": {"ipAddress": 5}}, "unknown", None),
    ],
)
def test_odd_ratings_and_device_data_from_bankid_are_never_believed_nor_a_500(
    scripted: tuple[ScriptedBankID, str],
    scripted_gateway: LiveGateway,
    odd: dict[str, Any],
    risk_claim: str,
    device_ip: str | None,
) -> None:
    collected = {"orderRef": "131daac9-16c6-4618-beb0-365768f37288", "status": "complete"}
    answer = json.dumps({**collected, "completionData": {**COMPLETION, **odd}}).encode()
    scripted[0].answers = {"auth": (200, ScriptedBankID.STARTED), "collect": (200, answer)}
    ask = json.dumps({"id_token": {RISK_CLAIM: None, DEVICE_IP: None}})
    with closing(Browser(scripted_gateway)) as citizen:
        sent = citizen.authorize(**citizen.authorize_params("basic", claims=ask))
        wait = citizen.http.get(sent.headers["location"])  # its one collect: complete
        assert wait.status_code == 303, wait.text
        claims = id_token_claims(
            scripted_gateway, citizen, citizen.http.get(wait.headers["location"])
        )
    assert claims[RISK_CLAIM] == risk_claim and claims.get(DEVICE_IP) == device_ip


@pytest.mark.parametrize(
    "odd",
    [{"risk": 7}, {"risk": ["high"]}, {"device": "127.0.0.1"}, {"signature": "not base64!"}],
)
def test_malformed_risk_device_or_signature_fail_the_order_never_a_500(
    scripted: tuple[ScriptedBankID, str], scripted_gateway: LiveGateway, odd: dict[str, Any]
) -> None:
    collected = {"orderRef": "131daac9-16c6-4618-beb0-365768f37288", "status": "complete"}
    answer = json.dumps({**collected, "completionData": {**COMPLETION, **odd}}).encode()
    scripted[0].answers = {"auth": (200, ScriptedBankID.STARTED), "collect": (200, answer)}
    with closing(Browser(scripted_gateway)) as citizen:
        state = status(citizen, start(citizen))
    assert state["status"] == "failed" and "next" not in state
    assert state["text"].startswith("Något gick fel. Försök igen.")

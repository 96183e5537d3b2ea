"""Signing with BankID end to end (issue 21): the e-service's signRequest, signed with PyJWT, at
/authorize; the bundled simulator over mutual TLS; the ID token verified with PyJWT against the
gateway's JWKS. What BankID was asked for is read from the simulator, what it answered from its
order: the claims carry that answer verbatim, and the signature verifies against the simulator's
root (signature_check.py, helper "evidence")."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import httpx2
import pytest

from providers.bankid.signature_check import verify_bankid_signature
from providers.bankid.simulator import BankIDSimulator, UserBehaviour
from tests.doubles.tls import LocalPKI
from tests.harness import NUMBER_SCOPE, Browser, LiveGateway, running_gateway
from tests.oidc.test_request_object import PNR_CLAIM
from tests.oidc.test_sign_request import (
    APPROVAL,
    AUTHN_EVIDENCE,
    CLIENTS,
    MESSAGE,
    SIGN_REQUEST,
    TBS_DATA,
    USER_SIGNATURE,
    sign_jwt,
    sign_params,
    sign_request,
    verified_id_token,
)
from tests.providers.bankid import test_provider as bankid_tests
from tests.providers.bankid.test_provider import (
    PERSON,
    Clock,
    bankid_provider,
    latest_order,
    login_id,
    poll_until_done,
)

# The BankID module's fixtures (test CA, clock, simulator over mutual TLS), by name.
pki, clock, simulator = bankid_tests.pki, bankid_tests.clock, bankid_tests.simulator
bankid, bankid_on_the_test_clock = bankid_tests.bankid, bankid_tests.bankid_on_the_test_clock


@pytest.fixture(scope="module")
def live(
    store_url: str | None, pki: LocalPKI, simulator: tuple[BankIDSimulator, str]
) -> Iterator[LiveGateway]:
    clients = [client for client in CLIENTS if "providers" not in client]
    providers = {"bankid": bankid_provider(pki, simulator[1])}
    with running_gateway(store_url, clients=clients, providers=providers) as gateway:
        yield gateway


@pytest.fixture
def citizen(live: LiveGateway) -> Iterator[Browser]:
    browser = Browser(live)
    yield browser
    browser.close()


def order_page(citizen: Browser, params: dict[str, str]) -> httpx2.Response:
    """/authorize → BankID's order page: the only e-ID, so no chooser."""
    sent = citizen.authorize(**params)
    assert sent.status_code == 303, sent.text
    assert "/providers/bankid/wait?login=" in sent.headers["location"]
    page = citizen.http.get(sent.headers["location"])
    assert page.status_code == 200, page.text
    return page


def sign_body(sim: BankIDSimulator) -> dict[str, object]:
    return [body for path, body in sim.calls if path == "sign"][-1]


def test_a_signature_through_bankid(
    live: LiveGateway, citizen: Browser, bankid: BankIDSimulator, clock: Clock
) -> None:
    bankid.behave(UserBehaviour(starts_on_collect=1, acts_on_collect=2))
    page = order_page(citizen, sign_params(live, ui_locales="en"))
    body = sign_body(bankid)
    assert body["userVisibleData"] == MESSAGE["message#en"]
    assert body["userNonVisibleData"] == TBS_DATA
    final = poll_until_done(citizen, page, clock)
    signed_at = clock()
    assert final["status"] == "complete", final
    completion = latest_order(bankid).completion
    clock.advance(30)
    callback = citizen.follow_to_client(citizen.http.get(final["next"]))
    token = verified_id_token(live, callback, "signer")
    assert token[USER_SIGNATURE] == completion["signature"]
    assert token[AUTHN_EVIDENCE] == completion["ocspResponse"]
    assert token["auth_time"] == int(signed_at)
    assert token[PNR_CLAIM] == PERSON
    # The evidence holds against the simulator's Member Banks root, over what was sent.
    facts = verify_bankid_signature(
        token[USER_SIGNATURE],
        token[AUTHN_EVIDENCE],
        bankid.evidence.root_pem(),
        expected_visible=MESSAGE["message#en"],
        expected_non_visible=TBS_DATA,
    )
    assert (facts.personal_number, facts.func_id) == (PERSON, "Signing")


def test_an_approval_through_bankid_for_the_named_person(
    live: LiveGateway, citizen: Browser, bankid: BankIDSimulator, clock: Clock
) -> None:
    ingrid = "196408233234"
    bankid.behave(UserBehaviour(personal_number=ingrid, given_name="Ingrid", surname="Testsson"))
    approval = sign_jwt(live, sign_request(tbs_data=None), "approver")
    named = {"id_token": {PNR_CLAIM: {"essential": True, "value": ingrid}}}
    params = sign_params(
        live, "approver", f"openid {NUMBER_SCOPE} {APPROVAL}", claims=json.dumps(named)
    )
    page = order_page(citizen, {**params, SIGN_REQUEST: approval})
    body = sign_body(bankid)
    assert body["requirement"]["personalNumber"] == ingrid  # type: ignore[index]
    binding = f"clientId=approver;loginId={login_id(page)}"
    assert body["userNonVisibleData"] == base64.b64encode(binding.encode()).decode()
    assert body["userVisibleData"] == MESSAGE["message#sv"]
    final = poll_until_done(citizen, page, clock)
    signed_at = clock()
    callback = citizen.follow_to_client(citizen.http.get(final["next"]))
    token = verified_id_token(live, callback, "approver")
    assert USER_SIGNATURE not in token and AUTHN_EVIDENCE not in token
    assert token["auth_time"] == int(signed_at)
    assert token[PNR_CLAIM] == ingrid

"""The BankID RP API v6.0 simulator itself: the documented JSON, errors and QR formula."""

from __future__ import annotations

import base64

import pytest
from starlette.testclient import TestClient

from providers.bankid_client import qr_payload
from providers.bankid_simulator import API_PREFIX, BankIDSimulator, SimulatorError

SECRET = "d28db9a7-4cde-429e-a983-359be676944c"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def simulator(clock: Clock) -> BankIDSimulator:
    return BankIDSimulator(clock=clock, start_timeout=30)


@pytest.fixture
def api(simulator: BankIDSimulator) -> TestClient:
    return TestClient(simulator.app)


def call(api: TestClient, path: str, body: object) -> tuple[int, dict[str, object]]:
    response = api.post(f"{API_PREFIX}/{path}", json=body)
    return response.status_code, response.json()


def auth(api: TestClient, **extra: object) -> dict[str, object]:
    status, body = call(api, "auth", {"endUserIp": "192.0.2.1", **extra})
    assert status == 200, body
    return body


def test_the_rp_guidelines_qr_test_vector() -> None:
    expected = [
        "dc69358e712458a66a7525beef148ae8526b1c71610eff2c16cdffb4cdac9bf8",
        "949d559bf23403952a94d103e67743126381eda00f0b3cbddbf7c96b1adcbce2",
        "a9e5ec59cb4eee4ef4117150abc58fad7a85439a6a96ccbecc3668b41795b3f3",
    ]
    assert [BankIDSimulator.qr_auth_code(SECRET, t) for t in range(3)] == expected


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"endUserIp": "not-an-ip"},
        {"endUserIp": "192.0.2.1", "userVisibleData": "not base64!"},
        {"endUserIp": "192.0.2.1", "userVisibleData": base64.b64encode(b"x" * 1200).decode()},
        {"endUserIp": "192.0.2.1", "requirement": {"personalNumber": "1999"}},
        {"endUserIp": "192.0.2.1", "personalNumber": "199908072391"},  # removed in v6.0
        {"endUserIp": "192.0.2.1", "returnUrl": ""},
    ],
)
def test_auth_refuses_bad_parameters(api: TestClient, body: dict[str, object]) -> None:
    status, answer = call(api, "auth", body)
    assert status == 400 and answer["errorCode"] == "invalidParameters"


def test_protocol_errors(api: TestClient) -> None:
    assert api.get(f"{API_PREFIX}/auth").json()["errorCode"] == "methodNotAllowed"
    charset = api.post(
        f"{API_PREFIX}/auth",
        content=b'{"endUserIp": "192.0.2.1"}',
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert charset.status_code == 415
    assert api.post(f"{API_PREFIX}/nope", json={}).status_code == 404


def test_collect_walks_an_order_to_complete_once(
    api: TestClient, simulator: BankIDSimulator
) -> None:
    started = auth(api)
    ref = started["orderRef"]
    assert call(api, "collect", {"orderRef": ref})[1]["hintCode"] == "outstandingTransaction"
    payload = qr_payload(str(started["qrStartToken"]), str(started["qrStartSecret"]), 0)
    simulator.scan_qr(payload)
    assert call(api, "collect", {"orderRef": ref})[1]["hintCode"] == "userSign"
    simulator.approve(str(ref))
    _, done = call(api, "collect", {"orderRef": ref})
    assert done["status"] == "complete"
    assert done["completionData"]["user"]["personalNumber"] == "199908072391"  # type: ignore[index]
    assert call(api, "collect", {"orderRef": ref})[1]["errorCode"] == "invalidParameters"


def test_scan_checks_the_hmac_and_the_age(
    api: TestClient, simulator: BankIDSimulator, clock: Clock
) -> None:
    started = auth(api)
    token, secret = str(started["qrStartToken"]), str(started["qrStartSecret"])
    with pytest.raises(SimulatorError, match="authentication code"):
        simulator.scan_qr(f"bankid.{token}.0.{'0' * 64}")
    with pytest.raises(SimulatorError, match="unknown"):
        simulator.scan_qr(qr_payload("another-token", secret, 0))
    clock.now += 40
    with pytest.raises(SimulatorError, match="too old"):
        simulator.scan_qr(qr_payload(token, secret, 0))
    simulator.scan_qr(qr_payload(token, secret, 40))


def test_no_app_in_time_is_start_failed(api: TestClient, clock: Clock) -> None:
    ref = auth(api)["orderRef"]
    clock.now += 31
    _, answer = call(api, "collect", {"orderRef": ref})
    assert answer == {"orderRef": ref, "status": "failed", "hintCode": "startFailed"}


def test_second_order_for_the_same_person(api: TestClient) -> None:
    first = auth(api, requirement={"personalNumber": "199908072391"})["orderRef"]
    status, answer = call(
        api, "auth", {"endUserIp": "192.0.2.1", "requirement": {"personalNumber": "199908072391"}}
    )
    assert status == 400 and answer["errorCode"] == "alreadyInProgress"
    assert call(api, "collect", {"orderRef": first})[1]["hintCode"] == "cancelled"


def test_cancel_then_collect_or_cancel_again(api: TestClient) -> None:
    ref = auth(api)["orderRef"]
    assert call(api, "cancel", {"orderRef": ref}) == (200, {})
    assert call(api, "cancel", {"orderRef": ref})[1]["errorCode"] == "invalidParameters"
    assert call(api, "collect", {"orderRef": ref})[1]["errorCode"] == "invalidParameters"


def test_injected_errors_use_the_documented_status(
    api: TestClient, simulator: BankIDSimulator
) -> None:
    simulator.fail_next("auth", "maintenance")
    simulator.fail_next("collect", "internalError")
    assert call(api, "auth", {"endUserIp": "192.0.2.1"})[0] == 503
    assert call(api, "collect", {"orderRef": "x"})[0] == 500


def test_the_phone_page_identifies_and_cancels(api: TestClient, simulator: BankIDSimulator) -> None:
    started = auth(api, userVisibleData=base64.b64encode("Logga in på Bygglov".encode()).decode())
    payload = qr_payload(str(started["qrStartToken"]), str(started["qrStartSecret"]), 0)
    page = api.get("/phone", params={"qr": payload})
    assert "Logga in på Bygglov" in page.text and '<label for="person">' in page.text
    approved = api.post(
        "/phone/approve", data={"orderRef": started["orderRef"], "personal_number": "196408233234"}
    )
    assert approved.status_code == 200
    done = call(api, "collect", {"orderRef": started["orderRef"]})[1]
    assert done["completionData"]["user"]["givenName"] == "Ingrid"  # type: ignore[index]
    other = auth(api)
    api.get("/phone", params={"autostarttoken": other["autoStartToken"]})
    assert call(api, "collect", {"orderRef": other["orderRef"]})[1]["hintCode"] == "started"
    api.post("/phone/cancel", data={"orderRef": other["orderRef"]})
    assert call(api, "collect", {"orderRef": other["orderRef"]})[1]["hintCode"] == "userCancel"
    assert api.get("/phone", params={"qr": "bankid.x.0.y"}).status_code == 400

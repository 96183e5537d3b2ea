"""The BankID RP API v6.0 simulator itself: the documented JSON, errors and QR formula."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from providers.bankid.client import qr_payload
from providers.bankid.simulator import API_PREFIX, BankIDSimulator, SimulatorError

SECRET = "d28db9a7-4cde-429e-a983-359be676944c"
JSON = {"Content-Type": "application/json"}


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
def api(simulator: BankIDSimulator) -> Iterator[TestClient]:
    with TestClient(simulator.app, raise_server_exceptions=False) as client:
        yield client


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
        {"endUserIp": 3221225985},
        {"endUserIp": "192.0.2.1", "userVisibleData": ""},
        {"endUserIp": "192.0.2.1", "userNonVisibleData": ""},
        {"endUserIp": "192.0.2.1", "returnRisk": "yes"},
        {"endUserIp": "192.0.2.1", "requirement": {"allowFingerprint": True}},  # v5.1
        {"endUserIp": "192.0.2.1", "requirement": {"tokenStartRequired": True}},  # v5.1
        {"endUserIp": "192.0.2.1", "requirement": {"somethingNew": True}},
        {"endUserIp": "192.0.2.1", "requirement": {"cardReader": "class3"}},
        {"endUserIp": "192.0.2.1", "requirement": {"certificatePolicies": ["not an oid"]}},
        {"endUserIp": "192.0.2.1", "requirement": {"certificatePolicies": ["1.2.*"]}},
        {"endUserIp": "192.0.2.1", "requirement": {"personalNumber": "１９９９０８０７２３９１"}},
        {"endUserIp": "192.0.2.1", "app": "com.example.app"},
        {"endUserIp": "192.0.2.1", "app": {"appIdentifier": "com.example", "colour": "red"}},
        {"endUserIp": "192.0.2.1", "app": {"deviceIdentifier": "x" * 65}},
        {"endUserIp": "192.0.2.1", "web": "example.org"},
    ],
)
def test_auth_refuses_bad_parameters(api: TestClient, body: dict[str, object]) -> None:
    status, answer = call(api, "auth", body)
    assert status == 400 and answer["errorCode"] == "invalidParameters"


def test_auth_accepts_what_v6_documents(api: TestClient) -> None:
    auth(
        api,
        userVisibleData=base64.b64encode(b"Logga in").decode(),
        userNonVisibleData=base64.b64encode(b"x").decode(),
        userVisibleDataFormat="simpleMarkdownV1",
        returnUrl="https://rp.example/back?nonce=1",
        returnRisk=True,
        requirement={
            "pinCode": True,
            "mrtd": False,
            "cardReader": "class1",
            "certificatePolicies": ["1.2.3.4.5", "1.2.752.78.*"],
            "personalNumber": "199908072391",
        },
        web={"referringDomain": "rp.example", "userAgent": "Mozilla", "deviceIdentifier": "d"},
    )
    auth(
        api,
        app={
            "appIdentifier": "se.example.app",
            "deviceOS": "IOS 17.0",
            "deviceModelName": "Apple iPhone14,3",
            "deviceIdentifier": "d",
        },
    )


@pytest.mark.parametrize(
    "body",
    [
        {"personalNumber": "199908072391", "callInitiator": "RP", "endUserIp": "192.0.2.1"},
        {"personalNumber": "199908072391", "callInitiator": "rp"},
        # requirement.mrtd is taken by phone orders since 2025-05 (bankid-2026-and-ciba.md §0);
        # the person is named by the body, never by requirement.personalNumber.
        {
            "personalNumber": "199908072391",
            "callInitiator": "user",
            "requirement": {"personalNumber": "199908072391"},
        },
    ],
)
def test_phone_auth_refuses_what_it_does_not_take(api: TestClient, body: dict[str, object]) -> None:
    status, answer = call(api, "phone/auth", body)
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


@pytest.mark.usefixtures("simulator")
def test_the_phone_page_identifies_and_cancels(api: TestClient) -> None:
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


def test_a_qr_time_in_other_digits_is_not_a_qr_code(
    api: TestClient, simulator: BankIDSimulator
) -> None:
    started = auth(api)
    token, secret = str(started["qrStartToken"]), str(started["qrStartSecret"])
    for digit in ("\u0663", "\u00b2", "\uff11"):  # Arabic-Indic 3, superscript 2, fullwidth 1
        payload = f"bankid.{token}.{digit}.{BankIDSimulator.qr_auth_code(secret, 0)}"
        with pytest.raises(SimulatorError, match="not a BankID QR code"):
            simulator.scan_qr(payload)
        assert api.get("/phone", params={"qr": payload}).status_code == 400


def test_an_order_picked_up_but_never_finished_expires(
    api: TestClient, simulator: BankIDSimulator, clock: Clock
) -> None:
    started = auth(api)
    simulator.scan_qr(qr_payload(str(started["qrStartToken"]), str(started["qrStartSecret"]), 0))
    clock.now += simulator.user_timeout - 1
    assert call(api, "collect", {"orderRef": started["orderRef"]})[1]["hintCode"] == "userSign"
    clock.now += 2
    _, answer = call(api, "collect", {"orderRef": started["orderRef"]})
    assert (answer["status"], answer["hintCode"]) == ("failed", "expiredTransaction")


def test_nobody_can_approve_or_cancel_an_order_no_app_has_picked_up(
    api: TestClient, simulator: BankIDSimulator
) -> None:
    ref = auth(api)["orderRef"]
    approved = api.post("/phone/approve", data={"orderRef": ref, "personal_number": "199908072391"})
    assert approved.status_code == 400
    assert api.post("/phone/cancel", data={"orderRef": ref}).status_code == 400
    with pytest.raises(SimulatorError):
        simulator.approve(str(ref))
    assert call(api, "collect", {"orderRef": ref})[1]["hintCode"] == "outstandingTransaction"


@pytest.mark.parametrize("action", ["approve", "cancel"])
def test_the_same_device_app_returns_to_the_return_url(api: TestClient, action: str) -> None:
    """§2.1: an order started on the same device opens returnUrl when it ends."""
    back = "https://rp.example/providers/bankid/return?login=l&nonce=n"
    started = auth(api, returnUrl=back)
    page = api.get("/phone", params={"autostarttoken": started["autoStartToken"]})
    assert page.status_code == 200 and "login tab" not in page.text
    form = {"orderRef": started["orderRef"], "personal_number": "199908072391"}
    ended = api.post(f"/phone/{action}", data=form, follow_redirects=False)
    assert ended.status_code == 303 and ended.headers["location"] == back


def test_the_same_device_app_without_a_return_url_sends_the_citizen_back_to_the_browser(
    api: TestClient,
) -> None:
    started = auth(api)
    api.get("/phone", params={"autostarttoken": started["autoStartToken"]})
    form = {"orderRef": started["orderRef"], "personal_number": "199908072391"}
    done = api.post("/phone/approve", data=form, follow_redirects=False)
    assert done.status_code == 200 and "login tab" not in done.text
    assert "browser" in done.text
    unknown = api.get("/phone", params={"autostarttoken": "no-such-token"})
    assert unknown.status_code == 400 and "login tab" not in unknown.text


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("DELETE", f"{API_PREFIX}/auth", {}),
        ("PATCH", f"{API_PREFIX}/collect", {}),
        ("POST", f"{API_PREFIX}/auth", {"content": b"\xff\xfe", "headers": JSON}),
        ("POST", f"{API_PREFIX}/auth", {"content": b"null", "headers": JSON}),
        ("POST", f"{API_PREFIX}/auth", {"json": {"endUserIp": "1.2.3.4", "userVisibleData": 5}}),
        ("POST", f"{API_PREFIX}/auth", {"json": {"endUserIp": "1.2.3.4", "requirement": []}}),
        ("POST", f"{API_PREFIX}/collect", {"json": {"orderRef": {"a": 1}}}),
        ("POST", f"{API_PREFIX}/cancel", {"json": {"orderRef": None}}),
        ("POST", f"{API_PREFIX}/phone/sign", {"json": {"personalNumber": 199908072391}}),
        ("GET", "/phone", {"params": {"qr": "bankid...."}}),
        ("GET", "/phone", {"params": {"qr": "bankid.a." + "9" * 5000 + ".b"}}),
        ("GET", "/phone", {"params": {"autostarttoken": ""}}),
        ("POST", "/phone/approve", {}),
        ("POST", "/phone/approve", {"data": {"orderRef": "x", "personal_number": "1"}}),
        ("POST", "/phone/approve", {"data": {f"f{i}": "x" for i in range(20)}}),
        ("POST", "/phone/cancel", {"content": b"\xff", "headers": {"content-type": "text/plain"}}),
        ("GET", "/phone/approve", {}),
    ],
)
def test_the_simulator_never_answers_5xx(
    api: TestClient, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    response = api.request(method, path, **kwargs)
    assert 400 <= response.status_code < 500, (path, response.status_code, response.text)
    if path.startswith(API_PREFIX):
        assert response.json()["errorCode"] in ("invalidParameters", "methodNotAllowed")


# -- /sign: what BankID's /sign takes (bankid-rp-v6.md §2.1, bankid-2026-and-ciba.md §1.9) ---------

SIGN_TEXT = base64.b64encode("Jag ansöker om bygglov".encode()).decode()
# userNonVisibleData is any bytes in Base64 (a digest, a document), not necessarily text.
BINARY = base64.b64encode(b"\x30\x31\xff" + bytes(range(32))).decode()  # padded: "="


def sign(api: TestClient, **fields: object) -> dict[str, object]:
    status, body = call(api, "sign", {"endUserIp": "192.0.2.1", **fields})
    assert status == 200, body
    return body


@pytest.mark.parametrize(
    "fields",
    [
        {},  # userVisibleData is required
        {"userNonVisibleData": BINARY},
        {"userVisibleData": None},
        {"userVisibleData": ""},
        {"userVisibleData": "not base64!"},
        {"userVisibleData": SIGN_TEXT.rstrip("=")},
        {"userVisibleData": base64.urlsafe_b64encode("ö?>".encode()).decode()},
        {"userVisibleData": base64.b64encode(b"\xff").decode()},  # not UTF-8 text
        {"userVisibleData": base64.b64encode(b"x" * 30_003).decode()},  # 40 004 characters
        {"userVisibleData": SIGN_TEXT, "userVisibleDataFormat": "plaintext"},
        {"userVisibleData": SIGN_TEXT, "userVisibleDataFormat": "simpleMarkdownV2"},
        {"userVisibleData": SIGN_TEXT, "userVisibleDataFormat": None},
        {"userVisibleData": SIGN_TEXT, "userNonVisibleData": ""},
        {"userVisibleData": SIGN_TEXT, "userNonVisibleData": "not base64!"},
        {"userVisibleData": SIGN_TEXT, "userNonVisibleData": BINARY.rstrip("=")},
        {"userVisibleData": SIGN_TEXT, "userNonVisibleData": 12},
        {"userVisibleData": SIGN_TEXT, "userNonVisibleData": "QUFB" * 50_001},  # 200 004
        {"userVisibleData": SIGN_TEXT, "personalNumber": "199908072391"},  # removed in v6.0
    ],
)
def test_sign_refuses_what_bankid_refuses(api: TestClient, fields: dict[str, object]) -> None:
    status, answer = call(api, "sign", {"endUserIp": "192.0.2.1", **fields})
    assert status == 400 and answer["errorCode"] == "invalidParameters", answer


def test_sign_takes_the_longest_texts_and_any_bytes(
    api: TestClient, simulator: BankIDSimulator
) -> None:
    longest_visible = base64.b64encode(b"x" * 30_000).decode()
    assert len(longest_visible) == 40_000
    sign(api, userVisibleData=longest_visible, userNonVisibleData="QUFB" * 50_000)
    started = sign(
        api,
        userVisibleData=SIGN_TEXT,
        userNonVisibleData=BINARY,
        userVisibleDataFormat="simpleMarkdownV1",
    )
    order = simulator.orders[str(started["orderRef"])]
    assert order.sign is True
    assert order.user_visible_data == "Jag ansöker om bygglov"  # decoded, as /auth's
    assert order.user_non_visible_data == BINARY  # as sent: the signed XML carries it so
    assert order.user_visible_data_format == "simpleMarkdownV1"
    login = auth(api, userNonVisibleData=BINARY)
    assert simulator.orders[str(login["orderRef"])].sign is False
    assert simulator.orders[str(login["orderRef"])].user_non_visible_data == BINARY


def test_phone_sign_keeps_what_is_signed(api: TestClient, simulator: BankIDSimulator) -> None:
    body = {
        "personalNumber": "199908072391",
        "callInitiator": "RP",
        "userVisibleData": SIGN_TEXT,
        "userNonVisibleData": BINARY,
    }
    status, started = call(api, "phone/sign", body)
    assert status == 200, started
    order = simulator.orders[str(started["orderRef"])]
    assert (order.sign, order.user_non_visible_data) == (True, BINARY)
    assert call(api, "phone/sign", {**body, "userVisibleData": None})[0] == 400


def test_the_phone_page_shows_what_is_signed(api: TestClient) -> None:
    started = sign(api, userVisibleData=SIGN_TEXT)
    payload = qr_payload(str(started["qrStartToken"]), str(started["qrStartSecret"]), 0)
    page = api.get("/phone", params={"qr": payload})
    assert "Jag ansöker om bygglov" in page.text
    assert "<button" in page.text and ">Sign</button>" in page.text
    assert ">Identify</button>" not in page.text
    approved = api.post(
        "/phone/approve", data={"orderRef": started["orderRef"], "personal_number": "199908072391"}
    )
    assert approved.status_code == 200 and "Signed" in approved.text

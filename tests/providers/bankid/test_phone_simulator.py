"""The simulator's phone orders (bankid-2026-and-ciba.md §1.10): the bodies BankID's
`phone/auth` and `phone/sign` take, the walk outstandingTransaction -> userCallConfirm ->
userSign -> complete, a declined call, a cancel, an order nobody answers, and the page
`/phone-calls` where a person plays the citizen's app."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from providers.bankid.simulator import API_PREFIX, BankIDSimulator, SimulatorError, UserBehaviour

PERSON = "196408233234"  # Ingrid Testsson


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
    return BankIDSimulator(clock=clock)


@pytest.fixture
def api(simulator: BankIDSimulator) -> Iterator[TestClient]:
    with TestClient(simulator.app, raise_server_exceptions=False) as client:
        yield client


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def call(api: TestClient, path: str, body: object) -> tuple[int, dict[str, Any]]:
    response = api.post(f"{API_PREFIX}/{path}", json=body)
    return response.status_code, response.json()


def phone(api: TestClient, path: str = "phone/auth", **fields: object) -> str:
    body = {"personalNumber": PERSON, "callInitiator": "user", **fields}
    status, answer = call(api, path, body)
    assert status == 200, answer
    assert set(answer) == {"orderRef"}  # §1.10: no autoStartToken, no QR tokens
    return str(answer["orderRef"])


def collect(api: TestClient, order_ref: str) -> dict[str, Any]:
    status, answer = call(api, "collect", {"orderRef": order_ref})
    assert status == 200, answer
    return answer


WEB_FIELDS: list[dict[str, object]] = [
    {"endUserIp": "192.0.2.1"},
    {"returnUrl": "https://rp.example/back"},
    {"returnRisk": True},
    {"web": {"referringDomain": "rp.example"}},
    {"app": {"appIdentifier": "se.example"}},
]


@pytest.mark.parametrize(
    "body",
    [
        {"personalNumber": PERSON},  # callInitiator is required
        {"personalNumber": PERSON, "callInitiator": "Rp"},  # exact case
        {"personalNumber": PERSON, "callInitiator": "USER"},
        {"personalNumber": PERSON, "callInitiator": None},
        {"callInitiator": "user"},
        {"personalNumber": PERSON[:11], "callInitiator": "user"},
        {"personalNumber": "１９６４０８２３３２３４", "callInitiator": "user"},
        {"personalNumber": int(PERSON), "callInitiator": "RP"},
        *({"personalNumber": PERSON, "callInitiator": "RP", **extra} for extra in WEB_FIELDS),
        {"personalNumber": PERSON, "callInitiator": "RP", "requirement": {"risk": "low"}},
    ],
)
@pytest.mark.parametrize("path", ["phone/auth", "phone/sign"])
def test_phone_orders_refuse_what_bankid_refuses(
    api: TestClient, path: str, body: dict[str, object]
) -> None:
    fields = {"userVisibleData": b64("Jag intygar")} if path == "phone/sign" else {}
    status, answer = call(api, path, {**fields, **body})
    assert (status, answer["errorCode"]) == (400, "invalidParameters"), answer


def test_phone_sign_needs_a_text_to_sign(api: TestClient) -> None:
    status, answer = call(api, "phone/sign", {"personalNumber": PERSON, "callInitiator": "RP"})
    assert (status, answer["errorCode"]) == (400, "invalidParameters")


def test_phone_orders_take_the_requirements_bankid_documents_for_them(
    api: TestClient, simulator: BankIDSimulator
) -> None:
    requirement = {
        "pinCode": True,
        "mrtd": True,
        "cardReader": "class2",
        "certificatePolicies": ["1.2.3.4.5"],
    }
    ref = phone(
        api,
        "phone/sign",
        callInitiator="RP",
        requirement=requirement,
        userVisibleData=b64("**Jag intygar**"),
        userVisibleDataFormat="simpleMarkdownV1",
        userNonVisibleData=b64("x"),
    )
    order = simulator.orders[ref]
    assert order.call_initiator == "RP" and order.sign
    assert order.requirement == {**requirement, "personalNumber": PERSON}


def test_a_phone_order_walks_call_question_then_identification(
    api: TestClient, simulator: BankIDSimulator
) -> None:
    ref = phone(api)
    assert collect(api, ref)["hintCode"] == "outstandingTransaction"
    simulator.open_call(PERSON)  # by personal number, as a test drives it
    assert collect(api, ref)["hintCode"] == "userCallConfirm"
    with pytest.raises(SimulatorError):  # no identifying before the call question
        simulator.approve(ref, PERSON, "Ingrid", "Testsson")
    simulator.confirm_call(ref)
    assert collect(api, ref)["hintCode"] == "userSign"
    simulator.identify_by_phone(ref)
    done = collect(api, ref)
    assert done["status"] == "complete"
    user = done["completionData"]["user"]
    assert (user["personalNumber"], user["givenName"]) == (PERSON, "Ingrid")


def test_a_phone_order_with_mrtd_asks_for_the_id_document(
    api: TestClient, simulator: BankIDSimulator
) -> None:
    ref = phone(api, requirement={"mrtd": True})
    simulator.confirm_call(ref)
    assert collect(api, ref)["hintCode"] == "userMrtd"
    simulator.identify_by_phone(ref, mrtd_passes=False)
    assert collect(api, ref)["completionData"]["stepUp"] == {"mrtd": False}


def test_no_to_the_call_question_fails_with_user_declined_call(
    api: TestClient, simulator: BankIDSimulator
) -> None:
    ref = phone(api)
    simulator.decline_call(PERSON)
    answer = collect(api, ref)
    assert (answer["status"], answer["hintCode"]) == ("failed", "userDeclinedCall")
    with pytest.raises(SimulatorError):
        simulator.confirm_call(ref)


def test_a_phone_order_cancelled_in_the_app_or_by_the_rp(
    api: TestClient, simulator: BankIDSimulator
) -> None:
    in_app = phone(api)
    simulator.confirm_call(in_app)
    simulator.cancel_in_app(in_app)
    assert collect(api, in_app)["hintCode"] == "userCancel"
    by_rp = phone(api)
    assert call(api, "cancel", {"orderRef": by_rp}) == (200, {})
    assert simulator.orders[by_rp].hint_code == "userCancel"


def test_a_phone_order_nobody_finishes_expires(
    api: TestClient, simulator: BankIDSimulator, clock: Clock
) -> None:
    ref = phone(api)
    simulator.open_call(ref)
    clock.now += simulator.phone_timeout - 1
    assert collect(api, ref)["hintCode"] == "userCallConfirm"
    clock.now += 1
    answer = collect(api, ref)
    assert (answer["status"], answer["hintCode"]) == ("failed", "expiredTransaction")


def test_a_new_phone_order_for_the_same_person_cancels_both(api: TestClient) -> None:
    first = phone(api)
    status, answer = call(api, "phone/auth", {"personalNumber": PERSON, "callInitiator": "RP"})
    assert (status, answer["errorCode"]) == (400, "alreadyInProgress")
    assert collect(api, first)["hintCode"] == "cancelled"


@pytest.mark.parametrize(
    ("behaviour", "final"),
    [
        (UserBehaviour(), ("complete", None)),
        (UserBehaviour(declines_call=True), ("failed", "userDeclinedCall")),
        (UserBehaviour(action="cancel"), ("failed", "userCancel")),
        (UserBehaviour(action="expire"), ("failed", "expiredTransaction")),
    ],
)
def test_a_behaviour_drives_phone_orders_from_the_collects(
    api: TestClient,
    simulator: BankIDSimulator,
    behaviour: UserBehaviour,
    final: tuple[str, str | None],
) -> None:
    simulator.behave(behaviour)
    ref = phone(api)
    assert collect(api, ref)["hintCode"] == "userCallConfirm"
    answer = collect(api, ref)
    assert (answer["status"], answer.get("hintCode")) == final
    if answer["status"] == "complete":  # always the person the order names
        assert answer["completionData"]["user"]["personalNumber"] == PERSON


# -- the page where a person plays the citizen's app ------------------------------------------


def test_the_phone_calls_page_walks_a_call_to_its_end(
    api: TestClient, simulator: BankIDSimulator
) -> None:
    empty = api.get("/phone-calls")
    assert empty.status_code == 200 and "No phone orders are waiting" in empty.text
    ref = phone(api, callInitiator="RP", userVisibleData=b64("Samtal <b>ärende</b> 4711"))
    page = api.get("/phone-calls")
    assert "TEST" in page.text and "19640823-****" in page.text and PERSON not in page.text
    assert "called you" in page.text and "Portvakt" in page.text
    assert "Samtal &lt;b&gt;ärende&lt;/b&gt; 4711" in page.text
    for path, form, hint in (
        ("open", {}, "userCallConfirm"),
        ("answer", {"answer": "yes"}, "userSign"),
        ("identify", {}, None),
    ):
        done = api.post(f"/phone-calls/{path}", data={"orderRef": ref, **form})
        assert done.status_code == 200 and done.url.path == "/phone-calls"  # 303 back to it
        assert simulator.orders[ref].hint_code == hint
    assert collect(api, ref)["completionData"]["user"]["personalNumber"] == PERSON
    assert "No phone orders are waiting" in api.get("/phone-calls").text


@pytest.mark.parametrize(("answer", "hint"), [("no", "userDeclinedCall"), ("cancel", "userCancel")])
def test_the_phone_calls_page_declines_and_cancels(
    api: TestClient, simulator: BankIDSimulator, answer: str, hint: str
) -> None:
    ref = phone(api)
    question = api.post("/phone-calls/open", data={"orderRef": ref})
    assert "Did you call" in question.text
    if answer == "cancel":
        api.post("/phone-calls/answer", data={"orderRef": ref, "answer": "yes"})
        api.post("/phone-calls/cancel", data={"orderRef": ref})
    else:
        api.post("/phone-calls/answer", data={"orderRef": ref, "answer": "no"})
    assert collect(api, ref)["hintCode"] == hint


@pytest.mark.parametrize(
    ("path", "kwargs"),
    [
        ("/phone-calls/open", {}),
        ("/phone-calls/open", {"data": {"orderRef": "no-such-order"}}),
        ("/phone-calls/answer", {"data": {"orderRef": "REF", "answer": "maybe"}}),
        ("/phone-calls/identify", {"data": {"orderRef": "REF"}}),  # the call not yet answered
        ("/phone-calls/identify", {"data": {"orderRef": "WEB"}}),  # not a phone order
        ("/phone-calls/cancel", {"data": {f"f{i}": "x" for i in range(20)}}),
        ("/phone-calls/answer", {"content": b"\xff", "headers": {"content-type": "text/plain"}}),
        ("/phone-calls/open", {"files": {"orderRef": ("a.txt", b"x")}}),
    ],
)
def test_the_phone_calls_page_never_answers_5xx(
    api: TestClient, path: str, kwargs: dict[str, Any]
) -> None:
    web_order = call(api, "auth", {"endUserIp": "192.0.2.1"})[1]["orderRef"]
    refs = {"REF": phone(api), "WEB": str(web_order)}
    if "data" in kwargs:
        kwargs = {"data": {k: refs.get(v, v) for k, v in kwargs["data"].items()}}
    response = api.post(path, **kwargs)
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert api.get("/phone-calls/open").status_code == 405


def test_the_phone_calls_page_escapes_what_the_rp_sent(api: TestClient) -> None:
    phone(api, userVisibleData=b64('"><script>alert(1)</script>'))
    page = api.get("/phone-calls").text
    assert "<script>" not in page and re.search(r"&lt;script&gt;", page)

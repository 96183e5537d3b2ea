"""A simulator of BankID's RP API **v6.0** (developers.bankid.com, OpenAPI auth-sign 6.1.9; path
/rp/v6.0), for tests and local development only; shared/reference/bankid-rp-v6.md §11 lists what
it reproduces. It aims to be as strict as the real service: whatever v6.0 refuses (unknown or v5.1
parameters, wrong types, empty or too long texts, non-ASCII digits; see
bankid_simulator_requests.py) it refuses with 400 `invalidParameters`, and its own pages and API
never answer 5xx.

A Starlette app: `/rp/v6.0/{auth,sign,phone/auth,phone/sign,collect,cancel}` (POST only) with
BankID's JSON and error codes, plus a "phone" page where a person plays the BankID app: scan the
QR by its payload, or take the autostart token, then identify or cancel. Only an order the app
has picked up can be identified or cancelled; an order started on the same device returns to
its `returnUrl` when it ends, as the real app does. No app in time ends in `startFailed`, an
app that never finishes in `expiredTransaction` (`user_timeout`: the real figure is not
documented in our sources, so our choice). It knows nothing of TLS: the tests serve it with
uvicorn over mutual TLS, the local demo mounts it over plain HTTP. Simulated citizens can also
act automatically, driven by the RP's /collect calls.

`/sign` (and `/phone/sign`) follow RP API v6.0 as BankID's SampleCode (@b6cc93d, 2025-03-20)
and the developers.bankid.com texts copied into ActiveLogin (2026-02) state them, digested in
bankid-rp-v6.md §2.1 and bankid-2026-and-ciba.md §1.9 (simulator_requests.py has the rules). A
sign order keeps what the signature covers: `Order.user_visible_data` (the text, decoded),
`Order.user_non_visible_data` (the Base64 as sent) and `Order.sign`; the phone page shows the
text to sign.

Phone orders (`/phone/auth`, `/phone/sign`) follow the developers.bankid.com texts copied into
ActiveLogin (2026-02) and go-bankid (2025-10), digested in bankid-2026-and-ciba.md §1.10 (the
developers.bankid.com pages themselves were not read): the body as simulator_requests.py checks
it, an `orderRef`-only answer, and the walk `outstandingTransaction` -> (the citizen opens the
order in the app) `userCallConfirm` -> (yes, in a call with the organisation) `userSign` ->
`complete`; "no" fails with `userDeclinedCall`, cancelling with `userCancel`, and an order
nobody finishes within `phone_timeout` (not documented in our sources: our choice, Idura's 120
s) with `expiredTransaction`. The page `/phone-calls` (simulator_phone.py) plays the citizen's
app for them; `confirm_call`, `decline_call` and `identify_by_phone` do the same for tests, and
`UserBehaviour` (with `declines_call`) drives them from the RP's /collect calls.

The v6.0 additions since 2023 follow the developers.bankid.com texts as go-bankid (@09b43bb,
2025-10) and ActiveLogin (@3232061, 2026-02) copy them, digested in bankid-2026-and-ciba.md
§1.3-§1.8 (developers.bankid.com itself was not read): `returnRisk` and `completionData.risk`
(`UserBehaviour.risk`: low, moderate, high, absent, or "blocked": the order fails with
`transactionRiskBlocked`); `web` and `app` (mutually exclusive, at least one member, the lengths
and referringDomain's alphabet; simulator_requests.py); every hint code, scriptable with
`UserBehaviour(action="pending" | "fail", hint_code=...)` (RFA24-RFA30's codes come from
unverified third-party copies); `requirement.cardReader` class1 | class2.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from providers.bankid.simulator_evidence import SignedOrder, SimulatorEvidence
from providers.bankid.simulator_pki import Person
from providers.bankid.simulator_requests import ApiError, checked_phone, checked_start
from providers.forms import read_form

API_VERSION = "6.0"
API_PREFIX = "/rp/v6.0"
COMPLETE_COLLECTABLE_SECONDS = 180
FAILED_COLLECTABLE_SECONDS = 300
PHONE_TIMEOUT_SECONDS = 120.0  # a phone order's life: undocumented; Idura's CIBA wrapper's 120 s
ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]  # all but POST: 405
QR_TIME = re.compile(r"[0-9]{1,9}")  # ASCII only, unlike str.isdigit() ("²")
APP_TITLE = "Simulated BankID app — TEST"
LOGIN_TAB = "Go back to the login tab."
BROWSER_BACK = "Switch back to your browser and the e-service's login page."
ERROR_STATUS = {
    "alreadyInProgress": 400,
    "invalidParameters": 400,
    "unauthorized": 401,
    "notFound": 404,
    "methodNotAllowed": 405,
    "requestTimeout": 408,
    "unsupportedMediaType": 415,
    "tooManyRequests": 429,
    "internalError": 500,
    "maintenance": 503,
}
# What the citizen's actions end an order with (§3.2).
FAILING_ACTIONS = {
    "cancel": "userCancel",
    "certificate_error": "certificateErr",
    "expire": "expiredTransaction",
}
UHI = "OZvYM9VvyiAmG7NA5jU5zqGcVpo="  # the simulated device's unique hardware id
TEST_PERSONS = (
    ("199908072391", "Erik", "Provsson"),
    ("196408233234", "Ingrid", "Testsson"),
    ("200002292399", "Maja", "Skottdagsson"),
    ("201801012392", "Nils", "Exempelsson"),
)


@dataclass
class UserBehaviour:
    """What the simulated citizen does with new orders, driven by the RP's /collect calls."""

    action: Literal[
        "approve",
        "cancel",
        "ignore",
        "certificate_error",
        "expire",
        "unknown_hint",
        "pending",
        "fail",
    ] = "approve"
    via: Literal["qr", "autostart"] = "qr"
    personal_number: str = "199908072391"
    given_name: str = "Erik"
    surname: str = "Provsson"
    starts_on_collect: int = 1
    acts_on_collect: int = 2
    mrtd_passes: bool = True
    declines_call: bool = False  # phone orders: "no, I am not in a call with them"
    # Any hint code (bankid-2026-and-ciba.md §1.8): with action "pending" the order stays
    # pending with it, with "fail" it ends failed with it.
    hint_code: str = "userMrtd"
    # completionData.risk when the RP sent returnRisk (§1.3): "absent" = not calculated;
    # "blocked" = BankID stopped the order itself (failed, transactionRiskBlocked, no risk).
    risk: Literal["low", "moderate", "high", "absent", "blocked"] = "low"


@dataclass
class Order:
    order_ref: str
    auto_start_token: str
    qr_start_token: str
    qr_start_secret: str
    end_user_ip: str
    requirement: dict[str, Any]
    user_visible_data: str | None
    return_url: str | None
    created_at: float
    status: Literal["pending", "failed", "complete"] = "pending"
    hint_code: str | None = "outstandingTransaction"
    started_via: str | None = None
    started_at: float | None = None
    collects: int = 0
    collected_final: bool = False
    cancelled_by_rp: bool = False
    completion: dict[str, Any] | None = None
    behaviour: UserBehaviour | None = None
    finished_at: float | None = None
    user_visible_data_format: str | None = None  # as the RP sent it
    user_non_visible_data: str | None = None  # Base64, as the RP sent it
    sign: bool = False  # started by /sign or /phone/sign
    call_initiator: str | None = None  # phone orders: `user` or `RP`; None: not a phone order
    return_risk: bool = False  # the RP sent returnRisk: true


def _signed_order(order: Order, person: Person, uhi: str) -> SignedOrder:
    """What the app signs for this order: the RP's texts verbatim (Base64), funcId by endpoint."""
    visible = order.user_visible_data
    return SignedOrder(
        person=person,
        visible_data=None if visible is None else base64.b64encode(visible.encode()).decode(),
        non_visible_data=order.user_non_visible_data,
        sign=order.sign,
        uhi=uhi,
    )


class SimulatorError(Exception):
    pass


def _refused_request(path: str, request: Request) -> Response | None:
    """The RP API's error for a request of no known path, method or media type."""
    if path not in ("auth", "sign", "phone/auth", "phone/sign", "collect", "cancel"):
        return _error("notFound", f"no such path: {path}")
    if request.method != "POST":
        return _error("methodNotAllowed", "only POST")
    if request.headers.get("content-type", "") != "application/json":
        return _error("unsupportedMediaType", "Content-Type must be application/json")
    return None


def _error(code: str, details: str) -> JSONResponse:
    return JSONResponse({"errorCode": code, "details": details}, ERROR_STATUS.get(code, 400))


class BankIDSimulator:
    def __init__(
        self,
        *,
        start_timeout: float = 30.0,
        user_timeout: float = 180.0,
        qr_max_age: int = 30,
        clock: Callable[[], float] = time.monotonic,
        mount_path: str = "",
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.start_timeout = start_timeout
        self.user_timeout = user_timeout
        self.qr_max_age = qr_max_age
        self.clock = clock
        self.mount_path = mount_path
        self.phone_timeout = PHONE_TIMEOUT_SECONDS
        self.evidence = SimulatorEvidence(wall_clock)  # signs as the app would; dates evidence
        self.orders: dict[str, Order] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._behaviour: UserBehaviour | None = None
        self._failures: dict[str, list[str]] = {}
        # Here, not at the top: simulator_phone.py builds on this module.
        from providers.bankid.simulator_phone import PhoneCallsPage

        self.app = Starlette(
            routes=[
                Route(API_PREFIX + "/{path:path}", self._api, methods=ANY_METHOD),
                Route("/phone", self._phone_page),
                Route("/phone/approve", self._phone_approve, methods=["POST"]),
                Route("/phone/cancel", self._phone_cancel, methods=["POST"]),
                Route("/member-banks-root.pem", self._member_banks_root),
                *PhoneCallsPage(self).routes(),
            ]
        )

    # -- controls for tests and the phone page ---------------------------------------------

    def behave(self, behaviour: UserBehaviour | None) -> None:
        self._behaviour = behaviour

    def fail_next(self, path: str, error_code: str, times: int = 1) -> None:
        self._failures[path] = [error_code] * times

    def collect_count(self, order_ref: str | None = None) -> int:
        return sum(
            1
            for path, body in self.calls
            if path == "collect" and order_ref in (None, body.get("orderRef"))
        )

    @staticmethod
    def qr_auth_code(qr_start_secret: str, qr_time: int) -> str:
        key = qr_start_secret.encode("ascii")
        return hmac.new(key, str(qr_time).encode("ascii"), hashlib.sha256).hexdigest()

    def scan_qr(self, payload: str) -> Order:
        parts = payload.split(".")
        if len(parts) != 4 or parts[0] != "bankid" or not QR_TIME.fullmatch(parts[2]):
            raise SimulatorError("not a BankID QR code")
        _, token, qr_time_text, code = parts
        order = next((o for o in self.orders.values() if o.qr_start_token == token), None)
        if order is None:
            raise SimulatorError("unknown QR code")
        qr_time = int(qr_time_text)
        expected = self.qr_auth_code(order.qr_start_secret, qr_time).encode()
        if not hmac.compare_digest(expected, code.encode()):  # bytes: any text compares
            raise SimulatorError("the QR code's authentication code is wrong")
        age = self.clock() - order.created_at
        if qr_time > age + 1:
            raise SimulatorError("the QR code is from the future")
        if age - qr_time > self.qr_max_age:
            raise SimulatorError("the QR code is too old")
        return self._start(order, "qr")

    def start_app(self, auto_start_token: str) -> Order:
        order = next(
            (o for o in self.orders.values() if o.auto_start_token == auto_start_token), None
        )
        if order is None:
            raise SimulatorError("unknown autostart token")
        return self._start(order, "autostart")

    def approve(
        self,
        order_ref: str,
        personal_number: str = "199908072391",
        given_name: str = "Erik",
        surname: str = "Provsson",
        mrtd_passes: bool = True,
    ) -> None:
        order = self._in_app(order_ref)
        if order.hint_code == "userCallConfirm":
            raise SimulatorError("answer the question about the call first")
        required = order.requirement.get("personalNumber")
        if required and required != personal_number:
            raise SimulatorError("this order is for another person")
        risk = order.behaviour.risk if order.behaviour else "low"
        if risk == "blocked":  # §1.3: BankID stops the order; no risk is returned
            self._finish(order, "failed", "transactionRiskBlocked")
            return
        completion: dict[str, Any] = {
            "user": {
                "personalNumber": personal_number,
                "name": f"{given_name} {surname}",
                "givenName": given_name,
                "surname": surname,
            },
            "device": {"ipAddress": order.end_user_ip, "uhi": UHI},
            "bankIdIssueDate": "2024-01-15",
        }
        completion["signature"], completion["ocspResponse"] = self.evidence.completion(
            _signed_order(order, Person(personal_number, given_name, surname), UHI)
        )
        if order.requirement.get("mrtd"):
            completion["stepUp"] = {"mrtd": mrtd_passes}
        if order.return_risk and risk != "absent":
            completion["risk"] = risk
        self._finish(order, "complete", None, completion)

    def cancel_in_app(self, order_ref: str) -> None:
        self._finish(self._in_app(order_ref), "failed", "userCancel")

    def phone_order(self, order_ref_or_number: str) -> Order:
        """The pending phone order with this orderRef, or the newest one for this person."""
        order = self.orders.get(order_ref_or_number)
        if order is None:
            number = order_ref_or_number
            order = next(
                (
                    o
                    for o in reversed(self.orders.values())
                    if o.requirement.get("personalNumber") == number and o.call_initiator
                ),
                None,
            )
        if order is None or order.call_initiator is None or order.status != "pending":
            raise SimulatorError("no such pending phone order")
        return order

    def open_call(self, order_ref_or_number: str) -> Order:
        """The citizen opens the order in the app, which asks whether they are in the call."""
        order = self.phone_order(order_ref_or_number)
        if order.started_via is None:
            order.started_via = "phone"
            order.started_at = self.clock()
            order.hint_code = "userCallConfirm"
        return order

    def confirm_call(self, order_ref_or_number: str) -> Order:
        """ "Yes, I am in a call with them": on to identifying (or signing)."""
        order = self.open_call(order_ref_or_number)
        if order.hint_code == "userCallConfirm":
            order.hint_code = "userMrtd" if order.requirement.get("mrtd") else "userSign"
        return order

    def decline_call(self, order_ref_or_number: str) -> None:
        """ "No": the app warns of fraud and the order fails with userDeclinedCall."""
        order = self.open_call(order_ref_or_number)
        if order.hint_code != "userCallConfirm":
            raise SimulatorError("the question about the call has been answered")
        self._finish(order, "failed", "userDeclinedCall")

    def identify_by_phone(self, order_ref_or_number: str, mrtd_passes: bool = True) -> None:
        """The person the order names confirms the call and identifies (or signs)."""
        order = self.confirm_call(order_ref_or_number)
        number = str(order.requirement["personalNumber"])
        given_name, surname = _names_of(number, order.behaviour)
        self.approve(order.order_ref, number, given_name, surname, mrtd_passes)

    def _act_on_call(self, order: Order) -> None:
        """A simulated citizen's phone: opens the order, then does what `behaviour` says."""
        behaviour = order.behaviour
        if behaviour is None or order.status != "pending":
            return
        if order.collects == behaviour.starts_on_collect and behaviour.action != "ignore":
            self.open_call(order.order_ref)
        if order.collects != behaviour.acts_on_collect or order.started_via is None:
            return
        if behaviour.declines_call:
            self.decline_call(order.order_ref)
        elif behaviour.action == "approve":
            self.identify_by_phone(order.order_ref, behaviour.mrtd_passes)
        elif behaviour.action == "cancel":
            self._finish(order, "failed", "userCancel")
        elif behaviour.action == "certificate_error":
            self._finish(order, "failed", "certificateErr")
        elif behaviour.action == "expire":
            self._finish(order, "failed", "expiredTransaction")
        elif behaviour.action == "unknown_hint":
            order.hint_code = "someNewHint"

    # -- API --------------------------------------------------------------------------------

    async def _api(self, request: Request) -> Response:
        path = request.path_params["path"]
        refusal = _refused_request(path, request)
        if refusal is not None:
            return refusal
        try:
            body = await request.json()
        except (ValueError, RecursionError):  # not JSON, or nested deeper than Python parses
            body = None
        self.calls.append((path, body if isinstance(body, dict) else {}))
        if not isinstance(body, dict):
            return _error("invalidParameters", "the body must be a JSON object")
        queued = self._failures.get(path)
        if queued:
            return _error(queued.pop(0), "simulated failure")
        try:
            return JSONResponse(self._answer(path, body))
        except ApiError as error:
            return _error(error.code, error.details)

    def _answer(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if path in ("auth", "sign"):
            return self._start_order(body, sign=path == "sign")
        if path.startswith("phone/"):
            return self._phone_order(body, sign=path == "phone/sign")
        if path == "collect":
            return self._collect(body)
        self._cancel(body)
        return {}

    def _start_order(self, body: dict[str, Any], sign: bool) -> dict[str, str]:
        checked = checked_start(body, sign)
        order = self._new_order(
            checked.end_user_ip,
            checked.requirement,
            checked.user_visible_data,
            checked.return_url,
            checked.user_visible_data_format,
        )
        order.user_non_visible_data = checked.user_non_visible_data
        order.sign = sign
        order.return_risk = checked.return_risk
        return {
            "orderRef": order.order_ref,
            "autoStartToken": order.auto_start_token,
            "qrStartToken": order.qr_start_token,
            "qrStartSecret": order.qr_start_secret,
        }

    def _new_order(
        self,
        end_user_ip: str,
        requirement: dict[str, Any],
        visible: str | None,
        return_url: str | None,
        visible_format: str | None = None,
    ) -> Order:
        number = requirement.get("personalNumber")
        if number:
            running = [
                o
                for o in self.orders.values()
                if o.status == "pending" and o.requirement.get("personalNumber") == number
            ]
            if running:
                for order in running:
                    self._finish(order, "failed", "cancelled")
                raise ApiError("alreadyInProgress", "an order for this person is in progress")
        order = Order(
            order_ref=str(uuid.uuid4()),
            auto_start_token=str(uuid.uuid4()),
            qr_start_token=str(uuid.uuid4()),
            qr_start_secret=str(uuid.uuid4()),
            end_user_ip=end_user_ip,
            requirement=requirement,
            user_visible_data=visible,
            return_url=return_url,
            created_at=self.clock(),
            behaviour=self._behaviour,
            user_visible_data_format=visible_format,
        )
        self.orders[order.order_ref] = order
        return order

    def _phone_order(self, body: dict[str, Any], sign: bool) -> dict[str, str]:
        checked = checked_phone(body, sign)
        order = self._new_order(
            "127.0.0.1",
            checked.requirement,
            checked.user_visible_data,
            None,
            checked.user_visible_data_format,
        )
        order.user_non_visible_data = checked.user_non_visible_data
        order.sign = sign
        order.call_initiator = checked.call_initiator
        return {"orderRef": order.order_ref}

    def _collect(self, body: dict[str, Any]) -> dict[str, Any]:
        order = self.orders.get(str(body.get("orderRef", "")))
        if order is None or order.collected_final or order.cancelled_by_rp:
            raise ApiError("invalidParameters", "no such order, or it was already collected")
        now = self.clock()
        if order.finished_at is not None:
            window = (
                COMPLETE_COLLECTABLE_SECONDS
                if order.status == "complete"
                else FAILED_COLLECTABLE_SECONDS
            )
            if now - order.finished_at > window:
                raise ApiError("invalidParameters", "the order is too old to collect")
        order.collects += 1
        if order.call_initiator is not None:
            self._act_on_call(order)
        else:
            self._act(order)
        self._time_out(order, now)
        answer: dict[str, Any] = {"orderRef": order.order_ref, "status": order.status}
        if order.status == "complete":
            answer["completionData"] = order.completion
            order.collected_final = True
        else:
            answer["hintCode"] = order.hint_code
            order.collected_final = order.status == "failed"
        return answer

    def _act(self, order: Order) -> None:
        behaviour = order.behaviour
        if behaviour is None or order.status != "pending":
            return
        if order.collects == behaviour.starts_on_collect and behaviour.action != "ignore":
            self._pick_up(order, behaviour)
        if order.collects == behaviour.acts_on_collect and order.started_via is not None:
            self._do(order, behaviour)

    def _pick_up(self, order: Order, behaviour: UserBehaviour) -> None:
        if behaviour.via == "qr":
            qr_time = max(0, int(self.clock() - order.created_at))
            code = self.qr_auth_code(order.qr_start_secret, qr_time)
            self.scan_qr(f"bankid.{order.qr_start_token}.{qr_time}.{code}")
        else:
            self.start_app(order.auto_start_token)

    def _do(self, order: Order, behaviour: UserBehaviour) -> None:
        action = behaviour.action
        if action == "approve":
            self.approve(
                order.order_ref,
                behaviour.personal_number,
                behaviour.given_name,
                behaviour.surname,
                behaviour.mrtd_passes,
            )
        elif action in FAILING_ACTIONS:
            self._finish(order, "failed", FAILING_ACTIONS[action])
        elif action == "fail":
            self._finish(order, "failed", behaviour.hint_code)
        elif action == "pending":
            order.hint_code = behaviour.hint_code
        elif action == "unknown_hint":
            order.hint_code = "someNewHint"

    def _cancel(self, body: dict[str, Any]) -> None:
        order = self.orders.get(str(body.get("orderRef", "")))
        if order is None or order.status != "pending":
            raise ApiError("invalidParameters", "no such pending order")
        self._finish(order, "failed", "userCancel")
        order.cancelled_by_rp = True

    def _start(self, order: Order, via: str) -> Order:
        if order.status != "pending" or order.started_via is not None:
            raise SimulatorError("this order has already been picked up or has ended")
        order.started_via = via
        order.started_at = self.clock()
        order.hint_code = "userSign" if via == "qr" else "started"
        return order

    def _in_app(self, order_ref: str) -> Order:
        """The pending order the app holds: only a scanned or autostarted order can be acted on."""
        order = self.orders.get(order_ref)
        if order is None or order.status != "pending":
            raise SimulatorError("no such pending order")
        if order.started_via is None:
            raise SimulatorError("no BankID app has picked this order up (scan or autostart)")
        return order

    def _time_out(self, order: Order, now: float) -> None:
        """§3.2: no app in time is startFailed; an app that never finishes, expiredTransaction."""
        if order.status != "pending":
            return
        if order.call_initiator is not None:
            if now - order.created_at >= self.phone_timeout:
                self._finish(order, "failed", "expiredTransaction")
        elif order.started_at is None and now - order.created_at >= self.start_timeout:
            self._finish(order, "failed", "startFailed")
        elif order.started_at is not None and now - order.started_at >= self.user_timeout:
            self._finish(order, "failed", "expiredTransaction")

    def _finish(
        self,
        order: Order,
        status: Literal["failed", "complete"],
        hint: str | None,
        completion: dict[str, Any] | None = None,
    ) -> None:
        order.status = status
        order.hint_code = hint
        order.completion = completion
        order.finished_at = self.clock()

    async def _member_banks_root(self, _request: Request) -> Response:
        """The trust anchor of the simulator's signatures, as BankID's Member Banks root is of
        real ones (bankid-2026-and-ciba.md §2.2): an e-service pins it out of band."""
        return Response(self.evidence.root_pem(), media_type="application/x-pem-file")

    # -- the simulated phone ------------------------------------------------------------------

    async def _phone_page(self, request: Request) -> Response:
        qr = request.query_params.get("qr")
        token = request.query_params.get("autostarttoken")
        if qr is None and token is None:
            return _page(
                APP_TITLE,
                "<p>Open this page from the gateway's BankID page: its link “scan with the "
                "simulated BankID app” carries the current QR code, and “Open BankID on this "
                "device” carries the autostart token.</p>",
            )
        try:
            order = self.scan_qr(qr) if qr is not None else self.start_app(str(token))
        except SimulatorError as error:
            way_back = LOGIN_TAB if qr is not None else BROWSER_BACK
            return _page(
                APP_TITLE, f'<p class="error">{html.escape(str(error))}. {way_back}</p>', 400
            )
        text = html.escape(order.user_visible_data or "")
        options = "".join(f'<option value="{n}">{g} {s} ({n})</option>' for n, g, s in TEST_PERSONS)
        ref = html.escape(order.order_ref)
        asks, verb = (
            ("You are asked to sign", "Sign") if order.sign else ("The e-service asks", "Identify")
        )
        body = (
            f"<p>{asks}: <strong>{text}</strong></p>"
            f'<form method="post" action="{self.mount_path}/phone/approve">'
            f'<input type="hidden" name="orderRef" value="{ref}">'
            f'<p><label for="person">{verb} as</label> '
            f'<select id="person" name="personal_number">{options}</select></p>'
            f'<p><button type="submit" class="button">{verb}</button></p></form>'
            f'<form method="post" action="{self.mount_path}/phone/cancel">'
            f'<input type="hidden" name="orderRef" value="{ref}">'
            '<p><button type="submit" class="button button-secondary">Cancel</button></p></form>'
        )
        return _page(APP_TITLE, body)

    async def _phone_approve(self, request: Request) -> Response:
        form = await read_form(request, 4)
        order_ref = str(form.get("orderRef", ""))
        number = str(form.get("personal_number", ""))
        person = next((p for p in TEST_PERSONS if p[0] == number), TEST_PERSONS[0])
        try:
            self.approve(order_ref, *person)
        except SimulatorError as error:
            return _page(APP_TITLE, f"<p>{html.escape(str(error))}.</p>", 400)
        order = self.orders[order_ref]
        if order.status != "complete":  # BankID blocked it (UserBehaviour.risk "blocked")
            return self._back_from_app(order_ref, "Stopped — TEST", "BankID stopped the order.")
        done = "Signed — TEST" if order.sign else "Identified — TEST"
        return self._back_from_app(order_ref, done, "Done.")

    async def _phone_cancel(self, request: Request) -> Response:
        form = await read_form(request, 4)
        order_ref = str(form.get("orderRef", ""))
        try:
            self.cancel_in_app(order_ref)
        except SimulatorError as error:
            return _page(APP_TITLE, f"<p>{html.escape(str(error))}.</p>", 400)
        return self._back_from_app(order_ref, "Cancelled — TEST", "You cancelled in the app.")

    def _back_from_app(self, order_ref: str, title: str, outcome: str) -> Response:
        """§2.1 returnUrl: an order started on this device returns to it when it ends; on
        another device (QR) the citizen goes back to the login tab on the computer."""
        order = self.orders[order_ref]
        if order.started_via == "autostart" and order.return_url:
            return RedirectResponse(order.return_url, status_code=303)
        way_back = BROWSER_BACK if order.started_via == "autostart" else LOGIN_TAB
        return _page(title, f"<p>{outcome} {way_back}</p>")


def _names_of(number: str, behaviour: UserBehaviour | None) -> tuple[str, str]:
    """A phone order's person: always the one it names, as in BankID; names from the test
    persons, or the behaviour's."""
    for known, given_name, surname in TEST_PERSONS:
        if known == number:
            return given_name, surname
    if behaviour is not None:
        return behaviour.given_name, behaviour.surname
    return "Test", "Testperson"


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{title}</title><link rel="stylesheet" href="/static/portvakt.css"></head>'
        f'<body><main class="wrap" id="main"><h1>{title}</h1>{body}</main></body></html>',
        status_code=status,
    )

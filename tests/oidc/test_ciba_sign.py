"""A caller signs through CIBA (issue 23, on the Signature Extension of issue 21): the scope
`https://id.oidc.se/scope/sign` (or `…/signApproval`) with the signRequest as a JWT signed by the
case worker's system (PyJWT), checked as /authorize checks it but for `prompt`; the provider is
started with the sign request, the ID token carries the signature, the audit the digest. Over
real HTTP against the served app with the scripted phone provider
(tests/doubles/phone_provider.py) and time moved by hand."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx2
import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.settings import CIBA_GRANT
from providers.bankid.signature_check import verify_bankid_signature
from providers.bankid.simulator import BankIDSimulator, UserBehaviour
from providers.base import LOA3
from tests.clock import ManualClock
from tests.doubles.phone_provider import PHONES, PhoneDouble, phone_double_type
from tests.doubles.tls import LocalPKI
from tests.harness import NUMBER_SCOPE, LiveGateway, running_gateway
from tests.oidc.test_ciba import JWT_BEARER, UNLIMITED, assert_error, verified
from tests.providers.bankid import test_provider as bankid_tests
from tests.providers.bankid.test_provider import PERSON as BANKID_PERSON
from tests.providers.bankid.test_provider import Clock as BankIDClock
from tests.providers.bankid.test_provider import bankid_provider, latest_order

PERSON = "199908072391"
OTHER_PERSON = "196408233234"
SIGN = "https://id.oidc.se/scope/sign"
APPROVAL = "https://id.oidc.se/scope/signApproval"
SIGN_REQUEST = "https://id.oidc.se/param/signRequest"
USER_SIGNATURE = "https://id.oidc.se/claim/userSignature"
AUTHN_EVIDENCE = "https://id.oidc.se/claim/authnEvidence"
PNR_CLAIM = "https://id.oidc.se/claim/personalIdentityNumber"
TBS_DATA = base64.b64encode(b"<statement case='4711'>I withdraw it</statement>").decode()
SIGNER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
STRANGER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
SIGNING_SCOPES = ["openid", NUMBER_SCOPE, SIGN, APPROVAL]


def text(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


MESSAGE = {
    "message#sv": text("Jag återkallar min ansökan i ärende 4711"),
    "message#en": text("I withdraw my application in case 4711"),
    "mime_type": "text/plain",
}


def jwks() -> dict[str, Any]:
    jwk = pyjwt.algorithms.RSAAlgorithm.to_jwk(SIGNER_KEY.public_key(), as_dict=True)
    return {"keys": [{**jwk, "kid": "signer-key", "use": "sig"}]}


def caller_client(client_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "client_id": client_id,
        "jwks": jwks(),  # private_key_jwt, and the signRequest JWT's key
        "grant_types": [CIBA_GRANT],
        "backchannel_token_delivery_mode": "poll",
        "providers": ["phone"],
        "display": {"sv": "Kontaktcenter", "en": "Contact centre"},
        **extra,
    }


CLIENTS = [
    caller_client("signer", scopes=SIGNING_SCOPES),
    caller_client("approver", scopes=["openid", NUMBER_SCOPE, APPROVAL]),
    caller_client("caseworker"),  # no `scopes` key: everything but signing
]


@pytest.fixture
def gateway_clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def live(store_url: str | None, gateway_clock: ManualClock) -> Iterator[LiveGateway]:
    settings: dict[str, Any] = {
        "providers": {"phone": {"type": "phone-double", "loa": [LOA3]}},
        "clients": CLIENTS,
        "rate_limits": UNLIMITED,
    }
    with (
        phone_double_type(),
        running_gateway(store_url, clock=gateway_clock, **settings) as gateway,
    ):
        yield gateway


@pytest.fixture
def phone(live: LiveGateway) -> PhoneDouble:
    return PHONES["phone"]


def sign_request(tbs_data: str | None = TBS_DATA, **fields: Any) -> dict[str, Any]:
    made: dict[str, Any] = {"sign_message": MESSAGE, **fields}
    if tbs_data is not None:
        made["tbs_data"] = tbs_data
    return made


def sign_jwt(
    live: LiveGateway,
    request: dict[str, Any],
    client_id: str = "signer",
    key: Any = SIGNER_KEY,
    alg: str = "RS256",
    **claims: Any,
) -> str:
    """The JWT form (Signature Extension §3.1.2): the fields as top-level claims."""
    now = int(time.time())
    made = {"iss": client_id, "aud": live.url, "iat": now, "exp": now + 300, **request, **claims}
    payload = {k: v for k, v in made.items() if v is not None}
    return pyjwt.encode(payload, key, algorithm=alg, headers={"kid": "signer-key"})


def bc_sign(
    live: LiveGateway, client_id: str = "signer", scope: str = f"openid {NUMBER_SCOPE} {SIGN}",
    **params: str,
) -> httpx2.Response:  # fmt: skip
    form = {
        "scope": scope,
        "login_hint": PERSON,
        SIGN_REQUEST: sign_jwt(live, sign_request(), client_id),
        **params,
    }
    form = {k: v for k, v in form.items() if v != ""}
    with httpx2.Client(base_url=live.url, timeout=10) as http:
        return http.post("/bc-authorize", data={**form, **authenticated(live, client_id)})


def poll(live: LiveGateway, auth_req_id: str, client_id: str = "signer") -> httpx2.Response:
    form = {"grant_type": CIBA_GRANT, "auth_req_id": auth_req_id}
    with httpx2.Client(base_url=live.url, timeout=10) as http:
        return http.post("/token", data={**form, **authenticated(live, client_id)})


def authenticated(live: LiveGateway, client_id: str) -> dict[str, str]:
    """private_key_jwt (CIBA §7.1: as at /token)."""
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": live.url, "iat": now, "exp": now + 60,
              "jti": str(uuid.uuid4())}  # fmt: skip
    assertion = pyjwt.encode(claims, SIGNER_KEY, "RS256", headers={"kid": "signer-key"})
    return {"client_assertion_type": JWT_BEARER, "client_assertion": assertion}


def started(response: httpx2.Response) -> str:
    assert response.status_code == 200, response.text
    return str(response.json()["auth_req_id"])


def confirmed(
    live: LiveGateway, gateway_clock: ManualClock, auth_req_id: str, client_id: str = "signer"
) -> httpx2.Response:
    gateway_clock.advance(5)
    return poll(live, auth_req_id, client_id)


def audited(caplog: pytest.LogCaptureFixture, event: str) -> list[dict[str, Any]]:
    return [vars(r)["audit"] for r in caplog.records if vars(r).get("audit_event") == event]


# -- the happy paths ------------------------------------------------------------------------


def test_a_caller_signs_and_the_id_token_carries_the_signature(
    live: LiveGateway,
    phone: PhoneDouble,
    gateway_clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No `prompt` (CIBA has none); the provider is started with the message and tbs_data; the
    ID token has userSignature, authnEvidence and auth_time; the audit the tbs_data digest."""
    caplog.set_level(logging.INFO, logger="portvakt.audit")
    phone.script.statuses = ["complete"]
    auth_req_id = started(bc_sign(live))
    [request] = phone.started
    assert request.sign is not None and request.sign.tbs_data == TBS_DATA
    assert request.sign.message.texts["sv"] == "Jag återkallar min ansökan i ärende 4711"
    assert request.personal_identity_number == PERSON
    response = confirmed(live, gateway_clock, auth_req_id)
    assert response.status_code == 200, response.text
    claims = verified(live, response.json()["id_token"], "signer")
    signature = json.loads(base64.b64decode(claims[USER_SIGNATURE]))
    digest = hashlib.sha256(TBS_DATA.encode()).hexdigest()
    assert signature == {"test": True, "signer": PERSON, "tbs_data_sha256": digest}
    assert claims[AUTHN_EVIDENCE] == "b2NzcA=="
    assert isinstance(claims["auth_time"], int) and claims[PNR_CLAIM] == PERSON
    [signed] = audited(caplog, "signed")
    assert signed["tbs_data_sha256"] == digest and signed["kind"] == "sign"
    assert signed["client"] == "signer" and PERSON not in json.dumps(signed)


def test_an_approval_carries_no_signature_and_is_audited_as_one(
    live: LiveGateway,
    phone: PhoneDouble,
    gateway_clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="portvakt.audit")
    phone.script.statuses = ["complete"]
    request = {SIGN_REQUEST: sign_jwt(live, sign_request(tbs_data=None), "approver")}
    auth_req_id = started(
        bc_sign(live, "approver", scope=f"openid {NUMBER_SCOPE} {APPROVAL}", **request)
    )
    assert phone.started[-1].sign is not None and not phone.started[-1].sign.signs
    response = confirmed(live, gateway_clock, auth_req_id, "approver")
    assert response.status_code == 200, response.text
    claims = verified(live, response.json()["id_token"], "approver")
    assert USER_SIGNATURE not in claims and "auth_time" in claims
    [signed] = audited(caplog, "signed")
    assert signed["kind"] == "approval" and signed.get("tbs_data_sha256") is None


def test_the_jwt_may_name_the_backchannel_endpoint_as_its_audience(
    live: LiveGateway, phone: PhoneDouble
) -> None:
    token = sign_jwt(live, sign_request(), aud=f"{live.url}/bc-authorize")
    started(bc_sign(live, **{SIGN_REQUEST: token}))
    assert phone.started[-1].sign is not None


def test_an_identification_without_sign_scopes_starts_no_sign(
    live: LiveGateway, phone: PhoneDouble
) -> None:
    started(bc_sign(live, "caseworker", scope=f"openid {NUMBER_SCOPE}", **{SIGN_REQUEST: ""}))
    assert phone.started[-1].sign is None


# -- never tokens without the signature -----------------------------------------------------


def test_a_sign_that_returns_no_signature_is_access_denied(
    live: LiveGateway,
    phone: PhoneDouble,
    gateway_clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="portvakt.audit")
    phone.script.statuses = ["complete"]
    phone.script.no_signature = True
    auth_req_id = started(bc_sign(live))
    assert_error(confirmed(live, gateway_clock, auth_req_id), "access_denied")
    gateway_clock.advance(5)
    assert_error(poll(live, auth_req_id), "invalid_grant")  # over: no tokens later either
    assert not audited(caplog, "signed")
    [failed] = audited(caplog, "sign_failed")
    assert failed["tbs_data_sha256"] == hashlib.sha256(TBS_DATA.encode()).hexdigest()


def test_a_declined_sign_is_access_denied_and_audited_as_a_failed_sign(
    live: LiveGateway,
    phone: PhoneDouble,
    gateway_clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="portvakt.audit")
    phone.script.statuses = ["failed"]
    phone.script.hint, phone.script.outcome = "userCancel", "access_denied"
    auth_req_id = started(bc_sign(live))
    assert_error(confirmed(live, gateway_clock, auth_req_id), "access_denied")
    assert [f["error"] for f in audited(caplog, "sign_failed")] == ["declined"]


@pytest.mark.parametrize("upstream", [False, True])
def test_a_sign_that_expires_is_expired_token_and_audited_as_a_failed_sign(
    live: LiveGateway,
    phone: PhoneDouble,
    gateway_clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
    upstream: bool,
) -> None:
    """Past its expiry at the gateway, or timed out at the e-ID provider."""
    caplog.set_level(logging.INFO, logger="portvakt.audit")
    if upstream:
        phone.script.statuses = ["failed"]
        phone.script.hint, phone.script.outcome = "expiredTransaction", "expired_token"
    auth_req_id = started(bc_sign(live))
    gateway_clock.advance(5 if upstream else 121)
    assert_error(poll(live, auth_req_id), "expired_token")
    [failed] = audited(caplog, "sign_failed")
    assert failed["error"] == "expired" and failed["kind"] == "sign"


def test_another_person_than_the_hinted_one_never_signs_for_them(
    live: LiveGateway, phone: PhoneDouble, gateway_clock: ManualClock
) -> None:
    phone.script.statuses = ["complete"]
    phone.script.person = OTHER_PERSON
    auth_req_id = started(bc_sign(live))
    assert_error(confirmed(live, gateway_clock, auth_req_id), "access_denied")


# -- refusals: the §5.1 checks, with CIBA's error and nothing started -----------------------

Change = Callable[[LiveGateway], dict[str, str]]


def signed_by(request: dict[str, Any], **claims: Any) -> Change:
    return lambda live: {SIGN_REQUEST: sign_jwt(live, request, **claims)}


def as_client(client_id: str) -> Change:
    return lambda live: {SIGN_REQUEST: sign_jwt(live, sign_request(), client_id)}


BAD_REQUESTS: dict[str, tuple[str, Change, str]] = {
    "no signRequest": ("signer", lambda _live: {SIGN_REQUEST: ""}, "invalid_request"),
    "plain JSON": (
        "signer", lambda _live: {SIGN_REQUEST: json.dumps(sign_request())}, "invalid_request"
    ),
    "a bad signature": ("signer", signed_by(sign_request(), key=STRANGER_KEY), "invalid_request"),
    "an unsigned JWT": (
        "signer",
        lambda live: {SIGN_REQUEST: sign_jwt(live, sign_request(), key=None, alg="none")},
        "invalid_request",
    ),
    "a JWT for another OP": (
        "signer", signed_by(sign_request(), aud="https://op.example"), "invalid_request"
    ),
    "a JWT from another client": ("signer", signed_by(sign_request(), iss="approver"),
                                  "invalid_request"),
    "an expired JWT": (
        "signer", signed_by(sign_request(), exp=int(time.time()) - 600), "invalid_request"
    ),
    "not a JWT": ("signer", lambda _live: {SIGN_REQUEST: "not-a-jwt"}, "invalid_request"),
    "tbs_data missing for sign": ("signer", signed_by(sign_request(tbs_data=None)),
                                  "invalid_request"),
    "tbs_data with approval only": (
        "signer", lambda _live: {"scope": f"openid {APPROVAL}"}, "invalid_request"
    ),
    "signRequest without a sign scope": (
        "signer", lambda _live: {"scope": "openid"}, "invalid_request"
    ),
    "a client not registered to sign": ("caseworker", as_client("caseworker"),
                                        "unauthorized_client"),
    "a client registered for approval only asks to sign": (
        "approver", as_client("approver"), "unauthorized_client"
    ),
    "oversized tbs_data": ("signer", signed_by(sign_request(tbs_data="QUJD" * 3001)),
                           "invalid_request"),
    "tbs_data not Base64": ("signer", signed_by(sign_request(tbs_data="not base64!")),
                            "invalid_request"),
    "an unknown MIME type": (
        "signer",
        signed_by(sign_request(sign_message={**MESSAGE, "mime_type": "x/y"})),
        "invalid_request",
    ),
    "sign_message missing": ("signer", signed_by({"tbs_data": TBS_DATA}), "invalid_request"),
    "sign_message not a userMessage": (
        "signer", signed_by(sign_request(sign_message={"message": "åäö"})), "invalid_request"
    ),
    "an oversized signRequest": (
        "signer", lambda _live: {SIGN_REQUEST: "e30." * 9000}, "invalid_request"
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_a_bad_sign_request_gets_its_ciba_error_and_starts_nothing(
    live: LiveGateway, phone: PhoneDouble, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    caplog.set_level(logging.INFO, logger="portvakt.audit")
    client_id, change, error = BAD_REQUESTS[case]
    assert_error(bc_sign(live, client_id, **change(live)), error)
    assert phone.started == []
    assert [entry["error"] for entry in audited(caplog, "ciba")] == [error]


def test_a_provider_that_cannot_sign_this_is_refused_before_it_starts(
    live: LiveGateway, phone: PhoneDouble
) -> None:
    phone.script.cannot_sign = True
    assert_error(bc_sign(live), "invalid_request")
    assert phone.started == []


def test_a_binding_message_with_a_sign_request_is_refused_since_it_would_not_be_shown(
    live: LiveGateway, phone: PhoneDouble
) -> None:
    """The e-ID app shows the sign message, which is signed: nothing can be added to it, and
    a case worker must not read out a code the citizen never sees (CIBA §7.1)."""
    assert_error(bc_sign(live, binding_message="Ärende 4711"), "invalid_binding_message")
    assert phone.started == []


def test_prompt_is_not_asked_for_since_ciba_has_none(live: LiveGateway, phone: PhoneDouble) -> None:
    """The call's question and the e-ID's sign dialog stand for login and consent."""
    started(bc_sign(live, prompt="login consent"))
    started(bc_sign(live))
    assert len(phone.started) == 2


# -- end to end: BankID phone/sign at the bundled simulator over mutual TLS -------------------
# The simulator and the BankID provider run on the BankID tests' clock, the gateway on its own;
# both are moved together.

pki, clock, simulator = bankid_tests.pki, bankid_tests.clock, bankid_tests.simulator
bankid, bankid_on_the_test_clock = bankid_tests.bankid, bankid_tests.bankid_on_the_test_clock


@pytest.fixture
def bankid_live(
    store_url: str | None,
    pki: LocalPKI,
    simulator: tuple[BankIDSimulator, str],
    bankid_on_the_test_clock: None,
    gateway_clock: ManualClock,
) -> Iterator[LiveGateway]:
    clients = [{**client, "providers": ["bankid"]} for client in CLIENTS]
    settings: dict[str, Any] = {
        "providers": {"bankid": bankid_provider(pki, simulator[1])},
        "clients": clients,
        "rate_limits": UNLIMITED,
    }
    with running_gateway(store_url, clock=gateway_clock, **settings) as gateway:
        yield gateway


def phone_sign_body(sim: BankIDSimulator) -> dict[str, Any]:
    return [body for path, body in sim.calls if path == "phone/sign"][-1]


def polled_until_done(
    live: LiveGateway, gateway_clock: ManualClock, clock: BankIDClock, auth_req_id: str,
    client_id: str = "signer",
) -> httpx2.Response:  # fmt: skip
    for _ in range(5):
        gateway_clock.advance(5)
        clock.advance(5)
        response = poll(live, auth_req_id, client_id)
        if response.json().get("error") != "authorization_pending":
            return response
    raise AssertionError("still pending after five polls")


def test_a_caller_signs_with_bankid_phone_sign_and_the_signature_verifies(
    bankid_live: LiveGateway,
    bankid: BankIDSimulator,
    gateway_clock: ManualClock,
    clock: BankIDClock,
) -> None:
    """phone/sign with the sign message and tbs_data; the ID token's signature and OCSP response
    are BankID's verbatim and verify against the simulator's root over what was sent."""
    bankid.behave(UserBehaviour())
    auth_req_id = started(bc_sign(bankid_live, login_hint=BANKID_PERSON))
    body = phone_sign_body(bankid)
    assert body["personalNumber"] == BANKID_PERSON
    assert body["userVisibleData"] == MESSAGE["message#sv"]
    assert body["userNonVisibleData"] == TBS_DATA
    response = polled_until_done(bankid_live, gateway_clock, clock, auth_req_id)
    assert response.status_code == 200, response.text
    claims = verified(bankid_live, response.json()["id_token"], "signer")
    completion = latest_order(bankid).completion
    assert completion is not None
    assert claims[USER_SIGNATURE] == completion["signature"]
    assert claims[AUTHN_EVIDENCE] == completion["ocspResponse"]
    assert claims[PNR_CLAIM] == BANKID_PERSON and isinstance(claims["auth_time"], int)
    facts = verify_bankid_signature(
        claims[USER_SIGNATURE],
        claims[AUTHN_EVIDENCE],
        bankid.evidence.root_pem(),
        expected_visible=MESSAGE["message#sv"],
        expected_non_visible=TBS_DATA,
    )
    assert facts.personal_number == BANKID_PERSON


def test_an_approval_by_bankid_phone_sign_carries_no_signature(
    bankid_live: LiveGateway,
    bankid: BankIDSimulator,
    gateway_clock: ManualClock,
    clock: BankIDClock,
) -> None:
    bankid.behave(UserBehaviour())
    approval = {SIGN_REQUEST: sign_jwt(bankid_live, sign_request(tbs_data=None), "approver")}
    scope = f"openid {NUMBER_SCOPE} {APPROVAL}"
    auth_req_id = started(
        bc_sign(bankid_live, "approver", scope, login_hint=BANKID_PERSON, **approval)
    )
    assert phone_sign_body(bankid)["userVisibleData"] == MESSAGE["message#sv"]
    response = polled_until_done(bankid_live, gateway_clock, clock, auth_req_id, "approver")
    assert response.status_code == 200, response.text
    claims = verified(bankid_live, response.json()["id_token"], "approver")
    assert USER_SIGNATURE not in claims and AUTHN_EVIDENCE not in claims


@pytest.mark.parametrize(
    "behaviour", [UserBehaviour(declines_call=True), UserBehaviour(action="cancel")]
)
def test_a_declined_call_or_a_cancelled_bankid_sign_is_access_denied(
    bankid_live: LiveGateway,
    bankid: BankIDSimulator,
    gateway_clock: ManualClock,
    clock: BankIDClock,
    behaviour: UserBehaviour,
) -> None:
    bankid.behave(behaviour)
    auth_req_id = started(bc_sign(bankid_live, login_hint=BANKID_PERSON))
    assert_error(polled_until_done(bankid_live, gateway_clock, clock, auth_req_id), "access_denied")

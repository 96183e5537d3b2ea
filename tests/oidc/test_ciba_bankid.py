"""CIBA end to end in front of BankID phone/auth: the served gateway with the real BankID provider,
the bundled simulator over HTTPS with mutual TLS (as tests/providers/bankid/test_phone.py serves
it), the memory store and a real Redis, and one hand-moved clock for the gateway, its BankID
provider and the simulator. A case worker's client (client_secret_basic, or private_key_jwt
with an assertion PyJWT signs) asks /bc-authorize to identify a test person; the simulator's
`/phone-calls` page, over HTTP, plays that person's BankID app; the client polls /token with the
CIBA grant and checks the ID token with PyJWT against the gateway's JWKS."""

from __future__ import annotations

import base64
import json
import re
import ssl
import uuid
from collections.abc import Iterator
from typing import Any

import httpx2
import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.settings import CIBA_GRANT
from providers.bankid.simulator import BankIDSimulator
from tests.clock import ManualClock
from tests.doubles.tls import P12_PASSWORD, LocalPKI, make_pki
from tests.harness import NO_RATE_LIMITS, NUMBER_SCOPE, LiveGateway, ServedApp, free_port
from tests.harness import running_gateway as gateway_on

PERSON = "196408233234"
PNR_CLAIM = "https://id.oidc.se/claim/personalIdentityNumber"
BINDING = "Samtal med Demokommunens kontaktcenter"
CASEWORKER = ("caseworker", "caseworker-secret")
JWT_CLIENT = "caseworker-jwt"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CLIENT_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
UNLIMITED = {**NO_RATE_LIMITS, "ciba_per_client_per_minute": 0, "ciba_per_person_per_minute": 0}


def _public_jwk() -> dict[str, Any]:
    jwk = json.loads(pyjwt.algorithms.RSAAlgorithm.to_jwk(CLIENT_KEY.public_key()))
    return {**jwk, "kid": "caseworker-key", "use": "sig"}


CLIENTS = [
    {
        "client_id": CASEWORKER[0],
        "client_secret": CASEWORKER[1],
        "grant_types": [CIBA_GRANT],
        "backchannel_token_delivery_mode": "poll",
        "display": {"sv": "Kontaktcenter", "en": "Contact centre"},
    },
    {
        "client_id": JWT_CLIENT,
        "jwks": {"keys": [_public_jwk()]},
        "token_endpoint_auth_method": "private_key_jwt",
        "grant_types": [CIBA_GRANT],
        "backchannel_token_delivery_mode": "poll",
    },
]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> LocalPKI:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def simulator(pki: LocalPKI, clock: ManualClock) -> Iterator[tuple[BankIDSimulator, str]]:
    """The simulator over HTTPS, demanding a client certificate of the test CA; nobody answers
    a call unless the test does, on the simulator's page."""
    bankid = BankIDSimulator(clock=clock, wall_clock=clock)
    bankid.behave(None)
    served = ServedApp(
        bankid.app,
        free_port(),
        ssl_certfile=str(pki.server.cert),
        ssl_keyfile=str(pki.server.key),
        ssl_ca_certs=str(pki.ca),
        ssl_cert_reqs=ssl.CERT_REQUIRED,
    )
    with served:
        yield bankid, f"https://127.0.0.1:{served.port}"


@pytest.fixture
def live(
    store_url: str | None,
    pki: LocalPKI,
    clock: ManualClock,
    simulator: tuple[BankIDSimulator, str],
) -> Iterator[LiveGateway]:
    bankid = {
        "type": "bankid",
        "url": f"{simulator[1]}/rp/v6.0",
        "client_cert": {"file": str(pki.client_p12), "password": P12_PASSWORD},
        "ca": str(pki.ca),
    }
    with gateway_on(
        store_url,
        clock=clock,
        providers={"bankid": bankid},
        clients=CLIENTS,
        rate_limits=UNLIMITED,
    ) as gateway:
        yield gateway


class Phone:
    """The citizen's BankID app: the simulator's /phone-calls page, over HTTPS."""

    def __init__(self, pki: LocalPKI, url: str) -> None:
        tls = ssl.create_default_context(cafile=str(pki.ca))
        tls.load_cert_chain(str(pki.client.cert), str(pki.client.key))
        self._http = httpx2.Client(base_url=url, verify=tls, timeout=10)

    def press(self, action: str, **fields: str) -> httpx2.Response:
        page = self._http.get("/phone-calls")
        assert page.status_code == 200, page.text
        ref = re.search(rf'action="/phone-calls/{action}">\s*<input type="hidden" '
                        r'name="orderRef" value="([^"]+)"', page.text)  # fmt: skip
        assert ref is not None, page.text
        answered = self._http.post(
            f"/phone-calls/{action}", data={"orderRef": ref.group(1), **fields}
        )
        assert answered.status_code in (200, 303), answered.text
        return answered

    def answer_and_identify(self) -> None:
        self.press("open")
        self.press("answer", answer="yes")
        self.press("identify")


@pytest.fixture
def phone(pki: LocalPKI, simulator: tuple[BankIDSimulator, str]) -> Iterator[Phone]:
    answering = Phone(pki, simulator[1])
    yield answering
    answering._http.close()


def bc_authorize(live: LiveGateway, **params: str) -> httpx2.Response:
    form = {"scope": f"openid {NUMBER_SCOPE}", "login_hint": PERSON, **params}
    with httpx2.Client(base_url=live.url, timeout=10) as http:
        return http.post("/bc-authorize", data=form, auth=CASEWORKER)


def started(live: LiveGateway, **params: str) -> dict[str, Any]:
    response = bc_authorize(live, binding_message=BINDING, **params)
    assert response.status_code == 200, response.text
    return dict(response.json())


def poll(live: LiveGateway, auth_req_id: str) -> httpx2.Response:
    form = {"grant_type": CIBA_GRANT, "auth_req_id": auth_req_id}
    with httpx2.Client(base_url=live.url, timeout=10) as http:
        return http.post("/token", data=form, auth=CASEWORKER)


def assert_error(response: httpx2.Response, error: str) -> None:
    assert (response.status_code, response.json()["error"]) == (400, error), response.text


def verified(live: LiveGateway, id_token: str, client_id: str, now: float) -> dict[str, Any]:
    """The ID token as PyJWT checks it against the published JWKS, at the test clock's now."""
    with httpx2.Client(base_url=live.url, timeout=10) as http:
        keys = pyjwt.PyJWKSet.from_dict(http.get("/jwks").json())
    key = keys[pyjwt.get_unverified_header(id_token)["kid"]]
    claims = pyjwt.decode(
        id_token, key.key, algorithms=["RS256"], audience=client_id, issuer=live.url,
        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
    )  # fmt: skip
    assert claims["iat"] <= now + 1 < claims["exp"]  # judged by the test's clock, not the wall's
    return dict(claims)


def test_a_caller_who_confirms_in_bankid_is_identified_once(
    live: LiveGateway,
    simulator: tuple[BankIDSimulator, str],
    phone: Phone,
    clock: ManualClock,
) -> None:
    acknowledged = started(live)
    auth_req_id, interval = acknowledged["auth_req_id"], acknowledged["interval"]
    clock.advance(interval)
    assert_error(poll(live, auth_req_id), "authorization_pending")
    clock.advance(1)
    assert_error(poll(live, auth_req_id), "slow_down")  # polled before the interval was up
    interval += 5  # CIBA §11: slow_down adds 5 s to this and every later interval
    phone.answer_and_identify()
    clock.advance(interval)
    response = poll(live, auth_req_id)
    assert response.status_code == 200, response.text
    claims = verified(live, response.json()["id_token"], CASEWORKER[0], clock())
    assert claims[PNR_CLAIM] == PERSON
    assert claims["sub"] and claims["sub"] != PERSON
    assert claims["acr"] and claims["auth_time"] <= clock()
    clock.advance(interval)
    assert_error(poll(live, auth_req_id), "invalid_grant")  # the tokens are issued once


def test_bankid_is_asked_for_exactly_that_person_with_the_binding_message(
    live: LiveGateway, simulator: tuple[BankIDSimulator, str]
) -> None:
    started(live)
    [body] = [body for path, body in simulator[0].calls if path == "phone/auth"]
    assert body["personalNumber"] == PERSON
    assert body["callInitiator"] in ("user", "RP")
    assert base64.b64decode(body["userVisibleData"]).decode() == BINDING


def test_the_call_initiator_asked_for_reaches_bankid(
    live: LiveGateway, simulator: tuple[BankIDSimulator, str]
) -> None:
    details = [{"type": "phoneAuth", "callInitiator": "RP"}]
    started(live, authorization_details=json.dumps(details))
    [body] = [body for path, body in simulator[0].calls if path == "phone/auth"]
    assert body["callInitiator"] == "RP"


def test_private_key_jwt_client_is_identified_too(
    live: LiveGateway, phone: Phone, clock: ManualClock
) -> None:
    def assertion(audience: str) -> dict[str, str]:
        now = int(clock())
        claims = {"iss": JWT_CLIENT, "sub": JWT_CLIENT, "aud": audience, "iat": now,
                  "exp": now + 60, "jti": str(uuid.uuid4())}  # fmt: skip
        signed = pyjwt.encode(claims, CLIENT_KEY, "RS256", headers={"kid": "caseworker-key"})
        return {"client_assertion_type": JWT_BEARER, "client_assertion": signed}

    with httpx2.Client(base_url=live.url, timeout=10) as http:
        form = {"scope": f"openid {NUMBER_SCOPE}", "login_hint": PERSON, "binding_message": BINDING}
        acknowledged = http.post("/bc-authorize", data={**form, **assertion(live.url)})
        assert acknowledged.status_code == 200, acknowledged.text
        phone.answer_and_identify()
        clock.advance(acknowledged.json()["interval"])
        grant = {"grant_type": CIBA_GRANT, "auth_req_id": acknowledged.json()["auth_req_id"]}
        response = http.post("/token", data={**grant, **assertion(f"{live.url}/token")})
    assert response.status_code == 200, response.text
    claims = verified(live, response.json()["id_token"], JWT_CLIENT, clock())
    assert claims[PNR_CLAIM] == PERSON


def test_a_citizen_who_says_no_to_the_call_is_access_denied(
    live: LiveGateway, phone: Phone, clock: ManualClock
) -> None:
    acknowledged = started(live)
    phone.press("open")
    phone.press("answer", answer="no")
    clock.advance(acknowledged["interval"])
    assert_error(poll(live, acknowledged["auth_req_id"]), "access_denied")


def test_a_citizen_who_cancels_in_the_app_is_access_denied(
    live: LiveGateway, phone: Phone, clock: ManualClock
) -> None:
    acknowledged = started(live)
    phone.press("open")
    phone.press("answer", answer="yes")
    phone.press("cancel")
    clock.advance(acknowledged["interval"])
    assert_error(poll(live, acknowledged["auth_req_id"]), "access_denied")


def test_a_call_nobody_answers_is_expired_token(
    live: LiveGateway, simulator: tuple[BankIDSimulator, str], clock: ManualClock
) -> None:
    """Both ways to expire: BankID gives up first (expiredTransaction), or our expiry passes."""
    acknowledged = started(live)
    clock.advance(simulator[0].phone_timeout)
    assert_error(poll(live, acknowledged["auth_req_id"]), "expired_token")
    short = started(live, requested_expiry="30")
    order_ref = list(simulator[0].orders)[-1]
    clock.advance(31)
    assert_error(poll(live, short["auth_req_id"]), "expired_token")
    assert ("cancel", {"orderRef": order_ref}) in simulator[0].calls  # ended at BankID too


def test_odd_requests_against_bankid_never_get_a_500(live: LiveGateway) -> None:
    for params in (
        {"login_hint": "19640823323"},
        {"login_hint": "196408233235"},
        {"binding_message": "x" * 500},
        {"binding_message": "<script>"},
        {"requested_expiry": "-1"},
        {"acr_values": "urn:unknown"},
    ):
        response = bc_authorize(live, **params)
        assert 400 <= response.status_code < 500, (params, response.text)
    for auth_req_id in ("", "nope", "x" * 5000):
        assert poll(live, auth_req_id).status_code == 400

"""OpenID Connect CIBA Core 1.0, poll mode, at the gateway: the backchannel authentication
endpoint (§7), the CIBA grant at /token (§10.1, §11) and their errors (§13), over real HTTP
against the served app, with a scripted phone provider (tests/doubles/phone_provider.py), the
memory store and a real Redis, and time moved by hand (tests/clock.py)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import httpx2
import jwt as pyjwt
import pytest
import redis
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.settings import CIBA_GRANT, SettingsError, settings_from_data
from providers.base import LOA3, AuthenticationFailed, ProviderUnavailable
from tests.clock import ManualClock
from tests.doubles.phone_provider import PHONE_PROVIDER, PHONES, PhoneDouble, phone_double_type
from tests.harness import (
    NO_RATE_LIMITS,
    NUMBER_SCOPE,
    REDIRECT_URI,
    LiveGateway,
    running_gateway,
    stored_value,
)

PERSON = "199908072391"
OTHER_PERSON = "196408233234"
PNR_CLAIM = "https://id.oidc.se/claim/personalIdentityNumber"
CASEWORKER = ("caseworker", "caseworker-secret")
OTHER_CASEWORKER = ("other-caseworker", "other-secret")
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CLIENT_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
UNLIMITED = {**NO_RATE_LIMITS, "ciba_per_client_per_minute": 0, "ciba_per_person_per_minute": 0}


def _public_jwk() -> dict[str, Any]:
    jwk = json.loads(pyjwt.algorithms.RSAAlgorithm.to_jwk(CLIENT_KEY.public_key()))
    return {**jwk, "kid": "caseworker-key", "use": "sig"}


def ciba_client(client_id: str, secret: str, **extra: Any) -> dict[str, Any]:
    return {
        "client_id": client_id,
        "client_secret": secret,
        "grant_types": [CIBA_GRANT],
        "backchannel_token_delivery_mode": "poll",
        "providers": ["phone"],
        "display": {"sv": "Kontaktcenter", "en": "Contact centre"},
        **extra,
    }


CLIENTS = [
    ciba_client(*CASEWORKER),
    ciba_client(*OTHER_CASEWORKER, backchannel_call_initiator="RP"),
    {
        "client_id": "caseworker-jwt",
        "jwks": {"keys": [_public_jwk()]},
        "grant_types": [CIBA_GRANT],
        "backchannel_token_delivery_mode": "poll",
    },
    {"client_id": "basic", "client_secret": "basic-secret", "redirect_uris": [REDIRECT_URI]},
]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def ciba_gateway(
    store_url: str | None, clock: ManualClock
) -> Callable[..., AbstractContextManager[LiveGateway]]:
    def make(**overrides: Any) -> AbstractContextManager[LiveGateway]:
        settings: dict[str, Any] = {
            "providers": {"sandbox": {"type": "sandbox"}, "phone": PHONE_PROVIDER},
            "clients": CLIENTS,
            "rate_limits": UNLIMITED,
            **overrides,
        }
        return running_gateway(store_url, clock=clock, **settings)

    return make


@pytest.fixture
def live(ciba_gateway: Callable[..., AbstractContextManager[LiveGateway]]) -> Iterator[LiveGateway]:
    with phone_double_type(), ciba_gateway() as gateway:
        yield gateway


@pytest.fixture
def phone(live: LiveGateway) -> PhoneDouble:
    return PHONES["phone"]


def bc_authorize(
    live: LiveGateway, auth: tuple[str, str] | None = CASEWORKER, **params: str
) -> httpx2.Response:
    form = {"scope": f"openid {NUMBER_SCOPE}", "login_hint": PERSON, **params}
    with httpx2.Client(base_url=live.url, timeout=10) as http:
        return http.post("/bc-authorize", data=form, auth=auth)


def poll(
    live: LiveGateway, auth_req_id: str, auth: tuple[str, str] | None = CASEWORKER, **extra: str
) -> httpx2.Response:
    form = {"grant_type": CIBA_GRANT, "auth_req_id": auth_req_id, **extra}
    with httpx2.Client(base_url=live.url, timeout=10) as http:
        return http.post("/token", data=form, auth=auth)


def started(live: LiveGateway, **params: str) -> str:
    response = bc_authorize(live, **params)
    assert response.status_code == 200, response.text
    return str(response.json()["auth_req_id"])


def assert_error(response: httpx2.Response, error: str, status: int = 400) -> None:
    assert (response.status_code, response.json()["error"]) == (status, error), response.text
    assert response.headers["cache-control"] == "no-store"


def verified(live: LiveGateway, id_token: str, client_id: str) -> dict[str, Any]:
    with httpx2.Client(base_url=live.url, timeout=10) as http:
        keys = pyjwt.PyJWKSet.from_dict(http.get("/jwks").json())
    key = keys[pyjwt.get_unverified_header(id_token)["kid"]]
    return dict(
        pyjwt.decode(
            id_token, key.key, algorithms=["RS256"], audience=client_id, issuer=live.url,
            leeway=600,
        )
    )  # fmt: skip


# -- the acknowledgement (CIBA §7.3) -------------------------------------------------------------


def test_a_valid_request_starts_a_phone_authentication_and_is_acknowledged(
    live: LiveGateway, phone: PhoneDouble
) -> None:
    """§7.3: auth_req_id (≥ 160 bits of A-Za-z0-9._-), expires_in, interval ≥ 2."""
    response = bc_authorize(live, binding_message="Ärende 4711: samtal med kontaktcenter")
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"auth_req_id", "expires_in", "interval"}
    assert len(body["auth_req_id"]) >= 32
    assert all(c.isascii() and (c.isalnum() or c in "._-") for c in body["auth_req_id"])
    assert body["expires_in"] == 120 and body["interval"] == 5
    [request] = phone.started
    assert request.personal_identity_number == PERSON
    assert request.client_id == "caseworker"
    assert request.binding_message == "Ärende 4711: samtal med kontaktcenter"
    assert request.call_initiator == "user"


def test_the_auth_req_id_is_stored_only_as_a_hash(store_url: str | None, live: LiveGateway) -> None:
    auth_req_id = started(live)
    digest = hashlib.sha256(auth_req_id.encode()).hexdigest()
    record = stored_value(store_url, live, f"ciba:{digest}")
    assert record is not None and auth_req_id.encode() not in record
    assert stored_value(store_url, live, f"ciba:{auth_req_id}") is None


def test_requested_expiry_is_honoured_below_and_clamped_above_the_maximum(
    live: LiveGateway,
) -> None:
    assert bc_authorize(live, requested_expiry="30").json()["expires_in"] == 30
    assert bc_authorize(live, requested_expiry="3600").json()["expires_in"] == 120


@pytest.mark.parametrize("expiry", ["0", "-5", "1.5", "soon", "١٢"])
def test_a_requested_expiry_that_is_not_a_positive_integer_is_refused(
    live: LiveGateway, expiry: str
) -> None:
    assert_error(bc_authorize(live, requested_expiry=expiry), "invalid_request")


def test_the_call_initiator_comes_from_authorization_details(
    live: LiveGateway, phone: PhoneDouble
) -> None:
    details = json.dumps([{"type": "phoneAuth", "callInitiator": "RP"}])
    started(live, authorization_details=details)
    assert phone.started[-1].call_initiator == "RP"


def test_the_call_initiator_defaults_to_the_clients_registration(
    live: LiveGateway, phone: PhoneDouble
) -> None:
    started_by = bc_authorize(live, auth=OTHER_CASEWORKER)
    assert started_by.status_code == 200, started_by.text
    assert phone.started[-1].call_initiator == "RP"


@pytest.mark.parametrize(
    "details",
    [
        "not json",
        "[]",
        '[{"type": "payment"}]',
        '[{"type": "phoneAuth", "callInitiator": "rp"}]',
        '[{"type": "phoneAuth"}, {"type": "phoneAuth"}]',
        "[" * 5000,
    ],
)
def test_authorization_details_other_than_phone_auth_are_refused(
    live: LiveGateway, details: str
) -> None:
    assert_error(bc_authorize(live, authorization_details=details), "invalid_authorization_details")


@pytest.mark.parametrize(
    "hint",
    [
        "199908072390",  # check digit
        "19990807-2391",  # not 12 digits
        "9908072391",
        "199913072391",  # no 13th month
        "199908672391",  # a coordination number: BankID has none
        "sub:ssn:199908072391",
        "",
    ],
)
def test_a_login_hint_that_is_not_a_personal_identity_number_is_refused(
    live: LiveGateway, phone: PhoneDouble, hint: str
) -> None:
    assert_error(bc_authorize(live, login_hint=hint), "invalid_request")
    assert phone.started == []


def test_two_hints_are_refused(live: LiveGateway) -> None:
    assert_error(bc_authorize(live, id_token_hint="eyJ.x.y"), "invalid_request")


@pytest.mark.parametrize("hint", ["id_token_hint", "login_hint_token"])
def test_hints_other_than_login_hint_are_refused_clearly(live: LiveGateway, hint: str) -> None:
    form = {"scope": "openid", hint: "eyJ.x.y"}
    with httpx2.Client(base_url=live.url, timeout=10) as http:
        response = http.post("/bc-authorize", data=form, auth=CASEWORKER)
    assert_error(response, "invalid_request")
    assert "not supported" in response.json()["error_description"]


def test_a_request_without_the_openid_scope_is_refused(live: LiveGateway) -> None:
    assert_error(bc_authorize(live, scope=NUMBER_SCOPE), "invalid_scope")


@pytest.mark.parametrize(
    "message", ["x" * 101, "<script>", "rad ett\nrad två", "tab\there", "emoji 😀"]
)
def test_a_binding_message_too_long_or_with_other_characters_is_refused(
    live: LiveGateway, message: str
) -> None:
    assert_error(bc_authorize(live, binding_message=message), "invalid_binding_message")


@pytest.mark.parametrize(
    ("name", "value"), [("user_code", "1234"), ("request", "eyJhbGciOiJub25lIn0.e30.")]
)
def test_user_code_and_signed_requests_are_refused(
    live: LiveGateway, name: str, value: str
) -> None:
    assert_error(bc_authorize(live, **{name: value}), "invalid_request")


def test_acr_values_the_phone_provider_cannot_deliver_are_refused(
    live: LiveGateway, phone: PhoneDouble
) -> None:
    assert_error(bc_authorize(live, acr_values="urn:other:loa"), "invalid_request")
    assert bc_authorize(live, acr_values=f"urn:other:loa {LOA3}").status_code == 200
    assert phone.started[-1].requested_loa == (LOA3,)


def test_a_client_not_registered_for_ciba_is_refused(live: LiveGateway) -> None:
    assert_error(bc_authorize(live, auth=("basic", "basic-secret")), "unauthorized_client")


def test_a_client_that_fails_authentication_gets_401(live: LiveGateway) -> None:
    assert_error(bc_authorize(live, auth=("caseworker", "wrong")), "invalid_client", 401)
    form = {"client_id": "caseworker", "client_secret": "wrong", "scope": "openid"}
    with httpx2.Client(base_url=live.url, timeout=10) as http:
        assert_error(http.post("/bc-authorize", data=form), "invalid_client", 401)


def test_a_provider_that_refuses_to_start_is_a_clear_invalid_request(
    live: LiveGateway, phone: PhoneDouble
) -> None:
    phone.script.refuse_start = True
    response = bc_authorize(live)
    assert_error(response, "invalid_request")
    assert PERSON not in response.text


def test_a_provider_that_is_down_at_the_start_is_temporarily_unavailable(
    live: LiveGateway, phone: PhoneDouble
) -> None:
    phone.script.start_error = ProviderUnavailable
    response = bc_authorize(live)
    assert_error(response, "temporarily_unavailable", 503)
    assert PERSON not in response.text


def test_private_key_jwt_with_the_backchannel_endpoint_as_audience(live: LiveGateway) -> None:
    """§7.1: the assertion's aud may be the backchannel authentication endpoint's URL."""
    now = int(time.time())
    claims = {"iss": "caseworker-jwt", "sub": "caseworker-jwt", "aud": f"{live.url}/bc-authorize",
              "iat": now, "exp": now + 60, "jti": str(uuid.uuid4())}  # fmt: skip
    assertion = pyjwt.encode(claims, CLIENT_KEY, "RS256", headers={"kid": "caseworker-key"})
    form = {"scope": "openid", "login_hint": PERSON, "client_assertion_type": JWT_BEARER,
            "client_assertion": assertion}  # fmt: skip
    with httpx2.Client(base_url=live.url, timeout=10) as http:
        response = http.post("/bc-authorize", data=form)
    assert response.status_code == 200, response.text


# -- polling (CIBA §10.1, §11) --------------------------------------------------------------------


def test_a_confirmed_request_yields_an_id_token_for_exactly_the_hinted_person_once(
    live: LiveGateway, phone: PhoneDouble, clock: ManualClock
) -> None:
    auth_req_id = started(live, acr_values=LOA3)
    phone.script.statuses = ["pending", "complete"]
    clock.advance(5)
    assert_error(poll(live, auth_req_id), "authorization_pending")
    clock.advance(5)
    response = poll(live, auth_req_id)
    assert response.status_code == 200, response.text
    tokens = response.json()
    assert tokens["token_type"] == "Bearer" and tokens["access_token"]
    claims = verified(live, tokens["id_token"], "caseworker")
    assert claims[PNR_CLAIM] == PERSON
    assert claims["acr"] == LOA3 and "auth_time" in claims
    with httpx2.Client(base_url=live.url, timeout=10) as http:
        userinfo = http.get(
            "/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
    assert userinfo.json()[PNR_CLAIM] == PERSON
    clock.advance(5)
    assert_error(poll(live, auth_req_id), "invalid_grant")


def test_another_person_than_the_hinted_one_is_refused(
    live: LiveGateway, phone: PhoneDouble, clock: ManualClock
) -> None:
    auth_req_id = started(live)
    phone.script.statuses, phone.script.person = ["complete"], OTHER_PERSON
    clock.advance(5)
    assert_error(poll(live, auth_req_id), "access_denied")


def test_a_declined_call_is_access_denied_and_a_security_signal(
    live: LiveGateway, phone: PhoneDouble, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="portvakt.audit")
    auth_req_id = started(live)
    phone.script.statuses = ["failed"]
    phone.script.hint, phone.script.outcome = "userDeclinedCall", "access_denied"
    clock.advance(5)
    assert_error(poll(live, auth_req_id), "access_denied")
    events = [record.audit_event for record in caplog.records if hasattr(record, "audit_event")]
    assert "ciba_call_declined" in events
    outcomes = [
        vars(r)["audit"]["outcome"] for r in caplog.records if vars(r).get("audit_event") == "ciba"
    ]
    assert outcomes == ["started", "declined"]
    clock.advance(5)
    assert_error(poll(live, auth_req_id), "invalid_grant")


def test_a_request_that_timed_out_upstream_is_expired_token(
    live: LiveGateway, phone: PhoneDouble, clock: ManualClock
) -> None:
    auth_req_id = started(live)
    phone.script.statuses, phone.script.outcome = ["failed"], "expired_token"
    phone.script.hint = "expiredTransaction"
    clock.advance(5)
    assert_error(poll(live, auth_req_id), "expired_token")


def test_a_request_past_its_expiry_is_expired_token_and_cancelled_upstream(
    live: LiveGateway, phone: PhoneDouble, clock: ManualClock
) -> None:
    auth_req_id = started(live, requested_expiry="30")
    clock.advance(31)
    assert_error(poll(live, auth_req_id), "expired_token")
    assert phone.cancelled == ["handle-1"]
    assert phone.status_calls == []


def test_polling_before_the_interval_is_slow_down_and_the_interval_grows(
    live: LiveGateway, phone: PhoneDouble, clock: ManualClock
) -> None:
    """§11: slow_down, and the interval grows by 5 s for this and every later poll."""
    auth_req_id = started(live)
    clock.advance(2)
    assert_error(poll(live, auth_req_id), "slow_down")  # interval now 10, next at +12
    clock.advance(5)
    assert_error(poll(live, auth_req_id), "slow_down")  # interval now 15, next at +22
    clock.advance(15)
    assert_error(poll(live, auth_req_id), "authorization_pending")
    assert phone.status_calls == ["handle-1"]  # the provider is never asked on a slow_down
    clock.advance(14)
    assert_error(poll(live, auth_req_id), "slow_down")


def test_a_provider_down_at_a_poll_leaves_the_request_pending(
    live: LiveGateway, phone: PhoneDouble, clock: ManualClock
) -> None:
    auth_req_id = started(live)
    phone.script.status_error = ProviderUnavailable
    clock.advance(5)
    assert_error(poll(live, auth_req_id), "authorization_pending")
    phone.script.status_error, phone.script.statuses = None, ["complete"]
    clock.advance(5)
    assert poll(live, auth_req_id).status_code == 200


def test_a_provider_failure_at_a_poll_ends_the_request(
    live: LiveGateway, phone: PhoneDouble, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    auth_req_id = started(live)
    phone.script.status_error = AuthenticationFailed
    clock.advance(5)
    # Only this poll's events: the start's may have been captured too when an earlier test left
    # the audit logger at INFO.
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="portvakt.audit"):
        assert_error(poll(live, auth_req_id), "access_denied")
    [failed] = [vars(r)["audit"] for r in caplog.records if vars(r).get("audit_event") == "ciba"]
    assert failed["outcome"] == "failed"
    clock.advance(5)
    assert_error(poll(live, auth_req_id), "invalid_grant")


def test_a_cancel_that_fails_upstream_still_answers_expired_token(
    live: LiveGateway, phone: PhoneDouble, clock: ManualClock
) -> None:
    auth_req_id = started(live)
    phone.script.cancel_error = ProviderUnavailable
    clock.advance(121)
    assert_error(poll(live, auth_req_id), "expired_token")


def test_another_clients_auth_req_id_is_invalid_grant(
    live: LiveGateway, phone: PhoneDouble, clock: ManualClock
) -> None:
    auth_req_id = started(live)
    clock.advance(5)
    assert_error(poll(live, auth_req_id, auth=OTHER_CASEWORKER), "invalid_grant")
    assert phone.status_calls == []


def test_an_unknown_auth_req_id_is_invalid_grant(live: LiveGateway) -> None:
    assert_error(poll(live, "no-such-request"), "invalid_grant")


def test_the_ciba_grant_is_refused_to_a_client_not_registered_for_it(live: LiveGateway) -> None:
    assert_error(poll(live, "x", auth=("basic", "basic-secret")), "unauthorized_client")


def test_the_code_grant_is_refused_to_a_ciba_only_client(live: LiveGateway) -> None:
    form = {"grant_type": "authorization_code", "code": "x", "redirect_uri": REDIRECT_URI}
    with httpx2.Client(base_url=live.url, timeout=10) as http:
        assert_error(http.post("/token", data=form, auth=CASEWORKER), "unauthorized_client")


def test_concurrent_polls_of_a_confirmed_request_get_tokens_once(
    live: LiveGateway, phone: PhoneDouble, clock: ManualClock
) -> None:
    auth_req_id = started(live)
    phone.script.statuses = ["complete"]
    clock.advance(5)
    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda _: poll(live, auth_req_id), range(6)))
    assert [a.status_code for a in answers].count(200) == 1
    refused = {a.json()["error"] for a in answers if a.status_code != 200}
    assert refused <= {"invalid_grant", "slow_down"}
    clock.advance(30)
    assert_error(poll(live, auth_req_id), "invalid_grant")


def put_back(store_url: str | None, live: LiveGateway, key: str, value: bytes) -> None:
    """Writes a record as a racing poll's late slow_down write would."""
    if store_url is not None:
        with redis.Redis.from_url(store_url) as client:
            client.set(key, value, ex=120)
        return
    asyncio.run(live.app.state.store.target.put(key, value, 120))


def test_a_request_written_back_by_a_racing_poll_never_yields_tokens_twice(
    store_url: str | None, live: LiveGateway, phone: PhoneDouble, clock: ManualClock
) -> None:
    """A poll that read the request before another took it may still write it back (its
    slow_down): the tokens still go out once."""
    auth_req_id = started(live)
    key = f"ciba:{hashlib.sha256(auth_req_id.encode()).hexdigest()}"
    before = stored_value(store_url, live, key)
    assert before is not None
    phone.script.statuses = ["complete"]
    clock.advance(5)
    assert poll(live, auth_req_id).status_code == 200
    put_back(store_url, live, key, before)
    clock.advance(5)
    assert_error(poll(live, auth_req_id), "slow_down")  # that poll slot was used
    clock.advance(10)
    assert_error(poll(live, auth_req_id), "invalid_grant")


# -- rate limits, audit, discovery ------------------------------------------------------------


def test_requests_per_hinted_person_are_limited(
    ciba_gateway: Callable[..., AbstractContextManager[LiveGateway]], clock: ManualClock
) -> None:
    clock.advance(3600)  # a window of its own: the module's Redis holds earlier tests' counts
    limits = {**NO_RATE_LIMITS, "ciba_per_person_per_minute": 2}
    with phone_double_type(), ciba_gateway(rate_limits=limits) as gateway:
        assert bc_authorize(gateway).status_code == 200
        assert bc_authorize(gateway, auth=OTHER_CASEWORKER).status_code == 200
        refused = bc_authorize(gateway)
        assert refused.status_code == 429 and "retry-after" in refused.headers
        assert bc_authorize(gateway, login_hint=OTHER_PERSON).status_code == 200


def test_requests_per_client_are_limited(
    ciba_gateway: Callable[..., AbstractContextManager[LiveGateway]], clock: ManualClock
) -> None:
    clock.advance(7200)  # a window of its own: the module's Redis holds earlier tests' counts
    limits = {**NO_RATE_LIMITS, "ciba_per_client_per_minute": 1}
    with phone_double_type(), ciba_gateway(rate_limits=limits) as gateway:
        assert bc_authorize(gateway).status_code == 200
        assert bc_authorize(gateway, login_hint=OTHER_PERSON).status_code == 429
        assert bc_authorize(gateway, auth=OTHER_CASEWORKER).status_code == 200


def test_requests_with_a_bad_hint_count_against_the_client(
    ciba_gateway: Callable[..., AbstractContextManager[LiveGateway]], clock: ManualClock
) -> None:
    clock.advance(10800)  # a window of its own: the module's Redis holds earlier tests' counts
    limits = {**NO_RATE_LIMITS, "ciba_per_client_per_minute": 2}
    with phone_double_type(), ciba_gateway(rate_limits=limits) as gateway:
        assert_error(bc_authorize(gateway, login_hint="199908072390"), "invalid_request")
        assert_error(bc_authorize(gateway, login_hint="1"), "invalid_request")
        assert bc_authorize(gateway).status_code == 429


def test_every_request_is_audited_with_the_number_masked(
    live: LiveGateway, phone: PhoneDouble, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    auth_req_id = started(live)
    bc_authorize(live, login_hint="199908072390")
    bc_authorize(live, binding_message="<b>")
    phone.script.statuses = ["complete"]
    clock.advance(5)
    assert poll(live, auth_req_id).status_code == 200
    audited = [vars(r)["audit"] for r in caplog.records if vars(r).get("audit_event") == "ciba"]
    outcomes = [(entry["outcome"], entry.get("person")) for entry in audited]
    assert outcomes == [
        ("started", "19990807****"),
        ("refused", None),  # not a valid number: nothing of it is logged
        ("refused", "19990807****"),
        ("completed", "19990807****"),
    ]
    assert all(entry["client"] == "caseworker" for entry in audited)
    logged = "\n".join(f"{r.getMessage()} {vars(r)}" for r in caplog.records)
    assert PERSON not in logged and "199908072390" not in logged
    assert auth_req_id not in logged


def test_discovery_advertises_ciba_with_a_phone_provider(live: LiveGateway) -> None:
    with httpx2.Client(base_url=live.url, timeout=10) as http:
        metadata = http.get("/.well-known/openid-configuration").json()
    assert metadata["backchannel_authentication_endpoint"] == f"{live.url}/bc-authorize"
    assert metadata["backchannel_token_delivery_modes_supported"] == ["poll"]
    assert metadata["backchannel_user_code_parameter_supported"] is False
    assert CIBA_GRANT in metadata["grant_types_supported"]


def test_discovery_says_nothing_of_ciba_without_a_phone_provider(store_url: str | None) -> None:
    with running_gateway(store_url) as gateway, httpx2.Client(base_url=gateway.url) as http:
        metadata = http.get("/.well-known/openid-configuration").json()
    assert "backchannel_authentication_endpoint" not in metadata
    assert metadata["grant_types_supported"] == ["authorization_code"]


def test_a_ciba_client_without_a_phone_provider_is_unauthorized_client(
    ciba_gateway: Callable[..., AbstractContextManager[LiveGateway]],
) -> None:
    clients = [ciba_client(*CASEWORKER, providers=["sandbox"])]
    with phone_double_type(), ciba_gateway(clients=clients) as gateway:
        assert_error(bc_authorize(gateway), "unauthorized_client")


# -- registration (CIBA §4) ---------------------------------------------------------------------


def problems(client: dict[str, Any]) -> list[str]:
    data = {
        "issuer": "https://login.kommun.example",
        "providers": {"sandbox": {"type": "sandbox"}},
        "clients": [client],
    }
    try:
        settings_from_data(data)
    except SettingsError as error:
        return error.problems
    return []


def test_a_ciba_only_client_needs_no_redirect_uris() -> None:
    assert problems(ciba_client(*CASEWORKER, providers=["sandbox"])) == []


@pytest.mark.parametrize("mode", ["ping", "push"])
def test_ping_and_push_delivery_are_refused_by_the_configuration(mode: str) -> None:
    [problem] = problems(ciba_client(*CASEWORKER, backchannel_token_delivery_mode=mode))
    assert f"backchannel_token_delivery_mode is '{mode}'; only poll is supported" in problem


def test_the_ciba_grant_needs_a_delivery_mode() -> None:
    client = ciba_client(*CASEWORKER)
    del client["backchannel_token_delivery_mode"]
    [problem] = problems(client)
    assert "backchannel_token_delivery_mode is missing" in problem


def test_the_ciba_grant_is_for_confidential_clients_only() -> None:
    client = ciba_client(*CASEWORKER)
    del client["client_secret"]
    [problem] = problems(client)
    assert "only for confidential clients" in problem


def test_a_code_client_still_needs_redirect_uris() -> None:
    [problem] = problems({"client_id": "a", "client_secret": "s"})
    assert "redirect_uris is required for the authorization_code grant" in problem


def test_a_delivery_mode_without_the_ciba_grant_is_refused() -> None:
    client = {"client_id": "a", "client_secret": "s", "redirect_uris": [REDIRECT_URI],
              "backchannel_token_delivery_mode": "poll"}  # fmt: skip
    [problem] = problems(client)
    assert "only for clients whose grant_types list" in problem


def test_redirect_uris_without_the_code_grant_are_refused() -> None:
    """Else /authorize would issue codes that /token refuses to such a client."""
    [problem] = problems(ciba_client(*CASEWORKER, redirect_uris=[REDIRECT_URI]))
    assert "redirect_uris are only for the authorization_code grant" in problem

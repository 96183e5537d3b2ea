"""Property: no input to /bc-authorize or to /token's CIBA grant yields a 5xx, and every answer
has CIBA's shape (tests/properties/endpoints.py), against a gateway whose clients are
registered for CIBA and whose phone provider (tests/doubles/phone_provider.py) answers as each
example scripts it, on a real Redis, with time moved by each example (tests/clock.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.clock import ManualClock
from tests.doubles.phone_provider import PHONE_PROVIDER, PHONES, PhoneDouble, phone_double_type
from tests.harness import NO_RATE_LIMITS, LiveGateway, RedisServer, running_gateway
from tests.oidc.test_ciba import CASEWORKER, CLIENTS, OTHER_CASEWORKER, PERSON
from tests.properties import checks
from tests.properties.endpoints import (
    backchannel_answer,
    backchannel_endpoint,
    ciba_poll_answer,
    ciba_poll_endpoint,
)
from tests.properties.profiles import QUICK
from tests.properties.site import Live
from tests.properties.strategies import Probe

CLIENT_IDS = ("caseworker", "other-caseworker", "basic", "caseworker-jwt")
SECRETS = dict((CASEWORKER, OTHER_CASEWORKER, ("basic", "basic-secret")))
LIMITS = {**NO_RATE_LIMITS, "ciba_per_client_per_minute": 0, "ciba_per_person_per_minute": 0}
STATES = ("pending", "complete", "failed")


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="module")
def served(
    redis_server: RedisServer, clock: ManualClock
) -> Iterator[tuple[LiveGateway, PhoneDouble]]:
    providers = {"sandbox": {"type": "sandbox"}, "phone": PHONE_PROVIDER}
    with (
        phone_double_type(),
        running_gateway(
            redis_server.url, clock=clock, providers=providers, clients=CLIENTS, rate_limits=LIMITS
        ) as gateway,
    ):
        yield gateway, PHONES["phone"]


def judged(
    gateway: LiveGateway, request: Probe, check: Callable[[Probe, httpx2.Response], None]
) -> None:
    """Sent, and judged as the endpoint's answer (a HEAD's, which has no body, only as < 500)."""
    with httpx2.Client(base_url=gateway.url, timeout=10) as http:
        response = http.request(request.method, request.target, **request.options())
    if request.method == "HEAD":
        checks.no_server_error(request, response)
    else:
        check(request, response)


def started(gateway: LiveGateway) -> str:
    with httpx2.Client(base_url=gateway.url, timeout=10) as http:
        response = http.post(
            "/bc-authorize", data={"scope": "openid", "login_hint": PERSON}, auth=CASEWORKER
        )
    return str(response.json()["auth_req_id"])


@QUICK
@given(data=st.data())
def test_no_backchannel_request_yields_a_server_error(
    served: tuple[LiveGateway, PhoneDouble], data: st.DataObject
) -> None:
    gateway, phone = served
    phone.script.refuse_start = data.draw(st.booleans(), label="refuse start")
    request = data.draw(backchannel_endpoint(CLIENT_IDS, SECRETS)(None, Live()), label="request")
    judged(gateway, request, backchannel_answer)


@QUICK
@given(data=st.data())
def test_no_ciba_poll_yields_a_server_error(
    served: tuple[LiveGateway, PhoneDouble], clock: ManualClock, data: st.DataObject
) -> None:
    gateway, phone = served
    phone.script.refuse_start = False
    live = Live(extra={"auth_req_id": started(gateway)})
    phone.script.statuses = data.draw(st.lists(st.sampled_from(STATES), min_size=1, max_size=3))
    phone.script.hint = data.draw(st.sampled_from([None, "userDeclinedCall", "userCancel"]))
    phone.script.outcome = data.draw(st.sampled_from([None, "access_denied", "expired_token"]))
    phone.script.person = data.draw(st.sampled_from([None, "196408233234"]))
    clock.advance(data.draw(st.integers(0, 200), label="seconds before the poll"))
    request = data.draw(ciba_poll_endpoint(CLIENT_IDS, SECRETS)(None, live), label="request")
    judged(gateway, request, ciba_poll_answer)

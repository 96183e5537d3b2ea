"""Single sign-on for a client with `profile: sweden-connect` (SC.OIDC 1.0 §2.2.1, Regler §2.2),
as a table of cases: each one a real login through a sandbox e-ID, the injectable clock moved,
then a second authorization request over HTTP and what it must get."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx2
import pytest
import redis

from tests.clock import ManualClock
from tests.harness import (
    NUMBER_SCOPE,
    REDIRECT_URI,
    Browser,
    LiveGateway,
    hidden_field,
    query_of,
    running_gateway,
    stored_value,
)
from tests.oidc.sweden_connect_clients import sweden_connect_client

LOA2 = "http://id.elegnamnden.se/loa/1.0/loa2"
LOA3 = "http://id.elegnamnden.se/loa/1.0/loa3"
AUTHN_PROVIDER = "https://id.oidc.se/param/authnProvider"
MINUTE = 60
PERSON_CLAIMS = json.dumps({"id_token": {"https://id.oidc.se/claim/personalIdentityNumber": None}})


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def live(store_url: str | None, clock: ManualClock) -> Iterator[LiveGateway]:
    clients = [
        sweden_connect_client("sc"),
        sweden_connect_client("sc-other"),
        {"client_id": "basic", "client_secret": "basic-secret", "redirect_uris": [REDIRECT_URI]},
    ]
    providers = {
        "sandbox": {"type": "sandbox", "loa": LOA3},
        "low": {"type": "sandbox", "loa": LOA2},
    }
    # A session idle limit above the profile's 60 minutes, so that it is the 60 minutes that tell.
    session = {"idle_seconds": 4 * 3600}
    with running_gateway(
        store_url, clock, clients=clients, providers=providers, session=session
    ) as gateway:
        yield gateway


@pytest.fixture
def citizen(live: LiveGateway) -> Iterator[Browser]:
    person = Browser(live)
    yield person
    person.close()


def authorize(citizen: Browser, client: str, **extra: str) -> httpx2.Response:
    return citizen.authorize(**citizen.authorize_params(client, **extra))


def log_in(citizen: Browser, client: str, provider: str = "sandbox", **extra: str) -> None:
    """A full login: no prompt, which for a sweden-connect client means prompt=login."""
    page = authorize(citizen, client, **{AUTHN_PROVIDER: provider, **extra})
    assert page.status_code == 200, page.text
    action = page.text.split('<form method="post" action="')[1].split('"')[0]
    form = {"login": hidden_field(page.text, "login"), "csrf": hidden_field(page.text, "csrf")}
    submitted = citizen.http.post(action, data={**form, "pnr": "199908072391"})
    assert "code" in citizen.follow_to_client(submitted)


def outcome(response: httpx2.Response) -> str:
    """`code` (answered silently), the OAuth error sent back, or `login` (a page to log in)."""
    if response.status_code == 200:
        return "login"
    assert response.status_code in (302, 303), response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI), location
    answer = query_of(location)
    return "code" if "code" in answer else answer["error"]


@dataclass(frozen=True)
class Case:
    name: str
    expected: str
    first: dict[str, str] = field(default_factory=dict)  # the first login's client, provider...
    later: int = 5 * MINUTE  # seconds between the two requests
    then: dict[str, str] = field(default_factory=dict)  # the second request's parameters
    also_at: dict[str, str] | None = None  # a login at another e-service in between


NONE = {"prompt": "none"}
CASES = [
    Case("silent-within-60-minutes", "code", then=NONE),
    Case("silent-at-59-minutes", "code", later=59 * MINUTE, then=NONE),
    Case("none-after-61-minutes-is-login_required", "login_required",
         later=61 * MINUTE, then=NONE),
    Case("no-prompt-is-a-new-login", "login", then={}),
    Case("no-prompt-after-61-minutes-is-a-new-login", "login", later=61 * MINUTE, then={}),
    Case("prompt-login-is-a-new-login", "login", then={"prompt": "login"}),
    Case("session-of-another-sweden-connect-client", "login_required",
         first={"client": "sc-other"}, then=NONE),
    Case("session-of-a-client-without-the-profile", "login_required",
         first={"client": "basic"}, then=NONE),
    Case("another-acr-than-the-login", "login_required", then={**NONE, "acr_values": LOA2}),
    Case("another-e-id-than-the-login", "login_required", then={**NONE, AUTHN_PROVIDER: "low"}),
    Case("the-session-moved-to-another-e-id", "login_required",
         also_at={"client": "basic", "provider": "low"}, then=NONE),
    Case("fewer-scopes-than-consented", "interaction_required",
         then={**NONE, "scope": f"openid {NUMBER_SCOPE}"}),
    Case("more-claims-than-consented", "interaction_required",
         then={**NONE, "claims": PERSON_CLAIMS}),
    Case("same-claims-request-as-consented", "code",
         first={"claims": PERSON_CLAIMS}, then={**NONE, "claims": PERSON_CLAIMS}),
    # Clients without the profile keep the general rules: 61 minutes is within their session.
    Case("without-the-profile-61-minutes-is-still-silent", "code",
         first={"client": "basic"}, later=61 * MINUTE, then={**NONE, "client": "basic"}),
    Case("without-the-profile-no-prompt-is-silent", "code",
         first={"client": "basic"}, then={"client": "basic"}),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_sweden_connect_sso(citizen: Browser, clock: ManualClock, case: Case) -> None:
    first = dict(case.first)
    log_in(citizen, first.pop("client", "sc"), first.pop("provider", "sandbox"), **first)
    if case.also_at is not None:
        also = dict(case.also_at)
        log_in(citizen, also.pop("client"), also.pop("provider"), **also)
    clock.advance(case.later)
    then = dict(case.then)
    assert outcome(authorize(citizen, then.pop("client", "sc"), **then)) == case.expected


def test_an_old_session_record_without_grants_still_loads(
    citizen: Browser, live: LiveGateway, store_url: str | None
) -> None:
    """A session written before grants were kept loads: the general rules answer the others,
    and a sweden-connect client, for which it holds no login, must log in."""
    log_in(citizen, "basic")
    sid = str(citizen.http.cookies["pv_session"]).rsplit(".", 1)[0]
    record = json.loads(stored_value(store_url, live, f"session:{sid}") or b"{}")
    del record["grants"]
    store_value(store_url, live, f"session:{sid}", json.dumps(record).encode())
    assert outcome(authorize(citizen, "basic", prompt="none")) == "code"
    assert outcome(authorize(citizen, "sc", prompt="none")) == "login_required"


def store_value(store_url: str | None, gateway: LiveGateway, key: str, value: bytes) -> None:
    if store_url is not None:
        client = redis.Redis.from_url(store_url)
        try:
            client.set(key, value, ex=3600)
        finally:
            client.close()
        return
    asyncio.run(gateway.app.state.store.target.put(key, value, 3600))

"""Single sign-on across e-services and logout (RP-Initiated and Back-Channel Logout 1.0): two
clients and the sandbox, a real HTTP listener for the back-channel, MemoryStore and Redis."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.clock import ManualClock
from tests.harness import (
    REDIRECT_URI,
    Browser,
    LiveGateway,
    LogoutListener,
    hidden_field,
    query_of,
    running_gateway,
    token_request,
)

LOA2 = "http://id.elegnamnden.se/loa/1.0/loa2"
LOA3 = "http://id.elegnamnden.se/loa/1.0/loa3"
AFTER_LOGOUT = "http://127.0.0.1:9000/logged-out"
LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
AUTHN_PROVIDER = "https://id.oidc.se/param/authnProvider"


@pytest.fixture(scope="module")
def listener() -> Iterator[LogoutListener]:
    receiver = LogoutListener()
    with receiver.served:
        yield receiver


@pytest.fixture
def sso(
    store_url: str | None, listener: LogoutListener, clock: ManualClock
) -> Iterator[LiveGateway]:
    listener.tokens.clear()
    listener.attempts = listener.fail_first = 0
    clients = [
        {
            "client_id": "basic",
            "client_secret": "basic-secret",
            "redirect_uris": [REDIRECT_URI],
            "backchannel_logout_uri": listener.url,
        },
        {
            "client_id": "post",
            "client_secret": "post-secret",
            "redirect_uris": [REDIRECT_URI],
            "token_endpoint_auth_method": "client_secret_post",
            "post_logout_redirect_uris": [AFTER_LOGOUT],
        },
        {
            "client_id": "loner",
            "client_secret": "loner-secret",
            "redirect_uris": [REDIRECT_URI],
            "sso": False,
        },
    ]
    providers = {
        "sandbox": {"type": "sandbox", "loa": LOA3},
        "low": {"type": "sandbox", "loa": LOA2},
    }
    with running_gateway(store_url, clock, clients=clients, providers=providers) as live:
        yield live


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def citizen(sso: LiveGateway) -> Iterator[Browser]:
    person = Browser(sso)
    yield person
    person.close()


def jwks(gateway: LiveGateway) -> KeySet:
    return KeySet.import_key_set(httpx2.get(f"{gateway.url}/jwks").json())


def id_token_of(gateway: LiveGateway, callback: dict[str, str], client: str) -> dict[str, Any]:
    secret = f"{client}-secret"
    if client == "post":
        form = code_form_for(callback, client_id="post", client_secret=secret)
        tokens = token_request(gateway, form).json()
    else:
        tokens = token_request(gateway, code_form_for(callback), auth=(client, secret)).json()
    claims = dict(jwt.decode(tokens["id_token"], jwks(gateway)).claims)
    claims["raw"] = tokens["id_token"]
    return claims


def code_form_for(callback: dict[str, str], **extra: str) -> dict[str, str]:
    return {
        "grant_type": "authorization_code",
        "code": callback["code"],
        "redirect_uri": REDIRECT_URI,
        **extra,
    }


def silent(citizen: Browser, client: str, **extra: str) -> httpx2.Response:
    return citizen.authorize(**citizen.authorize_params(client, **extra))


def login_at(
    citizen: Browser, client: str = "basic", number: str = "199908072391", **extra: str
) -> dict[str, Any]:
    """A fresh login through the sandbox (or the LoA 2 one, when LoA 2 is asked for)."""
    provider = "low" if extra.get("acr_values") == LOA2 else "sandbox"
    page = silent(citizen, client, **{AUTHN_PROVIDER: provider, **extra})
    assert page.status_code == 200, page.text
    submitted = submit(citizen, page, number)
    return id_token_of(citizen.gateway, citizen.follow_to_client(submitted), client)


def submit(
    citizen: Browser, page: httpx2.Response, number: str = "199908072391"
) -> httpx2.Response:
    """The sandbox form of whichever sandbox provider the page belongs to."""
    action = page.text.split('<form method="post" action="')[1].split('"')[0]
    form = {"login": hidden_field(page.text, "login"), "csrf": hidden_field(page.text, "csrf")}
    return citizen.http.post(action, data={**form, "pnr": number})


def test_login_at_a_then_silently_at_b(citizen: Browser, sso: LiveGateway) -> None:
    at_a = login_at(citizen)
    assert at_a["sid"]
    answer = silent(citizen, "post")
    assert answer.status_code == 303 and answer.headers["location"].startswith(REDIRECT_URI)
    at_b = id_token_of(sso, query_of(answer.headers["location"]), "post")
    assert at_b["sid"] == at_a["sid"] and at_b["auth_time"] == at_a["auth_time"]
    assert at_b["acr"] == LOA3 and at_b["sub"] == at_a["sub"]  # same sector in these tests


def test_the_session_cookie_is_signed_host_only_httponly_lax(citizen: Browser) -> None:
    page = silent(citizen, "basic", **{AUTHN_PROVIDER: "sandbox"})
    submitted = submit(citizen, page)
    finished = citizen.http.get(submitted.headers["location"])
    cookie = next(
        value for name, value in finished.headers.multi_items()
        if name == "set-cookie" and value.startswith("pv_session=")
    )  # fmt: skip
    lowered = cookie.lower()
    assert "httponly" in lowered and "samesite=lax" in lowered and "path=/" in lowered
    assert "domain=" not in lowered and "max-age" not in lowered and "expires" not in lowered
    assert "." in cookie.split("=", 1)[1]  # sid.signature


def test_prompt_none_uses_a_session_and_fails_without_one(
    citizen: Browser, sso: LiveGateway
) -> None:
    stranger = Browser(sso)
    refused = silent(stranger, "basic", prompt="none", state="s1")
    assert query_of(refused.headers["location"])["error"] == "login_required"
    stranger.close()
    login_at(citizen)
    answer = silent(citizen, "post", prompt="none")
    assert "code" in query_of(answer.headers["location"])


def test_prompt_login_and_stale_max_age_force_a_fresh_login(
    citizen: Browser, clock: ManualClock
) -> None:
    login_at(citizen)
    assert silent(citizen, "post", prompt="login").status_code == 200  # the sandbox page
    clock.advance(60)
    assert silent(citizen, "post", max_age="0").status_code == 200
    assert silent(citizen, "post", max_age="30").status_code == 200
    assert silent(citizen, "post", max_age="600").status_code == 303


def test_a_higher_loa_needs_a_step_up(citizen: Browser) -> None:
    low = login_at(citizen, acr_values=LOA2)
    assert low["acr"] == LOA2
    refused = silent(citizen, "post", acr_values=LOA3, prompt="none")
    assert query_of(refused.headers["location"])["error"] == "login_required"
    step_up = silent(citizen, "post", acr_values=LOA3)
    assert step_up.status_code == 200 and 'name="pnr"' in step_up.text
    submitted = submit(citizen, step_up)
    callback = citizen.follow_to_client(submitted)
    high = id_token_of(citizen.gateway, callback, "post")
    assert high["acr"] == LOA3 and high["sid"] == low["sid"]  # the same person's session grows


def test_a_client_can_opt_out_of_sso(citizen: Browser) -> None:
    login_at(citizen)
    assert silent(citizen, "loner").status_code == 200  # no reuse: the sandbox page
    refused = silent(citizen, "loner", prompt="none")
    assert query_of(refused.headers["location"])["error"] == "login_required"


def test_forged_or_expired_session_cookies_are_ignored(
    store_url: str | None, citizen: Browser
) -> None:
    login_at(citizen)
    forged = Browser(citizen.gateway)
    forged.http.cookies.set("pv_session", "made-up.signature", domain="127.0.0.1")
    assert silent(forged, "post").status_code == 200
    forged.close()
    clock = ManualClock()
    with running_gateway(store_url, clock, session={"idle_seconds": 60}) as short:
        person = Browser(short)
        person.login("basic")  # the default test gateway: one sandbox, no chooser
        clock.advance(59)
        assert silent(person, "post").status_code == 303  # each use restarts the idle time
        clock.advance(59)
        assert silent(person, "post").status_code == 303
        clock.advance(61)
        assert silent(person, "post").status_code == 200  # idle too long: log in again
        person.close()


def test_a_session_in_use_still_ends_at_its_maximum_lifetime(store_url: str | None) -> None:
    clock = ManualClock()
    lifetime = {"ttl_seconds": 120, "idle_seconds": 100}
    with running_gateway(store_url, clock, session=lifetime) as short:
        person = Browser(short)
        person.login("basic")
        clock.advance(90)
        assert silent(person, "post").status_code == 303
        clock.advance(40)  # 130 s since the login, 40 s since its last use
        assert silent(person, "post").status_code == 200  # the sandbox page: log in again
        person.close()


def test_logout_from_b_reaches_a_over_the_back_channel(
    citizen: Browser, sso: LiveGateway, listener: LogoutListener
) -> None:
    at_a = login_at(citizen, "basic")
    answer = silent(citizen, "post")
    at_b = id_token_of(sso, query_of(answer.headers["location"]), "post")
    out = citizen.http.get(
        "/logout",
        params={
            "id_token_hint": at_b["raw"],
            "post_logout_redirect_uri": AFTER_LOGOUT,
            "state": "bye",
        },
    )
    assert out.status_code == 303 and out.headers["location"] == f"{AFTER_LOGOUT}?state=bye"
    assert (
        'pv_session=""' in out.headers["set-cookie"]
        or "max-age=0" in out.headers["set-cookie"].lower()
    )
    listener.wait_for(1)
    token = jwt.decode(listener.tokens[0], jwks(sso))
    assert token.header["typ"] == "logout+jwt"
    claims = token.claims
    assert (
        claims["aud"] == "basic" and claims["sid"] == at_a["sid"] and claims["sub"] == at_a["sub"]
    )
    assert claims["events"] == {LOGOUT_EVENT: {}} and "nonce" not in claims
    assert claims["iss"] == sso.url and claims["jti"]
    assert silent(citizen, "basic").status_code == 200  # the session is gone


def test_back_channel_failures_are_retried_without_blocking_logout(
    citizen: Browser, listener: LogoutListener
) -> None:
    listener.fail_first = 2
    login_at(citizen, "basic")
    answer = silent(citizen, "post")
    at_b = id_token_of(citizen.gateway, query_of(answer.headers["location"]), "post")
    out = citizen.http.get("/logout", params={"id_token_hint": at_b["raw"]})
    assert out.status_code == 200 and "Du är utloggad" in out.text
    assert listener.attempts <= 1  # the citizen's page did not wait for the retries
    listener.wait_for(1)
    assert listener.attempts == 3


def test_logout_without_a_hint_asks_first(citizen: Browser, listener: LogoutListener) -> None:
    login_at(citizen, "basic")
    asked = citizen.http.get("/logout")
    assert asked.status_code == 200 and "Vill du logga ut?" in asked.text
    assert silent(citizen, "post").status_code == 303  # still logged in
    forged = citizen.http.post("/logout", data={"csrf": "forged", "confirm": "1"})
    assert "Vill du logga ut?" in forged.text
    confirmed = citizen.http.post(
        "/logout", data={"csrf": hidden_field(asked.text, "csrf"), "confirm": "1"}
    )
    assert "Du är utloggad" in confirmed.text
    assert silent(citizen, "post").status_code == 200
    listener.wait_for(1)


def test_logout_refuses_foreign_hints(citizen: Browser) -> None:
    """An unregistered post_logout_redirect_uri is not followed but ends the session all the
    same: tests/oidc/test_logout.py."""
    at_a = login_at(citizen, "basic")
    forged = citizen.http.get("/logout", params={"id_token_hint": "e30.e30.c2ln"})
    assert forged.status_code == 400
    mismatched = citizen.http.get(
        "/logout", params={"id_token_hint": at_a["raw"], "client_id": "post"}
    )
    assert mismatched.status_code == 400
    assert silent(citizen, "post").status_code == 303  # none of these logged anyone out


def test_discovery_names_the_logout_endpoints(sso: LiveGateway) -> None:
    metadata = httpx2.get(f"{sso.url}/.well-known/openid-configuration").json()
    assert metadata["end_session_endpoint"] == f"{sso.url}/logout"
    assert metadata["backchannel_logout_supported"] is True
    assert metadata["backchannel_logout_session_supported"] is True


def test_another_person_logging_in_ends_the_first_persons_session(
    citizen: Browser, sso: LiveGateway, listener: LogoutListener
) -> None:
    first = login_at(citizen, "basic")
    second = login_at(citizen, "post", prompt="login", number="196408233234")
    assert second["sid"] != first["sid"]
    listener.wait_for(1)  # the first person's e-service hears that their session ended
    claims = jwt.decode(listener.tokens[0], jwks(sso)).claims
    assert claims["sid"] == first["sid"] and claims["aud"] == "basic"

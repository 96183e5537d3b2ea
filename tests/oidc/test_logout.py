"""RP-Initiated Logout 1.0 at /logout: what ends, what the citizen is told, and the audit of who
ended it. Two e-services: one with a back-channel logout URI, one without."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator

import pytest

from tests.harness import REDIRECT_URI, Browser, LiveGateway, LogoutListener, hidden_field
from tests.harness import running_gateway as gateway_with
from tests.oidc.test_sso import AFTER_LOGOUT, login_at, silent

TOLD = "Bygglov"  # has a back-channel logout URI
NOT_TOLD = "Skolval"  # has none
NO_RETURN_NOTE = "Vi kunde inte skicka dig tillbaka till e-tjänsten"


@pytest.fixture(scope="module")
def receiver() -> Iterator[LogoutListener]:
    listening = LogoutListener()
    with listening.served:
        yield listening


@pytest.fixture
def site(store_url: str | None, receiver: LogoutListener) -> Iterator[LiveGateway]:
    receiver.tokens.clear()
    receiver.attempts = receiver.fail_first = 0
    clients = [
        {
            "client_id": "basic",
            "client_secret": "basic-secret",
            "redirect_uris": [REDIRECT_URI],
            "backchannel_logout_uri": receiver.url,
            "display": {"sv": TOLD, "en": "Building permits"},
        },
        {
            "client_id": "post",
            "client_secret": "post-secret",
            "redirect_uris": [REDIRECT_URI],
            "token_endpoint_auth_method": "client_secret_post",
            "post_logout_redirect_uris": [AFTER_LOGOUT],
            "display": {"sv": NOT_TOLD, "en": "School choice"},
        },
    ]
    with gateway_with(store_url, clients=clients) as live:
        yield live


@pytest.fixture
def person(site: LiveGateway) -> Iterator[Browser]:
    citizen = Browser(site)
    yield citizen
    citizen.close()


def logged_in_at_both(person: Browser) -> dict[str, str]:
    """Logged in at `basic`, then silently at `post`; the ID token of `basic`."""
    token = login_at(person, "basic")
    assert silent(person, "post").status_code == 303
    return token


def section(page: str, marker: str) -> str:
    """The list that follows a heading of the logged-out page."""
    start = page.index(marker)
    return page[start : page.index("</ul>", start)]


def test_an_unregistered_return_uri_still_ends_the_session(person: Browser) -> None:
    """Logout 1.0 §3: the RP has dropped its own session already, so the gateway's must end
    too; only the redirect is refused (§2), and the citizen stays on our page."""
    hint = logged_in_at_both(person)["raw"]
    out = person.http.get(
        "/logout",
        params={"id_token_hint": hint, "post_logout_redirect_uri": "https://evil.example/"},
    )
    assert out.status_code == 200 and "location" not in out.headers
    assert "Du är utloggad" in out.text and NO_RETURN_NOTE in out.text
    assert "pv_session=" in out.headers["set-cookie"]
    assert silent(person, "post").status_code == 200  # the session is gone: a login page


def test_an_unregistered_return_uri_after_confirming_is_not_followed(person: Browser) -> None:
    logged_in_at_both(person)
    params = {"client_id": "post", "post_logout_redirect_uri": "https://evil.example/"}
    asked = person.http.get("/logout", params=params)
    assert asked.status_code == 200 and "Vill du logga ut?" in asked.text
    form = {**params, "csrf": hidden_field(asked.text, "csrf"), "confirm": "1"}
    confirmed = person.http.post("/logout", data=form)
    assert confirmed.status_code == 200 and "location" not in confirmed.headers
    assert NO_RETURN_NOTE in confirmed.text
    assert silent(person, "post").status_code == 200
    stranger = Browser(person.gateway)  # no session at all: the same page, no redirect
    alone = stranger.http.get("/logout", params=params)
    assert alone.status_code == 200 and NO_RETURN_NOTE in alone.text
    stranger.close()


def test_a_registered_return_uri_is_followed(site: LiveGateway) -> None:
    stranger = Browser(site)
    out = stranger.http.get(
        "/logout", params={"client_id": "post", "post_logout_redirect_uri": AFTER_LOGOUT}
    )
    assert out.status_code == 303 and out.headers["location"] == AFTER_LOGOUT
    stranger.close()


def test_the_logged_out_page_says_who_was_told_and_who_was_not(
    person: Browser, receiver: LogoutListener
) -> None:
    logged_in_at_both(person)
    asked = person.http.get("/logout")
    page = person.http.post(
        "/logout", data={"csrf": hidden_field(asked.text, "csrf"), "confirm": "1"}
    ).text
    assert "have been told" not in page and "har fått veta" not in page
    told = section(page, 'id="told"')
    not_told = section(page, 'id="not-told"')
    assert TOLD in told and NOT_TOLD not in told
    assert NOT_TOLD in not_told and TOLD not in not_told
    receiver.wait_for(1)


def test_the_e_service_that_asked_is_in_neither_list(person: Browser) -> None:
    hint = logged_in_at_both(person)["raw"]
    page = person.http.get("/logout", params={"id_token_hint": hint}).text
    assert 'id="told"' not in page  # `basic` asked; nobody else has a back-channel URI
    assert NOT_TOLD in section(page, 'id="not-told"')
    assert TOLD not in page.split('id="not-told"')[1].split("</ul>")[0]


def test_a_logout_without_a_session_claims_nothing(site: LiveGateway) -> None:
    stranger = Browser(site)
    page = stranger.http.get("/logout").text
    assert "Du är utloggad" in page
    assert 'id="told"' not in page and 'id="not-told"' not in page
    stranger.close()


def audited_logouts(caplog: pytest.LogCaptureFixture) -> list[dict[str, str]]:
    return [
        dict(record.audit)  # type: ignore[attr-defined]
        for record in caplog.records
        if getattr(record, "audit_event", None) == "logout"
    ]


def test_the_audit_names_who_ended_the_session(
    person: Browser, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="portvakt.audit")
    logged_in_at_both(person)
    asked = person.http.get("/logout", params={"client_id": "post"})
    person.http.post(
        "/logout",
        data={"client_id": "post", "csrf": hidden_field(asked.text, "csrf"), "confirm": "1"},
    )
    hint = login_at(person, "basic")["raw"]
    person.http.get("/logout", params={"id_token_hint": hint})
    by = [(event["by"], event.get("client")) for event in audited_logouts(caplog)]
    assert by == [("citizen", None), ("e-service", "basic")]


def test_an_outcome_not_signed_for_this_browser_is_not_believed(site: LiveGateway) -> None:
    """After an upstream's single logout the page's claims come back signed; forged, they are
    not shown."""
    stranger = Browser(site)
    forged = base64.urlsafe_b64encode(
        json.dumps(
            {"client_id": "basic", "told": ["basic"], "not_told": [], "no_return": False}
        ).encode()
    ).decode()
    page = stranger.http.get("/logout", params={"outcome": forged, "mac": "0" * 64})
    assert page.status_code == 200 and "Du är utloggad" in page.text
    assert 'id="told"' not in page.text and TOLD not in page.text
    broken = stranger.http.get("/logout", params={"outcome": "%%%", "mac": ""})
    assert broken.status_code == 200
    stranger.close()

"""The pending login in the browser: chooser, sandbox form, CSRF, cancel, browser binding."""

from __future__ import annotations

from typing import Any

import httpx2

from gateway.store import StoreUnavailable
from tests.harness import (
    REDIRECT_URI,
    Browser,
    LiveGateway,
    LoginResult,
    code_form,
    hidden_field,
    query_of,
    running_gateway,
    token_request,
)

LOA3 = "http://id.elegnamnden.se/loa/1.0/loa3"
LOA2 = "http://id.elegnamnden.se/loa/1.0/loa2"
TWO_SANDBOXES = {
    "sandbox": {"type": "sandbox", "loa": LOA3},
    "sandbox-low": {"type": "sandbox", "loa": LOA2, "display": {"sv": "Låg", "en": "Low"}},
}


def test_invalid_check_digit_is_shown_and_no_code_is_issued(browser: Browser) -> None:
    page, _ = browser.sandbox_page()
    response = browser.submit_sandbox(page, "199908072392")
    assert response.status_code == 400
    assert "kontrollsiffran" in response.text
    assert 'aria-invalid="true"' in response.text
    retry = browser.submit_sandbox(response, "199908072391")
    assert "code" in browser.follow_to_client(retry)


def test_impossible_date_is_rejected(browser: Browser) -> None:
    page, _ = browser.sandbox_page()
    response = browser.submit_sandbox(page, "199902302398")
    assert response.status_code == 400
    assert "födelsedatum" in response.text


def test_sandbox_form_without_csrf_token_is_refused(browser: Browser) -> None:
    page, _ = browser.sandbox_page(state="csrf-1")
    form = {"login": hidden_field(page.text, "login"), "csrf": "forged", "pnr": "199908072391"}
    response = browser.http.post("/providers/sandbox/login", data=form)
    assert response.status_code == 403
    assert "location" not in response.headers
    back = hidden_back_link(response.text)
    assert query_of(back)["error"] == "access_denied"
    assert query_of(back)["state"] == "csrf-1"


def test_sandbox_form_from_another_browser_is_refused(
    gateway: LiveGateway, browser: Browser
) -> None:
    page, _ = browser.sandbox_page()
    intruder = Browser(gateway)
    form = {
        "login": hidden_field(page.text, "login"),
        "csrf": hidden_field(page.text, "csrf"),
        "pnr": "199908072391",
    }
    response = intruder.http.post("/providers/sandbox/login", data=form)
    intruder.close()
    assert response.status_code == 403


def test_cancel_returns_access_denied_to_the_client(browser: Browser) -> None:
    page, _ = browser.sandbox_page(state="c-1")
    form = {
        "login": hidden_field(page.text, "login"),
        "csrf": hidden_field(page.text, "csrf"),
        "cancel": "1",
    }
    response = browser.http.post("/providers/sandbox/login", data=form)
    assert response.status_code == 400
    back = query_of(hidden_back_link(response.text))
    assert back["error"] == "access_denied"
    assert back["state"] == "c-1"


def test_a_finished_login_cannot_be_finished_again(browser: Browser) -> None:
    page, _ = browser.sandbox_page()
    submitted = browser.submit_sandbox(page)
    first = browser.http.get(submitted.headers["location"])
    assert first.status_code == 303
    again = browser.http.get(submitted.headers["location"])
    assert again.status_code == 400
    assert "location" not in again.headers


def test_finish_without_the_browser_cookie_parks_until_the_browser_returns(
    browser: Browser,
) -> None:
    """A cross-site POST (SAML) arrives without our SameSite=Lax cookie: park, then resume."""
    page, _ = browser.sandbox_page(state="park-1")
    submitted = browser.submit_sandbox(page)
    with httpx2.Client(base_url=browser.gateway.url) as cookieless:
        parked = cookieless.get(submitted.headers["location"])
    assert parked.status_code == 303
    assert parked.headers["location"].endswith("/resume")
    resumed = browser.http.get(parked.headers["location"])
    assert query_of(resumed.headers["location"])["state"] == "park-1"
    assert "code" in query_of(resumed.headers["location"])


def test_a_parked_login_cannot_be_resumed_by_another_browser(
    gateway: LiveGateway, browser: Browser
) -> None:
    page, _ = browser.sandbox_page()
    submitted = browser.submit_sandbox(page)
    with httpx2.Client(base_url=gateway.url) as cookieless:
        parked = cookieless.get(submitted.headers["location"])
    intruder = Browser(gateway)
    intruder.http.get("/authorize", params=intruder.authorize_params())  # gets its own cookie
    stolen = intruder.http.get(parked.headers["location"])
    intruder.close()
    assert stolen.status_code == 400
    assert "code=" not in stolen.headers.get("location", "")


def test_unknown_login_shows_an_expiry_page(browser: Browser) -> None:
    response = browser.http.get("/login/does-not-exist")
    assert response.status_code == 400
    assert "gått ut" in response.text


def test_chooser_lists_providers_and_starts_the_chosen_one() -> None:
    with running_gateway(providers=TWO_SANDBOXES) as gateway:
        citizen = Browser(gateway)
        chooser = citizen.authorize(**citizen.authorize_params())
        assert chooser.status_code == 200
        assert 'value="sandbox-low"' in chooser.text and 'value="sandbox"' in chooser.text
        login_id = chooser.text.split('action="')[1].split('"')[0].rsplit("/", 1)[1]
        started = citizen.http.post(
            f"/login/{login_id}",
            data={"csrf": hidden_field(chooser.text, "csrf"), "provider": "sandbox-low"},
        )
        assert started.status_code == 200
        assert LOA2 in started.text
        citizen.close()


def test_chooser_hides_providers_that_cannot_meet_the_requested_loa() -> None:
    with running_gateway(providers=TWO_SANDBOXES) as gateway:
        citizen = Browser(gateway)
        page = citizen.authorize(**citizen.authorize_params(acr_values=LOA3))
        assert 'name="pnr"' in page.text  # only one qualifies: straight to it
        assert LOA3 in page.text
        citizen.close()


def test_authn_provider_parameter_skips_the_chooser() -> None:
    """Request parameter extensions §2.2: authnProvider selects the provider."""
    with running_gateway(providers=TWO_SANDBOXES) as gateway:
        citizen = Browser(gateway)
        params = citizen.authorize_params(
            **{"https://id.oidc.se/param/authnProvider": "sandbox-low"}
        )
        page = citizen.authorize(**params)
        assert 'name="pnr"' in page.text and LOA2 in page.text
        citizen.close()


def test_client_only_sees_its_own_providers() -> None:
    clients = [
        {
            "client_id": "basic",
            "client_secret": "basic-secret",
            "redirect_uris": [REDIRECT_URI],
            "providers": ["sandbox-low"],
        }
    ]
    with running_gateway(providers=TWO_SANDBOXES, clients=clients) as gateway:
        citizen = Browser(gateway)
        page = citizen.authorize(**citizen.authorize_params())
        assert 'name="pnr"' in page.text and LOA2 in page.text
        citizen.close()


def test_login_hint_prefills_the_test_person(browser: Browser) -> None:
    page, _ = browser.sandbox_page(login_hint="19640823-3234")
    assert 'value="196408233234"' in page.text


def test_chooser_with_forged_csrf_is_refused() -> None:
    with running_gateway(providers=TWO_SANDBOXES) as gateway:
        citizen = Browser(gateway)
        chooser = citizen.authorize(**citizen.authorize_params())
        login_id = chooser.text.split('action="')[1].split('"')[0].rsplit("/", 1)[1]
        response = citizen.http.post(
            f"/login/{login_id}", data={"csrf": "forged", "provider": "sandbox"}
        )
        citizen.close()
    assert response.status_code == 403


def test_the_whole_login_completes_with_the_code_it_issued(
    gateway: LiveGateway, browser: Browser
) -> None:
    result = browser.login("basic")
    assert (
        token_request(gateway, code_form(result), auth=("basic", "basic-secret")).status_code == 200
    )


def hidden_back_link(html: str) -> str:
    return html.split('class="button" href="')[1].split('"')[0].replace("&amp;", "&")


def test_an_early_resume_does_not_end_the_login(browser: Browser) -> None:
    page, _ = browser.sandbox_page()
    login_id = hidden_field(page.text, "login")
    early = browser.http.get(f"/login/{login_id}/resume")
    assert early.status_code == 400
    submitted = browser.submit_sandbox(page)
    assert "code" in browser.follow_to_client(submitted)


class CodeWriteFailsOnce:
    """The gateway's real store, except that the first write of a code fails as if Redis had
    gone away at that moment (the window between the upstream's answer and the code)."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.failed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def put_many_then_take(
        self, records: Any, key: str, once_taken: Any = ()
    ) -> bytes | None:
        if not self.failed:
            self.failed = True
            raise StoreUnavailable("injected: the store went away")
        result: bytes | None = await self._store.put_many_then_take(records, key, once_taken)
        return result


def test_a_finish_that_failed_before_its_code_was_written_can_be_repeated(
    store_url: str | None,
) -> None:
    with running_gateway(store_url) as gateway:
        deferred = gateway.app.state.store
        faulty = CodeWriteFailsOnce(deferred.target)
        deferred.attach(faulty)
        citizen = Browser(gateway)
        page, _ = citizen.sandbox_page(state="retry-1")
        submitted = citizen.submit_sandbox(page)
        failed = citizen.http.get(submitted.headers["location"])
        assert faulty.failed and failed.status_code == 503
        retried = citizen.http.get(submitted.headers["location"])  # the citizen reloads
        assert retried.status_code == 303, retried.text
        result = citizen.follow_to_client(retried)
        assert result["state"] == "retry-1"
        tokens = token_request(
            gateway, code_form(LoginResult(result, None)), ("basic", "basic-secret")
        )
        citizen.close()
    assert tokens.status_code == 200


def test_an_early_visit_to_the_finish_url_leads_back_and_the_login_goes_on(
    browser: Browser,
) -> None:
    page, _ = browser.sandbox_page()
    login_id = hidden_field(page.text, "login")
    early = browser.http.get("/providers/sandbox/done", params={"login": login_id})
    assert early.status_code == 303
    assert early.headers["location"].endswith(f"/providers/sandbox/login?login={login_id}")
    submitted = browser.submit_sandbox(page)
    assert "code" in browser.follow_to_client(submitted)

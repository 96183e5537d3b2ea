"""gateway/errors.py: a failed login is answered once, by the flow; the handlers only render.

DESIGN.md "The finish path is straight": the flow ends the login and builds the way back in
one store round trip; an error handler does no store I/O.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import httpx2

from gateway.store.deferred import DeferredStore
from tests.harness import Browser, LiveGateway, base_settings, free_port, hidden_field, query_of

RENDERING: ContextVar[bool] = ContextVar("rendering", default=False)


class RecordingStore:
    """The gateway's real store, noting every call made while an error handler runs."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.while_rendering: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._store, name)
        if not callable(attribute):
            return attribute

        async def recorded(*args: Any, **kwargs: Any) -> Any:
            if RENDERING.get():
                self.while_rendering.append(name)
            return await attribute(*args, **kwargs)

        return recorded


Handler = Callable[[Any, Exception], Awaitable[Any]]


def marked_while_running(handler: Handler) -> Handler:
    async def marked(request: Any, exc: Exception) -> Any:
        token = RENDERING.set(True)
        try:
            return await handler(request, exc)
        finally:
            RENDERING.reset(token)

    return marked


@contextmanager
def gateway_watching_its_handlers(
    store_url: str | None,
) -> Iterator[tuple[LiveGateway, RecordingStore]]:
    live = LiveGateway(base_settings(f"http://127.0.0.1:{free_port()}", store_url))
    # Starlette reads the handler map when it first serves (the lifespan), so mark them now.
    for key, handler in list(live.app.exception_handlers.items()):
        live.app.exception_handlers[key] = marked_while_running(handler)
    with live:
        deferred: DeferredStore = live.app.state.store
        recording = RecordingStore(deferred.target)
        deferred.attach(recording)
        yield live, recording


def back_link(html: str) -> str:
    return html.split('class="button" href="')[1].split('"')[0].replace("&amp;", "&")


def test_a_cancel_on_a_provider_page_is_rendered_without_store_io(store_url: str | None) -> None:
    with gateway_watching_its_handlers(store_url) as (gateway, recording):
        citizen = Browser(gateway)
        page, _ = citizen.sandbox_page(state="io-1")
        login_id = hidden_field(page.text, "login")
        form = {"login": login_id, "csrf": hidden_field(page.text, "csrf"), "cancel": "1"}
        cancelled = citizen.http.post("/providers/sandbox/login", data=form)
        after = citizen.http.get(f"/login/{login_id}")
        citizen.close()
    assert cancelled.status_code == 400
    back = query_of(back_link(cancelled.text))
    assert (back["error"], back["state"], back["iss"]) == ("access_denied", "io-1", gateway.url)
    assert recording.while_rendering == []
    assert after.status_code == 400 and "gått ut" in after.text  # the flow ended the login


def test_a_refused_chooser_form_is_rendered_without_store_io(store_url: str | None) -> None:
    with gateway_watching_its_handlers(store_url) as (gateway, recording):
        citizen = Browser(gateway)
        page, _ = citizen.sandbox_page(state="io-2")
        login_id = hidden_field(page.text, "login")
        refused = citizen.http.post(f"/login/{login_id}", data={"csrf": "forged"})
        citizen.close()
    assert refused.status_code == 403
    assert query_of(back_link(refused.text))["state"] == "io-2"
    assert recording.while_rendering == []


def test_an_answer_for_no_login_of_ours_ends_nothing(store_url: str | None) -> None:
    """An unknown transaction names no login: nothing is taken, and there is no way back."""
    with gateway_watching_its_handlers(store_url) as (gateway, recording):
        citizen = Browser(gateway)
        page, _ = citizen.sandbox_page(state="io-3")
        stray = citizen.http.get("/providers/sandbox/done", params={"login": "not-ours"})
        submitted = citizen.submit_sandbox(page)
        finished = citizen.follow_to_client(submitted)
        citizen.close()
    assert stray.status_code == 400
    assert "error=" not in stray.text
    assert recording.while_rendering == []
    assert finished["state"] == "io-3" and "code" in finished


def test_a_cross_site_post_to_a_provider_page_is_answered_by_the_flow(
    store_url: str | None,
) -> None:
    """Every provider route runs through the flow, not only its finish endpoint."""
    with gateway_watching_its_handlers(store_url) as (gateway, recording):
        citizen = Browser(gateway)
        page, _ = citizen.sandbox_page(state="io-4")
        form = {"login": hidden_field(page.text, "login"), "csrf": "forged", "pnr": "x"}
        with httpx2.Client(base_url=gateway.url) as other:
            refused = other.post("/providers/sandbox/login", data=form)
        citizen.close()
    assert refused.status_code == 403
    assert query_of(back_link(refused.text))["error"] == "access_denied"
    assert recording.while_rendering == []

"""The e-service's `https://id.oidc.se/param/userMessage` passed on to an upstream OP that
advertises it (RPar 1.1 §3.1: `https://id.oidc.se/disco/userMessageSupported`, and the MIME
type among `userMessageSupportedMimeTypes`, `["text/plain"]` when absent), to no other."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from tests.doubles.oidc_op import UpstreamOP
from tests.harness import Browser, LiveGateway, ServedApp, free_port, running_gateway
from tests.providers.oidc.test_provider import oidc_provider

USER_MESSAGE = "https://id.oidc.se/param/userMessage"
AUTHN_PROVIDER = "https://id.oidc.se/param/authnProvider"
SUPPORTED = "https://id.oidc.se/disco/userMessageSupported"
MIME_TYPES = "https://id.oidc.se/disco/userMessageSupportedMimeTypes"
SV_TEXT = "Logga in för att söka bygglov"
EN_TEXT = "Log in to apply for a building permit"

UPSTREAMS = {
    "silent": {},
    "declines": {SUPPORTED: False, MIME_TYPES: ["text/plain", "text/markdown"]},
    "plain": {SUPPORTED: True},  # no MIME list: text/plain only
    "markdown": {SUPPORTED: True, MIME_TYPES: ["text/plain", "text/markdown"]},
    "odd": {SUPPORTED: "yes", MIME_TYPES: "text/plain"},  # not the types RPar §3 gives
}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.fixture(scope="module")
def upstreams() -> Iterator[dict[str, UpstreamOP]]:
    ops: dict[str, UpstreamOP] = {}
    with ExitStack() as running:
        for name, metadata in UPSTREAMS.items():
            port = free_port()
            ops[name] = UpstreamOP(f"http://127.0.0.1:{port}", discovery_extra=dict(metadata))
            running.enter_context(ServedApp(ops[name].app, port))
        yield ops


@pytest.fixture(scope="module")
def gateway(store_url: str | None, upstreams: dict[str, UpstreamOP]) -> Iterator[LiveGateway]:
    providers = {name: oidc_provider(op) for name, op in upstreams.items()}
    with running_gateway(store_url, providers=providers) as live:
        yield live


def sent_upstream(browser: Browser, op: UpstreamOP, provider: str, value: str) -> dict[str, str]:
    """/authorize naming `provider`, and the authorization request the upstream received."""
    op.reset()
    extra = {AUTHN_PROVIDER: provider, USER_MESSAGE: value, "ui_locales": "en"}
    response = browser.authorize(**browser.authorize_params("basic", **extra))
    assert response.status_code == 303, response.text
    at_upstream = browser.http.get(response.headers["location"])
    assert at_upstream.status_code == 303, at_upstream.text
    return op.authorize_requests[-1]


PLAIN = {"message#sv": b64(SV_TEXT), "message#en": b64(EN_TEXT), "mime_type": "text/plain"}
MARKDOWN = {"message": b64("**Bygglov**"), "mime_type": "text/markdown"}


@pytest.mark.parametrize(
    ("provider", "message", "forwarded"),
    [
        ("plain", PLAIN, True),
        ("markdown", PLAIN, True),
        ("markdown", MARKDOWN, True),
        ("plain", MARKDOWN, False),  # its MIME list is ["text/plain"] by default
        ("declines", PLAIN, False),
        ("silent", PLAIN, False),
        ("odd", PLAIN, False),
    ],
)
def test_the_message_goes_upstream_only_where_it_is_supported(
    browser: Browser,
    upstreams: dict[str, UpstreamOP],
    provider: str,
    message: dict[str, str],
    forwarded: bool,
) -> None:
    sent = sent_upstream(browser, upstreams[provider], provider, json.dumps(message))
    if forwarded:
        assert json.loads(sent[USER_MESSAGE]) == message  # the same object, every language
        assert sent["ui_locales"] == "en"  # the upstream picks the language the citizen reads
    else:
        assert USER_MESSAGE not in sent


def test_an_untyped_message_goes_upstream_as_plain_text(
    browser: Browser, upstreams: dict[str, UpstreamOP]
) -> None:
    sent = sent_upstream(browser, upstreams["plain"], "plain", json.dumps({"message": b64("Hej")}))
    assert json.loads(sent[USER_MESSAGE]) == {"message": b64("Hej"), "mime_type": "text/plain"}


def test_without_a_message_nothing_is_forwarded(
    browser: Browser, upstreams: dict[str, UpstreamOP]
) -> None:
    op = upstreams["markdown"]
    op.reset()
    params = browser.authorize_params("basic", **{AUTHN_PROVIDER: "markdown"})
    browser.http.get(browser.authorize(**params).headers["location"])
    assert USER_MESSAGE not in op.authorize_requests[-1]

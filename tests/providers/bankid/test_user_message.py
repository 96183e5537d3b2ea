"""The e-service's `https://id.oidc.se/param/userMessage` as the text the BankID app shows:
`/auth`'s `userVisibleData`, with `userVisibleDataFormat: simpleMarkdownV1` for Markdown
(bankid-rp-v6.md §2.1), checked by the simulator as BankID checks it."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from providers.bankid.simulator import BankIDSimulator
from tests.harness import Browser
from tests.providers.bankid import test_provider as bankid_tests
from tests.providers.bankid.test_provider import latest_order, retry, start, visible_text
from tests.providers.bankid.test_simulator import call

# The BankID module's fixtures (simulator over mutual TLS, the gateway, the test clock), by name.
pki, clock, simulator, gateway = (
    bankid_tests.pki,
    bankid_tests.clock,
    bankid_tests.simulator,
    bankid_tests.gateway,
)
bankid, bankid_on_the_test_clock = bankid_tests.bankid, bankid_tests.bankid_on_the_test_clock
USER_MESSAGE = "https://id.oidc.se/param/userMessage"
SV_TEXT = "Signera ansökan om bygglov för Storgatan 1"
EN_TEXT = "Sign the building permit application for Storgatan 1"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def auth_body(sim: BankIDSimulator) -> dict[str, object]:
    return [body for path, body in sim.calls if path == "auth"][-1]


def test_the_app_shows_the_e_services_message_in_the_citizens_language(
    browser: Browser, bankid: BankIDSimulator
) -> None:
    value = json.dumps({"message#sv": b64(SV_TEXT), "message#en": b64(EN_TEXT)})
    start(browser, ui_locales="en", **{USER_MESSAGE: value})
    assert latest_order(bankid).user_visible_data == EN_TEXT  # what the simulator accepted
    assert "userVisibleDataFormat" not in auth_body(bankid)  # text/plain: no format
    start(browser, ui_locales="sv", **{USER_MESSAGE: value})
    assert latest_order(bankid).user_visible_data == SV_TEXT


def test_markdown_is_sent_as_simple_markdown(browser: Browser, bankid: BankIDSimulator) -> None:
    text = "# Bygglov\n\n*Storgatan 1*, ärende 2026-17"
    value = json.dumps({"message": b64(text), "mime_type": "text/markdown"})
    start(browser, **{USER_MESSAGE: value})
    order = latest_order(bankid)
    assert order.user_visible_data == text
    assert order.user_visible_data_format == "simpleMarkdownV1"


def test_the_message_stays_on_retry_in_the_language_switched_to(
    browser: Browser, bankid: BankIDSimulator
) -> None:
    value = json.dumps(
        {"message#sv": b64(SV_TEXT), "message#en": b64(EN_TEXT), "mime_type": "text/markdown"}
    )
    page = start(browser, **{USER_MESSAGE: value})
    assert visible_text(bankid) == SV_TEXT
    switched = browser.http.get(f"{page.url}&lang=en")
    retry(browser, switched)
    assert visible_text(bankid) == EN_TEXT
    assert latest_order(bankid).user_visible_data_format == "simpleMarkdownV1"


def test_without_a_message_the_app_shows_the_services_name(
    browser: Browser, bankid: BankIDSimulator
) -> None:
    start(browser)
    assert visible_text(bankid) == "Logga in på Bygglov"
    assert latest_order(bankid).user_visible_data_format is None


def test_the_longest_message_accepted_at_authorize_fits_bankid(
    browser: Browser, bankid: BankIDSimulator
) -> None:
    """1 500 Base64 characters is /auth's limit, and /authorize's: no message is cut short."""
    text = "å" * 562 + "x"  # 1 125 bytes of UTF-8: exactly 1 500 characters of Base64
    assert len(b64(text)) == 1500
    start(browser, **{USER_MESSAGE: json.dumps({"message": b64(text)})})
    assert latest_order(bankid).user_visible_data == text


# -- the simulator checks these fields as BankID does ----------------------------------------------


@pytest.fixture
def api() -> Iterator[TestClient]:
    with TestClient(BankIDSimulator().app) as client:
        yield client


@pytest.mark.parametrize(
    "fields",
    [
        {"userVisibleData": b64("x"), "userVisibleDataFormat": "simpleMarkdownV2"},
        {"userVisibleData": b64("x"), "userVisibleDataFormat": "text/markdown"},
        {"userVisibleData": b64("x"), "userVisibleDataFormat": None},
        {"userVisibleData": base64.urlsafe_b64encode("ö?>".encode()).decode()},
        {"userVisibleData": b64("x").rstrip("=")},
        {"userVisibleData": base64.b64encode(b"\xff").decode()},
        {"userVisibleData": b64("x" * 1126)},
    ],
)
def test_the_simulator_refuses_what_bankid_refuses(
    api: TestClient, fields: dict[str, object]
) -> None:
    status, answer = call(api, "auth", {"endUserIp": "192.0.2.1", **fields})
    assert status == 400 and answer["errorCode"] == "invalidParameters"

"""`https://id.oidc.se/param/userMessage` (Authentication Request Parameter Extensions 1.1 §2.1):
refused at /authorize when malformed, and shown by every e-ID that can show it. The sandbox is
driven here; BankID, SAML and the upstream OP in their own modules under tests/providers/."""

from __future__ import annotations

import base64
import json
import re
from html import escape

import httpx2
import pytest

from gateway.login.pending import pending_login_key
from tests.harness import REDIRECT_URI, Browser, LiveGateway, hidden_field, query_of
from tests.providers.saml.test_provider import raw_store

USER_MESSAGE = "https://id.oidc.se/param/userMessage"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def user_message(**members: str) -> str:
    """The parameter's JSON text; `message_sv=` stands for the member `message#sv`."""
    return json.dumps(
        {
            name.replace("_", "#", 1) if name.startswith("message_") else name: value
            for name, value in members.items()
        }
    )


SV_TEXT = "Logga in för att söka bygglov"
EN_TEXT = "Log in to apply for a building permit"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("{not json", "not valid JSON"),
        ('"a string"', "must be a JSON object"),
        ("[]", "must be a JSON object"),
        ("{}", "has no message"),
        (json.dumps({"mime_type": "text/plain"}), "has no message"),
        (json.dumps({"message": 42}), "must be a string"),
        (json.dumps({"message": None}), "must be a string"),
        (json.dumps({"message": {"sv": b64(SV_TEXT)}}), "must be a string"),  # an early draft's
        (json.dumps({"sv": b64(SV_TEXT)}), "members must be"),
        (json.dumps({"message": b64("x"), "must_show": "true"}), "members must be"),
        (json.dumps({"message#": b64("x")}), "members must be"),
        (json.dumps({"message#s v": b64("x")}), "members must be"),
        (json.dumps({"message#toolonglanguage": b64("x")}), "members must be"),
        (json.dumps({"message": "not base64!"}), "not Base64"),
        (json.dumps({"message": b64("x").rstrip("=")}), "not Base64"),
        (json.dumps({"message": base64.urlsafe_b64encode("ö?>".encode()).decode()}), "not Base64"),
        (json.dumps({"message": "QR=="}), "not Base64"),  # not the one way of writing "A"
        (json.dumps({"message": base64.b64encode(b"\xff\xfe").decode()}), "not Base64"),
        (json.dumps({"message": ""}), "is empty"),
        (json.dumps({"message": b64("  \n")}), "is empty"),
        (json.dumps({"message": b64("a\x00b")}), "control characters"),
        (json.dumps({"message": b64("a\x1b[2Jb")}), "control characters"),
        (json.dumps({"message": b64("x" * 1200)}), "longer than 1500"),
        (json.dumps({"message": b64("x"), "mime_type": "text/html"}), "mime_type must be"),
        (json.dumps({"message": b64("x"), "mime_type": 1}), "must be a string"),
        (json.dumps({"message": b64("x"), "mime_type": "TEXT/PLAIN"}), "mime_type must be"),
    ],
)
def test_malformed_user_message_is_invalid_request(
    gateway: LiveGateway, browser: Browser, value: str, problem: str
) -> None:
    """RPar §2.1's shape only; each mistake a redirect with invalid_request naming it."""
    response = browser.authorize(**browser.authorize_params(state="um", **{USER_MESSAGE: value}))
    assert response.status_code == 302, response.text
    assert response.headers["location"].startswith(REDIRECT_URI + "?")
    answer = query_of(response.headers["location"])
    assert answer["error"] == "invalid_request" and answer["state"] == "um"
    assert answer["error_description"].startswith(USER_MESSAGE)
    assert problem in answer["error_description"]


@pytest.mark.parametrize(
    "value",
    [
        json.dumps({"message": b64(SV_TEXT)}),
        json.dumps({"message#sv": b64(SV_TEXT), "message#en": b64(EN_TEXT)}),
        json.dumps({"message#sv-SE": b64(SV_TEXT), "mime_type": "text/markdown"}),
        json.dumps({"message": b64("rad 1\r\nrad 2\ttab"), "mime_type": "text/plain"}),
        json.dumps({"message": b64("x" * 1125)}),  # 1500 Base64 characters: BankID's limit
    ],
)
def test_well_formed_user_message_is_accepted(browser: Browser, value: str) -> None:
    page, _ = browser.sandbox_page(**{USER_MESSAGE: value})
    assert "Message from the e-service" in page.text or "Meddelande från e-tjänsten" in page.text


def test_user_message_sent_by_post_is_checked_too(gateway: LiveGateway, browser: Browser) -> None:
    form = browser.authorize_params(state="p", **{USER_MESSAGE: '{"message": 1}'})
    response = browser.http.post("/authorize", data=form)
    assert response.status_code == 302
    assert query_of(response.headers["location"])["error"] == "invalid_request"


def test_sandbox_shows_the_message_in_the_page_language(browser: Browser) -> None:
    """RPar §2.1: the text tagged with the UI locale in use."""
    value = user_message(message_sv=b64(SV_TEXT), message_en=b64(EN_TEXT), message=b64("neutral"))
    page, _ = browser.sandbox_page(ui_locales="en", **{USER_MESSAGE: value})
    assert "Message from the e-service" in page.text
    assert EN_TEXT in page.text and SV_TEXT not in page.text and "neutral" not in page.text
    swedish, _ = browser.sandbox_page(ui_locales="sv", **{USER_MESSAGE: value})
    assert "Meddelande från e-tjänsten" in swedish.text
    assert escape(SV_TEXT) in swedish.text or SV_TEXT in swedish.text
    assert EN_TEXT not in swedish.text


def test_sandbox_falls_back_to_the_untagged_message_then_to_any(browser: Browser) -> None:
    """No text in the locale: the untagged `message` (MUST); without one, the first given."""
    untagged = user_message(message_de=b64("Auf Deutsch"), message=b64("Untagged text"))
    page, _ = browser.sandbox_page(ui_locales="en", **{USER_MESSAGE: untagged})
    assert "Untagged text" in page.text and "Auf Deutsch" not in page.text
    only_other = user_message(message_de=b64("Auf Deutsch"), message_fi=b64("Suomeksi"))
    page, _ = browser.sandbox_page(ui_locales="en", **{USER_MESSAGE: only_other})
    assert "Auf Deutsch" in page.text and "Suomeksi" not in page.text


def test_sandbox_matches_a_regional_tag_to_its_language(browser: Browser) -> None:
    value = user_message(message=b64("Untagged text"), **{"message_en-GB": b64("Colour text")})
    page, _ = browser.sandbox_page(ui_locales="en", **{USER_MESSAGE: value})
    assert "Colour text" in page.text and "Untagged text" not in page.text


def test_sandbox_shows_html_and_markdown_as_text(browser: Browser) -> None:
    """No HTML injection: markup in either MIME type is shown escaped, never rendered."""
    attack = '<script>alert(1)</script><img src=x onerror="alert(2)">\n**fet** [länk](javascript:x)'
    for mime_type in ("text/plain", "text/markdown"):
        value = json.dumps({"message": b64(attack), "mime_type": mime_type})
        page, _ = browser.sandbox_page(**{USER_MESSAGE: value})
        assert "<script>alert(1)" not in page.text and "<img src=x" not in page.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
        assert "**fet** [länk](javascript:x)" in page.text  # the line break became <br>
        shown = re.search(r'<section class="user-message".*?</section>', page.text, re.DOTALL)
        assert shown is not None
        assert "<a " not in shown.group() and "<strong" not in shown.group()
        assert "&lt;img src=x onerror=&#34;alert(2)&#34;&gt;<br>**fet**" in shown.group()


def test_sandbox_without_user_message_shows_none(browser: Browser) -> None:
    page, _ = browser.sandbox_page(ui_locales="en")
    assert "Message from the e-service" not in page.text


def test_login_completes_with_a_user_message(browser: Browser) -> None:
    result = browser.login(**{USER_MESSAGE: user_message(message=b64(SV_TEXT))})
    assert "code" in result.callback


def test_prompt_none_with_a_session_answers_without_showing_the_message(
    gateway: LiveGateway, browser: Browser
) -> None:
    """RPar §2.1: never shown unless the citizen is authenticated; prompt=none starts no e-ID."""
    browser.login()
    value = user_message(message=b64(SV_TEXT))
    response = browser.authorize(**browser.authorize_params(prompt="none", **{USER_MESSAGE: value}))
    assert response.status_code == 303, response.text
    assert "code" in query_of(response.headers["location"])
    assert SV_TEXT not in response.text


def test_prompt_none_without_a_session_is_login_required_and_shows_nothing(
    gateway: LiveGateway,
) -> None:
    citizen = Browser(gateway)  # a browser with no session
    value = user_message(message=b64(SV_TEXT))
    response = citizen.authorize(**citizen.authorize_params(prompt="none", **{USER_MESSAGE: value}))
    citizen.close()
    assert response.status_code == 302, response.text
    assert query_of(response.headers["location"])["error"] == "login_required"


def test_discovery_advertises_user_messages(gateway: LiveGateway) -> None:
    """RPar §3.1.1, §3.1.2: both MIME types are supported, so both are listed."""
    metadata = httpx2.get(f"{gateway.url}/.well-known/openid-configuration").json()
    assert metadata["https://id.oidc.se/disco/userMessageSupported"] is True
    assert metadata["https://id.oidc.se/disco/userMessageSupportedMimeTypes"] == [
        "text/plain",
        "text/markdown",
    ]


def test_a_login_begun_before_the_upgrade_finishes_without_a_message(
    store_url: str | None, gateway: LiveGateway, browser: Browser
) -> None:
    """A pending login written by a version without `user_message` still loads (default None)."""
    page, _ = browser.sandbox_page()
    key = pending_login_key(hidden_field(page.text, "login"))
    record = json.loads(raw_store(store_url, gateway, "get", key))
    del record["user_message"]
    raw_store(store_url, gateway, "set", key, json.dumps(record).encode())
    submitted = browser.submit_sandbox(page)
    assert submitted.status_code == 303, submitted.text
    assert "code" in browser.follow_to_client(submitted)

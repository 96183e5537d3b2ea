"""The e-service's userMessage on the sandbox page in a real browser: readable, accessible
(axe-core), and inert: markup in it is shown as text and never runs."""

from __future__ import annotations

import base64
import json
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Dialog, expect

from tests.browser.conftest import CitizenFactory

USER_MESSAGE = "https://id.oidc.se/param/userMessage"
ATTACK = '<img src=x onerror="alert(1)"><script>alert(2)</script>'


def authorize_path(site_url: str, locale: str, message: dict[str, str]) -> str:
    query = {
        "client_id": "demo-rp",
        "redirect_uri": f"{site_url}/demo/callback",
        "response_type": "code",
        "scope": "openid",
        "state": "s",
        "nonce": "n",
        "ui_locales": locale,
        "https://id.oidc.se/param/authnProvider": "sandbox",
        USER_MESSAGE: json.dumps(message),
    }
    return f"/authorize?{urlencode(query)}"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize("mime_type", ["text/plain", "text/markdown"])
def test_the_message_is_shown_as_text_and_runs_nothing(
    citizen: CitizenFactory, mime_type: str
) -> None:
    person = citizen("en")
    dialogs: list[str] = []

    def dismiss(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    person.page.on("dialog", dismiss)
    text = f"Apply for a building permit\n**Storgatan 1** {ATTACK}"
    page = person.goto(
        authorize_path(person.gateway_url, "en", {"message": b64(text), "mime_type": mime_type})
    )
    section = page.get_by_role("region", name="Message from the e-service")
    expect(section).to_contain_text("Apply for a building permit")
    expect(section).to_contain_text(f"**Storgatan 1** {ATTACK}")
    assert section.locator("img, script, strong").count() == 0
    assert dialogs == []
    person.audit(f"sandbox-user-message-{mime_type.split('/')[1]}")


def test_the_message_follows_the_language_switch(citizen: CitizenFactory) -> None:
    person = citizen("sv")
    message = {"message#sv": b64("Sök bygglov"), "message#en": b64("Apply for a permit")}
    page = person.goto(authorize_path(person.gateway_url, "sv", message))
    expect(page.get_by_role("region", name="Meddelande från e-tjänsten")).to_contain_text(
        "Sök bygglov"
    )
    page.get_by_role("link", name="English").click()
    expect(page.get_by_role("region", name="Message from the e-service")).to_contain_text(
        "Apply for a permit"
    )

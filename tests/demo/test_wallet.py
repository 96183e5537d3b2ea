"""Issue 24's "done when": from the embedded defaults (`make run`), the chooser offers
"EU-plånbok (test)", and a login through the bundled wallet simulator reaches the demo
e-service with the PID's claims, on another device (the QR, polled) and on this one (the link,
back with a response_code). Walked over HTTP as a browser and a phone would."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest

from gateway.demo.defaults import demo_settings
from tests.demo.test_app import english_client
from tests.harness import LiveGateway, free_port, hidden_field

PNR = "https://id.oidc.se/claim/personalIdentityNumber"


@pytest.fixture(scope="module")
def demo() -> Iterator[LiveGateway]:
    with LiveGateway(demo_settings(f"http://127.0.0.1:{free_port()}")) as gateway:
        yield gateway


@pytest.fixture
def browser(demo: LiveGateway) -> Iterator[httpx2.Client]:
    with english_client(demo) as http:
        yield http


def wallet_page(browser: httpx2.Client) -> httpx2.Response:
    chooser = browser.post("/demo/login")
    assert "EU wallet (test)" in chooser.text
    action = re.search(r'<form method="post" action="([^"]+)"', chooser.text)
    assert action is not None
    form = {"csrf": hidden_field(chooser.text, "csrf"), "provider": "wallet"}
    page = browser.post(action.group(1), data=form)
    assert page.url.path == "/providers/wallet/wait", page.text
    return page


def link(page: httpx2.Response, element_id: str) -> str:
    tag = re.search(rf'<a [^>]*id="{element_id}"[^>]*>', page.text)
    assert tag is not None, f"no {element_id}"
    href = re.search(r'href="([^"]+)"', tag.group(0))
    assert href is not None
    return html.unescape(href.group(1))


def share(phone: httpx2.Client, simulator_link: str, person: str) -> httpx2.Response:
    """The simulated wallet: open the request (scan or link), pick the person, share."""
    consent = phone.get(simulator_link)
    assert consent.status_code == 200 and "Dela / Share" in consent.text, consent.text
    form = {"pending": hidden_field(consent.text, "pending"), "person": person, "twist": ""}
    return phone.post(simulator_link.split("?")[0].rstrip("/") + "/share", data=form)


def shown_claims(home: httpx2.Response) -> dict[str, Any]:
    assert home.url.path == "/demo/" and "Log out of the demo" in home.text, home.text
    return {"text": html.unescape(home.text)}


def test_the_wallet_on_another_device_logs_in_with_a_prid(
    demo: LiveGateway, browser: httpx2.Client
) -> None:
    page = wallet_page(browser)
    with httpx2.Client(timeout=10, follow_redirects=True) as phone:
        answered = share(phone, link(page, "wallet-simulator-cross"), "fi")
    assert answered.status_code == 200 and "Klart" in answered.text

    login_id = page.url.params["login"]
    state = browser.get("/providers/wallet/status", params={"login": login_id}).json()
    assert state["status"] == "complete"
    home = browser.get(state["next"])

    text = shown_claims(home)["text"]
    assert "FI:241275-902l" in text and "Aino" in text
    assert "eidas-high" in text


def test_the_wallet_on_this_device_returns_with_its_code(browser: httpx2.Client) -> None:
    page = wallet_page(browser)

    home = share(browser, link(page, "wallet-simulator-same"), "se")

    text = shown_claims(home)["text"]
    assert '"199908072391"' in text and "Astrid" in text


@pytest.mark.parametrize(
    ("person", "says"),
    [
        ("se-revoked", "revoked or suspended"),
        ("se-suspended", "revoked or suspended"),
    ],
)
def test_a_revoked_or_suspended_pid_is_refused_with_its_reason(
    browser: httpx2.Client, person: str, says: str
) -> None:
    page = wallet_page(browser)

    back = share(browser, link(page, "wallet-simulator-same"), person)

    assert back.url.path == "/providers/wallet/wait"
    assert says in back.text
    assert "Try again" in back.text

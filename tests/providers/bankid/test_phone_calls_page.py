"""The simulator's phone-calls page in a real browser (Chromium, like tests/browser): a phone order
placed over HTTP with the simulator that `demo: true` mounts waits there; a person playing the
citizen opens it, answers the call question and identifies, and every state of the page passes
axe-core at WCAG 2.1 A/AA."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator

import httpx2
import pytest
from playwright.sync_api import Browser, expect

from gateway.demo.defaults import BANKID_SIMULATOR_PATH, simulated_bankid
from tests.browser.citizen import Citizen
from tests.browser.conftest import chromium
from tests.harness import LiveGateway, base_settings, free_port

__all__ = ["chromium"]  # the browser fixture of tests/browser, one per module

PERSON = "200002292399"  # Maja Skottdagsson
API = f"{BANKID_SIMULATOR_PATH}/rp/v6.0"


@pytest.fixture(scope="module")
def site() -> Iterator[LiveGateway]:
    issuer = f"http://127.0.0.1:{free_port()}"
    settings = base_settings(
        issuer,
        demo=True,
        providers={"bankid": simulated_bankid(issuer)},
        clients=[
            {
                "client_id": "demo-rp",
                "client_secret": "demo-rp-secret",
                "redirect_uris": [f"{issuer}/demo/callback"],
            }
        ],
    )
    with LiveGateway(settings) as live:
        yield live


@pytest.fixture
def citizen(chromium: Browser, site: LiveGateway) -> Iterator[Citizen]:
    person = Citizen(chromium, site.url, "en")
    yield person
    person.close()


def bankid_api(site: LiveGateway, path: str, body: dict[str, object]) -> dict[str, object]:
    response = httpx2.post(f"{site.url}{API}/{path}", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, object] = response.json()
    return answer


def test_a_person_answers_a_phone_order_on_the_phone_calls_page(
    citizen: Citizen, site: LiveGateway
) -> None:
    page = citizen.goto(f"{BANKID_SIMULATOR_PATH}/phone-calls")
    expect(page.get_by_role("heading", level=1)).to_contain_text("TEST")
    expect(page.locator("main")).to_contain_text("No phone orders are waiting")
    citizen.audit("bankid-phone-calls-empty")
    text = base64.b64encode("Samtal med Kontaktcenter, ärende <4711>".encode()).decode()
    started = bankid_api(
        site,
        "phone/auth",
        {"personalNumber": PERSON, "callInitiator": "RP", "userVisibleData": text},
    )
    page.reload()
    call = page.get_by_role("region", name=re.compile("called you"))
    expect(call).to_contain_text("20000229-****")
    expect(call).to_contain_text("ärende <4711>")
    expect(call).not_to_contain_text(PERSON)
    citizen.audit("bankid-phone-calls-waiting")
    call.get_by_role("button", name="Open in the BankID app").click()
    expect(call).to_contain_text("on the phone with you right now?")
    citizen.audit("bankid-phone-calls-question")
    call.get_by_role("button", name="Yes", exact=True).click()
    citizen.audit("bankid-phone-calls-identify")
    call.get_by_role("button", name="Identify", exact=True).click()
    expect(page.locator("main")).to_contain_text("No phone orders are waiting")
    done = bankid_api(site, "collect", {"orderRef": started["orderRef"]})
    assert done["status"] == "complete"
    assert citizen.third_party_requests() == [] and citizen.console_errors == []
    assert citizen.failed_resources == []

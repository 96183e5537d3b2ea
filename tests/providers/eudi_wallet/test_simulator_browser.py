"""The wallet simulator's pages in a real browser (Chromium, like tests/browser), mounted with
the gateway's stylesheet as the demo mounts it: open a link, share, and every state of the page
passes axe-core at WCAG 2.1 A/AA and reflows at 320 px."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.sync_api import Browser, expect
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from providers.eudi_wallet.simulator import WalletSimulator
from tests.browser.citizen import Citizen
from tests.browser.conftest import chromium
from tests.harness import ServedApp, free_port
from tests.providers.eudi_wallet.relying_party import RelyingParty

__all__ = ["chromium"]  # the browser fixture of tests/browser, one per module

MOUNT = "/wallet-simulator"
STATIC = Path(__file__).resolve().parents[3] / "gateway" / "ui" / "static"


@pytest.fixture
def verifier(tmp_path: Path) -> Iterator[RelyingParty]:
    with RelyingParty(tmp_path) as relying_party:
        yield relying_party


@pytest.fixture
def phone(chromium: Browser, verifier: RelyingParty) -> Iterator[Citizen]:
    wallet = WalletSimulator(MOUNT, trusted_access_cas=[verifier.access_ca.certificate])
    app = Starlette(
        routes=[Mount("/static", StaticFiles(directory=STATIC)), Mount(MOUNT, wallet.app)]
    )
    port = free_port()
    with ServedApp(app, port):
        person = Citizen(chromium, f"http://127.0.0.1:{port}", "en")
        yield person
        assert person.failed_resources == [] and person.console_errors == []
        person.close()


def test_a_person_opens_a_link_and_shares_their_pid(phone: Citizen, verifier: RelyingParty) -> None:
    page = phone.goto(f"{MOUNT}/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("TEST")
    phone.audit("wallet-simulator-open")
    page.get_by_label("Link").fill(verifier.link())
    page.get_by_role("button", name="Open").click()
    expect(page.locator("main")).to_contain_text("Test municipality e-service")
    phone.audit("wallet-simulator-consent")
    page.get_by_label("Aino Testinen").check()
    page.get_by_role("button", name="Share").click()
    expect(page.locator("main")).to_contain_text("go back to the computer")
    phone.audit("wallet-simulator-done")
    assert "response" in verifier.posts[0]


def test_a_refused_request_says_why(phone: Citizen, verifier: RelyingParty) -> None:
    verifier.payload_changes["aud"] = "https://elsewhere.example"
    page = phone.goto(f"{MOUNT}/?request={quote(verifier.link(), safe='')}")
    expect(page.get_by_role("alert")).to_contain_text("aud is not")
    phone.audit("wallet-simulator-refused")

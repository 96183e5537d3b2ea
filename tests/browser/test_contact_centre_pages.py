"""The demo's contact-centre pages in a real browser (sv, en): the form and the status page pass
axe-core at WCAG 2.1 AA and reflow at 320 px, load nothing from elsewhere and break no CSP; the
whole walk, with the call answered on the simulator's page, also works without JavaScript. The
gateway's clock is moved by hand and the status page reloaded, instead of waiting for its
meta refresh.

axe-core's rule `meta-refresh` fails any page that refreshes itself (WCAG 2.2.1, failure F41),
even one that offers to stop, as 2.2.1 allows: the pending page is audited as it is once its
user has stopped the refresh, and the test checks that the way to stop it is there."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from gateway.demo.defaults import demo_settings
from tests.browser.citizen import Citizen
from tests.clock import ManualClock
from tests.harness import LiveGateway, free_port

PERSON = "196408233234"
TEXTS = {
    "sv": {"start": "Identifiera den som ringer", "identified": "Den som ringer är identifierad."},
    "en": {"start": "Identify the caller", "identified": "The caller is identified."},
}


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="module")
def site(clock: ManualClock) -> Iterator[LiveGateway]:
    issuer = f"http://127.0.0.1:{free_port()}"
    with LiveGateway(demo_settings(issuer), clock) as live:
        yield live


@pytest.fixture
def caseworker(chromium: Browser, site: LiveGateway) -> Iterator[type[Citizen]]:
    opened: list[Citizen] = []

    class Opened(Citizen):
        def __init__(self, locale: str, javascript: bool = True) -> None:
            super().__init__(chromium, site.url, locale, javascript)
            opened.append(self)

    yield Opened
    for person in opened:
        person.close()


def answer_the_call(person: Citizen) -> Page:
    """The tester follows the link to the simulator's phone-calls page and answers; then back
    to the status page."""
    page = person.page
    page.get_by_role("link", name=re.compile("BankID")).click()
    page.get_by_role("button", name="Open in the BankID app").first.click()
    page.get_by_role("button", name="Yes").first.click()
    page.get_by_role("button", name="Identify").first.click()
    return person.goto("/demo/contact-centre/status")


@pytest.mark.parametrize("locale", ["sv", "en"])
def test_the_contact_centre_pages_are_accessible(
    caseworker: type[Citizen], clock: ManualClock, locale: str
) -> None:
    person = caseworker(locale)
    page = person.goto("/demo/contact-centre")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    person.audit("contact-centre-form")
    page.get_by_role("button", name=TEXTS[locale]["start"]).click()
    expect(page.locator("#outcome")).to_have_attribute("data-outcome", "pending")
    expect(page.locator("#outcome")).to_contain_text(PERSON)
    page.locator("#outcome a[href$='?auto=0']").click()
    assert page.locator('meta[http-equiv="refresh"]').count() == 0
    person.audit("contact-centre-pending")
    clock.advance(5)
    page = answer_the_call(person)
    expect(page.locator("#outcome")).to_contain_text(TEXTS[locale]["identified"])
    expect(page.locator("#caller-number")).to_have_text(PERSON)
    person.audit("contact-centre-identified")
    assert person.third_party_requests() == []
    assert person.failed_resources == []
    assert person.console_errors == []  # a CSP violation would be reported here


def test_the_contact_centre_works_without_javascript(
    caseworker: type[Citizen], clock: ManualClock
) -> None:
    person = caseworker("sv", javascript=False)
    page = person.goto("/demo/contact-centre")
    page.get_by_role("button", name=TEXTS["sv"]["start"]).click()
    clock.advance(5)
    page = answer_the_call(person)
    expect(page.locator("#caller-number")).to_have_text(PERSON)

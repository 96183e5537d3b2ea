"""Issue 23's "done when": from the embedded defaults (`make run`), the demo's contact centre
identifies a caller end to end: its form starts a CIBA request as `demo-contact-centre`, the
status page polls /token on each load, and the tester answers the call on the BankID
simulator's /phone-calls page. Walked over HTTP as a browser would, with the gateway's clock
moved by hand instead of waiting out the poll interval."""

from __future__ import annotations

import concurrent.futures
import html
import re
from collections.abc import Iterator

import httpx2
import pytest

from gateway.demo.contact_centre import DEFAULT_BINDING_MESSAGE
from gateway.demo.defaults import demo_settings
from providers.bankid.simulator_phone import masked
from tests.clock import ManualClock
from tests.harness import LiveGateway, free_port, hidden_field

PERSON = "196408233234"
INTERVAL = 5


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def browser(clock: ManualClock) -> Iterator[httpx2.Client]:
    issuer = f"http://127.0.0.1:{free_port()}"
    with (
        LiveGateway(demo_settings(issuer), clock) as gateway,
        httpx2.Client(
            base_url=gateway.url,
            follow_redirects=True,
            timeout=10,
            headers={"Accept-Language": "en"},
        ) as http,
    ):
        yield http


def start(browser: httpx2.Client, **fields: str) -> httpx2.Response:
    form = browser.get("/demo/contact-centre")
    assert form.status_code == 200, form.text
    data = {
        "csrf": hidden_field(form.text, "csrf"),
        "person": PERSON,
        "call_initiator": "user",
        "binding_message": DEFAULT_BINDING_MESSAGE,
        **fields,
    }
    return browser.post("/demo/contact-centre", data=data)


def outcome(page: httpx2.Response) -> str:
    found = re.search(r'data-outcome="([a-z]+)"', page.text)
    assert found is not None, page.text
    return found.group(1)


def answer(browser: httpx2.Client, *steps: tuple[str, dict[str, str]]) -> None:
    """The tester, on the simulator's phone-calls page: each step a button of the waiting call."""
    for action, fields in steps:
        page = browser.get("/bankid-simulator/phone-calls")
        ref = re.search(
            rf'action="/bankid-simulator/phone-calls/{action}">\s*'
            r'<input type="hidden" name="orderRef" value="([^"]+)"',
            page.text,
        )
        assert ref is not None, page.text
        done = browser.post(
            f"/bankid-simulator/phone-calls/{action}", data={"orderRef": ref.group(1), **fields}
        )
        assert done.status_code == 200, done.text


IDENTIFY = (("open", {}), ("answer", {"answer": "yes"}), ("identify", {}))


def test_a_caller_is_identified_from_the_contact_centre_page(
    browser: httpx2.Client, clock: ManualClock
) -> None:
    home = browser.get("/demo/")
    assert 'href="/demo/contact-centre"' in home.text
    pending = start(browser)
    assert pending.url.path == "/demo/contact-centre/status", pending.text
    assert outcome(pending) == "pending"
    assert f'<meta http-equiv="refresh" content="{INTERVAL}">' in pending.text
    assert PERSON in pending.text  # the hint, in words, for the case worker
    assert 'href="http://127.0.0.1' in pending.text and "/bankid-simulator/phone-calls" in (
        pending.text
    )
    calls = browser.get("/bankid-simulator/phone-calls")
    assert masked(PERSON) in calls.text and DEFAULT_BINDING_MESSAGE in calls.text
    assert outcome(browser.get("/demo/contact-centre/status")) == "pending"  # too soon: no poll
    clock.advance(INTERVAL)
    assert outcome(browser.get("/demo/contact-centre/status")) == "pending"
    answer(browser, *IDENTIFY)
    clock.advance(INTERVAL)
    identified = browser.get("/demo/contact-centre/status")
    assert outcome(identified) == "identified", identified.text
    assert 'http-equiv="refresh"' not in identified.text
    number = re.search(r'id="caller-number">([^<]*)<', identified.text)
    name = re.search(r'id="caller-name">([^<]*)<', identified.text)
    assert number is not None and number.group(1) == PERSON
    assert name is not None and html.unescape(name.group(1)).strip()
    clock.advance(INTERVAL)  # reloading shows the result again; the tokens came once
    assert outcome(browser.get("/demo/contact-centre/status")) == "identified"


def test_the_demo_never_polls_faster_than_the_gateway_allows(
    browser: httpx2.Client, clock: ManualClock
) -> None:
    """Reloads between polls are answered without asking /token: had the page polled too soon,
    the gateway's slow_down would have made it wait 5 s longer each time (CIBA §11)."""
    start(browser)
    refresh = f'<meta http-equiv="refresh" content="{INTERVAL}">'
    for _ in range(3):
        clock.advance(1)
        page = browser.get("/demo/contact-centre/status")
        assert outcome(page) == "pending" and refresh in page.text
    clock.advance(INTERVAL)
    page = browser.get("/demo/contact-centre/status")
    assert outcome(page) == "pending" and refresh in page.text


def test_reloads_at_the_same_moment_poll_once(browser: httpx2.Client, clock: ManualClock) -> None:
    """Two tabs reloading together must not both poll: the second poll would be too early for
    the gateway, whose slow_down would lengthen the interval for good (CIBA §11)."""
    start(browser)
    clock.advance(INTERVAL)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        pages = list(pool.map(lambda _: browser.get("/demo/contact-centre/status"), range(4)))
    clock.advance(INTERVAL)
    pages.append(browser.get("/demo/contact-centre/status"))
    for page in pages:
        assert outcome(page) == "pending"
        assert f'<meta http-equiv="refresh" content="{INTERVAL}">' in page.text


def test_the_refresh_can_be_turned_off_and_on(browser: httpx2.Client) -> None:
    """WCAG 2.2.1: the user of a page that refreshes itself can stop it."""
    refreshing = start(browser)
    assert 'http-equiv="refresh"' in refreshing.text and "?auto=0" in refreshing.text
    stopped = browser.get("/demo/contact-centre/status?auto=0")
    assert outcome(stopped) == "pending"
    assert 'http-equiv="refresh"' not in stopped.text
    assert 'href="http://127.0.0.1' in stopped.text and "Check now" in stopped.text


def test_a_caller_who_says_no_is_shown_as_declined(
    browser: httpx2.Client, clock: ManualClock
) -> None:
    start(browser, call_initiator="RP")
    calls = browser.get("/bankid-simulator/phone-calls")
    assert "called you" in calls.text  # the contact centre called the citizen
    answer(browser, ("open", {}), ("answer", {"answer": "no"}))
    clock.advance(INTERVAL)
    assert outcome(browser.get("/demo/contact-centre/status")) == "declined"


def test_a_call_nobody_answers_is_shown_as_expired(
    browser: httpx2.Client, clock: ManualClock
) -> None:
    start(browser)
    clock.advance(121)
    assert outcome(browser.get("/demo/contact-centre/status")) == "expired"


def test_the_form_needs_its_csrf_token(browser: httpx2.Client) -> None:
    browser.get("/demo/contact-centre")
    data = {"csrf": "forged", "person": PERSON, "call_initiator": "user"}
    refused = browser.post("/demo/contact-centre", data=data)
    assert refused.status_code == 400
    assert "The form had expired" in refused.text
    assert "/bankid-simulator/phone-calls" not in refused.text
    other = httpx2.Client(base_url=str(browser.base_url), timeout=10)
    with other:
        assert other.post("/demo/contact-centre", data=data).status_code == 400


@pytest.mark.parametrize(
    "fields",
    [
        {"person": "19640823323"},
        {"person": "not a number"},
        {"binding_message": "<script>alert(1)</script>"},
        {"binding_message": "x" * 300},
        {"call_initiator": "nobody"},
    ],
)
def test_odd_input_is_shown_on_the_form_never_a_500(
    browser: httpx2.Client, fields: dict[str, str]
) -> None:
    page = start(browser, **fields)
    assert page.status_code in (200, 400), page.text
    assert "<script>alert" not in page.text


def test_the_status_page_without_a_request_leads_to_the_form(browser: httpx2.Client) -> None:
    page = browser.get("/demo/contact-centre/status")
    assert page.url.path == "/demo/contact-centre"


def test_the_pages_are_in_swedish_by_default(browser: httpx2.Client) -> None:
    form = browser.get("/demo/contact-centre", headers={"Accept-Language": "sv"})
    assert "Identifiera den som ringer" in form.text and "Vem ringde vem" in form.text
    pending = start(browser)
    swedish = browser.get("/demo/contact-centre/status", headers={"Accept-Language": "sv"})
    assert outcome(pending) == "pending"
    assert "Väntar på att innehavaren av" in swedish.text

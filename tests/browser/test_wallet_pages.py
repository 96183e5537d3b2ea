"""The EU wallet's page (issue 24) in real Chromium, against a live gateway with the wallet
provider and the simulator that `demo: true` mounts, started from the demo e-service: every state
the citizen can see passes axe-core (WCAG 2.1 A/AA) and reflows at 320 px in Swedish and English;
the other device (the simulator's phone page) in a browser profile of its own; the QR's device
moves the page on by itself (wallet.js), the link on this device comes back with its
response_code; without JavaScript the refresh link does the same. The gateway's clock is a
ManualClock, so that the request expires without waiting."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx2
import jwt
import pytest
from playwright.sync_api import Page, expect

from gateway.demo.defaults import simulated_wallet
from tests.browser.citizen import Citizen
from tests.browser.conftest import CitizenFactory
from tests.browser.test_focus import focus_problems
from tests.clock import ManualClock
from tests.harness import LiveGateway, base_settings, free_port

REQUEST_SECONDS = 300  # the wallet provider's default request lifetime
TEXTS = {
    "sv": {
        "log_in": "Logga in",
        "wallet": "EU-plånbok (test)",
        "heading": "Logga in med din EU-plånbok",
        "error": "Fel:",
        "pending": "Öppna din plånboksapp för att dela dina identitetsuppgifter med e-tjänsten.",
        "fetched": "Din plånbok har öppnat förfrågan.",
        "answered_elsewhere": "Fortsätt i det webbläsarfönster som plånboken öppnade.",
        "declined": "Du avböjde i din plånbok. Inget delades.",
        "expired": "Förfrågan till din plånbok har gått ut. Försök igen.",
        "wallet_error": "Din plånbok kunde inte svara på förfrågan.",
        "revoked": "har återkallats eller spärrats av utfärdaren",
        "untrusted": "kommer från en utfärdare som vi inte litar på",
        "pid_expired": "Identitetsuppgifterna (PID) i din plånbok har gått ut.",
        "no_identifier": "saknar ett identitetsnummer som vi kan logga in dig med",
        "this_device": "Plånbok på den här enheten",
        "other_device": "Plånbok på en annan enhet",
        "qr_alt": "QR-kod för din plånboksapp",
        "open": "Öppna din plånbok",
        "test_same": "Öppna testplånboken på den här enheten (TEST)",
        "test_cross": "Skanna den med testplånboken (TEST, öppnas i en ny flik)",
        "refresh": "Uppdatera status",
        "try_again": "Försök igen",
        "other_eid": "Välj en annan e-legitimation",
        "cancel": "Avbryt",
        "skip": "Hoppa till innehållet",
        "switch": "English",
        "service": "Bygglov i Exempelby",
    },
    "en": {
        "log_in": "Log in",
        "wallet": "EU wallet (test)",
        "heading": "Log in with your EU wallet",
        "error": "Error:",
        "pending": "Open your wallet app to share your identity data with the e-service.",
        "fetched": "Your wallet has opened the request.",
        "answered_elsewhere": "Continue in the browser window your wallet opened.",
        "declined": "You declined in your wallet. Nothing was shared.",
        "expired": "The request to your wallet has expired. Try again.",
        "wallet_error": "Your wallet could not answer the request.",
        "revoked": "has been revoked or suspended by its issuer",
        "untrusted": "comes from a provider we do not trust",
        "pid_expired": "The identity data (PID) in your wallet has expired.",
        "no_identifier": "has no identity number we can log you in with",
        "this_device": "Wallet on this device",
        "other_device": "Wallet on another device",
        "qr_alt": "QR code for your wallet app",
        "open": "Open your wallet",
        "test_same": "Open the test wallet on this device (TEST)",
        "test_cross": "Scan it with the test wallet (TEST, opens a new tab)",
        "refresh": "Refresh the status",
        "try_again": "Try again",
        "other_eid": "Choose another e-ID",
        "cancel": "Cancel",
        "skip": "Skip to content",
        "switch": "Svenska",
        "service": "Building permits, Exempelby",
    },
}
LOCALES = ["sv", "en"]
SWEDISH_PNR = "199908072391"  # the simulator's "se" person
FINNISH_PRID = "FI:241275-902l"  # the simulator's "fi" person, as the demo shows its prid
FOCUS_ORDER_JS = """() => {
    const el = document.activeElement;
    return (el.innerText || el.getAttribute("aria-label") || "").trim().split("\\n")[0];
}"""


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(autouse=True)
def clock_at_wall_time(clock: ManualClock) -> None:
    """Each test starts at the wall clock's now: the demo e-service checks its ID tokens by the
    wall clock, so a clock left ahead (or standing still too long) would fail its logins."""
    clock.now = time.time()


@pytest.fixture(scope="module")
def site(clock: ManualClock) -> Iterator[LiveGateway]:
    """The demo e-service with the sandbox and the EU wallet against its bundled simulator, on
    a clock the tests move."""
    issuer = f"http://127.0.0.1:{free_port()}"
    settings = base_settings(
        issuer,
        demo=True,
        providers={"sandbox": {"type": "sandbox"}, "wallet": simulated_wallet(issuer)},
        clients=[
            {
                "client_id": "demo-rp",
                "client_secret": "demo-rp-secret-for-wallet-pages",
                "redirect_uris": [f"{issuer}/demo/callback"],
                "display": {"sv": "Bygglov i Exempelby", "en": "Building permits, Exempelby"},
            }
        ],
    )
    with LiveGateway(settings, clock) as live:
        yield live


def wallet_page(person: Citizen) -> Page:
    """From the demo e-service through the chooser to the wallet page."""
    texts = TEXTS[person.locale]
    page = person.goto("/demo/")
    page.get_by_role("button", name=texts["log_in"]).click()
    page.get_by_role("button", name=re.compile(re.escape(texts["wallet"]))).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(texts["heading"])
    expect(page).to_have_url(re.compile(r"/providers/wallet/wait\?login="))
    return page


def message(page: Page) -> str:
    return page.locator("#wallet-message").inner_text()


def expect_message(page: Page, text: str) -> None:
    expect(page.locator("#wallet-message")).to_contain_text(text, timeout=10_000)


def phone_opens(phone: Citizen, page: Page, link_id: str) -> Page:
    """The other device: the simulator's page for the link the wallet page offers."""
    href = page.locator(f"#{link_id}").get_attribute("href")
    assert href is not None and href.startswith(f"{phone.gateway_url}/wallet-simulator/")
    opened = phone.page
    opened.goto(href)
    expect(opened.get_by_role("button", name="Share")).to_be_visible()
    return opened


def share(wallet: Page, person_label: str, twist: str | None = None) -> None:
    wallet.get_by_label(person_label).check()
    if twist is not None:
        wallet.get_by_text("Bend the answer").click()
        wallet.get_by_label(twist).check()
    wallet.get_by_role("button", name="Share").click()


def headings(page: Page) -> list[str]:
    found: list[str] = page.evaluate(
        """() => [...document.querySelectorAll("main h1, main h2, main h3")]
            .map(h => h.tagName + " " + h.innerText.trim())"""
    )
    return found


def expect_clean(person: Citizen) -> None:
    assert person.third_party_requests() == []
    assert person.failed_resources == []
    assert person.console_errors == []


# -- waiting: the QR, the link, the TEST links --------------------------------------------------


@pytest.mark.parametrize("locale", LOCALES)
def test_the_waiting_page_offers_the_link_and_the_qr_in_the_page_language(
    citizen: CitizenFactory, locale: str
) -> None:
    person = citizen(locale)
    texts = TEXTS[locale]
    page = wallet_page(person)
    assert page.locator("html").get_attribute("lang") == locale
    expect(page).to_have_title(re.compile(f"^{re.escape(texts['heading'])}"))
    assert message(page) == texts["pending"]
    assert headings(page) == [
        f"H1 {texts['heading']} TEST",
        f"H2 {texts['other_device']}",  # a computer: the QR first (a phone gets the link first)
        f"H2 {texts['this_device']}",
    ]
    qr = page.get_by_role("img", name=texts["qr_alt"])
    expect(qr).to_be_visible()
    assert (qr.get_attribute("src") or "").startswith("data:image/svg+xml")
    link = page.get_by_role("link", name=texts["open"], exact=True).get_attribute("href") or ""
    assert_wallet_link(link, person.gateway_url)
    assert_wallet_link(qr.get_attribute("data-request") or "", person.gateway_url)
    assert link != qr.get_attribute("data-request")  # two requests: same-device and cross
    expect(page.get_by_role("link", name=texts["test_same"])).to_be_visible()
    expect(page.get_by_role("link", name=texts["test_cross"])).to_be_visible()
    expect(page.locator("#wallet-refresh")).to_be_hidden()  # the script polls instead
    expect(page.locator(".client-band")).to_contain_text(texts["service"])  # who is asking
    person.audit("wallet-waiting")
    expect_clean(person)


def assert_wallet_link(link: str, gateway_url: str) -> None:
    """OpenID4VP §5.10 by reference, fetched by POST; the client id is the x509_hash one."""
    parts = urlsplit(link)
    assert parts.scheme == "openid4vp" and parts.netloc == "", link
    query = parse_qs(parts.query, strict_parsing=True)
    assert set(query) == {"client_id", "request_uri", "request_uri_method"}, link
    assert re.fullmatch(r"x509_hash:[A-Za-z0-9_-]{43}", query["client_id"][0])
    assert query["request_uri"][0].startswith(f"{gateway_url}/providers/wallet/request/")
    assert query["request_uri_method"] == ["post"]


def test_the_keyboard_reaches_the_page_in_reading_order(citizen: CitizenFactory) -> None:
    person = citizen("sv")
    texts = TEXTS["sv"]
    page = wallet_page(person)
    # the heading shows before wallet.js has run; until then the no-script refresh link is a stop
    expect(page.locator("#wallet-refresh")).to_be_hidden()
    page.evaluate("document.activeElement && document.activeElement.blur()")
    expected = [
        texts["skip"],
        texts["switch"],
        texts["test_cross"],
        texts["open"],
        texts["test_same"],
        texts["other_eid"],
        texts["cancel"],
    ]
    reached = []
    for _ in expected:
        page.keyboard.press("Tab")
        reached.append(page.evaluate(FOCUS_ORDER_JS))
    assert reached == expected
    page.reload()  # Tab starts from the top again
    assert focus_problems(page, "wallet-waiting") == []  # every stop shows its focus


def test_the_ended_page_shows_where_the_focus_is(citizen: CitizenFactory) -> None:
    person = citizen("en")
    phone = citizen("en")
    page = wallet_page(person)
    phone_opens(phone, page, "wallet-simulator-cross").get_by_role("button", name="Decline").click()
    expect_message(page, TEXTS["en"]["declined"])
    page.evaluate("document.activeElement && document.activeElement.blur()")
    assert focus_problems(page, "wallet-declined") == []


def test_the_language_switch_keeps_the_request_and_the_script_speaks_it_too(
    citizen: CitizenFactory,
) -> None:
    person = citizen("sv")
    phone = citizen("en")
    page = wallet_page(person)
    qr_request = page.locator("#wallet-qr").get_attribute("data-request")
    page.get_by_role("link", name=TEXTS["sv"]["switch"]).click()

    expect(page.get_by_role("heading", level=1)).to_contain_text(TEXTS["en"]["heading"])
    assert page.locator("#wallet-qr").get_attribute("data-request") == qr_request
    phone_opens(phone, page, "wallet-simulator-cross")
    expect_message(page, TEXTS["en"]["fetched"])  # the polled text, in the page's language


# -- cross-device: the QR scanned by the phone ---------------------------------------------------


@pytest.mark.parametrize(("locale", "device"), [("sv", "tab"), ("en", "phone")])
def test_the_other_device_shares_and_the_page_moves_on_by_itself(
    citizen: CitizenFactory, locale: str, device: str
) -> None:
    """The TEST link opened as the page offers it (a new tab), or the QR's link opened by
    another browser (the phone)."""
    person = citizen(locale)
    texts = TEXTS[locale]
    page = wallet_page(person)
    if device == "tab":
        with person.context.expect_page() as opened:
            page.get_by_role("link", name=texts["test_cross"]).click()
        wallet = opened.value
    else:
        wallet = phone_opens(citizen("en"), page, "wallet-simulator-cross")
    expect_message(page, texts["fetched"])  # the script tells without a reload
    person.audit("wallet-fetched")
    share(wallet, "Aino Testinen")
    expect(wallet.locator("main")).to_contain_text("go back to the computer")

    expect(page).to_have_url(re.compile(r"/demo/$"), timeout=10_000)
    expect(page.locator("pre.claims").first).to_contain_text(FINNISH_PRID)
    expect_clean(person)


# -- same-device: the TEST link on this device ---------------------------------------------------


@pytest.mark.parametrize("locale", LOCALES)
def test_the_wallet_on_this_device_comes_back_with_its_response_code(
    citizen: CitizenFactory, locale: str
) -> None:
    person = citizen(locale)
    page = wallet_page(person)
    page.get_by_role("link", name=TEXTS[locale]["test_same"]).click()
    expect(page.get_by_role("button", name="Share")).to_be_visible()
    with page.expect_request(re.compile(r"/providers/wallet/done\?login=.*&response_code=")):
        share(page, "Astrid Testsson")

    expect(page).to_have_url(re.compile(r"/demo/$"))
    expect(page.locator("pre.claims").first).to_contain_text(SWEDISH_PNR)
    expect_clean(person)


@pytest.mark.parametrize("locale", LOCALES)
def test_answered_in_another_browser_the_page_says_where_to_go_on(
    citizen: CitizenFactory, locale: str
) -> None:
    """The same-device link opened by a wallet whose browser is another one: the answer is
    bound to that browser's response_code, so this page only points there."""
    person = citizen(locale)
    phone = citizen("en")
    page = wallet_page(person)
    wallet = phone_opens(phone, page, "wallet-simulator-same")
    share(wallet, "Astrid Testsson")
    expect_message(page, TEXTS[locale]["answered_elsewhere"])
    expect(page.get_by_role("img", name=TEXTS[locale]["qr_alt"])).to_have_count(0)
    person.audit("wallet-answered-elsewhere")
    expect_clean(person)


# -- ended: declined, expired, refused -----------------------------------------------------------


@pytest.mark.parametrize("locale", LOCALES)
def test_declined_then_try_again_shows_a_new_qr(citizen: CitizenFactory, locale: str) -> None:
    person = citizen(locale)
    phone = citizen("en")
    texts = TEXTS[locale]
    page = wallet_page(person)
    first_request = page.locator("#wallet-qr").get_attribute("data-request")
    wallet = phone_opens(phone, page, "wallet-simulator-cross")
    wallet.get_by_role("button", name="Decline").click()

    expect_message(page, texts["declined"])  # the script reloaded the page
    expect(page).to_have_title(re.compile(f"^{texts['error']}"))  # as BankID's ended pages
    expect(page.get_by_role("img", name=texts["qr_alt"])).to_have_count(0)
    person.audit("wallet-declined")
    page.get_by_role("button", name=texts["try_again"]).click()

    expect(page.get_by_role("img", name=texts["qr_alt"])).to_be_visible()
    assert message(page) == texts["pending"]
    assert page.locator("#wallet-qr").get_attribute("data-request") != first_request
    expect_clean(person)


@pytest.mark.parametrize("locale", LOCALES)
def test_an_expired_request_says_so_and_offers_to_try_again(
    citizen: CitizenFactory, clock: ManualClock, locale: str
) -> None:
    person = citizen(locale)
    texts = TEXTS[locale]
    page = wallet_page(person)
    clock.advance(REQUEST_SECONDS + 1)

    expect_message(page, texts["expired"])
    expect(page).to_have_title(re.compile(f"^{texts['error']}"))
    expect(page.get_by_role("button", name=texts["try_again"])).to_be_visible()
    person.audit("wallet-expired")
    page.get_by_role("button", name=texts["try_again"]).click()
    expect(page.get_by_role("img", name=texts["qr_alt"])).to_be_visible()
    expect_clean(person)


# Each refusal in one language, the languages alternating (CI's time budget): the page and its
# message are the same template in both; tests/ui/test_pages.py checks every message is
# translated, and the other wallet page tests run in both languages.
@pytest.mark.parametrize(
    ("locale", "person_label", "twist", "reason"),
    [
        ("sv", "Bertil Återkallad", None, "revoked"),
        ("en", "Astrid Testsson", "a PID from an issuer not on the trust list", "untrusted"),
        ("sv", "Astrid Testsson", "an expired PID", "pid_expired"),
        ("en", "David Nummerlös", "share the PID even when it lacks", "no_identifier"),
    ],
)
def test_a_refused_pid_says_why(
    citizen: CitizenFactory, locale: str, person_label: str, twist: str | None, reason: str
) -> None:
    person = citizen(locale)
    phone = citizen("en")
    texts = TEXTS[locale]
    page = wallet_page(person)
    wallet = phone_opens(phone, page, "wallet-simulator-cross")
    share(wallet, person_label, twist)

    expect_message(page, texts[reason])
    expect(page).to_have_title(re.compile(f"^{texts['error']}"))
    expect(page.get_by_role("button", name=texts["try_again"])).to_be_visible()
    person.audit(f"wallet-refused-{reason}")
    expect_clean(person)


@pytest.mark.parametrize("locale", LOCALES)
def test_a_wallet_error_says_so(citizen: CitizenFactory, locale: str) -> None:
    """A wallet that answers with an error of its own (OpenID4VP §8.5), posted as one would."""
    person = citizen(locale)
    page = wallet_page(person)
    link = page.locator("#wallet-qr").get_attribute("data-request") or ""
    request_uri = parse_qs(urlsplit(link).query)["request_uri"][0]
    with httpx2.Client(timeout=10, trust_env=False) as wallet:
        request_object = wallet.post(request_uri, data={}).text
        claims = jwt.decode(request_object, options={"verify_signature": False})
        error = {"error": "invalid_request", "state": claims["state"]}
        assert wallet.post(claims["response_uri"], data=error).status_code == 200

    expect_message(page, TEXTS[locale]["wallet_error"])
    expect(page).to_have_title(re.compile(f"^{TEXTS[locale]['error']}"))
    person.audit("wallet-error")
    expect_clean(person)


# -- without JavaScript --------------------------------------------------------------------------


def test_without_javascript_the_refresh_link_brings_the_page_up_to_date(
    citizen: CitizenFactory,
) -> None:
    person = citizen("sv", javascript=False)
    phone = citizen("en")
    texts = TEXTS["sv"]
    page = wallet_page(person)
    refresh = page.get_by_role("link", name=texts["refresh"])
    expect(refresh).to_be_visible()
    wallet = phone_opens(phone, page, "wallet-simulator-cross")
    assert message(page) == texts["pending"]  # nothing polls

    refresh.click()
    expect_message(page, texts["fetched"])
    share(wallet, "Aino Testinen")
    page.get_by_role("link", name=texts["refresh"]).click()

    expect(page).to_have_url(re.compile(r"/demo/$"))
    expect(page.locator("pre.claims").first).to_contain_text(FINNISH_PRID)


# -- leaving the wallet page ---------------------------------------------------------------------


def test_another_e_id_leads_to_the_chooser_and_cancel_back_to_the_e_service(
    citizen: CitizenFactory,
) -> None:
    person = citizen("en")
    texts = TEXTS["en"]
    page = wallet_page(person)
    page.get_by_role("button", name=texts["other_eid"]).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Choose e-ID")

    page.get_by_role("button", name=re.compile(re.escape(texts["wallet"]))).click()
    expect(page.get_by_role("img", name=texts["qr_alt"])).to_be_visible()
    page.get_by_role("button", name=texts["cancel"], exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("You cancelled the login")
    page.get_by_role("link", name=f"Back to {texts['service']}").click()
    expect(page.get_by_role("alert")).to_contain_text("access_denied")
    expect_clean(person)

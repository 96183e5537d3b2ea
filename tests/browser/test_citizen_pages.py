"""The citizen's pages in a real browser: a whole login from the e-service and back, in Swedish
and English, with and without JavaScript; axe-core on every page; keyboard alone; screenshots
in test-artifacts/screenshots/ for review."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import CitizenFactory
from tests.harness import TEST_PERSON

TEXTS = {
    "sv": {
        "log_in": "Logga in",
        "choose": "Välj e-legitimation",
        "sandbox": "Testlegitimation",
        "testid": "Test-ID på nivå 2",
        "number": "Personnummer",
        "logged_in": "Du är inloggad",
        "cancel": "Avbryt",
        "switch": "English",
        "cancelled": "Du avbröt inloggningen",
        "expired": "Din inloggning har gått ut",
        "bad_request": "E-tjänsten skickade en begäran som vi inte kan ta emot",
        "not_found": "Vi hittar inte sidan",
        "wrong_digit": "Sista siffran (kontrollsiffran) stämmer inte",
        "back": "Tillbaka till Bygglov i Exempelby",
        "back_unnamed": "Tillbaka till e-tjänsten",
        "last_used": "Användes senast",
    },
    "en": {
        "log_in": "Log in",
        "choose": "Choose e-ID",
        "sandbox": "Test e-ID",
        "testid": "Test ID at level 2",
        "number": "Personal identity number",
        "logged_in": "You are logged in",
        "cancel": "Cancel",
        "switch": "Svenska",
        "cancelled": "You cancelled the login",
        "expired": "Your login has expired",
        "bad_request": "The e-service sent a request we cannot accept",
        "not_found": "We could not find that page",
        "wrong_digit": "The last digit (check digit) is wrong",
        "back": "Back to Building permits, Exempelby",
        "back_unnamed": "Back to the e-service",
        "last_used": "Used last time",
    },
}


def start_login(page: Page, texts: dict[str, str]) -> None:
    page.get_by_role("button", name=texts["log_in"]).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(texts["choose"])


@pytest.mark.parametrize("locale", ["sv", "en"])
def test_whole_login_from_the_e_service_and_back(citizen: CitizenFactory, locale: str) -> None:
    person = citizen(locale)
    texts = TEXTS[locale]
    page = person.goto("/demo/")
    person.audit("demo-start")
    start_login(page, texts)
    expect(page.locator(".client-band")).to_contain_text("Exempelby")
    expect(page.locator(".client-logo")).to_be_visible()
    person.audit("chooser")
    page.get_by_role("button", name=re.compile(texts["sandbox"])).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(texts["sandbox"])
    person.audit("sandbox-login")
    page.get_by_label(texts["number"]).fill("199908072390")
    page.get_by_label(texts["number"]).press("Enter")
    expect(page.get_by_role("alert")).to_contain_text(texts["wrong_digit"])
    expect(page.get_by_label(texts["number"])).to_have_value("199908072390")  # kept to correct
    expect(page).to_have_title(re.compile(r"^(Fel|Error):"))
    person.audit("sandbox-login-error")
    page.get_by_label(texts["number"]).fill(TEST_PERSON)
    page.get_by_label(texts["number"]).press("Enter")
    expect(page.get_by_text(texts["logged_in"])).to_be_visible()
    expect(page.locator("pre.claims").first).to_contain_text(TEST_PERSON)
    person.audit("demo-logged-in")
    assert person.third_party_requests() == []
    assert person.failed_resources == []
    assert person.console_errors == []  # a CSP violation would be reported here


def test_the_login_works_without_javascript(citizen: CitizenFactory) -> None:
    """axe-core needs JavaScript, so this run only walks; the pages are the same ones."""
    person = citizen("sv", javascript=False)
    texts = TEXTS["sv"]
    page = person.goto("/demo/")
    start_login(page, texts)
    page.get_by_role("button", name=re.compile(texts["testid"])).click()
    page.get_by_role("button", name=re.compile("Erik Provsson")).click()
    expect(page.get_by_text(texts["logged_in"])).to_be_visible()
    expect(page.locator("pre.claims").first).to_contain_text("loa2")


@pytest.mark.parametrize("locale", ["sv", "en"])
def test_failure_pages_say_what_happened_and_lead_back(
    citizen: CitizenFactory, locale: str
) -> None:
    person = citizen(locale)
    texts = TEXTS[locale]
    page = person.goto("/demo/")
    start_login(page, texts)
    page.get_by_role("button", name=re.compile(texts["sandbox"])).click()
    page.get_by_role("button", name=texts["cancel"], exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(texts["cancelled"])
    expect(page.locator(".reference")).to_contain_text(re.compile(r"[0-9a-f]{8}"))
    person.audit("error-cancelled")
    page.get_by_role("link", name=texts["back"]).click()
    expect(page.get_by_role("alert")).to_contain_text("access_denied")

    page = person.goto("/login/no-such-login")
    expect(page.get_by_role("heading", level=1)).to_contain_text(texts["expired"])
    # the login is gone, but the browser remembers which e-service started the latest one;
    # a cookie proves nothing, so the way back is there but the e-service is not named
    expect(page.get_by_role("link", name=texts["back_unnamed"])).to_be_visible()
    expect(page.locator(".client-band")).to_have_count(0)
    person.audit("error-login-expired")

    page = person.goto("/authorize?client_id=nobody&response_type=code")
    expect(page.get_by_role("heading", level=1)).to_have_text(texts["bad_request"])
    person.audit("error-bad-request")

    page = person.goto("/no/such/page")
    expect(page.get_by_role("heading", level=1)).to_have_text(texts["not_found"])
    person.audit("error-not-found")
    assert person.third_party_requests() == []
    assert person.failed_resources == []
    assert person.console_errors == []


def test_language_switch_keeps_the_pending_login(citizen: CitizenFactory) -> None:
    person = citizen("sv")
    page = person.goto("/demo/")
    start_login(page, TEXTS["sv"])
    login_form = page.locator("form.chooser").get_attribute("action")
    page.get_by_role("link", name="English").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Choose e-ID")
    assert page.locator("form.chooser").get_attribute("action") == login_form  # same login
    page.get_by_role("button", name=re.compile("Test e-ID")).click()
    page.get_by_label("Personal identity number").fill("19990807-2391")
    page.get_by_role("link", name="Svenska").click()  # a GET of the same sandbox page
    expect(page.get_by_label("Personnummer")).to_be_visible()
    page.get_by_label("Personnummer").fill(TEST_PERSON)
    page.get_by_label("Personnummer").press("Enter")
    expect(page.get_by_text(TEXTS["sv"]["logged_in"])).to_be_visible()


def test_language_switch_on_a_failure_page_shows_the_same_failure(
    citizen: CitizenFactory,
) -> None:
    person = citizen("sv")
    page = person.goto("/demo/")
    start_login(page, TEXTS["sv"])
    page.get_by_role("link", name="Avbryt och gå tillbaka till e-tjänsten").click()
    page.get_by_role("button", name=TEXTS["sv"]["log_in"]).click()
    page.get_by_role("button", name=re.compile("Testlegitimation")).click()
    page.get_by_role("button", name="Avbryt", exact=True).click()  # answered to a POST
    reference = page.locator(".reference").inner_text()[-8:]
    page.get_by_role("link", name="English").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("You cancelled the login")
    expect(page.locator(".reference")).to_contain_text(reference)
    expect(page.get_by_role("link", name=TEXTS["en"]["back"])).to_be_visible()


def test_the_chooser_by_keyboard_alone(citizen: CitizenFactory) -> None:
    person = citizen("sv")
    page = person.goto("/demo/")
    start_login(page, TEXTS["sv"])
    expected_order = [
        "Hoppa till innehållet",
        "English",
        "Testlegitimation",
        "Test-ID på nivå 2",
        "BankID (test)",
        "Avbryt och gå tillbaka till e-tjänsten",
    ]
    for expected in expected_order:
        page.keyboard.press("Tab")
        focused = page.evaluate(
            """() => {
                const el = document.activeElement;
                const style = getComputedStyle(el);
                const box = el.getBoundingClientRect();
                return {text: el.innerText.trim().split("\\n")[0],
                        outline: style.outlineStyle, width: parseFloat(style.outlineWidth),
                        on_screen: box.left >= 0 && box.top >= 0 && box.width > 0};
            }"""
        )
        assert focused["text"] == expected, focused
        assert focused["outline"] != "none" and focused["width"] >= 2, focused  # focus visible
        assert focused["on_screen"], focused
    page.keyboard.press("Shift+Tab")
    while page.evaluate("document.activeElement.innerText").split("\n")[0] != "Test-ID på nivå 2":
        page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Test-ID på nivå 2")
    page.keyboard.press("Tab")  # skip link
    page.keyboard.press("Enter")  # to the main content
    for _ in range(4):
        if page.evaluate("document.activeElement.id") == "pnr":
            break
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "pnr"
    page.keyboard.type(TEST_PERSON)
    page.keyboard.press("Enter")
    expect(page.get_by_text(TEXTS["sv"]["logged_in"])).to_be_visible()


def test_the_last_choice_is_offered_first(citizen: CitizenFactory) -> None:
    person = citizen("en")
    page = person.goto("/demo/")
    start_login(page, TEXTS["en"])
    page.get_by_role("button", name=re.compile("Test ID at level 2")).click()
    page.get_by_role("button", name=re.compile("Erik Provsson")).click()
    page.get_by_role("button", name="Log out of the demo").click()
    start_login(page, TEXTS["en"])
    first = page.locator(".provider-button").first
    expect(first).to_contain_text("Test ID at level 2")
    expect(first).to_contain_text(TEXTS["en"]["last_used"])
    person.audit("chooser-last-used")
    remembered = {c["name"]: c for c in person.context.cookies() if c["name"] == "pv_last_eid"}
    assert remembered["pv_last_eid"]["value"] == "testid"  # a provider name, no personal data
    assert remembered["pv_last_eid"]["httpOnly"] and remembered["pv_last_eid"]["sameSite"] == "Lax"


@pytest.mark.parametrize("locale", ["sv", "en"])
def test_bankid_with_the_animated_qr_and_the_simulated_phone(
    citizen: CitizenFactory, locale: str
) -> None:
    person = citizen(locale)
    texts = TEXTS[locale]
    page = person.goto("/demo/")
    start_login(page, texts)
    page.get_by_role("button", name=re.compile("BankID")).click()
    heading = {"sv": "Logga in med BankID", "en": "Log in with BankID"}[locale]
    expect(page.get_by_role("heading", level=1)).to_contain_text(heading)
    qr = page.get_by_role("img", name=re.compile("QR"))
    expect(qr).to_be_visible()
    first_qr = qr.get_attribute("src")
    page.wait_for_timeout(1500)
    assert qr.get_attribute("src") != first_qr  # animated: a new code every second
    expect(page.locator("#bankid-refresh")).to_be_hidden()  # the script refreshes instead
    person.audit("bankid-qr")
    with person.context.expect_page() as opened:
        page.locator("#bankid-phone").click()
    phone = opened.value
    expect(phone.get_by_role("heading", level=1)).to_contain_text("Simulated BankID app")
    phone.get_by_role("button", name="Identify").click()
    expect(page.get_by_text(texts["logged_in"])).to_be_visible(timeout=10_000)
    expect(page.locator("pre.claims").first).to_contain_text(TEST_PERSON)
    assert person.third_party_requests() == []
    assert person.failed_resources == []
    assert person.console_errors == []


def test_bankid_without_javascript_refreshes_by_hand(citizen: CitizenFactory) -> None:
    person = citizen("sv", javascript=False)
    page = person.goto("/demo/")
    start_login(page, TEXTS["sv"])
    page.get_by_role("button", name=re.compile("BankID")).click()
    expect(page.get_by_role("link", name=re.compile("Uppdatera"))).to_be_visible()
    phone_url = page.locator("#bankid-phone").get_attribute("href")
    phone = person.context.new_page()
    phone.goto(f"{person.gateway_url}{phone_url}" if phone_url.startswith("/") else phone_url)
    phone.get_by_role("button", name="Identify").click()
    refresh = page.get_by_role("link", name=re.compile("Uppdatera"))
    for _ in range(4):  # collects are paced at one per two seconds, whoever asks
        if not refresh.is_visible():
            break
        refresh.click()
        page.wait_for_timeout(1000)
    expect(page.get_by_text(TEXTS["sv"]["logged_in"])).to_be_visible()


def test_bankid_cancel_leads_back_to_the_e_service(citizen: CitizenFactory) -> None:
    person = citizen("en")
    page = person.goto("/demo/")
    start_login(page, TEXTS["en"])
    page.get_by_role("button", name=re.compile("BankID")).click()
    page.get_by_role("button", name="Cancel", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(TEXTS["en"]["cancelled"])
    person.audit("bankid-cancelled")


@pytest.mark.parametrize("locale", ["sv", "en"])
def test_logout_pages(citizen: CitizenFactory, locale: str) -> None:
    person = citizen(locale)
    texts = TEXTS[locale]
    page = person.goto("/demo/")
    start_login(page, texts)
    page.get_by_role("button", name=re.compile(texts["testid"])).click()
    page.get_by_role("button", name=re.compile("Erik Provsson")).click()
    expect(page.get_by_text(texts["logged_in"])).to_be_visible()
    page = person.goto("/logout")  # no id_token_hint: the citizen is asked first
    person.audit("logout-confirm")
    page.get_by_role("button", name={"sv": "Logga ut", "en": "Log out"}[locale]).click()
    heading = {"sv": "Du är utloggad", "en": "You are logged out"}[locale]
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    told = {"sv": "Bygglov i Exempelby", "en": "Building permits, Exempelby"}[locale]
    expect(page.locator("#told")).to_contain_text(told)
    person.audit("logged-out")
    log_in = page.get_by_role("button", name=texts["log_in"])
    for _ in range(50):  # told over the back-channel (in the background), the demo logs out too
        page = person.goto("/demo/")
        if log_in.count():
            break
        page.wait_for_timeout(100)
    expect(log_in).to_be_visible()
    start_login(page, texts)  # the chooser again: the SSO session has ended

"""Every hint code BankID's RP API v6.0 documents today, with the message BankID recommends, in
Swedish and English (bankid-2026-and-ciba.md §1.8): driven through the real gateway and the
simulator, which scripts each code. RFA24-RFA30 and the update-app text are unverified or ours
(messages.py says so); unknown codes fall back to RFA21 (pending) and RFA22 (failed)."""

from __future__ import annotations

import pytest

from providers.bankid.simulator import BankIDSimulator, UserBehaviour
from tests.harness import Browser
from tests.providers.bankid import test_provider as bankid_tests
from tests.providers.bankid.test_provider import start, status

# The BankID module's fixtures (simulator over mutual TLS, the gateway, the test clock), by name.
pki, clock, simulator, gateway = (
    bankid_tests.pki,
    bankid_tests.clock,
    bankid_tests.simulator,
    bankid_tests.gateway,
)
bankid, bankid_on_the_test_clock = bankid_tests.bankid, bankid_tests.bankid_on_the_test_clock

RFA21 = (
    "En identifiering eller underskrift pågår.",
    "An identification or signing is in progress.",
)
RFA22 = ("Något gick fel. Försök igen.", "Something went wrong. Please try again.")

PENDING = {
    "userMrtd": (
        "Fotografera och läs av din ID-handling med BankID-appen.",
        "Take a photo of, and scan, your ID document with the BankID app.",
    ),
    "userFace": (
        "Gör en ansiktsigenkänning i BankID-appen.",
        "Complete the facial recognition in the BankID app.",
    ),
    "userStepUp": (
        "Välj hur du vill bekräfta din identitet i BankID-appen.",
        "Choose how you want to confirm your identity in the BankID app.",
    ),
    "userCallConfirm": RFA21,
    "processing": RFA21,
    "aHintFrom2030": RFA21,
}
FAILED = {
    "userDeclinedCall": RFA22,
    "transactionRiskBlocked": RFA22,
    "notSupportedByUserApp": (
        "Något gick fel. Uppdatera BankID-appen och försök igen.",
        "Something went wrong. Update your BankID app and try again.",
    ),
    "mrtdVerificationFailed": (
        "Kontrollen av din ID-handling misslyckades. Försök igen.",
        "The check of your ID document failed. Please try again.",
    ),
    "facialRecognitionFailed": (
        "Ansiktsigenkänningen misslyckades. Försök igen.",
        "The facial recognition failed. Please try again.",
    ),
    "nfcNotSupportedByDevice": (
        "Din enhet saknar den läsare som behövs för att kontrollera ID-handlingar.",
        "Your device lacks the reader needed to check ID documents.",
    ),
    "multipleBankIdsOnDevice": (
        "Du har flera BankID på din enhet. Du behöver radera alla utom ett BankID för att kunna "
        "slutföra identifieringen. Det gör du under Meny - Inställningar i din BankID-app.",
        "You have more than one BankID on your device. You need to delete all but one of them "
        "to complete the identification. You do that under Menu - Settings in your BankID app.",
    ),
    "stepUpFailed": (
        "Bekräftelsen av din identitet misslyckades. Försök igen.",
        "The confirmation of your identity failed. Please try again.",
    ),
    "aFailureFrom2030": RFA22,
}


def message_after(
    browser: Browser, bankid: BankIDSimulator, behaviour: UserBehaviour
) -> dict[str, dict[str, str]]:
    """The order's state as the page polls it, in Swedish and in English."""
    bankid.behave(behaviour)
    states = {}
    for language in ("sv", "en"):
        page = start(browser, ui_locales=language)
        states[language] = status(browser, page)
    return states


@pytest.mark.parametrize("hint", sorted(PENDING))
def test_each_pending_hint_shows_bankids_message_in_both_languages(
    browser: Browser, bankid: BankIDSimulator, hint: str
) -> None:
    behaviour = UserBehaviour(action="pending", hint_code=hint, acts_on_collect=1)
    states = message_after(browser, bankid, behaviour)
    assert [states[lang]["status"] for lang in ("sv", "en")] == ["pending", "pending"]
    assert (states["sv"]["text"], states["en"]["text"]) == PENDING[hint]


@pytest.mark.parametrize("hint", sorted(FAILED))
def test_each_failed_hint_shows_bankids_message_in_both_languages(
    browser: Browser, bankid: BankIDSimulator, hint: str
) -> None:
    behaviour = UserBehaviour(action="fail", hint_code=hint, acts_on_collect=1)
    states = message_after(browser, bankid, behaviour)
    assert [states[lang]["status"] for lang in ("sv", "en")] == ["failed", "failed"]
    sv, en = FAILED[hint]
    assert states["sv"]["text"].startswith(sv) and states["en"]["text"].startswith(en)
    assert "next" not in states["sv"] and "next" not in states["en"]


@pytest.mark.parametrize("hint", sorted(FAILED))
def test_a_failed_hint_leaves_a_page_with_the_message_and_a_retry(
    browser: Browser, bankid: BankIDSimulator, hint: str
) -> None:
    bankid.behave(UserBehaviour(action="fail", hint_code=hint, acts_on_collect=1))
    page = start(browser)
    status(browser, page)
    failed_page = browser.http.get(page.url)
    assert failed_page.status_code == 200
    assert FAILED[hint][0].split(".")[0] in failed_page.text and "Försök igen" in failed_page.text
    assert hint not in failed_page.text  # the code, let alone the reason, is never shown

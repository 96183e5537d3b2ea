"""BankID's recommended user messages (RFA texts; shared/reference/bankid-rp-v6.md §9 and
bankid-2026-and-ciba.md §1.8) and which one each hintCode and errorCode gets. English here,
Swedish in the gettext catalogue. A hint code we do not know is BankID's own rule: pending is
RFA21, failed is RFA22, never an error of ours."""

from __future__ import annotations


def N_(message: str) -> str:
    return message


RFA: dict[str, str] = {
    "RFA1": N_("Start your BankID app."),
    "RFA3": N_("The action was cancelled. Please try again."),
    "RFA4": N_(
        "An identification or signature is already in progress for your personal identity "
        "number. Please try again."
    ),
    "RFA5": N_("Something went wrong. Please try again."),
    "RFA6": N_("The action was cancelled."),
    "RFA8": N_(
        "The BankID app is not responding. Please check that it’s started and that you have "
        "internet access. Try again."
    ),
    "RFA9": N_("Enter your security code in the BankID app and select Identify or Sign."),
    "RFA13": N_("Trying to start your BankID app."),
    "RFA15A": N_(
        "Searching for BankID. Make sure you have a valid BankID on this computer. If you have a "
        "BankID on card, please insert the card into your card reader."
    ),
    "RFA15B": N_("Searching for BankID. Make sure you have a valid BankID on this device."),
    "RFA16": N_(
        "Your BankID is blocked or too old. Please use another BankID or get a new one from "
        "your bank."
    ),
    "RFA17A": N_(
        "You don't seem to have the BankID app/program. Please install it and get a BankID from "
        "your bank."
    ),
    "RFA17B": N_("Failed to scan the QR code. Start the BankID app and scan the QR code."),
    "RFA21": N_("An identification or signing is in progress."),
    "RFA22": N_("Something went wrong. Please try again."),
    "RFA23": N_("Take a photo of, and scan, your ID document with the BankID app."),
    # RFA24-RFA30: BankID's Swedish texts come from third-party copies of developers.bankid.com
    # (bankid-2026-and-ciba.md §1.8) and no English text was found: both are UNVERIFIED, the
    # English ours. Check them against BankID's own list before relying on the wording.
    "RFA24": N_("Complete the facial recognition in the BankID app."),
    "RFA25": N_("Choose how you want to confirm your identity in the BankID app."),
    "RFA26": N_("The check of your ID document failed. Please try again."),
    "RFA27": N_("The facial recognition failed. Please try again."),
    "RFA28": N_("Your device lacks the reader needed to check ID documents."),
    "RFA29": N_(
        "You have more than one BankID on your device. You need to delete all but one of them "
        "to complete the identification. You do that under Menu - Settings in your BankID app."
    ),
    "RFA30": N_("The confirmation of your identity failed. Please try again."),
    # notSupportedByUserApp has no RFA: RFA22 and what the citizen can do about it (ours).
    "RFA22_UPDATE_APP": N_("Something went wrong. Update your BankID app and try again."),
}

# Pending hint codes after the app has the order (§1.8). `userCallConfirm` belongs to phone
# orders, which have no page of ours; should one reach a web order, RFA21 is BankID's fallback.
PENDING_HINTS = {
    "userSign": "RFA9",
    "userMrtd": "RFA23",
    "userFace": "RFA24",
    "userStepUp": "RFA25",
    "userCallConfirm": "RFA21",
    "processing": "RFA21",
}
# Failed hint codes (§1.8). `transactionRiskBlocked` and `userDeclinedCall` get RFA22 and never
# their reason: whoever is at the browser may be the fraudster BankID stopped.
FAILED_HINTS = {
    "expiredTransaction": "RFA8",
    "certificateErr": "RFA16",
    "userCancel": "RFA6",
    "cancelled": "RFA3",
    "userDeclinedCall": "RFA22",
    "transactionRiskBlocked": "RFA22",
    "notSupportedByUserApp": "RFA22_UPDATE_APP",
    "mrtdVerificationFailed": "RFA26",
    "facialRecognitionFailed": "RFA27",
    "nfcNotSupportedByDevice": "RFA28",
    "multipleBankIdsOnDevice": "RFA29",
    "stepUpFailed": "RFA30",
}


def pending_message(hint_code: str | None, autostarted: bool, mobile: bool) -> str:
    if hint_code in (None, "outstandingTransaction", "noClient"):
        return "RFA13" if autostarted and hint_code != "noClient" else "RFA1"
    if hint_code == "started":
        return "RFA15B" if mobile else "RFA15A"
    return PENDING_HINTS.get(hint_code or "", "RFA21")


def failed_message(hint_code: str | None, autostarted: bool) -> str:
    if hint_code == "startFailed":
        return "RFA17A" if autostarted else "RFA17B"
    return FAILED_HINTS.get(hint_code or "", "RFA22")


def error_message(error_code: str) -> str:
    """§5: what the citizen sees when BankID answers an error instead of an order."""
    code = error_code.lower()
    if code == "alreadyinprogress":
        return "RFA4"
    if code in ("requesttimeout", "internalerror", "maintenance", "toomanyrequests", "unreachable"):
        return "RFA5"
    return "RFA22"

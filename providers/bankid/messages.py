"""BankID's recommended user messages (RFA texts; shared/reference/bankid-rp-v6.md §9) and which
one each hintCode and errorCode gets. English here, Swedish in the gettext catalogue."""

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
}


def pending_message(hint_code: str | None, autostarted: bool, mobile: bool) -> str:
    if hint_code in (None, "outstandingTransaction", "noClient"):
        return "RFA13" if autostarted and hint_code != "noClient" else "RFA1"
    return {
        "started": "RFA15B" if mobile else "RFA15A",
        "userSign": "RFA9",
        "userMrtd": "RFA23",
    }.get(hint_code, "RFA21")


def failed_message(hint_code: str | None, autostarted: bool) -> str:
    if hint_code == "startFailed":
        return "RFA17A" if autostarted else "RFA17B"
    return {
        "expiredTransaction": "RFA8",
        "certificateErr": "RFA16",
        "userCancel": "RFA6",
        "cancelled": "RFA3",
    }.get(hint_code or "", "RFA22")


def error_message(error_code: str) -> str:
    """§5: what the citizen sees when BankID answers an error instead of an order."""
    code = error_code.lower()
    if code == "alreadyinprogress":
        return "RFA4"
    if code in ("requesttimeout", "internalerror", "maintenance", "toomanyrequests", "unreachable"):
        return "RFA5"
    return "RFA22"

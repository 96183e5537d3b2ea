"""What the wallet's page says to the citizen: English here, Swedish in the gateway's gettext
catalogue. One text per state of the login, and one per reason a presentation is refused."""

from __future__ import annotations


def N_(message: str) -> str:
    return message


STATE_TEXTS: dict[str, str] = {
    "pending": N_("Open your wallet app to share your identity data with the e-service."),
    "fetched": N_(
        "Your wallet has opened the request. Check what is asked for, then approve it in the "
        "wallet."
    ),
    "answered_elsewhere": N_(
        "Your wallet has answered. Continue in the browser window your wallet opened."
    ),
    "complete": N_("Your wallet has answered. Logging you in…"),
    "expired": N_("The request to your wallet has expired. Try again."),
    "declined": N_("You declined in your wallet. Nothing was shared."),
    "wallet_error": N_(
        "Your wallet could not answer the request. Try again, or choose another e-ID."
    ),
}

# PresentationError.reason -> the citizen's text.
REFUSAL_TEXTS: dict[str, str] = {
    "wallet_invalid": N_(
        "Your wallet's answer could not be verified, so it cannot be used. Try again, or choose "
        "another e-ID."
    ),
    "wallet_untrusted": N_(
        "Your wallet's identity data (PID) comes from a provider we do not trust, so it cannot "
        "be used here. Choose another e-ID."
    ),
    "wallet_expired": N_(
        "The identity data (PID) in your wallet has expired. Renew it in your wallet, or choose "
        "another e-ID."
    ),
    "wallet_revoked": N_(
        "The identity data (PID) in your wallet has been revoked or suspended by its issuer. "
        "Choose another e-ID."
    ),
    "wallet_status_unknown": N_(
        "We could not check that the identity data in your wallet is still valid. Try again in "
        "a few minutes, or choose another e-ID."
    ),
    "wallet_no_identifier": N_(
        "The identity data in your wallet has no identity number we can log you in with. Choose "
        "another e-ID."
    ),
}

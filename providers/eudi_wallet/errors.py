"""Why a wallet's presentation is refused. The verifier raises these without knowing which
login they belong to; the provider turns each into the `ProviderError` of the login, and the
citizen's message by `reason`. `detail` is for the log: never the presentation, a claim value
or a nonce."""

from __future__ import annotations

from typing import ClassVar


class PresentationError(Exception):
    """The presentation cannot be used to log anyone in."""

    reason: ClassVar[str] = "wallet_invalid"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidPresentation(PresentationError):
    """Malformed, tampered with, or not bound to this request: a signature, digest, nonce,
    audience, `sd_hash` or encryption check failed, or the shape is not what was asked."""


class UntrustedIssuer(PresentationError):
    """The PID's issuer (or its status list's signer) does not chain to the trust list."""

    reason = "wallet_untrusted"


class CredentialExpired(PresentationError):
    """The PID is not valid now (`exp`, `nbf`, or its certificate's validity)."""

    reason = "wallet_expired"


class CredentialRevoked(PresentationError):
    """The PID's status list says it is revoked or suspended."""

    reason = "wallet_revoked"


class StatusUnknown(PresentationError):
    """The PID's status list could not be fetched or verified: its status cannot be known, and
    an unknown status refuses the login (TSL §8.3)."""

    reason = "wallet_status_unknown"


class NoIdentifier(PresentationError):
    """The PID gives no stable identifier of the person (no `personal_administrative_number`),
    or its identity is ambiguous: no one is logged in on names and a birth date alone."""

    reason = "wallet_no_identifier"

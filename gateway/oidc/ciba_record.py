"""A backchannel authentication request between its acknowledgement and its tokens (CIBA Core
1.0 §7.3, §10.1): one store record per `auth_req_id`, found by the id's hash only, so that the
store never holds a value a client could poll with."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import Any

from authlib.oauth2.rfc6749.errors import OAuth2Error

from providers.records import StoreRecord

# BankID's phone order lives about as long (Idura answers expires_in 120 in front of it).
MAX_EXPIRY_SECONDS = 120
# CIBA §7.3: the default interval; BankID is collected every 2 s at most, so never below 2.
POLL_INTERVAL_SECONDS = 5
SLOW_DOWN_SECONDS = 5  # CIBA §11: slow_down grows the interval by 5 s for every later poll
# An expired request is kept this much longer, so that it is answered `expired_token` (and
# cancelled upstream) rather than `invalid_grant` as an unknown one would be.
KEPT_AFTER_EXPIRY_SECONDS = 60


class InvalidBindingMessageError(OAuth2Error):
    """CIBA §13: the binding_message is invalid or unacceptable."""

    error = "invalid_binding_message"


class InvalidAuthorizationDetailsError(OAuth2Error):
    """RFC 9396 §5: authorization_details is malformed or names what we do not offer."""

    error = "invalid_authorization_details"


class UpstreamUnavailableError(OAuth2Error):
    """The e-ID provider cannot be reached now (no CIBA code fits; RFC 6749's own)."""

    error = "temporarily_unavailable"
    status_code = 503


def record_key(auth_req_id: str) -> str:
    return f"ciba:{hashlib.sha256(auth_req_id.encode()).hexdigest()}"


@dataclass(frozen=True)
class BackchannelRecord(StoreRecord):
    """What the gateway knows of one request: who asked, whom it hinted, which provider runs it
    under which handle, when it expires and when the client may poll next (epoch seconds)."""

    TUPLE_FIELDS = ("scopes", "acr_values")

    client_id: str
    provider: str
    handle: str
    person: str  # the hinted personal identity number: the ID token must be for this one
    scopes: tuple[str, ...]
    acr_values: tuple[str, ...]
    call_initiator: str
    expires_at: int
    next_poll_at: int
    interval: int = POLL_INTERVAL_SECONDS
    # A caller signs (Signature Extension §3.1): the validated signRequest, as /authorize keeps it.
    sign_request: dict[str, Any] | None = None

    def ttl(self, now: int) -> int:
        """How long the store keeps it from `now`: past its expiry by a grace period."""
        return max(self.expires_at - now, 0) + KEPT_AFTER_EXPIRY_SECONDS

    def polled(self, now: int) -> BackchannelRecord:
        """Polled in time: the next poll is due one interval from now."""
        return replace(self, next_poll_at=now + self.interval)

    def slowed_down(self, now: int) -> BackchannelRecord:
        """Polled too early: the interval grows for this and every later poll (CIBA §11)."""
        interval = self.interval + SLOW_DOWN_SECONDS
        return replace(self, interval=interval, next_poll_at=now + interval)

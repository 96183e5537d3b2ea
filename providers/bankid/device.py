"""What BankID's `web` object says of the browser (bankid-2026-and-ciba.md §1.4).

`deviceIdentifier`: "a cookie value or its hash, not tied to one user". A random id in a
long-lived cookie of its own, signed so that a browser cannot choose another device's id; BankID
gets its SHA-256 (64 hex characters, BankID's limit). It is never the session's or the login's
cookie, which change with every login or day.

`referringDomain`: the domain that starts the app, in BankID's alphabet (`0-9 a-z . -`, an IDN
as punycode, 3-253 characters): the configured `referring_domain`, else the host name of the
gateway's own address. A host that cannot be written so (an IPv6 address) is left out rather
than sent wrong. `userAgent`: the browser's header, cut to BankID's 256 characters."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, Signer
from starlette.requests import Request
from starlette.responses import Response

DEVICE_COOKIE_SECONDS = 400 * 86400  # the longest a browser keeps a cookie (RFC 6265bis)
REFERRING_DOMAIN = re.compile(r"[0-9a-z.-]{3,253}")
USER_AGENT_LIMIT = 256


def referring_domain(host: str) -> str | None:
    """`host` as BankID takes a referringDomain (lower case, punycode); None when it cannot be."""
    try:
        ascii_host = host.rstrip(".").encode("idna").decode("ascii").lower()
    except UnicodeError:  # a label too long, or characters IDNA refuses
        return None
    return ascii_host if REFERRING_DOMAIN.fullmatch(ascii_host) else None


def web_data(domain: str | None, user_agent: str, device_identifier: str) -> dict[str, str]:
    """§1.4 `web`: the members that can be sent (at least deviceIdentifier), none empty."""
    web = {"deviceIdentifier": device_identifier}
    if domain:
        web["referringDomain"] = domain
    if user_agent:
        web["userAgent"] = user_agent[:USER_AGENT_LIMIT]
    return web


@dataclass(frozen=True)
class Device:
    identifier: str  # what BankID is sent: 64 hex characters
    cookie: str  # the signed cookie value that names it


class DeviceCookie:
    def __init__(self, provider: str, secret: bytes, secure: bool) -> None:
        self.name = f"pv_device_{provider}"
        self._signer = Signer(secret, salt="portvakt.bankid.device")
        self._secure = secure

    def of(self, request: Request) -> Device:
        """This browser's device, or a new one when it has none (or a forged one)."""
        device_id = self._unsigned(request.cookies.get(self.name, ""))
        if device_id is None:
            device_id = secrets.token_urlsafe(24)
        signed = self._signer.sign(device_id).decode()
        return Device(hashlib.sha256(device_id.encode()).hexdigest(), signed)

    def remember(self, response: Response, device: Device) -> None:
        """Set (or refresh) the cookie, so that an id in use keeps living."""
        response.set_cookie(
            self.name,
            device.cookie,
            max_age=DEVICE_COOKIE_SECONDS,
            path="/",
            secure=self._secure,
            httponly=True,
            samesite="lax",
        )

    def _unsigned(self, raw: str) -> str | None:
        try:
            return self._signer.unsign(raw).decode() if raw else None
        except (BadSignature, UnicodeDecodeError):
            return None

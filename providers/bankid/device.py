"""The browser's own device identifier for BankID's `web.deviceIdentifier` (bankid-rp-v6.md §2.1):
"a cookie value or its hash, not tied to one user". A random id in a long-lived cookie of its own,
signed so that a browser cannot choose another device's id; BankID gets its SHA-256. It is never
the session's or the login's cookie, which change with every login or day."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, Signer
from starlette.requests import Request
from starlette.responses import Response

DEVICE_COOKIE_SECONDS = 400 * 86400  # the longest a browser keeps a cookie (RFC 6265bis)


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

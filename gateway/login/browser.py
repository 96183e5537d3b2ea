"""Which browser a pending login belongs to, and CSRF tokens for its forms.

The browser cookie holds only a random id signed with itsdangerous; the login itself stays in the
store. A login finished in another browser than the one that started it is refused, and every
form of a login carries a token bound to both the login and the browser.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from itsdangerous import BadSignature, Signer
from starlette.requests import Request
from starlette.responses import Response

BROWSER_COOKIE = "pv_browser"
BROWSER_COOKIE_MAX_AGE = 86400


class BrowserBinding:
    """Implements `providers.base.FormGuard` and the browser cookie."""

    def __init__(self, secret_key: str, secure: bool) -> None:
        self._signer = Signer(secret_key, salt="portvakt.browser")
        self._form_key = hashlib.sha256(f"portvakt.form:{secret_key}".encode()).digest()
        self._secure = secure

    def browser_id(self, request: Request) -> str | None:
        assigned: str | None = getattr(request.state, "browser_id", None)
        if assigned is not None:  # set on this very request, before the cookie reaches the browser
            return assigned
        raw = request.cookies.get(BROWSER_COOKIE)
        if not raw:
            return None
        try:
            return self._signer.unsign(raw).decode()
        except BadSignature:
            return None

    def ensure_browser_id(self, request: Request) -> tuple[str, bool]:
        """The browser's id, and whether it is new (then `set_cookie` must go on the response)."""
        existing = self.browser_id(request)
        if existing is not None:
            return existing, False
        request.state.browser_id = secrets.token_urlsafe(16)
        return request.state.browser_id, True

    def set_cookie(self, response: Response, browser_id: str) -> None:
        response.set_cookie(
            BROWSER_COOKIE,
            self._signer.sign(browser_id).decode(),
            max_age=BROWSER_COOKIE_MAX_AGE,
            path="/",
            secure=self._secure,
            httponly=True,
            samesite="lax",
        )

    def token(self, request: Request, login_id: str) -> str:
        browser = self.browser_id(request) or ""
        message = f"{login_id}|{browser}".encode()
        return hmac.new(self._form_key, message, hashlib.sha256).hexdigest()

    def verify(self, request: Request, login_id: str, token: str) -> bool:
        if not login_id or self.browser_id(request) is None:
            return False
        # As bytes: compare_digest refuses str with non-ASCII characters (TypeError).
        return hmac.compare_digest(self.token(request, login_id).encode(), token.encode())

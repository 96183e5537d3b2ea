"""What the citizen's browser remembers between logins, with no personal data: the language it
switched to, the e-ID chosen last time (to offer it first) and the e-service that started the
latest login (so that a page about an expired login can still lead back to it)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

LAST_EID_COOKIE = "pv_last_eid"
LAST_SERVICE_COOKIE = "pv_service"
REMEMBER_SECONDS = 365 * 86400


def recall(request: Request, cookie: str) -> str | None:
    return request.cookies.get(cookie) or None


def remember(response: Response, cookie: str, value: str, secure: bool) -> None:
    response.set_cookie(
        cookie,
        value,
        max_age=REMEMBER_SECONDS,
        path="/",
        secure=secure,
        httponly=True,
        samesite="lax",
    )

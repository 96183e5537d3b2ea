"""Security headers on every response, as a plain ASGI middleware (Starlette's S1 pattern)."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; frame-ancestors 'none'"
)


class SecurityHeaders:
    """Strict CSP (no inline script or style), no framing, no referrer, no caching by default.
    A header the response set already is kept. The headers are encoded once, here."""

    def __init__(self, app: ASGIApp, hsts: bool) -> None:
        self.app = app
        headers = {
            "content-security-policy": CONTENT_SECURITY_POLICY,
            "x-content-type-options": "nosniff",
            "x-frame-options": "DENY",
            "referrer-policy": "no-referrer",
            "cross-origin-opener-policy": "same-origin",
        }
        if hsts:
            headers["strict-transport-security"] = "max-age=31536000"
        self._static = [(name.encode(), value.encode()) for name, value in headers.items()]
        self._dynamic = [*self._static, (b"cache-control", b"no-store")]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        defaults = self._static if scope["path"].startswith("/static/") else self._dynamic

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = with_defaults(message.get("headers", ()), defaults)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def with_defaults(
    headers: Iterable[tuple[bytes, bytes]], defaults: list[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    """`headers` and each default whose name they lack (ASGI names are lower-case bytes, as
    Starlette's own `MutableHeaders.setdefault` compares them)."""
    raw = list(headers)
    present = {name for name, _ in raw}
    raw.extend(header for header in defaults if header[0] not in present)
    return raw

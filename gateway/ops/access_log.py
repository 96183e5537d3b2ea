"""One log line per request: method, path, status and milliseconds, never the query string
(it can carry a login_hint with an identity number, a code or a state)."""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.ops.metrics import Metrics

log = logging.getLogger("portvakt.access")


class AccessLog:
    """Also feeds the latency histogram, labelled by the route's template (no ids in labels)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self._latency = metrics.request_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            elapsed = time.perf_counter() - started
            log.info(
                "%s %s %d %.1fms", scope["method"], _path(scope["path"]), status, elapsed * 1000
            )
            self._latency.labels(_route(scope), scope["method"]).observe(elapsed)


def _route(scope: Scope) -> str:
    """The matched route's template, under its mounts: /providers/{name}/acs, /login/{login_id}."""
    route = scope.get("route")
    template = getattr(route, "path", None)
    if template is None:
        return "unmatched"
    return f"{scope.get('root_path', '')}{template}"


def _path(path: str) -> str:
    """Pending-login ids in paths are bearer values for a few minutes: keep only a prefix."""
    parts = path.split("/")
    if len(parts) > 2 and parts[1] == "login":
        parts[2] = parts[2][:6] + "…"
    return "/".join(parts)

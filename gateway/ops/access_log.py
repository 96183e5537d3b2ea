"""One log line per request: method, path, status and milliseconds, never the query string
(gateway/ops/paths.py). With tracing on, the line is written inside the request's server span,
so it names the trace, and the span is named here by the route the request took."""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.ops.metrics import Metrics
from gateway.ops.paths import loggable_path, route_template
from gateway.ops.spans import name_server_span

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
                # before the body: the span ends with the response's last message
                name_server_span(scope, route_template(scope))
            await send(message)

        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            elapsed = time.perf_counter() - started
            log.info(
                "%s %s %d %.1fms",
                scope["method"],
                loggable_path(scope["path"]),
                status,
                elapsed * 1000,
            )
            self._latency.labels(route_template(scope), scope["method"]).observe(elapsed)

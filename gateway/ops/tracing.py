"""OpenTelemetry traces (opentelemetry-sdk, the Starlette instrumentation, OTLP over HTTP), off
unless `tracing.enabled` is set in the YAML.

One trace per login. /authorize starts it and leaves its W3C `traceparent` in a cookie
(`portvakt_trace`, for the login's lifetime, dropped when the code is issued); the citizen's
later requests of that login bring it back, and `JoinLoginTrace` hands it to the
instrumentation as if the browser had sent a `traceparent` header. Within each request there are
spans for the provider's start and finish (gateway/login/flow.py), each call to an upstream and
each store operation (gateway/ops/spans.py). Requests that do not come from the citizen's
browser with our cookie (a cross-site SAML POST, a wallet's POST from the phone) are traces of
their own; the step that follows in the browser joins the login's trace again.

The cookie holds a trace context, not a secret: a forged one files the sender's own requests
under another trace id, as a `traceparent` header could anyway.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.trace import NoOpTracer, Tracer
from starlette.requests import cookie_parser
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.ops.spans import TracedStore, TracedUpstream, scrub_server_span
from gateway.settings import TracingSettings
from providers.base import Store, UpstreamObserver

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from starlette.applications import Starlette

TRACE_COOKIE = "portvakt_trace"
TRACEPARENT = re.compile(r"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")
TRACER_NAME = "portvakt"
ObserverFactory = Callable[[str], UpstreamObserver]


class Tracing:
    """The app's tracer provider (None when tracing is off) and what it instruments."""

    def __init__(
        self, settings: TracingSettings, login_ttl_seconds: int, secure_cookies: bool
    ) -> None:
        self.provider: TracerProvider | None = None
        self.tracer: Tracer = NoOpTracer()
        self._login_ttl = login_ttl_seconds
        self._secure = secure_cookies
        if settings.enabled:
            self.provider = tracer_provider(settings)
            self.tracer = self.provider.get_tracer(TRACER_NAME)

    def instrument(self, app: Starlette) -> None:
        """Server spans from the Starlette instrumentation, outside every other middleware so
        the access log is written inside them; the login's trace joined outside that."""
        if self.provider is None:
            return
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
        from opentelemetry.instrumentation.starlette import StarletteInstrumentor

        StarletteInstrumentor.instrument_app(
            app, server_request_hook=scrub_server_span, tracer_provider=self.provider
        )
        for entry in app.user_middleware:
            middleware: object = entry.cls
            if middleware is OpenTelemetryMiddleware:
                # one span per request: its ASGI send/receive events are no incident's story
                entry.kwargs["exclude_spans"] = ["receive", "send"]
        app.add_middleware(JoinLoginTrace)

    def store(self, store: Store, system: str) -> Store:
        return store if self.provider is None else TracedStore(store, self.tracer, system)

    def upstream(self, observers: ObserverFactory) -> ObserverFactory:
        if self.provider is None:
            return observers
        tracer = self.tracer
        return lambda provider: TracedUpstream(observers(provider), tracer, provider)

    def remember_login(self, response: Response) -> None:
        """/authorize's answer: the login's later requests join this request's trace."""
        if self.provider is None:
            return
        context = trace.get_current_span().get_span_context()
        if not context.is_valid:
            return
        response.set_cookie(
            TRACE_COOKIE,
            traceparent(context),
            max_age=self._login_ttl,
            httponly=True,
            samesite="lax",
            secure=self._secure,
        )

    def forget_login(self, response: Response) -> None:
        if self.provider is not None:
            response.delete_cookie(TRACE_COOKIE, httponly=True, samesite="lax", secure=self._secure)

    async def aclose(self) -> None:
        """Sends what is still queued (within the exporter's timeout), then stops."""
        if self.provider is not None:
            await asyncio.to_thread(self.provider.shutdown)


def tracer_provider(settings: TracingSettings) -> TracerProvider:
    """Imported here: with tracing off, the SDK and protobuf are never loaded."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    provider = TracerProvider(
        resource=Resource.create({"service.name": settings.service_name}),
        sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio)),
    )
    exporter = OTLPSpanExporter(
        endpoint=settings.endpoint,
        headers=dict(settings.headers),
        timeout=settings.timeout_seconds,
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def traceparent(context: trace.SpanContext) -> str:
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


class JoinLoginTrace:
    """A browser request without a `traceparent` header but with the login's trace cookie
    continues that trace."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = scope["headers"]
            names = {name for name, _ in headers}
            if b"traceparent" not in names and b"cookie" in names:
                joined = _login_trace(headers)
                if joined is not None:
                    scope = {**scope, "headers": [*headers, (b"traceparent", joined.encode())]}
        await self.app(scope, receive, send)


def _login_trace(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == b"cookie":
            found = cookie_parser(value.decode("latin-1")).get(TRACE_COOKIE)
            if found is not None and TRACEPARENT.fullmatch(found):
                return found
    return None

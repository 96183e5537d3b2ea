"""The spans Portvakt makes itself, and what it takes out of the instrumentation's: nothing in
them names a person or carries a bearer value (a code, a state, a pending login's id, a store
key, a query string)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from starlette.types import Scope

from gateway.ops.paths import UNMATCHED, loggable_path
from providers.base import Store, UpstreamObserver

# Where the ASGI instrumentation puts the URL (old and new semantic conventions alike).
URL_ATTRIBUTES = ("http.url", "url.full", "http.target", "url.path", "url.query")


def scrub_server_span(span: Span, scope: dict[str, Any]) -> None:
    """At the server span's start: its URL without the query string, and a pending login's id
    in the path cut as in the access log."""
    if span.is_recording():
        _rewrite_url(span, scope, loggable_path(str(scope.get("path", ""))))


def name_server_span(scope: Scope, route: str) -> None:
    """At the request's end, when routing is done: the server span named by the full route
    template (the instrumentation sees only a mount's own path), which is also its URL's path,
    so no id in a path stays in it."""
    current = trace.get_current_span()
    if not current.is_recording() or route == UNMATCHED:
        return
    current.update_name(f"{scope['method']} {route}")
    current.set_attribute("http.route", route)
    _rewrite_url(current, scope, route)


def _rewrite_url(span: Span, scope: Scope, path: str) -> None:
    attributes = getattr(span, "attributes", None) or {}
    for name in URL_ATTRIBUTES:
        value = attributes.get(name)
        if value is None:
            continue
        if name == "url.query":
            span.set_attribute(name, "")
        elif name in ("http.url", "url.full"):
            origin = str(value).split("?", 1)[0].removesuffix(str(scope.get("path", "")))
            span.set_attribute(name, f"{origin}{path}")
        else:
            span.set_attribute(name, path)


@contextmanager
def span(
    tracer: Tracer, name: str, attributes: dict[str, Any], kind: SpanKind = SpanKind.INTERNAL
) -> Iterator[Span]:
    """A span whose failure is told by the exception's type alone: exception messages (a
    provider error's carries the login's id, an upstream's answer) stay out of traces."""
    with tracer.start_as_current_span(
        name, kind=kind, attributes=attributes, record_exception=False,
        set_status_on_exception=False,
    ) as current:  # fmt: skip
        try:
            yield current
        except Exception as error:
            current.set_attribute("error.type", type(error).__name__)
            current.set_status(Status(StatusCode.ERROR))
            raise


class TracedUpstream:
    """A span for each upstream call a provider reports (`ProviderServices.upstream`), drawn
    after the fact from its duration, in the context of the request that made it."""

    def __init__(self, observer: UpstreamObserver, tracer: Tracer, provider: str) -> None:
        self._observer = observer
        self._tracer = tracer
        self._provider = provider

    def observe(self, operation: str, seconds: float, outcome: str) -> None:
        self._observer.observe(operation, seconds, outcome)
        ended = time.time_ns()
        span = self._tracer.start_span(
            f"{self._provider} {operation}",
            kind=SpanKind.CLIENT,
            start_time=ended - int(seconds * 1e9),
            attributes={
                "portvakt.provider": self._provider,
                "portvakt.upstream.operation": operation,
                "portvakt.upstream.outcome": outcome,
            },
        )
        if outcome == "error":
            span.set_status(Status(StatusCode.ERROR))
        span.end(end_time=ended)


class TracedStore:
    """A span for each store operation, which is one round trip to Redis; never its keys."""

    def __init__(self, store: Store, tracer: Tracer, system: str) -> None:
        self._store = store
        self._tracer = tracer
        self._system = system

    @contextmanager
    def _span(self, operation: str, records: int = 1) -> Iterator[None]:
        attributes = {
            "db.system.name": self._system,
            "db.operation.name": operation,
            "db.operation.batch.size": records,
        }
        with span(self._tracer, f"store {operation}", attributes, SpanKind.CLIENT):
            yield

    async def put(self, key: str, value: bytes, ttl: int) -> None:
        with self._span("put"):
            await self._store.put(key, value, ttl)

    async def put_many(self, records: Sequence[tuple[str, bytes, int]]) -> None:
        with self._span("put_many", len(records)):
            await self._store.put_many(records)

    async def get(self, key: str) -> bytes | None:
        with self._span("get"):
            return await self._store.get(key)

    async def add(self, key: str, value: bytes, ttl: int) -> bool:
        with self._span("add"):
            return await self._store.add(key, value, ttl)

    async def take(self, key: str) -> bytes | None:
        with self._span("take"):
            return await self._store.take(key)

    async def put_many_then_take(
        self,
        records: Sequence[tuple[str, bytes, int]],
        key: str,
        once_taken: Sequence[tuple[str, bytes, int]] = (),
    ) -> bytes | None:
        with self._span("put_many_then_take", len(records) + 1 + len(once_taken)):
            return await self._store.put_many_then_take(records, key, once_taken)

    async def delete(self, key: str) -> None:
        with self._span("delete"):
            await self._store.delete(key)

    async def count(self, keys: Sequence[str], ttl: int) -> list[int]:
        with self._span("count", len(keys)):
            return await self._store.count(keys, ttl)

    async def count_then_take(
        self, keys: Sequence[str], ttl: int, key: str
    ) -> tuple[list[int], bytes | None]:
        with self._span("count_then_take", len(keys) + 1):
            return await self._store.count_then_take(keys, ttl, key)

    async def put_many_then_count(
        self, records: Sequence[tuple[str, bytes, int]], keys: Sequence[str], ttl: int
    ) -> list[int]:
        with self._span("put_many_then_count", len(records) + len(keys)):
            return await self._store.put_many_then_count(records, keys, ttl)

    async def ping(self) -> None:
        with self._span("ping"):
            await self._store.ping()

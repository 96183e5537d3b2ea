"""Prometheus metrics at /metrics (prometheus-client), one registry per app.

Counted where things happen: logins started (flow), completed (flow) and failed (the error
handlers), store errors (the error handler), whether the store answered the last /readyz
(`portvakt_store_up`), request latency per route template (the access-log
middleware, never a raw path with ids in it), and upstream call latency per provider and
operation (the providers, through `ProviderServices.upstream`). Read at scrape time from the
providers: whether each can log anyone in (the same answer the chooser and /readyz get), and,
from those that report their health, the age of their upstream metadata, when it stops being valid
and when their certificates expire.

Under `portvakt serve --workers N` the counters and histograms of every worker are summed at
scrape time (prometheus-client's multiprocess mode, PROMETHEUS_MULTIPROC_DIR set by `serve`), so
whichever worker answers /metrics reports the whole server.
"""

from __future__ import annotations

import os
import time
from collections.abc import ItemsView, Iterator
from typing import Protocol

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

from providers.base import Provider, ReportsHealth

MULTIPROCESS_DIRECTORY = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class WatchedProviders(Protocol):
    """The providers and whether each can log anyone in (`gateway.login.registry.Providers`)."""

    def items(self) -> ItemsView[str, Provider]: ...
    def problem(self, name: str) -> str | None: ...


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.exposition = self.registry
        if os.environ.get(MULTIPROCESS_DIRECTORY):
            self.exposition = CollectorRegistry()
            MultiProcessCollector(self.exposition)  # type: ignore[no-untyped-call]
        self.logins_started = Counter(
            "portvakt_logins_started",
            "Logins sent to an upstream e-ID provider",
            ["provider"],
            registry=self.registry,
        )
        self.logins_completed = Counter(
            "portvakt_logins_completed",
            "Logins that ended with a code for the e-service",
            ["provider", "loa"],
            registry=self.registry,
        )
        self.logins_failed = Counter(
            "portvakt_logins_failed",
            "Logins that failed, by provider and the citizen's reason",
            ["provider", "reason"],
            registry=self.registry,
        )
        self.store_errors = Counter(
            "portvakt_store_errors",
            "Requests refused because the store failed",
            registry=self.registry,
        )
        # Set by each /readyz (the orchestrator's probe), so it is fresh while no citizen comes;
        # the counter above only moves when a request needed the store.
        self.store_up = Gauge(
            "portvakt_store_up",
            "1 when the last store check of /readyz succeeded, 0 when it failed",
            registry=self.registry,
            multiprocess_mode="livemostrecent",
        )
        self.request_seconds = Histogram(
            "portvakt_http_request_duration_seconds",
            "Time to answer a request, by route template",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.upstream_seconds = Histogram(
            "portvakt_upstream_request_duration_seconds",
            "Time of calls to upstream e-ID providers, by provider and operation",
            ["provider", "operation", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def watch(self, providers: WatchedProviders) -> None:
        self.exposition.register(ProviderState(providers))

    def upstream(self, provider: str) -> UpstreamTimer:
        return UpstreamTimer(self, provider)

    async def endpoint(self, _request: Request) -> Response:
        return Response(generate_latest(self.exposition), media_type=CONTENT_TYPE_LATEST)


class UpstreamTimer:
    """One provider's view: `observe(operation, seconds, outcome)`."""

    def __init__(self, metrics: Metrics, provider: str) -> None:
        self._histogram = metrics.upstream_seconds
        self._provider = provider

    def observe(self, operation: str, seconds: float, outcome: str) -> None:
        self._histogram.labels(self._provider, operation, outcome).observe(seconds)


class ProviderState(Collector):
    """Gauges read from the providers at scrape time."""

    def __init__(self, providers: WatchedProviders) -> None:
        self._providers = providers

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "portvakt_provider_up", "1 when the provider can log citizens in", labels=["provider"]
        )
        age = GaugeMetricFamily(
            "portvakt_metadata_age_seconds",
            "Seconds since the provider's upstream metadata was last loaded",
            labels=["provider"],
        )
        valid_until = GaugeMetricFamily(
            "portvakt_metadata_valid_until_timestamp_seconds",
            "When the provider's upstream metadata stops being valid (Unix time, validUntil)",
            labels=["provider"],
        )
        expiry = GaugeMetricFamily(
            "portvakt_certificate_expiry_timestamp_seconds",
            "When a certificate the provider uses expires (Unix time)",
            labels=["provider", "certificate"],
        )
        now = time.time()
        for name, provider in self._providers.items():
            up.add_metric([name], 0.0 if self._providers.problem(name) else 1.0)
            if not isinstance(provider, ReportsHealth):
                continue
            loaded_at = provider.metadata_loaded_at
            if loaded_at is not None:
                age.add_metric([name], now - loaded_at)
            if provider.metadata_valid_until is not None:
                valid_until.add_metric([name], provider.metadata_valid_until)
            for label, not_after in provider.certificates().items():
                expiry.add_metric([name, label], not_after)
        yield from (up, age, valid_until, expiry)

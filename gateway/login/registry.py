"""Builds one provider per `providers:` entry from its type's row, and owns what is known of
their health: the chooser, /readyz and /metrics all ask `Providers.problem`."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from gateway.login.upstream_health import UpstreamHealth, WatchedUpstream
from gateway.settings import Settings
from providers.base import (
    EndUpstreamSession,
    FormGuard,
    HasLifecycle,
    NamespacedStore,
    Pages,
    Provider,
    ProviderServices,
    ReportsHealth,
    Store,
    UpstreamObserver,
)
from providers.registry import PROVIDER_TYPES


class Providers(Mapping[str, Provider]):
    """The configured providers by name, with the one answer to whether each can log anyone
    in now: its own report (metadata not loaded) or its upstream's breaker."""

    def __init__(
        self, providers: Mapping[str, Provider], breakers: Mapping[str, UpstreamHealth]
    ) -> None:
        self._providers = dict(providers)
        self._breakers = dict(breakers)

    def __getitem__(self, name: str) -> Provider:
        return self._providers[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._providers)

    def __len__(self) -> int:
        return len(self._providers)

    def problem(self, name: str) -> str | None:
        """What keeps provider `name` from logging anyone in now, or None."""
        provider = self._providers[name]
        own = provider.problem if isinstance(provider, ReportsHealth) else None
        breaker = self._breakers.get(name)
        return own or (breaker.problem if breaker is not None else None)

    async def astart(self) -> None:
        for provider in self._providers.values():
            if isinstance(provider, HasLifecycle):
                await provider.astart()

    async def aclose(self) -> None:
        for provider in self._providers.values():
            if isinstance(provider, HasLifecycle):
                await provider.aclose()


@dataclass(frozen=True)
class GatewayServices:
    """What the gateway shares with every provider; each gets its own view of it."""

    store: Store
    pages: Pages
    forms: FormGuard
    upstream_metrics: Callable[[str], UpstreamObserver]
    end_upstream_session: EndUpstreamSession
    clock: Callable[[], float] = time.time  # the app's one clock (tests move it)


def build_providers(settings: Settings, shared: GatewayServices, secret_key: str) -> Providers:
    """One provider per entry, each with its upstream health watched."""
    providers: dict[str, Provider] = {}
    breakers: dict[str, UpstreamHealth] = {}
    for name, config in settings.providers.items():
        breakers[name] = UpstreamHealth()
        services = ProviderServices(
            name=name,
            store=NamespacedStore(shared.store, f"p:{name}:"),
            pages=shared.pages,
            forms=shared.forms,
            base_url=settings.issuer,
            environment=settings.environment,
            secret=provider_secret(secret_key, name),
            upstream=WatchedUpstream(shared.upstream_metrics(name), breakers[name]),
            end_upstream_session=shared.end_upstream_session,
            clock=shared.clock,
        )
        providers[name] = PROVIDER_TYPES[config.type].build(config, services)
    return Providers(providers, breakers)


def provider_secret(secret_key: str, name: str) -> bytes:
    """A key of the provider's own, so that no provider holds the gateway's secret_key."""
    return hmac.new(
        secret_key.encode(), f"portvakt.provider:{name}".encode(), hashlib.sha256
    ).digest()

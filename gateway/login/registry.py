"""Builds one provider object per `providers:` entry from its type."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Any

from gateway.login.upstream_health import UpstreamHealth, WatchedUpstream
from gateway.ops.metrics import Metrics
from gateway.settings import Settings
from providers.bankid.provider import BankIDProvider
from providers.base import FormGuard, NamespacedStore, Pages, Provider, ProviderServices, Store
from providers.oidc import OidcProvider
from providers.saml.provider import SamlProvider
from providers.sandbox import SandboxProvider

PROVIDER_CLASSES: dict[str, Callable[[Any, ProviderServices], Provider]] = {
    "sandbox": SandboxProvider,
    "bankid": BankIDProvider,
    "saml": SamlProvider,
    "oidc": OidcProvider,
}


def build_providers(
    settings: Settings,
    store: Store,
    pages: Pages,
    forms: FormGuard,
    metrics: Metrics,
    health: dict[str, UpstreamHealth],
    secret_key: str,
) -> dict[str, Provider]:
    """One provider per entry; `health` gets each provider's upstream health record."""
    providers: dict[str, Provider] = {}
    for name, config in settings.providers.items():
        health[name] = UpstreamHealth()
        services = ProviderServices(
            name=name,
            store=NamespacedStore(store, f"p:{name}:"),
            pages=pages,
            forms=forms,
            base_url=settings.issuer,
            environment=settings.environment,
            secret=provider_secret(secret_key, name),
            upstream=WatchedUpstream(metrics.upstream(name), health[name]),
        )
        providers[name] = PROVIDER_CLASSES[config.type](config, services)
    return providers


def provider_secret(secret_key: str, name: str) -> bytes:
    """A key of the provider's own, so that no provider holds the gateway's secret_key."""
    return hmac.new(
        secret_key.encode(), f"portvakt.provider:{name}".encode(), hashlib.sha256
    ).digest()

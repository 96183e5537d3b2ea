"""Builds one provider object per `providers:` entry from its type."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.metrics import Metrics
from gateway.settings import Settings
from providers.bankid import BankIDProvider
from providers.base import FormGuard, NamespacedStore, Pages, Provider, ProviderServices, Store
from providers.oidc import OidcProvider
from providers.saml import SamlProvider
from providers.sandbox import SandboxProvider

PROVIDER_CLASSES: dict[str, Callable[[Any, ProviderServices], Provider]] = {
    "sandbox": SandboxProvider,
    "bankid": BankIDProvider,
    "saml": SamlProvider,
    "oidc": OidcProvider,
}


def build_providers(
    settings: Settings, store: Store, pages: Pages, forms: FormGuard, metrics: Metrics
) -> dict[str, Provider]:
    providers: dict[str, Provider] = {}
    for name, config in settings.providers.items():
        services = ProviderServices(
            name=name,
            store=NamespacedStore(store, f"p:{name}:"),
            pages=pages,
            forms=forms,
            base_url=settings.issuer,
            environment=settings.environment,
            upstream=metrics.upstream(name),
        )
        providers[name] = PROVIDER_CLASSES[config.type](config, services)
    return providers

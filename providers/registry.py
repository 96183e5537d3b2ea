"""Every provider type is one row here: its `type:` name, its config model, its Provider class.

The gateway reads the rows (the settings' `providers:` entries, building the providers) and
asks the config models and providers what they can do; it names no type itself. A type added
outside this package, or by a test, joins with `register`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from providers.bankid.config import BankIDConfig
from providers.bankid.provider import BankIDProvider
from providers.base import Provider, ProviderConfig, ProviderServices
from providers.eudi_wallet.config import EudiWalletConfig
from providers.eudi_wallet.provider import EudiWalletProvider
from providers.oidc.config import OidcConfig
from providers.oidc.provider import OidcProvider
from providers.saml.config import SamlConfig
from providers.saml.provider import SamlProvider
from providers.sandbox import SandboxConfig, SandboxProvider

C = TypeVar("C", bound=ProviderConfig)


@dataclass(frozen=True)
class ProviderType(Generic[C]):
    name: str  # the value of `type:` in the YAML
    config: type[C]
    provider: Callable[[C, ProviderServices], Provider]

    def build(self, config: ProviderConfig, services: ProviderServices) -> Provider:
        if not isinstance(config, self.config):
            raise TypeError(f"a {self.name} provider needs a {self.config.__name__}")
        return self.provider(config, services)


PROVIDER_TYPES: dict[str, ProviderType[Any]] = {
    row.name: row
    for row in (
        ProviderType("sandbox", SandboxConfig, SandboxProvider),
        ProviderType("bankid", BankIDConfig, BankIDProvider),
        ProviderType("saml", SamlConfig, SamlProvider),
        ProviderType("oidc", OidcConfig, OidcProvider),
        ProviderType("eudi_wallet", EudiWalletConfig, EudiWalletProvider),
    )
}


def register(row: ProviderType[Any]) -> None:
    """Add a provider type; its config model must accept only `type: <row.name>`."""
    if row.name in PROVIDER_TYPES:
        raise ValueError(f"provider type {row.name!r} is already registered")
    PROVIDER_TYPES[row.name] = row


def unregister(name: str) -> None:
    PROVIDER_TYPES.pop(name, None)

"""Each built-in provider and config declares its capabilities by subclassing them, so the
gateway's isinstance checks find exactly what each can do (and mypy checks the members)."""

from __future__ import annotations

import pytest

from providers.base import (
    ChecksConfig,
    HasLifecycle,
    ProviderConfig,
    PublishesMetadata,
    ReportsHealth,
    UpstreamLogout,
)
from providers.registry import PROVIDER_TYPES

PROVIDER_CAPABILITIES = (HasLifecycle, UpstreamLogout, ReportsHealth)
CONFIG_CAPABILITIES = (ChecksConfig, PublishesMetadata)


@pytest.mark.parametrize(
    ("kind", "declared"),
    [
        ("sandbox", set()),
        ("bankid", {HasLifecycle, ReportsHealth}),
        ("saml", {HasLifecycle, UpstreamLogout, ReportsHealth}),
        ("oidc", {HasLifecycle, ReportsHealth}),
    ],
)
def test_each_provider_class_declares_its_capabilities(kind: str, declared: set[type]) -> None:
    provider = PROVIDER_TYPES[kind].provider
    assert isinstance(provider, type)
    assert {c for c in PROVIDER_CAPABILITIES if issubclass(provider, c)} == declared


@pytest.mark.parametrize(
    ("kind", "declared"),
    [
        ("sandbox", set()),
        ("bankid", {ChecksConfig}),
        ("saml", {ChecksConfig, PublishesMetadata}),
        ("oidc", {ChecksConfig}),
    ],
)
def test_each_config_model_declares_its_capabilities(kind: str, declared: set[type]) -> None:
    config = PROVIDER_TYPES[kind].config
    assert issubclass(config, ProviderConfig)
    assert {c for c in CONFIG_CAPABILITIES if issubclass(config, c)} == declared


def test_a_capability_without_defaults_must_be_implemented() -> None:
    class HalfLogout(UpstreamLogout):
        def session_keys(self, _identity: object) -> list[str]:  # type: ignore[override]
            return []

    with pytest.raises(TypeError, match="logout"):
        HalfLogout()  # type: ignore[abstract]


@pytest.mark.parametrize("kind", ["sandbox", "bankid", "saml", "oidc"])
def test_a_row_accepts_only_its_own_type(kind: str) -> None:
    config = PROVIDER_TYPES[kind].config
    assert config.model_fields["type"].annotation is not str  # a Literal of the row's name
    assert kind in str(config.model_fields["type"].annotation)

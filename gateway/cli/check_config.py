"""What `portvakt check-config` checks beyond loading: things that are true today but may not be
next month, or that depend on other machines. `portvakt serve` does not run these (an expiring
certificate must not stop a running service); check-config exits non-zero on any of them.

- certificates expired or expiring within 30 days (SAML keys, the BankID RP certificate);
- redirect URIs over plain http outside localhost;
- upstream metadata that cannot be fetched and verified now (SAML metadata URLs, OIDC
  discovery and JWKS);
- clients' `jwks_uri` that cannot be fetched now or hold no usable public key.

What each provider entry has to check it says itself (`providers.base.ChecksConfig`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx2

from gateway.oidc.client_keys import ClientKeysUnavailable, fetch_key_set
from gateway.settings import Settings
from providers.base import ChecksConfig, ConfigProblem

EXPIRY_WARNING_DAYS = 30
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def deeper_problems(settings: Settings, now: float | None = None) -> list[str]:
    now = time.time() if now is None else now
    problems = list(_certificate_problems(settings, now))
    problems += list(_redirect_uri_problems(settings))
    problems += asyncio.run(_upstream_problems(settings))
    problems += asyncio.run(_client_key_problems(settings))
    return problems


def _certificate_problems(settings: Settings, now: float) -> Iterator[str]:
    for name, provider in settings.providers.items():
        if not isinstance(provider, ChecksConfig):
            continue
        for key, not_after in provider.certificate_expiries().items():
            days = (not_after - now) / 86400
            if days <= 0:
                yield f"providers.{name}.{key}: the certificate has expired; issue a new one"
            elif days <= EXPIRY_WARNING_DAYS:
                yield (
                    f"providers.{name}.{key}: the certificate expires in {int(days)} days; "
                    "renew it (and publish the new SAML metadata) now"
                )


def _redirect_uri_problems(settings: Settings) -> Iterator[str]:
    for index, client in enumerate(settings.clients):
        for field in ("redirect_uris", "post_logout_redirect_uris"):
            for uri in getattr(client, field):
                parts = urlsplit(uri)
                if parts.scheme == "http" and parts.hostname not in LOCAL_HOSTS:
                    yield (
                        f"clients[{index}].{field}: {uri!r} is plain http; codes would travel "
                        "unprotected. Use https (http is only for localhost)"
                    )


async def _upstream_problems(settings: Settings) -> list[str]:
    problems: list[str] = []
    async with httpx2.AsyncClient(timeout=10, follow_redirects=True) as http:
        for name, provider in settings.providers.items():
            if isinstance(provider, ChecksConfig):
                found = await provider.upstream_problems(http)
                problems += [_under_provider(name, problem) for problem in found]
    return problems


async def _client_key_problems(settings: Settings) -> list[str]:
    """Fetched as the gateway fetches them (bounded, no redirects) and checked the same way."""
    problems: list[str] = []
    async with httpx2.AsyncClient(timeout=10, follow_redirects=False) as http:
        for index, client in enumerate(settings.clients):
            if client.jwks_uri is None:
                continue
            try:
                await fetch_key_set(http, client.jwks_uri)
            except ClientKeysUnavailable as error:
                problems.append(
                    f"clients[{index}].jwks_uri: the client's keys cannot be used now: {error}"
                )
    return problems


def _under_provider(name: str, problem: ConfigProblem) -> str:
    key, text = problem
    return f"providers.{name}{'.' + key if key else ''}: {text}"

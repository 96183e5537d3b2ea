"""What `portvakt check-config` checks beyond loading: things that are true today but may not be
next month, or that depend on other machines. `portvakt serve` does not run these (an expiring
certificate must not stop a running service); check-config exits non-zero on any of them.

- certificates expired or expiring within 30 days (SAML keys, the BankID RP certificate);
- redirect URIs over plain http outside localhost;
- upstream metadata that cannot be fetched and verified now (SAML metadata URLs, OIDC
  discovery and JWKS).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx2

from gateway.settings import Settings
from providers.bankid.client import certificate_not_after
from providers.bankid.provider import BankIDConfig
from providers.oidc import OidcConfig
from providers.saml.metadata import MetadataRejected, read_federation
from providers.saml.provider import SamlConfig
from providers.saml.xml import KeyPair, VerificationKey

EXPIRY_WARNING_DAYS = 30
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def deeper_problems(settings: Settings, now: float | None = None) -> list[str]:
    now = time.time() if now is None else now
    problems = list(_certificate_problems(settings, now))
    problems += list(_redirect_uri_problems(settings))
    problems += asyncio.run(_upstream_problems(settings))
    return problems


def _certificate_problems(settings: Settings, now: float) -> Iterator[str]:
    for name, provider in settings.providers.items():
        expiries: dict[str, float] = {}
        if isinstance(provider, SamlConfig):
            for label, pair in (("signing", provider.signing), ("encryption", provider.encryption)):
                certificate = KeyPair.from_files(pair.key, pair.cert).certificate
                expiries[f"{label}.cert"] = certificate.not_valid_after_utc.timestamp()
        if isinstance(provider, BankIDConfig) and provider.client_cert is not None:
            cert = provider.client_cert
            expiries["client_cert"] = certificate_not_after(cert.file, cert.password)
        for key, not_after in expiries.items():
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
            try:
                if isinstance(provider, SamlConfig) and provider.metadata.url:
                    response = await http.get(provider.metadata.url)
                    response.raise_for_status()
                    signer = (
                        VerificationKey.from_pem_file(provider.metadata.cert)
                        if provider.metadata.cert
                        else None
                    )
                    federation = read_federation(response.content, signer)
                    if not any(provider.allow.accepts(idp) for idp in federation.idps.values()):
                        problems.append(
                            f"providers.{name}.allow: no IdP in the metadata passes the allow-list"
                        )
                if isinstance(provider, OidcConfig) and provider.endpoints is None:
                    url = f"{provider.issuer.rstrip('/')}/.well-known/openid-configuration"
                    discovery = (await http.get(url)).raise_for_status().json()
                    if discovery.get("issuer") != provider.issuer:
                        problems.append(f"providers.{name}.issuer: discovery names another issuer")
                    (await http.get(discovery["jwks_uri"])).raise_for_status()
            except (httpx2.HTTPError, MetadataRejected, ValueError, KeyError) as error:
                problems.append(
                    f"providers.{name}: the upstream metadata cannot be used now: "
                    f"{type(error).__name__}: {error}"
                )
    return problems

"""What `portvakt check-config` verifies of a SAML entry beyond loading it: that our SP
certificates are not about to expire, and that the federation's metadata can be fetched,
verified and yields an IdP the allow-list passes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx2

from providers.base import ConfigProblem, unusable_upstream
from providers.saml.metadata import MetadataRejected, read_federation
from providers.saml.xml import KeyPair, VerificationKey

if TYPE_CHECKING:
    from providers.saml.config import SamlConfig


def certificate_expiries(config: SamlConfig) -> dict[str, float]:
    """The certificates in use; a previous encryption key may well have expired."""
    expiries = {}
    for label, pair in (("signing", config.signing), ("encryption", config.encryption)):
        certificate = KeyPair.from_files(pair.key, pair.cert).certificate
        expiries[f"{label}.cert"] = certificate.not_valid_after_utc.timestamp()
    return expiries


async def upstream_problems(config: SamlConfig, http: httpx2.AsyncClient) -> list[ConfigProblem]:
    if not config.metadata.url:
        return []
    try:
        response = await http.get(config.metadata.url)
        response.raise_for_status()
        cert = config.metadata.cert
        signer = VerificationKey.from_pem_file(cert) if cert else None
        federation = read_federation(response.content, signer)
    except (httpx2.HTTPError, MetadataRejected, ValueError) as error:
        return [unusable_upstream(error)]
    if not any(config.allow.accepts(idp) for idp in federation.idps.values()):
        return [("allow", "no IdP in the metadata passes the allow-list")]
    return []
